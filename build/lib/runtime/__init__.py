"""A real-time streams runtime on Trio: streams of groups of items, live to every subscriber.

The public API. Everything a user imports comes from here; a Motia Python
step file ports by changing its imports to ``from runtime import ...``.
"""

from .app import App
from .client import StreamClient
from .errors import ConfigurationError, StorageError, StreamNotFound, Unauthorized, UpdateError, ValidationError
from .logs import Logger, configure_logging
from .state import State
from .steps import (
    ApiRequest,
    ApiResponse,
    FlowContext,
    ProjectError,
    RetryPolicy,
    RuntimeClock,
    Step,
    StreamTriggerInput,
    TriggerInfo,
    api,
    cron,
    http,
    load_project,
    queue,
    step,
    stream,
)
from .steps.context import emit, enqueue, logger, state
from .storage import HistoryPolicy, MemoryStorage, RedisStorage, SQLiteStorage, Storage, open_storage
from .streams import DeleteResult, Event, SetResult, SetResults, Stream, StreamConfig, StreamEngine, Subscriber

__all__ = [
    "ApiRequest", "ApiResponse", "App", "ConfigurationError", "DeleteResult", "Event", "FlowContext", "HistoryPolicy",
    "Logger", "MemoryStorage", "ProjectError", "RedisStorage", "RetryPolicy", "RuntimeClock", "SQLiteStorage",
    "SetResult", "SetResults", "State", "Step", "Storage", "StorageError", "Stream", "StreamClient", "StreamConfig",
    "StreamEngine", "StreamNotFound", "StreamTriggerInput", "Subscriber", "TriggerInfo", "Unauthorized", "UpdateError",
    "ValidationError",
    "api", "configure_logging", "cron", "emit", "enqueue", "http", "load_project", "logger", "open_storage", "queue",
    "state", "step", "stream",
]
