"""Redis: the storage several processes share (``--storage redis://host:port/db``).

Owns: `RedisStorage` (a `SharedStorage`: compare-and-set commits in Lua,
the feed of other processes' commits, read checks, stamped time), its key
layout, scripts and codecs, and `RedisQueues`, the queue transport every
process consumes from. Imported only when a ``redis://`` URL is opened or
`RedisStorage` is named: coredis costs ~150 ms to import.
May import: ``runtime.storage.base``, ``runtime.errors``, coredis, Trio.
Must never be imported by it: anything above storage; and nothing below
``runtime/__init__`` / ``runtime.storage`` imports it eagerly.
"""

from .storage import RedisStorage

__all__ = ["RedisStorage"]
