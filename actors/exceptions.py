"""Unwrapping Trio's exception groups at the edge of a component.

Trio wraps every error leaving a nursery in an ExceptionGroup. Where a
component opens nurseries on its user's behalf (`ActorSystem`, the stream
engine), a user who raised one error, or whose actor failed once, should get
that error back — not a group they did not ask for.
"""

from __future__ import annotations

import trio

__all__ = ["leaves", "sole_error", "raise_sole_error"]


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
