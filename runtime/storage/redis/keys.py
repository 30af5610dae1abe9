"""Where each thing lives in Redis: key and channel names, as pure functions.

Stream and group names may contain any character, ``:`` included, so a
name is never simply joined: the stream is length-prefixed and the group
comes last, which makes every key decode to exactly one (stream, group).
Everything sits under one prefix (``rt`` unless the URL says otherwise),
so several apps, or the tests, can share one Redis.
"""

from __future__ import annotations

import attrs

__all__ = ["GroupKeys", "Keys"]


@attrs.frozen(slots=True)
class GroupKeys:
    """The keys of one group, in the order the Lua scripts take them."""

    meta: str  # hash: epoch, offset, ts, seq
    items: str  # hash: item id -> item JSON
    order: str  # sorted set: item id -> insertion sequence (list() order)
    history: str  # list: history entries, oldest first
    groups: str  # set: the stream's group ids that hold at least one item
    turn: str  # string: the origin of a process that lost races and commits next (a short lease)

    def as_list(self) -> list[str]:
        return [self.meta, self.items, self.order, self.history, self.groups, self.turn]


@attrs.frozen(slots=True)
class Keys:
    prefix: str = "rt"

    def _group(self, kind: str, stream: str, group: str) -> str:
        return f"{self.prefix}:{kind}:{len(stream)}:{stream}:{group}"

    def group(self, stream: str, group: str) -> GroupKeys:
        return GroupKeys(
            meta=self._group("meta", stream, group),
            items=self._group("items", stream, group),
            order=self._group("order", stream, group),
            history=self._group("hist", stream, group),
            groups=f"{self.prefix}:groups:{stream}",
            turn=self._group("turn", stream, group),
        )

    @property
    def channel(self) -> str:
        """The pub/sub channel every commit is published on (a message per COMMIT call)."""
        return f"{self.prefix}:ev"

    @property
    def alive(self) -> str:
        """A token written when the data set is first used: gone means the data was lost."""
        return f"{self.prefix}:alive"

    def state(self, scope: str) -> str:
        return f"{self.prefix}:state:{scope}"

    @property
    def pending(self) -> str:
        return f"{self.prefix}:q:pending"  # hash: id -> message JSON

    @property
    def pending_order(self) -> str:
        return f"{self.prefix}:q:pending-order"  # sorted set: id -> first-stored sequence

    @property
    def dead(self) -> str:
        return f"{self.prefix}:q:dead"

    @property
    def dead_order(self) -> str:
        return f"{self.prefix}:q:dead-order"

    @property
    def sequence(self) -> str:
        return f"{self.prefix}:q:seq"
