"""Supervision policy: what happens when a handler raises.

One-for-one: only the failing actor is affected. A failure is answered to
the asker first, then the policy decides. Restarts are bounded in a sliding
window, with exponential backoff between them; past the bound the failure
escalates to the supervisor, which applies its own `Escalation`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

__all__ = ["Directive", "Escalation", "RestartPolicy", "always_restart"]


class Directive(enum.Enum):
    """The decision for one failure."""

    #: Keep the instance and its state; go on with the next message.
    RESUME = "resume"
    #: Replace the instance with a fresh one (``on_start`` runs again).
    RESTART = "restart"
    #: Stop the actor; waiting askers get `ActorStopped`.
    STOP = "stop"
    #: Give up at once and hand the failure to the supervisor.
    ESCALATE = "escalate"


class Escalation(enum.Enum):
    """What a supervisor does with a child that escalated."""

    #: Fail the supervisor too: its other children are cancelled and the
    #: failure goes to its parent (at the top, out of ``async with ActorSystem``).
    RAISE = "raise"
    #: Log it and let the child stay stopped; the rest carry on. A virtual
    #: actor is activated afresh by its next message.
    STOP_CHILD = "stop_child"


def always_restart(exc: BaseException) -> Directive:
    return Directive.RESTART


@attrs.frozen
class RestartPolicy:
    """At most ``max_restarts`` restarts within ``within`` seconds.

    The n-th restart inside the window waits ``backoff * factor**(n-1)``
    seconds (capped at ``max_backoff``) on the Trio clock, so MockClock tests
    see the exact schedule. Messages wait in the mailbox meanwhile.
    """

    max_restarts: int = 3
    within: float = 5.0
    backoff: float = 0.01
    factor: float = 2.0
    max_backoff: float = 5.0
    decide: Callable[[BaseException], Directive] = always_restart

    def __attrs_post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if self.within <= 0:
            raise ValueError("within must be > 0 seconds")
        if self.backoff < 0 or self.factor < 1 or self.max_backoff < 0:
            raise ValueError("backoff must be >= 0, factor >= 1, max_backoff >= 0")

    def delay(self, restart_number: int) -> float:
        """Seconds to wait before the ``restart_number``-th restart (1-based)."""
        return min(self.max_backoff, self.backoff * self.factor ** (restart_number - 1))
