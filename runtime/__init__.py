"""A real-time streams runtime on Trio: streams of groups of items, live to every subscriber.

The public API (docs/streams.md, docs/storage.md). Everything a user imports
comes from here.
"""

from .errors import StorageError, StreamNotFound, Unauthorized, UpdateError, ValidationError
from .storage import HistoryPolicy, MemoryStorage, SQLiteStorage, Storage, open_storage
from .streams import DeleteResult, Event, SetResult, Stream, StreamConfig, StreamEngine, Subscriber

__all__ = [
    "DeleteResult",
    "Event",
    "HistoryPolicy",
    "MemoryStorage",
    "SQLiteStorage",
    "SetResult",
    "StorageError",
    "Storage",
    "Stream",
    "StreamConfig",
    "StreamEngine",
    "StreamNotFound",
    "Subscriber",
    "Unauthorized",
    "UpdateError",
    "ValidationError",
    "open_storage",
]
