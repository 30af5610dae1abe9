"""The kernel's errors: the ones a caller catches, and unwrapping Trio's exception groups.

The errors say which of the promises could not be kept: the message was not
accepted (`MailboxFull`, `ActorStopped`), no answer came in time
(`AskTimeout`), or the actor gave up after its restarts (`ActorFailed`).

Trio wraps every error leaving a nursery in an ExceptionGroup. Where a
component opens nurseries on its user's behalf (`ActorSystem`, the stream
engine, the server), a user who raised one error, or whose actor failed
once, should get that error back — not a group they did not ask for:
`raise_sole_error` and `sole_error` give it.
"""

from __future__ import annotations

import trio

__all__ = [
    "ActorError", "ActorFailed", "ActorStopped", "AskTimeout", "MailboxFull",
    "leaves", "raise_sole_error", "sole_error",
]


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


# -- exception groups ---------------------------------------------------------------


def leaves(group: BaseExceptionGroup) -> list[BaseException]:
    """Every non-group exception in ``group``, depth first."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            found.extend(leaves(exc))
        else:
            found.append(exc)
    return found


def sole_error(group: BaseExceptionGroup) -> BaseException | None:
    """The one real error in ``group``, or None when there are several or it is a cancellation."""
    found = leaves(group)
    if len(found) == 1 and not isinstance(found[0], trio.Cancelled):
        return found[0]
    return None


def raise_sole_error(group: BaseExceptionGroup) -> None:
    """Re-raise ``group``'s one real error by itself, or the group when there is not exactly one.

    Call it from ``except BaseExceptionGroup as group:``.
    """
    error = sole_error(group)
    if error is not None:
        raise error from None
    raise group
