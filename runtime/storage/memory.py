"""In-process storage: the fast path, lost on restart (so a restart starts a new epoch).

``commit`` sits on the hot path of every mutation, so it does the least
work that keeps storage safe from its callers:

- Item dicts (and event data) are stored *by reference*. This is safe
  because the group actor never mutates an item in place; it replaces it with
  a new dict. Whoever builds a ``GroupCommit`` must keep to that contract.
- The mappings storage owns (a group's ``items`` dict, its history) are
  copied on the way out, so a caller adding or removing entries in a loaded
  ``GroupState`` cannot corrupt storage.
- ``ctx.state`` values, and the ``data`` of queued messages, are kept
  JSON-encoded, which both deep-copies them and refuses what the durable
  backends would refuse; every read decodes a fresh copy.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import attrs
import orjson
import trio

from runtime.errors import StorageError
from runtime.storage.base import (
    GroupCommit,
    GroupState,
    HistoryPolicy,
    IdempotencyRecord,
    QueuedMessage,
    Storage,
    StoredEvent,
    check_expected,
    new_epoch,
)

__all__ = ["MemoryStorage"]


@attrs.define(slots=True)
class _StoredGroup:
    """A group as committed; created by its first commit, kept after its items are gone."""

    epoch: str
    offset: int = 0
    timestamp: int = 0
    items: dict[str, dict] = attrs.Factory(dict)
    history: deque[StoredEvent] = attrs.Factory(deque)
    expiries: dict[str, int] = attrs.Factory(dict)  # item id -> ms
    records: OrderedDict[str, IdempotencyRecord] = attrs.Factory(OrderedDict)  # oldest first

    def apply(self, commit: GroupCommit, policy: HistoryPolicy) -> None:
        items = self.items
        expiries = self.expiries
        for item_id, value in commit.writes:
            if value is None:
                items.pop(item_id, None)
                expiries.pop(item_id, None)
            else:
                items[item_id] = value  # an existing id keeps its place, a new one goes last
        for item_id, at in commit.expiries.items():
            if at is None:
                expiries.pop(item_id, None)
            else:
                expiries[item_id] = at
        self.epoch = commit.epoch
        self.offset = commit.offset
        self.timestamp = commit.timestamp
        self._append_history(commit.events, policy)
        if commit.records or self.records:
            self._store_records(commit)

    def _store_records(self, commit: GroupCommit) -> None:
        records = self.records
        for record in commit.records:
            records.setdefault(record.key, record)  # the first record of a key stays
        now = commit.timestamp
        while records and (len(records) > commit.max_records or next(iter(records.values())).expires_at <= now):
            records.popitem(last=False)

    def _append_history(self, events: list[StoredEvent], policy: HistoryPolicy) -> None:
        if self.history.maxlen != policy.max_events:
            self.history = deque(self.history, maxlen=policy.max_events)
        history = self.history
        history.extend(events)  # the bounded deque drops the oldest beyond max_events
        first_kept = policy.first_kept_offset(self.offset)
        cutoff = policy.age_cutoff(self.timestamp)
        while history and (history[0].offset < first_kept or history[0].timestamp < cutoff):
            history.popleft()


@attrs.frozen(slots=True)
class _StoredMessage:
    """A queued message as stored: its ``data`` encoded, so neither side can change it."""

    message: QueuedMessage  # with data=None; the value lives in ``data``
    data: bytes

    @classmethod
    def encode(cls, message: QueuedMessage) -> _StoredMessage:
        data = orjson.dumps(message.data)  # a TypeError here changes nothing
        return cls(attrs.evolve(message, data=None), data)

    def decode(self) -> QueuedMessage:
        return attrs.evolve(self.message, data=orjson.loads(self.data))


class MemoryStorage(Storage):
    """Everything in dicts owned by this object; the module docstring gives the copy contract."""

    durable = False

    def __init__(self) -> None:
        self._is_open = False
        self._groups: dict[str, dict[str, _StoredGroup]] = {}  # stream -> group id -> group
        self._state: dict[str, dict[str, bytes]] = {}  # scope -> key -> JSON
        # id -> message; a dict keeps first-insertion order and a replace keeps its place
        self._pending: dict[str, _StoredMessage] = {}
        self._dead: dict[str, _StoredMessage] = {}

    async def open(self) -> None:
        await trio.lowlevel.checkpoint()
        self._is_open = True

    async def aclose(self) -> None:
        # Nothing to flush; the data stays with this object, so reopening finds it again.
        await trio.lowlevel.checkpoint()
        self._is_open = False

    def _check_open(self) -> None:
        if not self._is_open:
            raise StorageError(
                "MemoryStorage is not open: use `async with storage:` or `await storage.open()`"
            )

    # Each method checkpoints *before* changing anything, as Trio's own
    # operations do, so a cancelled call has had no effect. ``commit`` only
    # checks for cancellation: it is the group actor's hot path, and the
    # actor's mailbox already yields once per turn.

    async def load_group(self, stream: str, group: str) -> GroupState:
        await trio.lowlevel.checkpoint()
        self._check_open()
        stored = self._groups.get(stream, {}).get(group)
        if stored is None:
            return GroupState(epoch=new_epoch(), offset=0, timestamp=0, items={}, history=[], expiring=[])
        return GroupState(
            epoch=stored.epoch,
            offset=stored.offset,
            timestamp=stored.timestamp,
            items=dict(stored.items),
            history=list(stored.history),
            expiring=list(stored.expiries),
        )

    async def commit(
        self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy
    ) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()  # the hot path: no extra scheduler pass per turn
        self._check_open()
        stored = self._groups.get(stream, {}).get(group)
        if stored is None:
            check_expected(stream, group, None, 0, commit)
            stored = _StoredGroup(epoch=commit.epoch)
            self._groups.setdefault(stream, {})[group] = stored
        else:
            check_expected(stream, group, stored.epoch, stored.offset, commit)
        stored.apply(commit, policy)

    async def list_groups(self, stream: str) -> list[str]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return sorted(gid for gid, stored in self._groups.get(stream, {}).items() if stored.items)

    async def expiry_due(self, stream: str, now: int, limit: int = 100) -> list[str]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        due = [
            gid for gid, stored in self._groups.get(stream, {}).items()
            if stored.expiries and min(stored.expiries.values()) <= now
        ]
        return due[:limit]

    async def expired_items(self, stream: str, group: str, now: int) -> list[str]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        stored = self._groups.get(stream, {}).get(group)
        if stored is None:
            return []
        return [item_id for item_id, at in sorted(stored.expiries.items(), key=lambda pair: pair[1]) if at <= now]

    async def expiry_next(self, stream: str) -> int | None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return min(
            (min(stored.expiries.values()) for stored in self._groups.get(stream, {}).values() if stored.expiries),
            default=None,
        )

    async def idempotency_get(self, stream: str, group: str, keys: Sequence[str], now: int) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        stored = self._groups.get(stream, {}).get(group)
        if stored is None:
            return {}
        found = {}
        for key in keys:
            record = stored.records.get(key)
            if record is not None and record.expires_at > now:
                found[key] = record.result
        return found

    async def state_get(self, scope: str, key: str) -> Any | None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        encoded = self._state.get(scope, {}).get(key)
        return None if encoded is None else orjson.loads(encoded)

    async def state_set(self, scope: str, key: str, value: Any) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        encoded = orjson.dumps(value)  # before touching anything: a TypeError changes nothing
        self._state.setdefault(scope, {})[key] = encoded

    async def state_delete(self, scope: str, key: str) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        entries = self._state.get(scope)
        if entries is not None:
            entries.pop(key, None)
            if not entries:
                del self._state[scope]

    async def state_list(self, scope: str) -> dict[str, Any]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        entries = self._state.get(scope, {})
        return {key: orjson.loads(entries[key]) for key in sorted(entries)}

    async def state_clear(self, scope: str) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        self._state.pop(scope, None)

    async def queue_put(self, message: QueuedMessage) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        self._pending[message.id] = _StoredMessage.encode(message)

    async def queue_ack(self, message_id: str) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        self._pending.pop(message_id, None)

    async def queue_pending(self) -> list[QueuedMessage]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return [stored.decode() for stored in self._pending.values()]

    async def queue_dead(self, message: QueuedMessage) -> None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        stored = _StoredMessage.encode(message)  # before removing anything
        self._pending.pop(message.id, None)
        self._dead[message.id] = stored

    async def dead_letters(self, topic: str | None = None) -> list[QueuedMessage]:
        await trio.lowlevel.checkpoint()
        self._check_open()
        return [
            stored.decode()
            for stored in self._dead.values()
            if topic is None or stored.message.topic == topic
        ]

    async def dead_letter_take(self, message_id: str) -> QueuedMessage | None:
        await trio.lowlevel.checkpoint()
        self._check_open()
        stored = self._dead.pop(message_id, None)
        return None if stored is None else stored.decode()
