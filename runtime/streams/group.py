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
from collections import deque
from collections.abc import Sequence
from typing import Any

import outcome

from actors import Actor

from ..errors import StorageError
from ..storage.base import SharedStorage, StoredEvent
from .committer import Committer, LocalCommitter
from .config import DeleteResult, SetResult, StreamDefinition
from .events import Event, Turn
from .group_context import GroupContext
from .messages import (
    MUTATIONS,
    DeleteItem,
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
from .ops import apply_ops, name_entry
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
        segment: Segment | None = None
        for index, message in enumerate(messages):
            if isinstance(message, MUTATIONS):
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
            elif kind is DeleteItem:
                reply = self._delete(message.item_id, segment, message.trace_id)
            elif kind is UpdateMany:
                reply = self._update_many(message, segment)
            else:
                new, old = self._set(segment, message.item_id, message, message.trace_id)
                reply = SetResult(new_value=new, old_value=old)
        except Exception as exc:  # noqa: BLE001 - answered to the caller, changes nothing
            return outcome.Error(exc)
        segment.indices.append(index)
        segment.replies.append(reply)
        return None

    def _set(
        self, segment: Segment, item_id: str, change: SetItem | UpdateItem | list[Any], trace_id: str | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A set (``change`` a `SetItem`) or an update (an `UpdateItem`, or an `UpdateMany` entry's
        ops) of one item in the overlay; returns ``(new, old)``."""
        old = self._current(segment, item_id)
        if isinstance(change, SetItem):
            new = {"id": item_id, **change.data}
        else:
            new = apply_ops(old, change.ops if isinstance(change, UpdateItem) else change)
        new["id"] = item_id
        self.definition.validator.validate(new)
        self._record(segment, item_id, "update" if old is not None else "create", new, new, trace_id)
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
            name_entry(exc, entry, message.entries[entry][0])
            raise
        return results

    def _delete(self, item_id: str, segment: Segment, trace_id: str | None) -> DeleteResult:
        old = self._current(segment, item_id)
        if old is not None:
            self._record(segment, item_id, "delete", None, old, trace_id)
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
        for item_id, value in segment.writes:
            if value is None:
                items.pop(item_id, None)
            else:
                items[item_id] = value
        self.offset = segment.offset
        self.timestamp = segment.timestamp
        if segment.writes:
            self.committed_timestamp = segment.timestamp
        if segment.stored:
            history = self.history
            history.extend(segment.stored)
            self._trim_history()

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
