"""Storage backends behind one interface, chosen by a URL (``--storage``).

``open_storage`` only builds the object; open it with ``async with storage:``.
"""

from __future__ import annotations

import os

from runtime.storage.base import (
    ConflictError,
    GroupCommit,
    GroupState,
    HistoryPolicy,
    QueuedMessage,
    Storage,
    StoredEvent,
)
from runtime.storage.memory import MemoryStorage
from runtime.storage.sqlite import SQLiteStorage

__all__ = [
    "ConflictError",
    "GroupCommit",
    "GroupState",
    "HistoryPolicy",
    "MemoryStorage",
    "QueuedMessage",
    "SQLiteStorage",
    "Storage",
    "StoredEvent",
    "open_storage",
]

SUPPORTED_URLS = "'memory', 'sqlite:PATH', 'sqlite:///abs/path' or 'sqlite://relative/path'"


def open_storage(url: str) -> Storage:
    """The backend a storage URL names.

    ``memory`` (or ``memory://``) keeps everything in this process.
    ``sqlite:PATH`` is a file, relative to the working directory unless
    absolute; ``sqlite:///abs/path`` and ``sqlite://relative/path`` are the
    URL spellings of the same. Missing parent directories are created when the
    storage opens. Anything else raises ``ValueError``.
    """
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "memory" and rest in ("", "//"):
        return MemoryStorage()
    if scheme == "sqlite" and sep:
        path = rest
        if path.startswith("///"):
            path = path[2:]  # keep one slash: absolute
        elif path.startswith("//"):
            path = path[2:]  # relative
        if path:
            return SQLiteStorage(os.path.expanduser(path))
    not_yet = " (redis is not available yet)" if scheme in ("redis", "rediss") else ""
    raise ValueError(f"unsupported storage URL {url!r}{not_yet}: use {SUPPORTED_URLS}")
