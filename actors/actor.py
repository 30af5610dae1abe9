"""`Actor`, the class users subclass, and `ActorRef`, the handle others hold.

An actor's state is private: nothing outside reaches it except through
messages, and messages are handled one at a time, so the state needs no
lock. A ref stays valid across restarts and (for virtual actors) across
passivation: it names the actor, not an instance.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import outcome
import trio

from .envelope import Ask
from .errors import ActorStopped, AskTimeout

if TYPE_CHECKING:
    from .cell import ActorCell
    from .virtual import VirtualActors

__all__ = ["Actor", "ActorRef", "DEFAULT_TIMEOUT"]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT_TIMEOUT"


#: Use the system's ``ask_timeout``.
DEFAULT_TIMEOUT: Any = _Default()


class Actor:
    """Subclass and override `receive` (or `receive_batch`).

    Hooks, all optional: `on_start` runs before the first message of each
    incarnation (activation or restart), `on_stop` after the last one
    (graceful stop, passivation, restart, cancellation; shielded and bounded).
    While the actor runs, `self.ref`, `self.key` and `self.nursery` are set;
    tasks started in `self.nursery` end with the incarnation, and a crash in
    one of them counts as a failure of the actor.
    """

    #: How many waiting messages one turn takes from the mailbox.
    max_batch: int = 128

    _cell: ActorCell
    _nursery: trio.Nursery

    async def on_start(self) -> None:
        """Prepare state (load it, open resources) before any message."""

    async def on_stop(self) -> None:
        """Release what `on_start` took. Must not assume the state is sane."""

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ask."""
        raise NotImplementedError(f"{type(self).__name__} must override receive() or receive_batch()")

    async def receive_batch(self, messages: Sequence[Any]) -> Sequence[outcome.Outcome[Any]]:
        """Handle several messages in one turn; one `outcome.Outcome` each.

        Override to amortise work over a batch (one storage transaction for
        all of them, say). An `outcome.Error` answers that message's asker
        without counting as a failure of the actor; raising fails them all
        and is handled by the restart policy.
        """
        raise NotImplementedError  # never called unless overridden

    def can_passivate(self) -> bool:
        """Whether an idle actor may be passivated now (virtual actors only)."""
        return True

    @property
    def ref(self) -> ActorRef:
        return self._cell.ref

    @property
    def key(self) -> Hashable:
        return self._cell.key

    @property
    def nursery(self) -> trio.Nursery:
        return self._nursery


class ActorRef:
    """Address of an actor: ``tell`` and ``ask`` go through its mailbox.

    Order: messages from one sender are handled in the order it sent them.
    """

    __slots__ = ("_cell", "_kind", "key", "_ask_timeout")

    def __init__(
        self,
        cell: ActorCell | None,
        *,
        key: Hashable,
        kind: VirtualActors | None = None,
        ask_timeout: float | None,
    ) -> None:
        self._cell = cell
        self._kind = kind
        self.key = key
        self._ask_timeout = ask_timeout

    def __repr__(self) -> str:
        return f"<ActorRef {self.key!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ActorRef):
            return NotImplemented
        return self.key == other.key and self._kind is other._kind and (
            self._kind is not None or self._cell is other._cell
        )

    def __hash__(self) -> int:
        return hash((self.key, id(self._kind)))

    @property
    def is_alive(self) -> bool:
        """True while an incarnation is active (a virtual ref is always usable)."""
        cell = self._cell
        return cell is not None and not cell.ended

    def _target(self) -> ActorCell:
        cell = self._cell
        if cell is None or cell.ended:
            if self._kind is None:
                raise ActorStopped(f"actor {self.key!r} is stopped")
            cell = self._cell = self._kind.activate(self.key)
        return cell

    async def tell(self, message: Any) -> None:
        """Send without waiting for a reply.

        Returns as soon as the message is enqueued; waits only while the
        mailbox is full under `Overflow.WAIT`. Raises `MailboxFull` under
        `Overflow.RAISE`, `ActorStopped` if the actor is stopped.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        await self._target().mailbox.put(message)

    def tell_nowait(self, message: Any) -> None:
        """Send from synchronous code; raises `MailboxFull` instead of waiting."""
        self._target().mailbox.put_nowait(message)

    async def ask(self, message: Any, *, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """Send and wait for the handler's return value.

        The handler's exception is raised here. ``timeout`` (seconds on the
        Trio clock; ``None`` for no limit; default the system's) raises
        `AskTimeout`; a message not yet taken up is then withdrawn.
        Time spent waiting for room in a full mailbox counts.
        """
        if timeout is DEFAULT_TIMEOUT:
            timeout = self._ask_timeout
        cell = self._target()
        mailbox = cell.mailbox
        envelope = Ask(message)
        if timeout is None or timeout == math.inf:
            await mailbox.put(envelope)
            return await envelope.wait()
        if mailbox.has_room():
            # Fast path: the system's timer expires the ask; no cancel scope.
            mailbox.put_nowait(envelope)
            envelope.target = self.key
            cell.deadlines.register(envelope, timeout)
            return await envelope.wait()
        with trio.move_on_after(timeout) as scope:
            await mailbox.put(envelope)
            return await envelope.wait()
        envelope.withdrawn = True
        assert scope.cancelled_caught
        raise AskTimeout(f"no reply from {self.key!r} within {timeout} s")
