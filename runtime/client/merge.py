"""How a subscription's state follows the frames: Motia's merge rules, without I/O.

`GroupState` and `ItemState` apply frames exactly as Motia's clients
(``@motiadev/stream-client``) do — state keyed by each item's ``id``, a
group's optional sort key, frames whose timestamp is not newer dropped —
with two differences that a conforming server never triggers but that make
the state converge whatever arrives: a group's ``create`` of an id already
present replaces it, and an ``update`` of an absent id appends it (Motia
ignores both); and the timestamp check covers a group's ``create`` and
``delete`` too, not only its ``update``.

On top of the timestamps, this runtime's frames carry ``epoch``/``offset``:
`is_duplicate` drops a state frame at or below what a subscription has
already applied, and `ReplayBuffer` holds the frames that arrive while a
resume is pending, to be applied in offset order once it is answered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from .protocol import Position, StreamFrame

__all__ = ["Change", "GroupState", "ItemState", "ReplayBuffer", "is_duplicate", "sort_items", "item_key"]


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that happened to a subscription, as `async for change in subscription` yields it.

    ``kind``: ``sync`` (the whole state; ``data`` is the list of items, or the
    item or None), ``create`` / ``update`` (``data`` is the new value),
    ``delete`` (``data`` is the old value), ``event`` (a custom event:
    ``event_type`` and its ``data``), ``resumed`` (a reconnect replayed
    ``replayed`` missed changes; nothing was lost).

    ``resynced`` is True on a ``sync`` that replaced state the subscription
    already had — after a reconnect the history could not cover, after the
    server dropped a slow connection's backlog, or when this iterator fell
    behind (then ``dropped`` says how many changes it skipped): events may
    have been missed, the state is right again.
    """

    kind: str
    stream: str
    group: str
    item_id: str | None
    data: Any
    timestamp: int
    epoch: str | None = None
    offset: int | None = None
    event_type: str | None = None
    resynced: bool = False
    replayed: int | None = None
    dropped: int = 0

    @property
    def position(self) -> Position | None:
        if self.epoch is None or self.offset is None:
            return None
        return Position(self.epoch, self.offset)


def item_key(data: Any, fallback: str | None) -> Any:
    """An item's key: its ``id`` (Motia's clients key on it), else the frame's item id."""
    if isinstance(data, dict) and "id" in data:
        return data["id"]
    return fallback


def _motia_compare(key: str, a: Any, b: Any) -> int:
    # Motia: if both values are truthy compare their strings (localeCompare), else keep the order.
    av = a.get(key) if isinstance(a, dict) else None
    bv = b.get(key) if isinstance(b, dict) else None
    if av and bv:
        sa, sb = _js_string(av), _js_string(bv)
        return (sa > sb) - (sa < sb)
    return 0


def _js_string(value: Any) -> str:
    if value is True:
        return "true"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def sort_items(items: list[Any], sort_key: str | None) -> list[Any]:
    """Motia's group order: insertion order, stably sorted by ``sort_key`` when given
    (strings compared by code point; Motia's ``localeCompare`` may differ for non-ASCII)."""
    if not sort_key:
        return items
    return sorted(items, key=functools.cmp_to_key(functools.partial(_motia_compare, sort_key)))


def is_duplicate(position: Position | None, frame: StreamFrame) -> bool:
    """A state frame at or below what was already applied, in the same epoch (a replay overlap)."""
    return (
        position is not None and frame.epoch == position.epoch
        and frame.offset is not None and frame.offset <= position.offset
    )


class GroupState:
    """A group subscription's items, keyed by id in insertion order (sorted view on demand)."""

    __slots__ = ("sort_key", "items", "last_timestamp", "item_timestamps", "_view")

    def __init__(self, sort_key: str | None = None) -> None:
        self.sort_key = sort_key
        self.items: dict[Any, Any] = {}
        self.last_timestamp = 0
        self.item_timestamps: dict[Any, int] = {}
        self._view: list[Any] | None = []

    def view(self) -> list[Any]:
        """The items as a list (sorted by the sort key); a new list after each change, never mutated."""
        if self._view is None:
            self._view = sort_items(list(self.items.values()), self.sort_key)
        return self._view

    def sync(self, items: Any, timestamp: int, *, force: bool = False) -> bool:
        """Replace the state; Motia ignores a sync older than the newest change (unless ``force``)."""
        if not force and timestamp < self.last_timestamp:
            return False
        values = items if isinstance(items, list) else []
        self.items = {item_key(item, str(index)): item for index, item in enumerate(values)}
        self.item_timestamps = {}
        self.last_timestamp = timestamp
        self._view = None
        return True

    def equals(self, items: Any) -> bool:
        values = items if isinstance(items, list) else []
        return list(self.items.values()) == values

    def apply(self, kind: str, item_id: str | None, data: Any, timestamp: int) -> bool:
        """create / update / delete; False when dropped as not newer than that item's last change."""
        key = item_key(data, item_id)
        seen = self.item_timestamps.get(key)
        if seen is not None and seen >= timestamp:
            return False
        self.item_timestamps[key] = timestamp
        self.last_timestamp = max(self.last_timestamp, timestamp)
        if kind == "delete":
            self.items.pop(key, None)
        else:
            self.items[key] = data
        self._view = None
        return True


class ItemState:
    """An item subscription's value (None when absent); every frame must be newer than the last."""

    __slots__ = ("value", "last_timestamp")

    def __init__(self) -> None:
        self.value: Any = None
        self.last_timestamp = 0

    def view(self) -> Any:
        return self.value

    def sync(self, value: Any, timestamp: int, *, force: bool = False) -> bool:
        if not force and timestamp <= self.last_timestamp:
            return False
        self.value = value
        self.last_timestamp = timestamp
        return True

    def equals(self, value: Any) -> bool:
        return self.value == value

    def apply(self, kind: str, item_id: str | None, data: Any, timestamp: int) -> bool:
        if timestamp <= self.last_timestamp:
            return False
        self.last_timestamp = timestamp
        self.value = None if kind == "delete" else data
        return True

    def accept_event(self, timestamp: int) -> bool:
        """Motia's item client drops a custom event that is not newer than the last frame, too."""
        if timestamp <= self.last_timestamp:
            return False
        self.last_timestamp = timestamp
        return True


class ReplayBuffer:
    """State frames received while a resume is pending, keyed by offset (so overlaps collapse).

    Bounded: past ``limit`` frames it gives up (``overflowed``) and the
    subscription asks for a fresh sync instead of trusting a partial replay.
    """

    __slots__ = ("limit", "frames", "overflowed")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames: dict[int, StreamFrame] = {}
        self.overflowed = False

    def add(self, frame: StreamFrame) -> None:
        if self.overflowed or frame.offset is None:
            return
        if frame.offset not in self.frames and len(self.frames) >= self.limit:
            self.overflowed = True
            self.frames.clear()
            return
        self.frames[frame.offset] = frame

    def drain(self, since: Position) -> list[StreamFrame]:
        """The frames after ``since`` in its epoch, in offset order; empties the buffer."""
        frames = sorted(
            (
                f for f in self.frames.values()
                if f.epoch == since.epoch and f.offset is not None and f.offset > since.offset
            ),
            key=lambda f: f.offset,  # type: ignore[arg-type, return-value]  # not None: filtered above
        )
        self.frames.clear()
        return frames

    def clear(self) -> None:
        self.frames.clear()
        self.overflowed = False
