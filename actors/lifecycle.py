"""`SingleUse`: objects entered once with ``async with``, whose body is an async context manager.

The system, the stream engine and the app all own nurseries for their
user: each writes its lifecycle as one ``@asynccontextmanager`` generator
(nurseries nest correctly there) and inherits the ``async with`` plumbing.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

__all__ = ["SingleUse"]


class SingleUse:
    """``async with obj:`` runs ``obj._lifecycle()``; a second entry is an error."""

    _lifecycle_cm: AbstractAsyncContextManager[Any] | None = None

    def _lifecycle(self) -> AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        if self._lifecycle_cm is not None:
            raise RuntimeError(f"a {type(self).__name__} can be entered only once")
        self._lifecycle_cm = self._lifecycle()
        return await self._lifecycle_cm.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._lifecycle_cm is not None
        return await self._lifecycle_cm.__aexit__(exc_type, exc, tb)
