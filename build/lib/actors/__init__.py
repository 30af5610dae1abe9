"""A small actor kernel on Trio.

Actors own private state and handle one message at a time from a bounded
mailbox; supervisors restart them by policy; virtual actors are activated by
their first message and passivated when idle. Everything runs inside
nurseries owned by an `ActorSystem`, which is itself entered with
``async with`` in the caller's task, so nothing outlives it. See docs/actors.md.

Owns: mailboxes, refs (tell / ask), cells and their incarnations, supervision
and restart policy, virtual actors, ask deadlines, the kernel's errors.
May import: Trio, outcome, attrs and the standard library — nothing else.
Must never be imported by it: anything of ``runtime`` (the kernel knows
nothing of streams, storage or HTTP). Everything public is re-exported here;
the modules are the kernel's own (a module calls another's public names only).
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
