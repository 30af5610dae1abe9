"""The group actor: one per (stream, group), owner of that group's items.

Mutations are serialised by the mailbox, so ``increment``, ``merge`` and
``set`` are atomic without a lock. One turn takes a batch of messages:
consecutive mutations are applied to an overlay (the committed items stay
untouched), stamped with offset and timestamp, committed to storage in one
transaction, and only then answered, added to the history and published.
A read or a join in the middle of a batch first commits what came before
it, so nobody ever sees state that is not committed.

The published `Event` objects are built at publish time, and only when
someone listens (subscribers or stream triggers): a group nobody watches
pays for the `StoredEvent` its history needs and nothing more.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import outcome

from actors import Actor

from ..errors import StorageError
from ..storage.base import ConflictError, GroupCommit, StoredEvent
from .config import DeleteResult, SetResult, StreamDefinition
from .events import Event, Turn
from .messages import (
    MUTATIONS,
    DeleteItem,
    GetItem,
    GroupStats,
    Join,
    Joined,
    Leave,
    LeaveAll,
    ListItems,
    SendEvent,
    SetItem,
    UpdateItem,
    UpdateMany,
)
from .ops import apply_ops, name_entry
from .subscribers import Subscriber, SubscriberIndex

if TYPE_CHECKING:
    from .engine import StreamEngine

__all__ = ["GroupActor"]

logger = logging.getLogger("runtime.streams")

_DELETED: Any = object()
_ABSENT: Any = object()


class _Segment:
    """Mutations of one batch not yet committed: an overlay over the items."""

    __slots__ = (
        "values", "writes", "stored", "events", "indices", "replies", "offset", "timestamp", "messages", "sends",
    )

    def __init__(self, offset: int, timestamp: int) -> None:
        self.values: dict[str, Any] = {}  # item id -> new value or _DELETED
        self.writes: list[tuple[str, dict | None]] = []
        self.stored: list[StoredEvent] = []
        # What to publish, in order: (StoredEvent, trace id) for a state
        # change, an `Event` for an ephemeral one. Events are built lazily.
        self.events: list[tuple[StoredEvent, str | None] | Event] = []
        self.indices: list[int] = []  # positions in the batch, answered at commit
        self.replies: list[Any] = []  # their replies, in the same order
        self.offset = offset
        self.timestamp = timestamp
        # Only a shared group fills these: the messages, to apply them again
        # after losing a race, and the sends, to publish them with the batch.
        self.messages: list[tuple[int, Any]] = []
        self.sends: list[Any] = []


class GroupActor(Actor):
    max_batch = 256

    def __init__(self, engine: StreamEngine, definition: StreamDefinition, group: str) -> None:
        self.engine = engine
        self.definition = definition
        self.stream = definition.name
        self.group = group
        self.subscribers = SubscriberIndex()
        self._clock: Callable[[], int] = engine.clock

    # -- lifecycle ------------------------------------------------------------

    async def on_start(self) -> None:
        self._loaded = False
        try:
            await self._load()
        except Exception as exc:  # noqa: BLE001 - retried on the next turn
            logger.error("%s/%s: could not load the group: %r", self.stream, self.group, exc)

    async def _ensure_loaded(self) -> StorageError | None:
        """Load lazily after a failed start, so an outage fails calls fast and clearly.

        While storage cannot load the group, each turn answers its messages
        with a `StorageError` and tries again next time: no restart loop, no
        caller left waiting for a backoff.
        """
        if self._loaded:
            return None
        try:
            await self._load()
        except Exception as exc:  # noqa: BLE001 - answered to every caller of this turn
            if isinstance(exc, StorageError):
                return exc
            error = StorageError(f"could not load {self.stream}/{self.group}: {exc!r}")
            error.__cause__ = exc
            return error
        return None

    async def _load(self) -> None:
        state = await self.engine.storage.load_group(self.stream, self.group)
        self.items: dict[str, dict] = state.items
        self.epoch = state.epoch
        self.offset = state.offset
        self.timestamp = state.timestamp
        self.history: deque[StoredEvent] = deque(state.history, maxlen=self.definition.history.max_events)
        self._committed_timestamp = state.timestamp
        self._loaded = True

    async def on_stop(self) -> None:
        """Persist a timestamp that syncs or ephemeral events moved past the last commit.

        Without it a restart could stamp a sync with a timestamp a client has
        already seen (the clients drop such frames). A crash can still lose
        it; a graceful stop or a passivation does not.
        """
        if not getattr(self, "_loaded", False) or self.timestamp <= self._committed_timestamp:
            return
        commit = GroupCommit(epoch=self.epoch, offset=self.offset, timestamp=self.timestamp,
                             writes=[], events=[], expected_offset=self.offset)
        try:
            await self.engine.storage.commit(self.stream, self.group, commit, self.definition.history)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            logger.warning("%s/%s: could not persist the last timestamp: %r", self.stream, self.group, exc)

    def can_passivate(self) -> bool:
        return not self.subscribers

    # -- the turn -------------------------------------------------------------

    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        if not self._loaded:
            error = await self._ensure_loaded()
            if error is not None:
                return [outcome.Error(error)] * len(messages)
        results: list[Any] = [None] * len(messages)
        segment: _Segment | None = None
        for index, message in enumerate(messages):
            if isinstance(message, MUTATIONS):
                if segment is None:
                    segment = _Segment(self.offset, self.timestamp)
                results[index] = self._mutate(message, segment, index)
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
        if kind is LeaveAll:
            return self.subscribers.remove_all(message.subscriber)
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

    def _current(self, segment: _Segment, item_id: str) -> dict | None:
        value = segment.values.get(item_id, None)
        if value is None:
            return self.items.get(item_id)
        return None if value is _DELETED else value

    def _stamp(self, segment: _Segment) -> int:
        timestamp = max(self._clock(), segment.timestamp + 1)
        segment.timestamp = timestamp
        return timestamp

    def _mutate(self, message: Any, segment: _Segment, index: int) -> outcome.Outcome | None:
        """Apply one mutation to the overlay. Returns an Error now, or None:
        a successful mutation is answered only once its segment commits."""
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
                reply = self._set(message, segment)
        except Exception as exc:  # noqa: BLE001 - answered to the caller, changes nothing
            return outcome.Error(exc)
        segment.indices.append(index)
        segment.replies.append(reply)
        return None

    def _set(self, message: SetItem | UpdateItem, segment: _Segment) -> SetResult:
        item_id = message.item_id
        old = self._current(segment, item_id)
        if isinstance(message, SetItem):
            new = {"id": item_id, **message.data}
        else:
            new = apply_ops(old, message.ops)
        new["id"] = item_id
        self.definition.validator.validate(new)
        self._record(segment, item_id, "update" if old is not None else "create", new, new, message.trace_id)
        return SetResult(new_value=new, old_value=old)

    def _update(
        self, segment: _Segment, item_id: str, ops: list[Any], trace_id: str | None
    ) -> tuple[dict, dict | None]:
        """One entry of an `UpdateMany`: `_set`'s update, replying (new, old) without a SetResult."""
        old = self._current(segment, item_id)
        new = apply_ops(old, ops)
        new["id"] = item_id
        self.definition.validator.validate(new)
        self._record(segment, item_id, "update" if old is not None else "create", new, new, trace_id)
        return new, old

    def _update_many(self, message: UpdateMany, segment: _Segment) -> list[tuple[dict, dict | None]]:
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
        results: list[tuple[dict, dict | None]] = []
        trace_id = message.trace_id
        entry = 0
        try:
            for entry, (item_id, ops) in enumerate(message.entries):  # noqa: B007 - the except names it
                if item_id not in before:
                    before[item_id] = values.get(item_id, _ABSENT)
                results.append(self._update(segment, item_id, ops, trace_id))
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

    def _delete(self, item_id: str, segment: _Segment, trace_id: str | None) -> DeleteResult:
        old = self._current(segment, item_id)
        if old is not None:
            self._record(segment, item_id, "delete", None, old, trace_id)
        return DeleteResult(old_value=old)

    def _record(
        self, segment: _Segment, item_id: str, type_: str, value: dict | None, data: dict, trace_id: str | None
    ) -> None:
        segment.offset += 1
        timestamp = self._stamp(segment)
        segment.values[item_id] = _DELETED if value is None else value
        segment.writes.append((item_id, value))
        stored = StoredEvent(segment.offset, timestamp, item_id, type_, data)
        segment.stored.append(stored)
        segment.events.append((stored, trace_id))

    def _emit(self, message: SendEvent, segment: _Segment) -> None:
        segment.events.append(
            Event(
                stream=self.stream, group=self.group, item_id=message.item_id, type="event",
                data={"type": message.type, "data": message.data}, timestamp=self._stamp(segment),
                trace_id=message.trace_id,
            )
        )

    async def _commit(self, segment: _Segment, results: list[Any]) -> None:
        if segment.writes:
            commit = GroupCommit(
                epoch=self.epoch, offset=segment.offset, timestamp=segment.timestamp,
                writes=segment.writes, events=segment.stored, expected_offset=self.offset,
            )
            try:
                await self.engine.storage.commit(self.stream, self.group, commit, self.definition.history)
            except ConflictError as exc:
                logger.warning("%s/%s: %s; reloading the group", self.stream, self.group, exc)
                self._fail(segment, results, exc)
                await self._reload_after_conflict()
                return
            except Exception as exc:  # noqa: BLE001 - the batch fails, the actor carries on
                self._commit_failed(segment, results, exc)
                return
        self._committed(segment, results)

    def _commit_failed(self, segment: _Segment, results: list[Any], exc: Exception) -> None:
        """Every call of the batch gets a `StorageError` (the cause chained); the actor carries on."""
        error = exc if isinstance(exc, StorageError) else StorageError(f"commit failed: {exc!r}")
        if error is not exc:
            error.__cause__ = exc
        logger.error("%s/%s: commit failed: %r", self.stream, self.group, exc)
        self._fail(segment, results, error)

    def _committed(self, segment: _Segment, results: list[Any]) -> None:
        """After storage holds the batch: apply it here, answer the callers, then publish."""
        self._apply(segment)
        for index, reply in zip(segment.indices, segment.replies):
            results[index] = outcome.Value(reply)
        self._publish(segment.events)

    def _fail(self, segment: _Segment, results: list[Any], error: BaseException) -> None:
        for index in segment.indices:
            results[index] = outcome.Error(error)

    def _apply(self, segment: _Segment) -> None:
        items = self.items
        for item_id, value in segment.writes:
            if value is None:
                items.pop(item_id, None)
            else:
                items[item_id] = value
        self.offset = segment.offset
        self.timestamp = segment.timestamp
        if segment.writes:
            self._committed_timestamp = segment.timestamp
        if segment.stored:
            history = self.history
            history.extend(segment.stored)
            cutoff = self.definition.history.age_cutoff(self.timestamp)
            while history and history[0].timestamp < cutoff:
                history.popleft()

    # -- fan-out --------------------------------------------------------------------

    def _publish(self, events: list[tuple[StoredEvent, str | None] | Event]) -> None:
        subscribers = self.subscribers
        dispatch = self.engine.dispatch_trigger if self.engine.has_triggers(self.stream) else None
        self.engine.metrics.events_published += len(events)
        if not subscribers and dispatch is None:
            return  # nobody listens: no Event is built
        built = Turn([
            self._state_event(*pending) if type(pending) is tuple else pending
            for pending in events
        ])
        if subscribers:
            self._fan_out(built)
        if dispatch is not None:
            for event in built:
                dispatch(event)

    def _state_event(self, stored: StoredEvent, trace_id: str | None = None) -> Event:
        return Event(
            stream=self.stream, group=self.group, item_id=stored.item_id, type=stored.type,
            data=stored.data, timestamp=stored.timestamp, epoch=self.epoch, offset=stored.offset,
            trace_id=trace_id,
        )

    def _fan_out(self, events: Turn) -> None:
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
                    many = getattr(subscriber, "deliver_many", None)
                    if many is not None:
                        drops += many(events)
                    else:
                        for event in events:
                            drops += not subscriber.deliver(event)
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
            self.engine.metrics.slow_consumer_drops += drops
        for subscriber in broken:
            subscribers.remove_all(subscriber)

    def _subscriber_failed(self, subscriber: Subscriber, broken: dict[Subscriber, None]) -> None:
        """Log (with the traceback) and count a subscriber that raised; the caller removes it."""
        logger.exception("%s/%s: subscriber %r failed; removing it", self.stream, self.group, subscriber)
        self.engine.metrics.subscriber_errors += 1
        broken[subscriber] = None

    def _resync_all(self) -> None:
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
                    timestamp=self._bump_timestamp(), epoch=self.epoch, offset=self.offset, replayed=len(replay),
                )
                subscriber.deliver(marker, initial=True)
                joined = Joined(epoch=self.epoch, offset=self.offset, resumed=True, replayed=len(replay))
        except Exception:
            self.engine.metrics.subscriber_errors += 1
            raise
        self.subscribers.add(join.subscriber, join.subscription_id, join.item_id)
        return joined

    def _bump_timestamp(self) -> int:
        self.timestamp = max(self._clock(), self.timestamp + 1)
        return self.timestamp

    def _sync_event(self, item_id: str | None) -> Event:
        data: Any = list(self.items.values()) if item_id is None else self.items.get(item_id)
        return Event(
            stream=self.stream, group=self.group, item_id=item_id, type="sync", data=data,
            timestamp=self._bump_timestamp(), epoch=self.epoch, offset=self.offset,
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
            self._state_event(stored)
            for stored in history
            if stored.offset > since and (join.item_id is None or stored.item_id == join.item_id)
        ]

    async def _reload_after_conflict(self) -> None:
        """Storage moved on without us: reload and give every subscriber a fresh sync."""
        await self._load()
        self._resync_all()
