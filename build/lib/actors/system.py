"""`ActorSystem`: the root of the supervision tree, embedded in a Trio program.

``async with ActorSystem() as system:`` opens a nursery in the caller's task.
Leaving the block normally stops the system gracefully (every actor drains
its mailbox, then stops, within ``stop_timeout``); leaving it with an error,
or cancelling it, stops everything at once. Either way, nothing is left
running when the block exits.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any

import trio

from .actor import Actor, ActorRef
from .deadlines import AskDeadlines
from .errors import ActorStopped, raise_sole_error
from .lifecycle import SingleUse
from .mailbox import Overflow
from .policy import Escalation, RestartPolicy
from .supervisor import ActorOptions, Supervisor
from .virtual import VirtualActors

__all__ = ["ActorSystem"]


class ActorSystem(SingleUse):
    """Spawn actors, declare virtual actors, stop them all.

    Defaults given here apply to every actor unless overridden at spawn:
    ``mailbox_size`` and ``overflow`` (bounded mailbox policy), ``policy``
    (restarts), ``ask_timeout`` (seconds; ``None`` waits forever),
    ``stop_timeout`` (bound on each ``on_stop`` and on the graceful stop).
    ``escalation`` is what the root does with an actor that gave up:
    `Escalation.RAISE` (default) fails the system, so the ``async with``
    raises `ActorFailed`; `Escalation.STOP_CHILD` logs it and carries on.
    """

    def __init__(
        self,
        *,
        name: str = "system",
        mailbox_size: int = 1000,
        overflow: Overflow = Overflow.WAIT,
        policy: RestartPolicy = RestartPolicy(),
        ask_timeout: float | None = 30.0,
        stop_timeout: float = 5.0,
        escalation: Escalation = Escalation.RAISE,
    ) -> None:
        self.defaults = ActorOptions(
            mailbox_size=mailbox_size, overflow=Overflow(overflow), policy=policy,
            ask_timeout=ask_timeout, stop_timeout=stop_timeout,
        )
        self.deadlines = AskDeadlines()
        self.root = Supervisor(name, escalation=escalation, defaults=self.defaults, deadlines=self.deadlines)
        self._nursery: trio.Nursery | None = None

    @asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[ActorSystem]:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                timer_scope = trio.CancelScope()
                nursery.start_soon(self._run_timer, timer_scope)
                await nursery.start(self._run_root)
                try:
                    yield self
                except BaseException:
                    self.cancel()
                    raise
                await self.stop()
                timer_scope.cancel()
        except BaseExceptionGroup as group:
            # Trio wraps everything in groups; give callers the one error they
            # can act on when there is just one (the body's own, or ActorFailed).
            raise_sole_error(group)

    async def _run_timer(self, scope: trio.CancelScope) -> None:
        with scope:
            await self.deadlines.run()

    async def _run_root(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        await self.root.run(task_status=task_status)

    # -- spawning -----------------------------------------------------------

    def spawn(self, factory: Callable[[], Actor], **options: Any) -> ActorRef:
        """Start an actor under the root supervisor (see `Supervisor.spawn`)."""
        return self.root.spawn(factory, **options)

    def virtual(self, name: str, factory: Callable[[Hashable], Actor], **options: Any) -> VirtualActors:
        """Declare virtual actors under the root (see `Supervisor.virtual`)."""
        return self.root.virtual(name, factory, **options)

    async def start_supervisor(self, name: str, **options: Any) -> Supervisor:
        """Start a child supervisor of the root (see `Supervisor.start_supervisor`)."""
        return await self.root.start_supervisor(name, **options)

    # -- figures --------------------------------------------------------------

    def mailbox_depth(self) -> int:
        """Messages waiting in every live actor's mailbox (a gauge for metrics)."""
        return sum(len(cell.mailbox) for cell in self.root.iter_cells())

    # -- stopping -----------------------------------------------------------

    async def stop(self, *, timeout: float | None = None) -> None:
        """Drain and stop every actor; cancel what is still running after ``timeout``.

        New messages are refused with `ActorStopped` from the moment this is
        called; messages already in mailboxes are handled.
        """
        if timeout is None:
            timeout = self.defaults.stop_timeout
        self.root.request_stop()
        if self._nursery is None:
            raise ActorStopped("the actor system is not running")
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self.root.finished.wait()
            return
        self.cancel()

    def cancel(self) -> None:
        """Stop everything now. ``on_stop`` hooks still run (shielded, bounded)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        self.root.cancel()
