"""Errors raised by the actor kernel.

They say which of the promises could not be kept: the message was not
accepted (`MailboxFull`, `ActorStopped`), no answer came in time
(`AskTimeout`), or the actor gave up after its restarts (`ActorFailed`).
"""

from __future__ import annotations


class ActorError(Exception):
    """Base class of every error the actor kernel raises itself."""


class MailboxFull(ActorError):
    """The mailbox is at capacity and its overflow policy is ``RAISE``.

    The message was not enqueued; the caller may retry, shed load, or report
    back-pressure to its own client.
    """


class ActorStopped(ActorError):
    """The actor (or its whole system) is stopped or stopping.

    Raised to senders whose message could not be accepted, and answered to
    askers whose message was still waiting when the actor stopped.
    """


class AskTimeout(ActorError, TimeoutError):
    """No reply arrived within the ask's timeout.

    If the message had not been taken up yet it was withdrawn and will never
    run; if its handler had already started, it runs to completion and the
    reply is discarded.
    """


class ActorFailed(ActorError):
    """An actor failed more often than its restart policy allows.

    Raised to askers whose messages were waiting when the actor gave up, and
    escalated to the actor's supervisor. ``__cause__`` is the last failure.
    """
