"""The group actor: one per (stream, group), owner of that group's items.

Mutations are serialised by the mailbox, so ``increment``, ``merge`` and
``set`` are atomic without a lock. One turn takes a batch of messages:
consecutive mutations are applied to an overlay (a `Segment`; the
committed items stay untouched), stamped with offset and timestamp,
committed to storage in one transaction, and only then answered, added to
the history and published. A read or a join in the middle of a batch first
commits what came before it, so nobody ever sees state that is not
committed.

How a segment reaches storage is the group's `Committer` (committer.py):
`LocalCommitter` for a storage this process owns, `SharedCommitter`
(shared_committer.py) for one several processes write (Redis), which also
follows the others' commits. The actor picks one by the storage's type.

The published `Event` objects are built at publish time, and only when
someone listens (subscribers or stream triggers): a group nobody watches
pays for the `StoredEvent` its history needs and nothing more.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import outcome

from actors import Actor

from ..errors import IdempotencyError, StorageError
from ..storage.base import GroupCommit, IdempotencyRecord, SharedStorage, StoredEvent
from .committer import Committer, LocalCommitter
from .config import DeleteResult, SetResult, StreamDefinition
from .events import Event, Turn
from .group_context import GroupContext
from .messages import (
    KEYED,
    MUTATIONS,
    DeleteItem,
    ExpireDue,
    GetItem,
    GroupStats,
    Join,
    Joined,
    Leave,
    ListItems,
    SendEvent,
    SetItem,
    UpdateItem,
    UpdateMany,
)
from .ops import KEEP_EXPIRY, apply_update, name_entry
from .segment import DELETED, Pending, Segment
from .shared_committer import SharedCommitter
from .subscribers import Subscriber, SubscriberIndex

__all__ = ["GroupActor"]

logger = logging.getLogger("runtime.streams")

_ABSENT: Any = object()


class GroupActor(Actor):
    max_batch = 256

    def __init__(self, context: GroupContext, definition: StreamDefinition, group: str) -> None:
        self.context = context
        self.definition = definition
        self.stream = definition.name
        self.group = group
        self.subscribers = SubscriberIndex()
        self.clock = context.clock
        # The group's state, as loaded by `load` (empty until then).
        self.loaded = False
        self.items: dict[str, dict[str, Any]] = {}
        self.epoch = ""
        self.offset = 0
        self.timestamp = 0
        self.committed_timestamp = 0
        self.history: deque[StoredEvent] = deque(maxlen=definition.history.max_events)
        #: Ids of the items with an expiry, so a plain ``set`` clears one only where there is one;
        #: None on a shared storage, whose other processes change them (a ``set`` then always clears).
        self.expiring: set[str] | None = None
        #: What this turn's mutations read from storage besides the items (`read_ahead`): the
        #: records of their idempotency keys (key -> record), and the items due to expire.
        self.known_records: dict[str, Any] = {}
        self.due: list[str] = []
        config = definition.config
        self._record_window_ms = math.ceil(config.idempotency_window * 1000)
        self._max_records = config.idempotency_keys
        storage = context.storage
        self.committer: Committer = (
            SharedCommitter(self, storage) if isinstance(storage, SharedStorage) else LocalCommitter(self, storage)
        )

    # -- lifecycle ------------------------------------------------------------

    async def on_start(self) -> None:
        try:
            await self.load()
        except Exception as exc:  # noqa: BLE001 - retried on the next turn
            logger.error("%s/%s: could not load the group: %r", self.stream, self.group, exc)

    async def ensure_loaded(self) -> StorageError | None:
        """Load lazily after a failed start, so an outage fails calls fast and clearly.

        While storage cannot load the group, each turn answers its messages
        with a `StorageError` and tries again next time: no restart loop, no
        caller left waiting for a backoff.
        """
        if self.loaded:
            return None
        try:
            await self.load()
        except Exception as exc:  # noqa: BLE001 - answered to every caller of this turn
            if isinstance(exc, StorageError):
                return exc
            error = StorageError(f"could not load {self.stream}/{self.group}: {exc!r}")
            error.__cause__ = exc
            return error
        return None

    async def load(self) -> None:
        state = await self.context.storage.load_group(self.stream, self.group)
        self.items = state.items
        self.epoch = state.epoch
        self.offset = state.offset
        self.timestamp = state.timestamp
        self.history = deque(state.history, maxlen=self.definition.history.max_events)
        self.committed_timestamp = state.timestamp
        self.expiring = None if state.expiring is None else set(state.expiring)
        self.loaded = True

    async def on_stop(self) -> None:
        if self.loaded:
            await self.committer.on_stop()

    def can_passivate(self) -> bool:
        return not self.subscribers

    # -- the turn -------------------------------------------------------------

    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        return await self.committer.receive_batch(messages)

    async def turn(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        """One batch of messages: runs of mutations committed together, reads and joins in between."""
        if not self.loaded:
            error = await self.ensure_loaded()
            if error is not None:
                return [outcome.Error(error)] * len(messages)
        results: list[Any] = [None] * len(messages)
        try:
            await self.read_ahead(messages, due=False)
        except Exception as exc:  # noqa: BLE001 - answered to every caller of this turn
            return [outcome.Error(_storage_error(exc, "reading idempotency records"))] * len(messages)
        segment: Segment | None = None
        for index, message in enumerate(messages):
            if isinstance(message, MUTATIONS):
                if type(message) is ExpireDue:  # due items are read after what came before lands
                    if segment is not None:
                        await self._commit(segment, results)
                        segment = None
                    try:
                        await self.read_ahead((), due=True)
                    except Exception as exc:  # noqa: BLE001 - answered to the sweeper, which tries again
                        results[index] = outcome.Error(_storage_error(exc, "reading due items"))
                        continue
                if segment is None:
                    segment = Segment(self.offset, self.timestamp)
                results[index] = self.mutate(message, segment, index)
                continue
            if segment is not None:
                await self._commit(segment, results)
                segment = None
            results[index] = outcome.capture(self._read_or_subscribe, message)
        if segment is not None:
            await self._commit(segment, results)
        return results

    async def read_ahead(self, messages: Sequence[Any], *, due: bool) -> None:
        """Read what ``messages`` need from storage besides the items, before they apply.

        The records of their idempotency keys (one round trip for the whole
        turn, none when no call has a key) and, with ``due``, the ids of the
        items due to expire now. A committer that applies a batch again after
        losing a race calls it again, so what it read is never stale.
        """
        keys = [m.idempotency_key for m in messages if type(m) in KEYED and m.idempotency_key is not None]
        storage = self.context.storage
        self.known_records = await storage.idempotency_get(self.stream, self.group, keys, self.clock()) if keys else {}
        if due:
            self.due = await storage.expired_items(self.stream, self.group, self.clock())

    def _read_or_subscribe(self, message: Any) -> Any:
        kind = type(message)
        if kind is GetItem:
            return self.items.get(message.item_id)
        if kind is ListItems:
            return list(self.items.values())
        if kind is Join:
            return self._join(message)
        if kind is Leave:
            return self.subscribers.remove(message.subscriber, message.subscription_id)
        if kind is GroupStats:
            return {
                "subscribers": self.subscribers.subscriber_count,
                "subscriptions": len(self.subscribers),
                "items": len(self.items),
                "epoch": self.epoch,
                "offset": self.offset,
                "history": len(self.history),
            }
        raise TypeError(f"a group actor does not understand {kind.__name__}")

    # -- mutations --------------------------------------------------------------

    def _current(self, segment: Segment, item_id: str) -> dict[str, Any] | None:
        value = segment.values.get(item_id, None)
        if value is None:
            return self.items.get(item_id)
        return None if value is DELETED else value

    def _stamp(self, segment: Segment) -> int:
        timestamp = max(self.clock(), segment.timestamp + 1)
        segment.timestamp = timestamp
        return timestamp

    def mutate(self, message: Any, segment: Segment, index: int) -> outcome.Outcome[Any] | None:
        """Apply one mutation to the overlay. Returns an Error now, or None:
        a successful mutation is answered only once its segment commits."""
        segment.messages.append((index, message))
        try:
            kind = type(message)
            reply: Any = None
            if kind is SendEvent:
                self._emit(message, segment)
            elif kind is ExpireDue:
                reply = self._expire_due(segment)
            elif message.idempotency_key is not None:
                reply = self._keyed(message, segment)
            else:
                reply = self._change(message, segment)
        except Exception as exc:  # noqa: BLE001 - answered to the caller, changes nothing
            return outcome.Error(exc)
        segment.indices.append(index)
        segment.replies.append(reply)
        return None

    def _change(self, message: SetItem | UpdateItem | UpdateMany | DeleteItem, segment: Segment) -> Any:
        if isinstance(message, DeleteItem):
            return self._delete(message.item_id, segment, message.trace_id)
        if isinstance(message, UpdateMany):
            return self._update_many(message, segment)
        new, old = self._set(segment, message.item_id, message, message.trace_id)
        return SetResult(new_value=new, old_value=old)

    def _keyed(self, message: SetItem | UpdateItem | UpdateMany | DeleteItem, segment: Segment) -> Any:
        """A call with an idempotency key: the first applies and is recorded, a repeat gets its result.

        The record is committed with the change, in the same transaction,
        so a change and its record land together or not at all. A repeat
        of a call whose batch has not committed yet shares that batch's
        fate (answered with it, or failed with it).
        """
        key = message.idempotency_key
        assert key is not None
        call, target = _call_of(message)
        record = next((r.result for r in segment.records if r.key == key), None)
        if record is None:
            record = self.known_records.get(key)
        if record is not None:
            if record["call"] != call or record["items"] != target:
                raise IdempotencyError(
                    f"idempotency key {key!r} was first used for {record['call']} of {record['items']!r}, "
                    f"not {call} of {target!r}; use a new key for a different call"
                )
            return _replay(call, record["result"])
        reply = self._change(message, segment)
        segment.records.append(IdempotencyRecord(
            key, {"call": call, "items": target, "result": _result_of(call, reply)},
            self.clock() + self._record_window_ms,
        ))
        return reply

    def _expire_due(self, segment: Segment) -> int:
        """Delete the items `read_ahead` found due: ordinary deletes, with their events.

        An item this batch already changed is left to the sweeper's next
        look (its expiry may have changed with it); an expiry left without
        its item is dropped.
        """
        deleted = 0
        for item_id in self.due:
            if item_id in segment.values or item_id in segment.expiries:
                continue
            old = self.items.get(item_id)
            if old is None:
                segment.expiries[item_id] = None
                continue
            self._record(segment, item_id, "delete", None, old, None)
            deleted += 1
        self.due = []
        return deleted

    def _set_expiry(self, segment: Segment, item_id: str, seconds: float | None) -> None:
        """The item's TTL after this change: ``seconds`` from now, or none (cleared only where there may be one)."""
        if seconds is not None:
            segment.expiries[item_id] = self.clock() + math.ceil(seconds * 1000)
            return
        expiring = self.expiring
        if expiring is None or item_id in expiring or item_id in segment.expiries:
            segment.expiries[item_id] = None

    def _set(
        self, segment: Segment, item_id: str, change: SetItem | UpdateItem | list[Any], trace_id: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A set (``change`` a `SetItem`) or an update (an `UpdateItem`, or an `UpdateMany` entry's
        ops) of one item in the overlay; returns ``(new, old)``."""
        old = self._current(segment, item_id)
        if isinstance(change, SetItem):
            new = {"id": item_id, **change.data}
            expire: Any = change.ttl  # a set without a TTL clears the item's
        else:
            new, expire = apply_update(old, change.ops if isinstance(change, UpdateItem) else change)
        new["id"] = item_id
        self.definition.validator.validate(new)
        self._record(segment, item_id, "update" if old is not None else "create", new, new, trace_id)
        if expire is not KEEP_EXPIRY:
            self._set_expiry(segment, item_id, expire)
        return new, old

    def _update_many(self, message: UpdateMany, segment: Segment) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Apply every entry, each on the state the previous ones left, or none.

        Each entry is an ordinary change (its own offset, timestamp and
        event). If one fails, the segment is put back exactly as it was
        before this message, so the other callers batched in the same turn
        are unaffected and no offset is spent. Replies ``(new, old)`` pairs:
        the caller builds the `SetResult`s around its own copies.
        """
        offset, timestamp = segment.offset, segment.timestamp
        marks = len(segment.writes), len(segment.stored), len(segment.events)
        expiries = dict(segment.expiries) if segment.expiries else None
        values = segment.values
        before: dict[str, Any] = {}  # overlay value of each touched item before this message
        results: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        trace_id = message.trace_id
        entry = 0
        try:
            for entry, (item_id, ops) in enumerate(message.entries):  # noqa: B007 - the except names it
                if item_id not in before:
                    before[item_id] = values.get(item_id, _ABSENT)
                results.append(self._set(segment, item_id, ops, trace_id))
        except Exception as exc:
            segment.offset, segment.timestamp = offset, timestamp
            del segment.writes[marks[0]:], segment.stored[marks[1]:], segment.events[marks[2]:]
            for item_id, value in before.items():
                if value is _ABSENT:
                    values.pop(item_id, None)
                else:
                    values[item_id] = value
            segment.expiries.clear()
            if expiries:
                segment.expiries.update(expiries)
            name_entry(exc, entry, message.entries[entry][0])
            raise
        return results

    def _delete(self, item_id: str, segment: Segment, trace_id: str | None) -> DeleteResult:
        old = self._current(segment, item_id)
        if old is not None:
            self._record(segment, item_id, "delete", None, old, trace_id)
            if segment.expiries:
                segment.expiries.pop(item_id, None)  # storage drops a deleted item's expiry
        return DeleteResult(old_value=old)

    def _record(
        self,
        segment: Segment,
        item_id: str,
        type_: str,
        value: dict[str, Any] | None,
        data: dict[str, Any],
        trace_id: str | None,
    ) -> None:
        segment.offset += 1
        timestamp = self._stamp(segment)
        segment.values[item_id] = DELETED if value is None else value
        segment.writes.append((item_id, value))
        stored = StoredEvent(segment.offset, timestamp, item_id, type_, data)
        segment.stored.append(stored)
        segment.events.append((stored, trace_id))

    def _emit(self, message: SendEvent, segment: Segment) -> None:
        segment.events.append(
            Event(
                stream=self.stream, group=self.group, item_id=message.item_id, type="event",
                data={"type": message.type, "data": message.data}, timestamp=self._stamp(segment),
                trace_id=message.trace_id,
            )
        )

    def group_commit(self, segment: Segment) -> GroupCommit:
        """The batch storage applies for ``segment``, computed from this group's position."""
        return GroupCommit(
            epoch=self.epoch, offset=segment.offset, timestamp=segment.timestamp,
            writes=segment.writes, events=segment.stored, expected_offset=self.offset,
            expiries=segment.expiries, records=segment.records, max_records=self._max_records,
        )

    async def _commit(self, segment: Segment, results: list[Any]) -> None:
        landed = await self.committer.commit(segment, results)
        if landed is not None:
            self._committed(landed, results)

    def commit_failed(self, segment: Segment, results: list[Any], exc: Exception) -> None:
        """Every call of the batch gets a `StorageError` (the cause chained); the actor carries on."""
        error = exc if isinstance(exc, StorageError) else StorageError(f"commit failed: {exc!r}")
        if error is not exc:
            error.__cause__ = exc
        logger.error("%s/%s: commit failed: %r", self.stream, self.group, exc)
        self.fail(segment, results, error)

    def _committed(self, segment: Segment, results: list[Any]) -> None:
        """After storage holds the batch: apply it here, answer the callers, then publish."""
        self._apply(segment)
        for index, reply in zip(segment.indices, segment.replies):
            results[index] = outcome.Value(reply)
        self._publish(segment.events)

    @staticmethod
    def fail(segment: Segment, results: list[Any], error: BaseException) -> None:
        for index in segment.indices:
            results[index] = outcome.Error(error)

    def _apply(self, segment: Segment) -> None:
        items = self.items
        expiring = self.expiring
        for item_id, value in segment.writes:
            if value is None:
                items.pop(item_id, None)
                if expiring:
                    expiring.discard(item_id)
            else:
                items[item_id] = value
        if segment.expiries or segment.records:
            self._apply_effects(segment)
        self.offset = segment.offset
        self.timestamp = segment.timestamp
        if segment.writes:
            self.committed_timestamp = segment.timestamp
        if segment.stored:
            history = self.history
            history.extend(segment.stored)
            self._trim_history()

    def _apply_effects(self, segment: Segment) -> None:
        """After a commit: the expiries and records it stored; the sweeper hears of a sooner expiry."""
        expiring = self.expiring
        soonest: int | None = None
        for item_id, at in segment.expiries.items():
            if at is None:
                if expiring is not None:
                    expiring.discard(item_id)
                continue
            if expiring is not None:
                expiring.add(item_id)
            if soonest is None or at < soonest:
                soonest = at
        for record in segment.records:
            self.known_records[record.key] = record.result
        if soonest is not None:
            self.context.expiry_set(self.stream, soonest)

    def _trim_history(self) -> None:
        history = self.history
        cutoff = self.definition.history.age_cutoff(self.timestamp)
        while history and history[0].timestamp < cutoff:
            history.popleft()

    def apply_followed(self, stored: StoredEvent) -> Event:
        """Apply one change another process committed (the next offset) and return its event."""
        if stored.type == "delete":
            self.items.pop(stored.item_id, None)
        else:
            self.items[stored.item_id] = stored.data
        self.offset = stored.offset
        self.timestamp = max(self.timestamp, stored.timestamp)
        self.committed_timestamp = self.timestamp
        self.history.append(stored)
        self._trim_history()
        return self.state_event(stored)

    # -- fan-out --------------------------------------------------------------------

    def _publish(self, events: list[Pending]) -> None:
        subscribers = self.subscribers
        context = self.context
        dispatch = context.dispatch if context.has_triggers(self.stream) else None
        context.metrics.events_published += len(events)
        if not subscribers and dispatch is None:
            return  # nobody listens: no Event is built
        built = Turn([
            self.state_event(*pending) if type(pending) is tuple else pending
            for pending in events
        ])
        if subscribers:
            self.fan_out(built)
        if dispatch is not None:
            for event in built:
                dispatch(event)

    def state_event(self, stored: StoredEvent, trace_id: str | None = None) -> Event:
        return Event(
            stream=self.stream, group=self.group, item_id=stored.item_id, type=stored.type,
            data=stored.data, timestamp=stored.timestamp, epoch=self.epoch, offset=stored.offset,
            trace_id=trace_id,
        )

    def fan_out(self, events: Turn) -> None:
        """Deliver a turn's events, in order, to every subscriber that should see them: the one path.

        A whole-group subscriber gets the turn in one ``deliver_many`` call
        (a thousand subscribers and sixty events are a thousand calls, not
        sixty thousand; a turn of one event is one ``deliver``); an item-only
        subscriber gets its item's events one by one.

        Each subscriber is a fault boundary: one that raises is removed
        after the loop (never from the index being iterated), logged once
        and counted in ``subscriber_errors``; the turn's commit is already
        answered and every other subscriber gets every event.
        """
        subscribers = self.subscribers
        broken: dict[Subscriber, None] = {}
        drops = 0
        single = events[0] if len(events) == 1 else None
        for subscriber in subscribers.whole_group:
            try:
                if single is not None:
                    drops += not subscriber.deliver(single)
                else:
                    drops += subscriber.deliver_many(events)
            except Exception:  # noqa: BLE001 - one broken subscriber must not break the group
                self._subscriber_failed(subscriber, broken)
        if subscribers.has_item_subscribers:
            for event in events:
                if event.item_id is None:
                    continue
                for subscriber in subscribers.item_only_targets(event.item_id):
                    if subscriber in broken:
                        continue
                    try:
                        drops += not subscriber.deliver(event)
                    except Exception:  # noqa: BLE001 - one broken subscriber must not break the group
                        self._subscriber_failed(subscriber, broken)
        if drops:
            self.context.metrics.slow_consumer_drops += drops
        for subscriber in broken:
            subscribers.remove_all(subscriber)

    def _subscriber_failed(self, subscriber: Subscriber, broken: dict[Subscriber, None]) -> None:
        """Log (with the traceback) and count a subscriber that raised; the caller removes it."""
        logger.exception("%s/%s: subscriber %r failed; removing it", self.stream, self.group, subscriber)
        self.context.metrics.subscriber_errors += 1
        broken[subscriber] = None

    def resync_all(self) -> None:
        """A fresh sync to every subscription (after a reload), each subscriber a fault boundary."""
        subscribers = self.subscribers
        broken: dict[Subscriber, None] = {}
        for subscriber in subscribers.all_subscribers():  # a copy: removal below is safe
            try:
                for item_id in subscribers.subscriptions_of(subscriber).values():
                    subscriber.deliver(self._sync_event(item_id), initial=True)
            except Exception:  # noqa: BLE001 - one broken subscriber must not break the group
                self._subscriber_failed(subscriber, broken)
        for subscriber in broken:
            subscribers.remove_all(subscriber)

    # -- subscriptions ----------------------------------------------------------------

    def _join(self, join: Join) -> Joined:
        """Send the joining subscriber its sync (or replay), then register it.

        A subscriber that raises on its own join frames is not registered and
        the error goes back to whoever asked to join (counted in
        ``subscriber_errors``); the group and its other subscribers carry on.
        """
        subscriber = join.subscriber
        replay = self._replay_for(join)
        try:
            if replay is None:
                subscriber.deliver(self._sync_event(join.item_id), initial=True)
                joined = Joined(epoch=self.epoch, offset=self.offset, resumed=False, replayed=0)
            else:
                for event in replay:
                    subscriber.deliver(event, initial=True)
                marker = Event(
                    stream=self.stream, group=self.group, item_id=join.item_id, type="resumed", data=None,
                    timestamp=self.committer.sync_timestamp(), epoch=self.epoch, offset=self.offset,
                    replayed=len(replay),
                )
                subscriber.deliver(marker, initial=True)
                joined = Joined(epoch=self.epoch, offset=self.offset, resumed=True, replayed=len(replay))
        except Exception:
            self.context.metrics.subscriber_errors += 1
            raise
        self.subscribers.add(join.subscriber, join.subscription_id, join.item_id)
        return joined

    def bump_timestamp(self) -> int:
        """A timestamp later than any this group stamped (a sync's, in a group this process owns)."""
        self.timestamp = max(self.clock(), self.timestamp + 1)
        return self.timestamp

    def _sync_event(self, item_id: str | None) -> Event:
        data: Any = list(self.items.values()) if item_id is None else self.items.get(item_id)
        return Event(
            stream=self.stream, group=self.group, item_id=item_id, type="sync", data=data,
            timestamp=self.committer.sync_timestamp(), epoch=self.epoch, offset=self.offset,
        )

    def _replay_for(self, join: Join) -> list[Event] | None:
        """The events after ``since``, or None when only a fresh sync is honest.

        Offsets in the history are contiguous, so the replay is complete
        exactly when the first missing event is still there; otherwise the
        subscriber gets a sync, never a partial replay.
        """
        if join.since is None:
            return None
        epoch, since = join.since
        if epoch != self.epoch or not 0 <= since <= self.offset:
            return None
        if since == self.offset:
            return []
        history = self.history
        if not history or history[0].offset > since + 1:
            return None
        return [
            self.state_event(stored)
            for stored in history
            if stored.offset > since and (join.item_id is None or stored.item_id == join.item_id)
        ]


def _storage_error(exc: Exception, doing: str) -> StorageError:
    if isinstance(exc, StorageError):
        return exc
    error = StorageError(f"{doing} failed: {exc!r}")
    error.__cause__ = exc
    return error


def _call_of(message: SetItem | UpdateItem | UpdateMany | DeleteItem) -> tuple[str, Any]:
    """What a keyed call was, as its record says: the call's name and its item id (ids, for ``update_many``)."""
    if isinstance(message, UpdateMany):
        return "update_many", [item_id for item_id, _ in message.entries]
    name = "set" if isinstance(message, SetItem) else "update" if isinstance(message, UpdateItem) else "delete"
    return name, message.item_id


def _result_of(call: str, reply: Any) -> Any:
    """A reply as JSON for its record (``_replay`` reads it back)."""
    if call == "delete":
        return reply.old_value
    if call == "update_many":
        return reply
    return [reply.new_value, reply.old_value]


def _replay(call: str, result: Any) -> Any:
    """The reply a recorded call gave (the caller copies it, as it copies every reply)."""
    if call == "delete":
        return DeleteResult(old_value=result)
    if call == "update_many":
        return [tuple(pair) for pair in result]
    return SetResult(new_value=result[0], old_value=result[1])
