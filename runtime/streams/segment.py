"""`Segment`: the mutations of one batch not yet committed, an overlay over the group's items.

The group actor applies a run of consecutive mutations to a segment (the
committed items stay untouched), a committer hands it to storage in one
transaction, and only then does the actor apply it and answer its callers.
"""

from __future__ import annotations

from typing import Any

from ..storage.base import IdempotencyRecord, StoredEvent
from .events import Event

__all__ = ["DELETED", "Pending", "Segment"]

#: The overlay's value for an item the segment deletes.
DELETED: Any = object()

#: What a segment publishes, in order: ``(StoredEvent, trace id)`` for a state
#: change (its `Event` is built at publish time, only if someone listens), an
#: `Event` for a custom one (``send``).
Pending = tuple[StoredEvent, str | None] | Event


class Segment:
    __slots__ = ("values", "writes", "stored", "events", "indices", "replies", "messages", "offset", "timestamp",
                 "expiries", "records")

    def __init__(self, offset: int, timestamp: int) -> None:
        self.values: dict[str, Any] = {}  # item id -> new value or DELETED
        self.writes: list[tuple[str, dict[str, Any] | None]] = []
        self.stored: list[StoredEvent] = []
        self.events: list[Pending] = []
        self.indices: list[int] = []  # positions in the batch, answered at commit
        self.replies: list[Any] = []  # their replies, in the same order
        #: The batch's mutations with their positions: what a committer applies
        #: again after losing a race to another process.
        self.messages: list[tuple[int, Any]] = []
        self.offset = offset
        self.timestamp = timestamp
        #: Item id -> its new expiry (ms) or None to clear it: committed with the writes.
        self.expiries: dict[str, int | None] = {}
        #: Idempotency records of the keyed calls that applied here, committed with the writes.
        self.records: list[IdempotencyRecord] = []
