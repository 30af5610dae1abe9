"""A small actor kernel on Trio.

Actors own private state and handle one message at a time from a bounded
mailbox; supervisors restart them by policy; virtual actors are activated by
their first message and passivated when idle. Everything runs inside
nurseries owned by an `ActorSystem`, which is itself entered with
``async with`` in the caller's task, so nothing outlives it. The kernel knows
nothing of streams, HTTP or storage. See docs/actors.md.
"""

from .actor import DEFAULT_TIMEOUT, Actor, ActorRef
from .errors import ActorError, ActorFailed, ActorStopped, AskTimeout, MailboxFull, raise_sole_error, sole_error
from .mailbox import Mailbox, Overflow
from .policy import Directive, Escalation, RestartPolicy
from .supervisor import ActorOptions, Supervisor
from .system import ActorSystem
from .virtual import VirtualActors

__all__ = [
    "Actor",
    "ActorError",
    "ActorFailed",
    "ActorOptions",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "DEFAULT_TIMEOUT",
    "Directive",
    "Escalation",
    "Mailbox",
    "MailboxFull",
    "Overflow",
    "RestartPolicy",
    "Supervisor",
    "VirtualActors",
    "raise_sole_error",
    "sole_error",
]
