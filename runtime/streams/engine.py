"""`StreamEngine`: the running streams of an app — actors, storage, triggers.

An engine is entered with ``async with`` inside the caller's task (the app,
a test, any Trio program) and binds itself to that task's context, so the
module-level `Stream` handles of step files find it. Nothing of it is
module-level state: two engines in one process (two tests) never meet.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable
from contextlib import asynccontextmanager
from typing import Any, cast

import trio

from actors import (
    ActorRef,
    ActorStopped,
    ActorSystem,
    Escalation,
    MailboxFull,
    RestartPolicy,
    VirtualActors,
    raise_sole_error,
)
from actors.lifecycle import SingleUse

from ..errors import StreamNotFound
from ..storage.base import HistoryPolicy, RemoteBatch, SharedStorage, Storage
from ..storage.memory import MemoryStorage
from .config import StreamConfig, StreamDefinition
from .events import Event
from .expiry import ExpirySweeper
from .group import GroupActor
from .group_context import EngineMetrics, GroupContext
from .messages import ExpireDue, GroupStats, Join, Joined, Leave
from .presence import PresenceRegistry
from .shared_committer import CatchUp
from .subscribers import Subscriber
from .triggers import StreamListener, TriggerDispatcher

__all__ = ["StreamEngine", "EngineMetrics", "current_engine", "wall_clock_ms"]

logger = logging.getLogger("runtime.streams")

_current_engine: contextvars.ContextVar[StreamEngine] = contextvars.ContextVar("stream_engine")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def current_engine() -> StreamEngine:
    """The engine bound to the running task (set by ``async with engine``)."""
    try:
        return _current_engine.get()
    except LookupError:
        raise RuntimeError(
            "no stream engine is running in this task: use streams inside `async with StreamEngine(...)` "
            "(or a running App), or in tasks started from it"
        ) from None


class StreamEngine(SingleUse):
    """Owns the group actors of every declared stream.

    ``storage`` defaults to memory; the engine opens it on entry and closes
    it on exit. ``clock`` returns milliseconds since the epoch for event
    timestamps (a test may pass one driven by Trio's clock). Groups are
    passivated after ``idle_timeout`` seconds without a message and without
    subscribers. Items with a TTL are deleted by an `ExpirySweeper` running
    beside the groups; on a shared storage it also looks every
    ``expiry_poll`` seconds for expiries other processes set.
    """

    def __init__(
        self,
        streams: Iterable[Any] = (),
        *,
        storage: Storage | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        history: HistoryPolicy = HistoryPolicy(),
        idle_timeout: float | None = 60.0,
        mailbox_size: int = 10_000,
        ask_timeout: float | None = 30.0,
        trigger_queue_size: int = 10_000,
        stop_timeout: float = 5.0,
        restart_policy: RestartPolicy = RestartPolicy(max_restarts=5, within=10.0, backoff=0.05),
        expiry_poll: float = 1.0,
    ) -> None:
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.clock = clock
        self.default_history = history
        self.metrics = EngineMetrics()
        self._definitions: dict[str, StreamDefinition] = {}
        self._idle_timeout = idle_timeout
        self._mailbox_size = mailbox_size
        self._ask_timeout = ask_timeout
        self._restart_policy = restart_policy
        self._stop_timeout = stop_timeout
        self.triggers = TriggerDispatcher(queue_size=trigger_queue_size)
        self.expiry = ExpirySweeper(
            self.storage, clock, lambda: self.stream_names, self._expire_due,
            poll_interval=expiry_poll if isinstance(self.storage, SharedStorage) else None,
        )
        self._group_context = GroupContext(
            storage=self.storage, clock=clock, metrics=self.metrics,
            has_triggers=self.triggers.has_listeners, dispatch=self.triggers.dispatch,
            expiry_set=self.expiry.wake,
        )
        self._groups: VirtualActors | None = None
        self._system: ActorSystem | None = None
        #: Who is subscribed to each group (presence.py); shared by every process on Redis.
        presence_records = getattr(self.storage, "presence_records", None)
        self.presence = PresenceRegistry(clock=clock, records=presence_records() if presence_records else None)
        for stream in streams:
            self.declare(stream)

    # -- declaring --------------------------------------------------------------

    def declare(self, stream: Any) -> StreamDefinition:
        """Declare a stream from a `Stream`, a `StreamConfig`, a dict or a name.

        Declaring the same name twice is fine when the configs are equal (or
        one side is a bare name); two different configs for one name are an
        error, as the spec requires.
        """
        from .stream import Stream

        if isinstance(stream, Stream):
            config = stream.config or StreamConfig(name=stream.name)
            explicit = stream.config is not None
        elif isinstance(stream, StreamConfig):
            config, explicit = stream, True
        elif isinstance(stream, dict):
            config, explicit = StreamConfig.from_dict(stream), True
        elif isinstance(stream, str):
            config, explicit = StreamConfig(name=stream), False
        else:
            raise TypeError(f"cannot declare a stream from {type(stream).__name__}")
        existing = self._definitions.get(config.name)
        if existing is not None:
            if not explicit or existing.config == config:
                return existing
            if existing.config != StreamConfig(name=config.name):
                raise ValueError(f"stream {config.name!r} is declared twice with different configs")
        definition = StreamDefinition.compile(config, self.default_history)
        self._definitions[config.name] = definition
        return definition

    def definition(self, name: str) -> StreamDefinition:
        try:
            return self._definitions[name]
        except KeyError:
            raise StreamNotFound(name) from None

    @property
    def stream_names(self) -> list[str]:
        return sorted(self._definitions)

    # -- lifecycle ------------------------------------------------------------------

    @asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[StreamEngine]:
        token = _current_engine.set(self)
        try:
            # Storage wraps everything, opened and closed by this task: the
            # Redis client runs its connections in a task group of its own.
            # Each backend's aclose() shields what must finish (SQLite's file).
            async with self.storage, trio.open_nursery() as nursery:
                await nursery.start(self.triggers.run)
                async with ActorSystem(
                    name="streams",
                    mailbox_size=self._mailbox_size,
                    ask_timeout=self._ask_timeout,
                    policy=self._restart_policy,
                    escalation=Escalation.STOP_CHILD,
                    stop_timeout=self._stop_timeout,
                ) as system:
                    self._system = system
                    self._groups = system.virtual("group", self._new_group_actor, idle_timeout=self._idle_timeout)
                    if isinstance(self.storage, SharedStorage):
                        await nursery.start(self.storage.follow, self._follow, self._storage_lost)
                    if self.presence.shared:
                        await nursery.start(self.presence.run)
                    # The sweeper asks group actors: it stops before they do.
                    async with trio.open_nursery() as sweeping:
                        await sweeping.start(self.expiry.run)
                        yield self
                        sweeping.cancel_scope.cancel()
                # Groups have drained and committed; let triggers finish what
                # is queued, within a bound, then stop them.
                with trio.move_on_after(self._stop_timeout):
                    await self.triggers.wait_idle()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise_sole_error(group)
        finally:
            self._groups = None
            _current_engine.reset(token)

    def _new_group_actor(self, key: Hashable) -> GroupActor:
        stream, group = cast("tuple[str, str]", key)
        return GroupActor(self._group_context, self.definition(stream), group)

    async def _expire_due(self, stream: str, group: str) -> None:
        await self.group_ref(stream, group).ask(ExpireDue())

    def _follow(self, batch: RemoteBatch) -> None:
        """Hand another process's batch to the group's actor, if the group is active here.

        An inactive group needs nothing: it loads the stored state when it
        activates. A full mailbox drops the batch; the group sees the gap at
        its next batch, read or commit, and catches up from the history.
        """
        groups = self._groups
        key = (batch.stream, batch.group)
        if groups is None or key not in groups:
            return
        try:
            groups.ref(key).tell_nowait(batch)
        except (MailboxFull, ActorStopped):
            logger.warning("%s/%s: mailbox full; a followed batch is left to catch-up", *key)

    def _storage_lost(self, data_lost: bool) -> None:
        """Storage may have published batches we missed, or lost its data: every active group checks."""
        groups = self._groups
        if groups is None:
            return
        for key in list(groups.active_keys()):
            try:
                groups.ref(key).tell_nowait(CatchUp(reload=data_lost))
            except (MailboxFull, ActorStopped):
                logger.warning("%s/%s: could not ask the group to catch up", *cast("tuple[str, str]", key))

    # -- groups -----------------------------------------------------------------------

    def group_ref(self, stream: str, group: str) -> ActorRef:
        """The group actor's ref (activated by its first message)."""
        if self._groups is None:
            raise RuntimeError("the stream engine is not running")
        self.definition(stream)
        return self._groups.ref((stream, group))

    @property
    def active_groups(self) -> int:
        return len(self._groups) if self._groups is not None else 0

    def mailbox_depth(self) -> int:
        """Messages waiting in the group actors' mailboxes (``runtime_mailbox_depth``)."""
        return self._system.mailbox_depth() if self._system is not None else 0

    # -- subscriptions (used by the transports) -------------------------------------------

    async def join(
        self,
        subscriber: Subscriber,
        stream: str,
        group: str,
        *,
        subscription_id: Hashable,
        item_id: str | None = None,
        since: tuple[str, int] | None = None,
    ) -> Joined:
        """Deliver a sync (or a replay) to ``subscriber`` and register it, in one turn."""
        if not callable(getattr(subscriber, "deliver_many", None)):
            raise TypeError(
                f"{type(subscriber).__name__} is not a Subscriber: it has no deliver_many "
                "(subclass runtime.Subscriber to inherit one that calls deliver for each event)"
            )
        joined: Joined = await self.group_ref(stream, group).ask(
            Join(subscriber, subscription_id, item_id=item_id, since=since)
        )
        return joined

    async def leave(self, subscriber: Subscriber, stream: str, group: str, subscription_id: Hashable) -> bool:
        left: bool = await self.group_ref(stream, group).ask(Leave(subscriber, subscription_id))
        return left

    async def group_stats(self, stream: str, group: str) -> dict[str, Any]:
        """``subscribers``, ``subscriptions``, ``items``, ``epoch``, ``offset``, ``history`` of a group."""
        stats: dict[str, Any] = await self.group_ref(stream, group).ask(GroupStats())
        return stats

    # -- stream triggers --------------------------------------------------------------------

    def on_change(
        self,
        stream: str,
        handler: Callable[[Event], Awaitable[Any]],
        *,
        group_id: str | None = None,
        item_id: str | None = None,
        name: str | None = None,
    ) -> StreamListener:
        """Call ``handler(event)`` after each committed change (and custom event) of ``stream``.

        Per listener and group, events arrive in offset order; the handler
        never delays a mutation. An exception is logged and counted.
        """
        self.definition(stream)
        name = name or str(getattr(handler, "__name__", "listener"))
        listener = StreamListener(stream, handler, group_id=group_id, item_id=item_id, name=name)
        self.triggers.add(listener)
        return listener
