"""Presence: who is subscribed to each group, as identities with counts (docs/presence.md).

Every live group subscription (no item id) is a *member* with an identity
(`resolve_identity`: the stream's ``presence`` hook, else the auth context's
``user`` / ``userId`` / ``sub``, else the connection) and some data; several
subscriptions of one identity (tabs) are one `PresenceEntry` with a count.
Subscriptions that asked for presence are *listeners*: right after their
join's sync they get the whole list (``presence``), then ``presence_join``
whenever an identity's entry appears or changes (count or data — an upsert)
and ``presence_leave`` when it is gone. These events carry no epoch or
offset: presence is not part of the group's log.

The registry lives beside the group actors, not in them: members come and
go with connections, never with mutations, and on Redis the truth is shared
by every process. With a `PresenceRecords` (Redis) each process writes its
own share of each identity and reads back the union of the live processes'
shares (storage/redis/presence.py: heartbeated, so a process killed with -9
drops out within ``ttl + interval``); without one (memory, SQLite: one
process) the local members are the whole truth and nothing awaits.

Listeners receive events through the ordinary non-blocking ``deliver``; the
initial list is a join frame (``initial=True``, never dropped). A listener
whose outbox dropped a change is resynced by its transport, which calls
`PresenceRegistry.resend` after the new sync. A listener that raises is
removed from that group alone.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio

from ..errors import StorageError
from .events import Event
from .ops import check_json, json_copy
from .subscribers import Subscriber

if TYPE_CHECKING:
    from ..storage.redis.presence import OriginEntry, PresenceRecords

__all__ = ["PresenceEntry", "PresenceRegistry", "resolve_identity", "default_identity", "MAX_PRESENCE_DATA"]

logger = logging.getLogger("runtime.streams")

#: The largest presence data a client may send with its join, encoded (the wire contract).
MAX_PRESENCE_DATA = 1024

#: Where the default identity is looked for in an auth context (dict key or attribute), in order.
IDENTITY_FIELDS = ("user", "userId", "sub")


@attrs.frozen
class PresenceEntry:
    """One identity of a group's presence: how many live subscriptions it has, and its data."""

    key: str
    count: int
    data: Any = attrs.field(factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "count": self.count, "data": self.data}


def default_identity(auth_context: Any) -> str | None:
    """The auth context's ``user`` / ``userId`` / ``sub`` (dict key or attribute), as a string."""
    if auth_context is None:
        return None
    for name in IDENTITY_FIELDS:
        if isinstance(auth_context, Mapping):
            value = auth_context.get(name)
        else:
            value = getattr(auth_context, name, None)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


async def resolve_identity(
    hook: Callable[..., Any] | None, auth_context: Any, subscription: Any, *, connection_id: str,
    client_data: Any = None,
) -> tuple[str, Any] | None:
    """A subscription's ``(identity, data)``, or None when it is not counted.

    ``hook(auth_context, subscription)`` (sync or async) returns an identity,
    ``(identity, data)`` or None (not counted); without a hook the default
    identity is used, else ``connection_id``. The data is the hook's when it
    gives some, else what the client sent with its join, else ``{}``.
    """
    data = client_data if client_data is not None else {}
    if hook is None:
        return default_identity(auth_context) or connection_id, data
    result = hook(auth_context, subscription)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        return None
    if isinstance(result, str) and result:
        return result, data
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str) and result[0]:
        hook_data = result[1]
        check_json(hook_data, "presence data")
        return result[0], json_copy(hook_data)
    raise TypeError(f"a presence hook returns an identity, (identity, data) or None, not {result!r}")


