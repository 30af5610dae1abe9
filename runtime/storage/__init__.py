"""Storage backends behind one interface, chosen by a URL (``--storage``).

Owns: the `Storage` interface and its records (base.py), `SharedStorage`
for backends several processes write, and the backends: memory, SQLite,
Redis (storage/redis/, with its queue transport). A new backend implements
base.py's abstract methods and gets a URL scheme in `open_storage`.
May import: ``runtime.errors``, Trio, attrs and each backend's own client
library (RedisQueues implements steps/transport.py's protocol by shape,
without importing it).
Must never be imported by it: ``streams``, ``steps``, ``server``, ``app``
(storage never interprets items or update ops).

``open_storage`` only builds the object; open it with ``async with storage:``.
Redis support (coredis, ~150 ms to import) loads when a ``redis://`` URL is
opened or `RedisStorage` is first named, never for a user without Redis.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from runtime.storage.base import (
    ConflictError,
    GroupCommit,
    GroupState,
    HistoryPolicy,
    IdempotencyRecord,
    QueuedMessage,
    Storage,
    StoredEvent,
)
from runtime.storage.memory import MemoryStorage
from runtime.storage.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from runtime.storage.redis import RedisStorage

__all__ = [
    "ConflictError",
    "GroupCommit",
    "GroupState",
    "HistoryPolicy",
    "IdempotencyRecord",
    "MemoryStorage",
    "QueuedMessage",
    "RedisStorage",
    "SQLiteStorage",
    "Storage",
    "StoredEvent",
    "open_storage",
]

SUPPORTED_URLS = (
    "'memory', 'sqlite:PATH', 'sqlite:///abs/path', 'sqlite://relative/path' or 'redis://host:port/db'"
)


def open_storage(url: str) -> Storage:
    """The backend a storage URL names.

    ``memory`` (or ``memory://``) keeps everything in this process.
    ``sqlite:PATH`` is a file, relative to the working directory unless
    absolute; ``sqlite:///abs/path`` and ``sqlite://relative/path`` are the
    URL spellings of the same. Missing parent directories are created when the
    storage opens. ``redis://host:port/db`` (or ``rediss://`` for TLS) is a
    Redis that several processes share; ``?prefix=`` namespaces its keys and
    ``?timeout=`` bounds each command in seconds. Anything else raises
    ``ValueError``.
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
    if scheme in ("redis", "rediss") and rest.startswith("//"):
        from runtime.storage.redis import RedisStorage

        return RedisStorage(url)
    raise ValueError(f"unsupported storage URL {url!r}: use {SUPPORTED_URLS}")


def __getattr__(name: str) -> Any:
    if name == "RedisStorage":
        from runtime.storage.redis import RedisStorage

        return RedisStorage
    raise AttributeError(f"module 'runtime.storage' has no attribute {name!r}")
