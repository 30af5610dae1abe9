"""Redis: the storage several processes share (``--storage redis://host:port/db``)."""

from .storage import RedisStorage

__all__ = ["RedisStorage"]