def check_client_data(data: Any) -> Any:
    """A join's ``presenceData``: a JSON object of at most `MAX_PRESENCE_DATA` bytes, or ValueError."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError('"presenceData" must be a JSON object')
    if len(orjson.dumps(data)) > MAX_PRESENCE_DATA:
        raise ValueError(f'"presenceData" is larger than {MAX_PRESENCE_DATA} bytes encoded')
    return data


@attrs.define(slots=True)
class _Member:
    key: str
    data: Any
    joined: int  # ms, the engine's clock: compared across processes on Redis
    seq: int  # the order of joins here, for joins in the same millisecond


Handle = tuple[Subscriber, Hashable]


@attrs.define(slots=True, eq=False)
class _Group:
    members: dict[Handle, _Member] = attrs.field(factory=dict)
    #: The same members by identity: a join or leave touches one identity's, never the whole group.
    by_key: dict[str, dict[Handle, _Member]] = attrs.field(factory=dict)
    listeners: dict[Handle, None] = attrs.field(factory=dict)
    #: What the listeners were last told: identity -> entry.
    view: dict[str, PresenceEntry] = attrs.field(factory=dict)
    #: Identities whose write to Redis failed: rewritten by the next heartbeat.
    unsure: set[str] = attrs.field(factory=set)
    #: Operations in flight (a group is never dropped under one).
    busy: int = 0
    lock: trio.Lock = attrs.field(factory=trio.Lock)

    def add(self, handle: Handle, member: _Member) -> None:
        self.members[handle] = member
        self.by_key.setdefault(member.key, {})[handle] = member

    def remove(self, handle: Handle) -> _Member | None:
        member = self.members.pop(handle, None)
        if member is not None:
            same = self.by_key[member.key]
            del same[handle]
            if not same:
                del self.by_key[member.key]
        return member

    def local_share(self, key: str) -> tuple[int, _Member | None]:
        """How many members here have ``key``, and the newest of them (whose data the entry shows)."""
        same = self.by_key.get(key)
        if not same:
            return 0, None
        return len(same), max(same.values(), key=lambda member: (member.joined, member.seq))

    def local_entry(self, key: str) -> PresenceEntry | None:
        count, newest = self.local_share(key)
        return None if newest is None else PresenceEntry(key, count, newest.data)

    def local_view(self) -> dict[str, PresenceEntry]:
        return {key: entry for key in self.by_key if (entry := self.local_entry(key)) is not None}

    @property
    def idle(self) -> bool:
        return not (self.members or self.listeners or self.unsure or self.busy)


def _merged(shares: Mapping[str, Iterable[OriginEntry]]) -> dict[str, PresenceEntry]:
    """The processes' shares of each identity as one entry: counts summed, the newest join's data."""
    view = {}
    for key, parts in shares.items():
        parts = [part for part in parts if part.count > 0]
        if parts:
            newest = max(parts, key=lambda part: part.joined)
            view[key] = PresenceEntry(key, sum(part.count for part in parts), newest.data)
    return view


def _sorted(view: Mapping[str, PresenceEntry]) -> list[PresenceEntry]:
    return [view[key] for key in sorted(view)]


class PresenceRegistry:
    """The presence of every group of one engine; see the module docstring."""

    def __init__(self, *, clock: Callable[[], int], records: PresenceRecords | None = None) -> None:
        self._clock = clock
        self._records = records
        self._groups: dict[tuple[str, str], _Group] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._seq = itertools.count()
        self._wake = trio.Event()

    @property
    def shared(self) -> bool:
        """Whether presence is shared with other processes (Redis), and `run` must run."""
        return self._records is not None

    def __len__(self) -> int:
        return len(self._groups)

    # -- members and listeners (called by the transports) --------------------------------

    async def join(
        self, subscriber: Subscriber, stream: str, group: str, subscription_id: Hashable,
        identity: tuple[str, Any] | None, *, listen: bool,
    ) -> None:
        """Count the subscription as ``identity`` (None: not counted); ``listen``: send it the
        list now (call this right after its join's sync) and the changes from now on."""
        where = (stream, group)
        state = self._groups.setdefault(where, _Group())
        handle = (subscriber, subscription_id)
        state.busy += 1
        try:
            state.listeners.pop(handle, None)
            changed = set()
            previous = state.remove(handle)
            if previous is not None:
                changed.add(previous.key)
            if identity is not None:
                state.add(handle, _Member(identity[0], identity[1], self._clock(), next(self._seq)))
                changed.add(identity[0])
            await self._changed(stream, group, state, changed)
            if listen:
                state.listeners[handle] = None
                self._send_list(handle, stream, group, state)
        finally:
            state.busy -= 1
            self._drop_if_idle(where, state)

    async def leave(self, subscriber: Subscriber, stream: str, group: str, subscription_id: Hashable) -> None:
        """The subscription ended: it is no longer counted nor told anything. Unknown: a no-op."""
        where = (stream, group)
        state = self._groups.get(where)
        if state is None:
            return
        handle = (subscriber, subscription_id)
        state.listeners.pop(handle, None)
        member = state.remove(handle)
        if member is None:
            self._drop_if_idle(where, state)
            return
        state.busy += 1
        try:
            await self._changed(stream, group, state, {member.key})
        finally:
            state.busy -= 1
            self._drop_if_idle(where, state)

    def resend(self, subscriber: Subscriber, stream: str, group: str, subscription_id: Hashable) -> None:
        """A listener was resynced (its outbox dropped events): the whole list again, after its sync."""
        state = self._groups.get((stream, group))
        handle = (subscriber, subscription_id)
        if state is not None and handle in state.listeners:
            self._send_list(handle, stream, group, state)

    async def entries(self, stream: str, group: str) -> list[PresenceEntry]:
        """The group's presence now, sorted by identity (every process's, on Redis)."""
        if self._records is not None:
            return _sorted(_merged(await self._records.read(stream, group)))
        state = self._groups.get((stream, group))
        return [] if state is None else _sorted(state.local_view())

    # -- computing and telling -----------------------------------------------------------

    async def _changed(self, stream: str, group: str, state: _Group, keys: set[str]) -> None:
        if not keys:
            return
        records = self._records
        if records is None:
            self._tell(stream, group, state, {key: state.local_entry(key) for key in keys})
            return
        await self._write(records, stream, group, state, keys)
        await self._refresh(stream, group, state)

    async def _write(self, records: PresenceRecords, stream: str, group: str, state: _Group, keys: set[str]) -> None:
        from ..storage.redis.presence import OriginEntry

        shares: dict[str, OriginEntry | None] = {}
        for key in sorted(keys):
            count, newest = state.local_share(key)  # (count, the newest member) or (0, None)
            shares[key] = None if newest is None else OriginEntry(count, newest.data, newest.joined)
        try:
            await records.put(stream, group, shares, last=not state.members)
        except StorageError as exc:
            state.unsure |= keys
            logger.warning("presence of %s/%s not written (%s); the next heartbeat retries", stream, group, exc)
        else:
            state.unsure -= keys

    async def _refresh(self, stream: str, group: str, state: _Group) -> None:
        """Read the shared presence and tell the listeners what changed (one refresh at a time)."""
        assert self._records is not None
        async with state.lock:
            try:
                view = _merged(await self._records.read(stream, group))
            except StorageError as exc:
                logger.warning("presence of %s/%s not read (%s); retried at the next change", stream, group, exc)
                return
            self._tell(stream, group, state, {key: view.get(key) for key in state.view.keys() | view.keys()})

    def _tell(self, stream: str, group: str, state: _Group, updates: Mapping[str, PresenceEntry | None]) -> None:
        """Apply ``updates`` (identity -> its entry now, None when gone) and send each change."""
        view = state.view
        events = []
        for key in sorted(updates):
            entry, old = updates[key], view.get(key)
            if entry is None:
                if old is not None:
                    del view[key]
                    events.append(self._event(stream, group, "presence_leave", {"key": key, "count": 0}))
            elif old != entry:
                view[key] = entry
                events.append(self._event(stream, group, "presence_join", entry.as_json()))
        if events:
            for handle in list(state.listeners):
                for event in events:
                    self._deliver(handle, stream, group, state, event, initial=False)

    def _send_list(self, handle: Handle, stream: str, group: str, state: _Group) -> None:
        event = self._event(stream, group, "presence", [entry.as_json() for entry in _sorted(state.view)])
        self._deliver(handle, stream, group, state, event, initial=True)

    def _event(self, stream: str, group: str, kind: str, data: Any) -> Event:
        return Event(stream=stream, group=group, item_id=None, type=kind, data=data, timestamp=self._clock())

    def _deliver(self, handle: Handle, stream: str, group: str, state: _Group, event: Event, *, initial: bool) -> None:
        try:
            handle[0].deliver(event, initial=initial)
        except Exception:  # noqa: BLE001 - a subscriber is a fault boundary: it alone stops hearing presence
            logger.exception("presence listener of %s/%s raised; removed", stream, group)
            state.listeners.pop(handle, None)

    def _drop_if_idle(self, where: tuple[str, str], state: _Group) -> None:
        if state.idle and self._groups.get(where) is state:
            del self._groups[where]
            self._dirty.discard(where)
            if self._records is not None:
                self._records.forget(*where)

    # -- sharing (Redis): heartbeat, reaping, following the others -----------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Heartbeat our records, reap dead processes' and follow the others' changes, until cancelled.

        On the way out our records are withdrawn (shielded, bounded), so the
        survivors announce our leaves at once rather than at our deadline.
        """
        records = self._records
        if records is None:
            task_status.started()
            return
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(records.listen, self._remote_change)
                nursery.start_soon(self._heartbeats, records)
                nursery.start_soon(self._refresher)
                task_status.started()
        finally:
            with trio.move_on_after(2, shield=True):
                try:
                    await records.withdraw()
                except StorageError as exc:
                    logger.warning("presence not withdrawn (%s): it lapses at its deadline", exc)

    def _remote_change(self, stream: str | None, group: str | None = None) -> None:
        if stream is None:
            self._dirty.update(where for where, state in self._groups.items() if state.listeners)
        elif group is not None and (state := self._groups.get((stream, group))) is not None and state.listeners:
            self._dirty.add((stream, group))
        else:
            return
        self._wake.set()

    async def _refresher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._dirty:
                where = self._dirty.pop()
                state = self._groups.get(where)
                if state is None or not state.listeners:
                    continue
                state.busy += 1
                try:
                    await self._refresh(*where, state)
                finally:
                    state.busy -= 1
                    self._drop_if_idle(where, state)

    async def _heartbeats(self, records: PresenceRecords) -> None:
        while True:
            try:
                lapsed, dead = await records.heartbeat()
                for origin in dead:
                    if await records.reap(origin):
                        logger.info("presence of a dead process (%s) reaped", origin)
                await self._repair(records, everything=lapsed)
            except StorageError as exc:
                logger.warning("presence heartbeat failed (%s); retrying in %.1f s", exc, records.interval)
            await trio.sleep(records.interval)

    async def _repair(self, records: PresenceRecords, *, everything: bool) -> None:
        """Write again what may not be in Redis: failed writes, or all of ours after we were reaped."""
        for where, state in list(self._groups.items()):
            keys = set(state.by_key) if everything else set()
            keys |= state.unsure
            if keys:
                state.busy += 1
                try:
                    await self._write(records, *where, state, keys)
                finally:
                    state.busy -= 1
                    self._drop_if_idle(where, state)
