"""Subscriptions: the state of one group or item, its listeners and its change iterators.

A subscription is fed by its client's connection task (one frame at a
time, in arrival order); it never does I/O itself. Listeners are plain
callables run inline — they must not block — and an exception in one is
logged, never propagated into the connection. `async for change in sub`
reads from a bounded per-iterator buffer (see `ChangeIterator`).
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .errors import ClientClosed, StreamClientError
from .merge import Change, GroupState, ItemState, ReplayBuffer, is_duplicate
from .protocol import PRESENCE_TYPES, Position, PresenceEntry, Room, StreamFrame

if TYPE_CHECKING:
    from .client import StreamClient

__all__ = ["Subscription", "GroupSubscription", "ItemSubscription", "ChangeIterator", "SNAPSHOT", "BLOCK"]

logger = logging.getLogger("runtime.client")

#: Iterator overflow policies: drop the backlog and yield one snapshot, or make the connection wait.
SNAPSHOT = "snapshot"
BLOCK = "block"


def _call(listener: Callable[..., Any], *args: Any) -> None:
    try:
        listener(*args)
    except Exception:  # noqa: BLE001 - a user's listener must not break the connection
        logger.exception("stream client listener %r raised", listener)


class ChangeIterator:
    """``async for change in subscription``: the subscription's changes from now on.

    Each iterator has its own buffer of at most ``buffer`` changes. When the
    consumer falls behind:

    * ``overflow="snapshot"`` (default): the backlog is dropped and replaced by
      one ``sync`` Change holding the subscription's state at that moment,
      with ``resynced=True`` and ``dropped`` = how many changes were skipped —
      what the server does for a slow connection. Nothing else waits.
    * ``overflow="block"``: the connection stops reading until the consumer
      catches up (every subscription and listener of the client waits; the
      server eventually drops the connection's backlog and resyncs it, or
      the client's ping times out and it reconnects and resumes).

    The iteration ends when the subscription or the client is closed, and
    raises the error when the subscription fails (a refused re-join, a
    rejected handshake).
    """

    def __init__(self, subscription: Subscription, buffer: int, overflow: str) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        if overflow not in (SNAPSHOT, BLOCK):
            raise ValueError(f"overflow must be {SNAPSHOT!r} or {BLOCK!r}")
        self.subscription = subscription
        self.buffer = buffer
        self.overflow = overflow
        self._queue: deque[Change] = deque()
        self._readable = trio.lowlevel.ParkingLot()
        self._writable = trio.lowlevel.ParkingLot()
        self._closed = False

    def __aiter__(self) -> ChangeIterator:
        return self

    async def __anext__(self) -> Change:
        while True:
            if not self._queue:
                if self._closed or self.subscription._finished:
                    self._closed = True
                    error = self.subscription._error
                    if error is not None and not isinstance(error, ClientClosed):
                        raise error
                    raise StopAsyncIteration
                await self._readable.park()
                continue
            await trio.lowlevel.checkpoint()
            if self._queue:  # (it may have been closed while we yielded)
                change = self._queue.popleft()
                self._writable.unpark_all()
                return change

    async def aclose(self) -> None:
        """Stop receiving changes (an iterator dropped without it is also released)."""
        self._closed = True
        self._queue.clear()
        self.subscription._iterators.discard(self)
        self._readable.unpark_all()
        self._writable.unpark_all()
        await trio.lowlevel.checkpoint()

    @property
    def pending(self) -> int:
        """Changes buffered, not yet read."""
        return len(self._queue)

    async def _put(self, change: Change) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.buffer:
            if self.overflow == BLOCK:
                while len(self._queue) >= self.buffer and not self._closed and not self.subscription._finished:
                    await self._writable.park()
                if self._closed or self.subscription._finished:
                    return
            else:
                dropped = len(self._queue) + 1
                head = self._queue[0]
                if head.kind == "sync" and head.dropped:
                    dropped += head.dropped - 1
                self._queue.clear()
                self._queue.append(self.subscription._snapshot(dropped))
                self._readable.unpark_all()
                return
        self._queue.append(change)
        self._readable.unpark_all()

    def _wake(self) -> None:
        self._readable.unpark_all()
        self._writable.unpark_all()


class Subscription:
    """What group and item subscriptions share; see `GroupSubscription` and `ItemSubscription`."""

    _state: GroupState | ItemState

    def __init__(self, client: StreamClient, stream: str, group: str, item_id: str | None) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.item_id = item_id
        self.subscription_id = str(uuid.uuid4())
        #: How many times a snapshot replaced this subscription's state (reconnect outside the
        #: history window, server-side slow-consumer resync).
        self.resyncs = 0
        #: True when the last (re)join or resync was answered by a snapshot rather than a replay:
        #: a gap was covered by a sync, events in it may have been missed.
        self.gap_covered_by_sync = False
        self._position: Position | None = None
        self._synced = False  # has received its first sync
        self._awaiting = False  # a join is on the wire, unanswered
        self._since: Position | None = None  # the since of that join
        self._replay = ReplayBuffer(client.replay_buffer)
        self._ready = trio.Event()
        self._error: BaseException | None = None
        self._finished = False
        self._change_listeners: list[Callable[[Any], Any]] = []
        self._event_listeners: dict[str, list[Callable[[Any], Any]]] = {}
        self._resync_listeners: list[Callable[[Change], Any]] = []
        self._error_listeners: list[Callable[[BaseException], Any]] = []
        self._iterators: weakref.WeakSet[ChangeIterator] = weakref.WeakSet()

    def __repr__(self) -> str:
        where = f"{self.stream}/{self.group}" + (f"/{self.item_id}" if self.item_id is not None else "")
        return f"<{type(self).__name__} {where} at {self._position}>"

    @property
    def room(self) -> Room:
        return (self.stream, self.group, self.item_id)

    # -- public -----------------------------------------------------------------------

    def get_state(self) -> Any:
        """The current state: the list of items (group) or the item or None (item).

        A group's list is rebuilt after each change and never mutated afterwards;
        do not mutate it (or its items) yourself."""
        return self._state.view()

    @property
    def last_position(self) -> Position | None:
        """(epoch, offset) of the last state applied: where a reconnect resumes from."""
        return self._position

    @property
    def closed(self) -> bool:
        return self._finished

    @property
    def error(self) -> BaseException | None:
        """Why the subscription ended, if it failed."""
        return None if isinstance(self._error, ClientClosed) else self._error

    def add_change_listener(self, listener: Callable[[Any], Any]) -> None:
        """``listener(state)`` after every state change (Motia's ``addChangeListener``)."""
        self._change_listeners.append(listener)

    def remove_change_listener(self, listener: Callable[[Any], Any]) -> None:
        if listener in self._change_listeners:
            self._change_listeners.remove(listener)

    def on_event(self, event_type: str, listener: Callable[[Any], Any]) -> None:
        """``listener(data)`` for each custom event of ``event_type`` (Motia's ``onEvent``).

        A refused join also reaches ``on_event("error", ...)`` listeners, as in Motia."""
        self._event_listeners.setdefault(event_type, []).append(listener)

    def off_event(self, event_type: str, listener: Callable[[Any], Any]) -> None:
        listeners = self._event_listeners.get(event_type, [])
        if listener in listeners:
            listeners.remove(listener)

    def on_resync(self, listener: Callable[[Change], Any]) -> None:
        """``listener(change)`` when a snapshot replaced the state (a gap covered by a sync)."""
        self._resync_listeners.append(listener)

    def on_error(self, listener: Callable[[BaseException], Any]) -> None:
        """``listener(error)`` when the subscription fails after it was established
        (e.g. a re-join refused after a reconnect, or the handshake rejected)."""
        self._error_listeners.append(listener)

    def changes(self, buffer: int | None = None, overflow: str = SNAPSHOT) -> ChangeIterator:
        """An iterator over the changes from now on, with its own bound and overflow policy."""
        iterator = ChangeIterator(self, buffer or self.client.change_buffer, overflow)
        if not self._finished:
            self._iterators.add(iterator)
        return iterator

    def __aiter__(self) -> ChangeIterator:
        return self.changes()

    async def close(self) -> None:
        """Leave: the server forgets the subscription; iterators end; listeners stop."""
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        self._finish(ClientClosed("subscription closed"))
        await self.client._leave(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with trio.CancelScope(shield=True):
            await self.close()

    # -- fed by the client's connection task -------------------------------------------------

    async def _wait_ready(self) -> None:
        await self._ready.wait()
        if self._error is not None:
            raise self._error

    def _begin_join(self, fresh: bool = False) -> Position | None:
        """A join is being sent: returns its ``since`` (None for a first join, or ``fresh``)."""
        self._awaiting = True
        self._since = self._position if self._synced and not fresh else None
        self._replay.clear()
        return self._since

    def _disconnected(self) -> None:
        self._awaiting = False
        self._since = None
        self._replay.clear()

    async def _frame(self, frame: StreamFrame) -> None:
        """A frame routed here that answers no join of this subscription."""
        if self._finished:
            return
        if self._awaiting:
            if frame.is_state:
                if self._since is not None:
                    self._replay.add(frame)  # maybe our replay, maybe a sibling's: sorted out on "resumed"
            elif frame.type == "event" and self._synced:
                # live, so newer than anything replayed: must not advance the item's clock
                # past the replay that is still to be applied
                await self._custom_event(frame, check_time=False)
            return
        if not self._synced:
            return
        if frame.is_state:
            await self._state_frame(frame)
        elif frame.type == "event":
            await self._custom_event(frame)
        # other types (newer protocol versions) are ignored, as Motia's clients do

    async def _state_frame(self, frame: StreamFrame) -> None:
        if is_duplicate(self._position, frame):
            return
        if not self._state.apply(frame.type, frame.item_id, frame.data, frame.timestamp):
            return
        if frame.position is not None:
            self._position = frame.position
        change = Change(
            kind=frame.type, stream=frame.stream, group=frame.group, item_id=frame.item_id, data=frame.data,
            timestamp=frame.timestamp, epoch=frame.epoch, offset=frame.offset,
        )
        await self._emit(change, state_changed=True)

    async def _custom_event(self, frame: StreamFrame, *, check_time: bool = True) -> None:
        if check_time and isinstance(self._state, ItemState) and not self._state.accept_event(frame.timestamp):
            return
        for listener in list(self._event_listeners.get(frame.event_type or "", ())):
            _call(listener, frame.data)
        change = Change(
            kind="event", stream=frame.stream, group=frame.group, item_id=frame.item_id, data=frame.data,
            timestamp=frame.timestamp, event_type=frame.event_type,
        )
        await self._emit(change, state_changed=False)

    async def _answer_sync(self, frame: StreamFrame) -> None:
        """The sync that answers our join: the first one, or a snapshot instead of a replay."""
        if self._finished:
            return
        self._awaiting = False
        self._replay.clear()
        resynced = self._synced
        self._state.sync(frame.data, frame.timestamp, force=True)
        self._position = frame.position
        self._synced = True
        await self._emit_sync(frame, resynced)
        self._ready.set()

    async def _answer_resumed(self, frame: StreamFrame) -> None:
        """The resume marker that answers our join: apply what was replayed, in offset order."""
        if self._finished:
            return
        since = self._since
        self._awaiting = False
        if self._replay.overflowed or since is None:
            # we cannot trust what we buffered: ask for a snapshot instead
            self._replay.clear()
            self.client._rejoin(self, fresh=True)
            return
        for replayed in self._replay.drain(since):
            await self._state_frame(replayed)
            if self._finished:
                return
        position = frame.position
        if position is not None and (
            self._position is None or position.epoch != self._position.epoch or position.offset > self._position.offset
        ):
            self._position = position
        self.gap_covered_by_sync = False
        change = Change(
            kind="resumed", stream=frame.stream, group=frame.group, item_id=frame.item_id, data=None,
            timestamp=frame.timestamp, epoch=frame.epoch, offset=frame.offset, replayed=frame.replayed,
        )
        await self._emit(change, state_changed=False)
        self._ready.set()

    async def _other_sync(self, frame: StreamFrame, *, solicited: bool) -> None:
        """A sync in our room that is not our join's answer: another subscription's answer
        (``solicited``) or the server's resync after dropping this connection's backlog."""
        if self._finished or not self._synced or self._awaiting:
            return
        position = frame.position
        if self._state.equals(frame.data) and (solicited or position == self._position):
            # nothing was missed: the same state (at most, a later position for an item)
            if position is not None and (self._position is None or position > self._position):
                self._position = position
            return
        if not self._state.sync(frame.data, frame.timestamp):
            return  # Motia: a sync older than the newest change is ignored
        self._position = position
        await self._emit_sync(frame, True)

    async def _emit_sync(self, frame: StreamFrame, resynced: bool) -> None:
        change = Change(
            kind="sync", stream=frame.stream, group=frame.group, item_id=frame.item_id, data=self._state.view(),
            timestamp=frame.timestamp, epoch=frame.epoch, offset=frame.offset, resynced=resynced,
        )
        if resynced:
            self.resyncs += 1
            self.gap_covered_by_sync = True
        await self._emit(change, state_changed=True)
        if resynced:
            for listener in list(self._resync_listeners):
                _call(listener, change)

    def _snapshot(self, dropped: int) -> Change:
        position = self._position
        return Change(
            kind="sync", stream=self.stream, group=self.group, item_id=self.item_id, data=self._state.view(),
            timestamp=self._state.last_timestamp, epoch=position.epoch if position else None,
            offset=position.offset if position else None, resynced=True, dropped=dropped,
        )

    async def _emit(self, change: Change, *, state_changed: bool) -> None:
        if state_changed and self._change_listeners:
            state = self._state.view()
            for listener in list(self._change_listeners):
                _call(listener, state)
        for iterator in list(self._iterators):
            await iterator._put(change)

    def _finish(self, error: BaseException) -> None:
        """End the subscription: unregistered from the client, waiters and iterators woken."""
        if self._finished:
            return
        self._finished = True
        self._error = error
        self._awaiting = False
        self._replay.clear()
        self.client._forget(self)
        self._ready.set()
        for iterator in list(self._iterators):
            iterator._wake()

    def _fail(self, error: StreamClientError, *, refusal_data: Any = None) -> bool:
        """Fail with ``error``. Returns True if the subscription was established (then nobody
        waits on ``subscribe_*`` to hear it: the client reports it to its ``on_error`` too)."""
        if self._finished:
            return False
        if refusal_data is not None:
            for listener in list(self._event_listeners.get("error", ())):
                _call(listener, refusal_data)
        established = self._synced
        self._finish(error)
        for listener in list(self._error_listeners):
            _call(listener, error)
        return established


class GroupSubscription(Subscription):
    """A whole group: ``get_state()`` is the list of its items, keyed by ``id``, in insertion
    order or sorted by ``sort_key``. Frames for single items of the group are routed here too.

    (ext) Subscribed with ``presence=True``, it also keeps the group's presence (`presence`):
    the list comes after each (re)join's sync and is kept by ``presence_join`` (an upsert) and
    ``presence_leave`` events, each also given to `on_presence` listeners."""

    def __init__(self, client: StreamClient, stream: str, group: str, sort_key: str | None = None, *,
                 presence: bool = False, presence_data: Any = None) -> None:
        super().__init__(client, stream, group, None)
        self.sort_key = sort_key
        self._state = GroupState(sort_key)
        self.wants_presence = presence
        self.presence_data = presence_data
        self._presence: dict[str, PresenceEntry] = {}
        self._presence_listeners: list[Callable[[str, Any], Any]] = []

    @property
    def presence(self) -> list[PresenceEntry]:
        """Who is in the group (as last told by the server), sorted by key; empty without ``presence=True``."""
        return [self._presence[key] for key in sorted(self._presence)]

    def on_presence(self, listener: Callable[[str, Any], Any]) -> None:
        """``listener(kind, data)`` for each presence event, after `presence` is updated: ``("presence",
        [PresenceEntry...])``, ``("presence_join", PresenceEntry)``, ``("presence_leave", key)``."""
        self._presence_listeners.append(listener)

    async def _frame(self, frame: StreamFrame) -> None:
        if frame.type in PRESENCE_TYPES:
            self._presence_frame(frame)
            return
        await super()._frame(frame)

    def _presence_frame(self, frame: StreamFrame) -> None:
        if self._finished or not self.wants_presence:
            return
        data: Any = frame.data
        told: Any
        if frame.type == "presence" and isinstance(data, list):
            entries = [entry for entry in map(_presence_entry, data) if entry is not None]
            self._presence = {entry.key: entry for entry in entries}
            told = self.presence
        elif frame.type == "presence_join" and (entry := _presence_entry(data)) is not None:
            self._presence[entry.key] = told = entry
        elif frame.type == "presence_leave" and isinstance(data, dict) and isinstance(data.get("key"), str):
            told = data["key"]
            self._presence.pop(told, None)
        else:
            return  # malformed: ignored, as an unknown frame would be
        for listener in list(self._presence_listeners):
            _call(listener, frame.type, told)


def _presence_entry(data: Any) -> PresenceEntry | None:
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    count = data.get("count")
    return PresenceEntry(data["key"], count if isinstance(count, int) else 1, data.get("data"))


class ItemSubscription(Subscription):
    """One item: ``get_state()`` is the item, or None while it does not exist."""

    def __init__(self, client: StreamClient, stream: str, group: str, item_id: str) -> None:
        super().__init__(client, stream, group, item_id)
        self._state = ItemState()
