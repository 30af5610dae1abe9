"""A real-time streams runtime on Trio: streams of groups of items, live to every subscriber.

The public API. Everything a user imports comes from here; a Motia Python
step file ports by changing its imports to ``from runtime import ...``.

Layers, each importing only those below it (CONTRIBUTING.md):
``actors`` -> ``storage`` -> ``streams`` -> ``steps`` -> ``server`` -> ``app``
(``errors``, ``logs`` and ``state`` are shared leaves; ``client`` and
``testing`` sit beside the app and use it from outside). This module may
import every layer but loads the optional stacks (Redis, the client's
transport) only when their names are first used; nothing inside the
package imports it.
"""

from typing import TYPE_CHECKING, Any

from .app import App
from .errors import (
    ConfigurationError,
    IdempotencyError,
    StorageError,
    StreamNotFound,
    Unauthorized,
    UpdateError,
    ValidationError,
)
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
from .storage import HistoryPolicy, MemoryStorage, SQLiteStorage, Storage, open_storage
from .streams import (
    DeleteResult,
    Event,
    PresenceEntry,
    SetResult,
    SetResults,
    Stream,
    StreamConfig,
    StreamEngine,
    Subscriber,
)

if TYPE_CHECKING:
    from .client import StreamClient
    from .storage import RedisStorage

__all__ = [
    "ApiRequest", "ApiResponse", "App", "ConfigurationError", "DeleteResult", "Event", "FlowContext", "HistoryPolicy",
    "IdempotencyError", "Logger", "MemoryStorage", "PresenceEntry", "ProjectError", "RedisStorage", "RetryPolicy",
    "RuntimeClock",
    "SQLiteStorage",
    "SetResult", "SetResults", "State", "Step", "Storage", "StorageError", "Stream", "StreamClient", "StreamConfig",
    "StreamEngine", "StreamNotFound", "StreamTriggerInput", "Subscriber", "TriggerInfo", "Unauthorized", "UpdateError",
    "ValidationError",
    "api", "configure_logging", "cron", "emit", "enqueue", "http", "load_project", "logger", "open_storage", "queue",
    "state", "step", "stream",
]


#: Names whose modules load on first use: Redis support (coredis) and the
#: client's transport (trio-websocket) cost ~60% of `import runtime` for
#: the users who need neither (CONTRIBUTING.md, "imports").
_LAZY = {"RedisStorage": "runtime.storage", "StreamClient": "runtime.client"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
