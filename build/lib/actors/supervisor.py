"""Supervisors own the nurseries that actors run in.

Every actor task lives in its supervisor's nursery, and every supervisor in
its parent's, up to the `ActorSystem`, which lives in the caller's task: so
nothing an actor starts can outlive the system. A child that exhausts its
restarts escalates here; the supervisor's `Escalation` decides whether that
stops just the child or fails the supervisor (and so on, up the tree).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .actor import Actor, ActorRef
from .cell import ActorCell
from .deadlines import AskDeadlines
from .errors import ActorFailed, ActorStopped
from .mailbox import Mailbox, Overflow
from .policy import Escalation, RestartPolicy

if TYPE_CHECKING:
    from .virtual import VirtualActors

__all__ = ["Supervisor", "ActorOptions"]

logger = logging.getLogger("actors")


@attrs.frozen
class ActorOptions:
    """Per-actor settings; unset fields fall back to the system's defaults."""

    mailbox_size: int = 1000
    overflow: Overflow = Overflow.WAIT
    policy: RestartPolicy = RestartPolicy()
    ask_timeout: float | None = 30.0
    stop_timeout: float = 5.0
    idle_timeout: float | None = None

    def merged(self, **overrides: Any) -> ActorOptions:
        return attrs.evolve(self, **{k: v for k, v in overrides.items() if v is not None})


class Supervisor:
    """A node of the supervision tree; create one with `start_supervisor`."""

    def __init__(
        self, name: str, *, escalation: Escalation, defaults: ActorOptions, deadlines: AskDeadlines
    ) -> None:
        self.name = name
        self.deadlines = deadlines
        self.escalation = Escalation(escalation)
        self.defaults = defaults
        self._nursery: trio.Nursery | None = None
        self._children: set[ActorCell | Supervisor] = set()
        self._stopping = False
        self._stop_requested = trio.Event()
        self._children_gone = trio.Event()
        self._anonymous = 0
        #: Set when the supervisor's task has ended, whichever way.
        self.finished = trio.Event()

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} children={len(self._children)}>"

    @property
    def children(self) -> int:
        return len(self._children)

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def run(self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED) -> None:
        """Own a nursery until stopped; raise `ActorFailed` to escalate."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started(self)
                await self._stop_requested.wait()
                if self._children:
                    await self._children_gone.wait()
        except BaseExceptionGroup as group:
            failed, _ = group.split(ActorFailed)
            if failed is not None and len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise
        finally:
            self._stopping = True
            self.finished.set()

    def spawn(
        self,
        factory: Callable[[], Actor],
        *,
        key: Hashable | None = None,
        mailbox_size: int | None = None,
        overflow: Overflow | None = None,
        policy: RestartPolicy | None = None,
        ask_timeout: float | None = None,
        stop_timeout: float | None = None,
    ) -> ActorRef:
        """Start an actor under this supervisor and return its ref at once.

        Messages sent before the actor's task first runs wait in its mailbox.
        ``factory`` is called for every incarnation (restarts included).
        """
        if key is None:
            self._anonymous += 1
            key = f"{self.name}/{getattr(factory, '__name__', 'actor')}-{self._anonymous}"
        options = self.defaults.merged(
            mailbox_size=mailbox_size, overflow=overflow, policy=policy,
            ask_timeout=ask_timeout, stop_timeout=stop_timeout,
        )
        return self.start_cell(factory, key, options).ref

    def start_cell(
        self,
        factory: Callable[[], Actor],
        key: Hashable,
        options: ActorOptions,
        *,
        kind: VirtualActors | None = None,
        on_end: Callable[[ActorCell], None] | None = None,
    ) -> ActorCell:
        """Start an actor's cell as a child of this supervisor (``spawn``, and a virtual activation).

        Raises `ActorStopped` while the supervisor stops.
        """
        cell = ActorCell(
            factory=factory,
            key=key,
            mailbox=Mailbox(options.mailbox_size, options.overflow),
            policy=options.policy,
            ask_timeout=options.ask_timeout,
            stop_timeout=options.stop_timeout,
            idle_timeout=options.idle_timeout,
            deadlines=self.deadlines,
            kind=kind,
            on_end=on_end,
        )
        self._start_child(cell)
        return cell

    def _start_child(self, child: ActorCell | Supervisor) -> None:
        if self._stopping or self._nursery is None:
            raise ActorStopped(f"supervisor {self.name!r} is stopping")
        self._add_child(child)
        self._nursery.start_soon(self._run_child, child, name=f"actor {child.name}")

    def _add_child(self, child: ActorCell | Supervisor) -> None:
        if not self._children and self._children_gone.is_set():
            self._children_gone = trio.Event()
        self._children.add(child)

    async def _run_child(
        self, child: ActorCell | Supervisor, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            if isinstance(child, Supervisor):
                await child.run(task_status=task_status)
            else:
                await child.run()
        except ActorFailed as exc:
            self._child_failed(child, exc)
        finally:
            self._children.discard(child)
            if not self._children:
                self._children_gone.set()

    def _child_failed(self, child: ActorCell | Supervisor, exc: ActorFailed) -> None:
        if self.escalation is Escalation.STOP_CHILD:
            logger.error("supervisor %r: %s stopped after failing: %s", self.name, child.name, exc)
            return
        raise ActorFailed(f"supervisor {self.name!r}: {child.name} failed: {exc}") from exc

    async def start_supervisor(
        self, name: str, *, escalation: Escalation = Escalation.RAISE, **defaults: Any
    ) -> Supervisor:
        """Start a child supervisor (its own subtree and escalation rule)."""
        if self._stopping or self._nursery is None:
            raise ActorStopped(f"supervisor {self.name!r} is stopping")
        child = Supervisor(
            name, escalation=escalation, defaults=self.defaults.merged(**defaults), deadlines=self.deadlines
        )
        self._add_child(child)
        await self._nursery.start(self._run_child, child, name=f"supervisor {name}")
        return child

    def virtual(
        self,
        name: str,
        factory: Callable[[Hashable], Actor],
        *,
        idle_timeout: float | None = None,
        mailbox_size: int | None = None,
        overflow: Overflow | None = None,
        policy: RestartPolicy | None = None,
        ask_timeout: float | None = None,
        stop_timeout: float | None = None,
    ) -> VirtualActors:
        """Declare a kind of virtual actor: one per key, activated on demand."""
        from .virtual import VirtualActors

        options = self.defaults.merged(
            mailbox_size=mailbox_size, overflow=overflow, policy=policy, ask_timeout=ask_timeout,
            stop_timeout=stop_timeout, idle_timeout=idle_timeout,
        )
        return VirtualActors(self, name, factory, options)

    def request_stop(self) -> None:
        """Graceful stop of the subtree: every actor drains its mailbox, then ends."""
        self._stopping = True
        for child in list(self._children):
            child.request_stop()
        self._stop_requested.set()

    def cancel(self) -> None:
        """Stop the subtree now, without draining (on_stop still runs, bounded)."""
        self._stopping = True
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        self._stop_requested.set()

    def iter_cells(self) -> list[ActorCell]:
        """Every live actor cell in this subtree (for metrics and tests)."""
        cells: list[ActorCell] = []
        for child in self._children:
            if isinstance(child, Supervisor):
                cells.extend(child.iter_cells())
            else:
                cells.append(child)
        return cells


