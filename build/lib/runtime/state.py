"""``ctx.state``: key-value scopes on the app's storage.

Values are JSON, checked before anything is written; what you get back is
your own copy. Scopes are strings (a trace id, a user id, a feature name).
"""

from __future__ import annotations

from typing import Any

from .storage.base import Storage
from .streams.ops import check_json, check_name

__all__ = ["State"]


class State:
    """``get/set/delete/list/clear`` by scope and key (``get_group`` is ``list``)."""

    __slots__ = ("_storage",)

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def get(self, scope: str, key: str) -> Any | None:
        return await self._storage.state_get(check_name(scope, "scope"), check_name(key, "key"))

    async def set(self, scope: str, key: str, value: Any) -> Any:
        check_name(scope, "scope")
        check_name(key, "key")
        check_json(value, "state value")
        await self._storage.state_set(scope, key, value)
        return value

    async def delete(self, scope: str, key: str) -> None:
        await self._storage.state_delete(check_name(scope, "scope"), check_name(key, "key"))

    async def list(self, scope: str) -> dict[str, Any]:
        """Every key of ``scope`` with its value, in key order."""
        return await self._storage.state_list(check_name(scope, "scope"))

    get_group = list

    async def clear(self, scope: str) -> None:
        await self._storage.state_clear(check_name(scope, "scope"))
