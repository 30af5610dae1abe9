"""Recognise a forgotten ``await`` in a handler, say so, and close the coroutine left behind.

``result = ctx.streams.counter.update(...)`` without ``await`` gives the
handler a coroutine: the first use fails far from the cause
(``AttributeError: 'coroutine' object has no attribute 'new_value'``), and
the unawaited coroutine prints a ``RuntimeWarning`` when it is collected —
at exit, long after the request. The runner asks `forgotten_await` about
every handler failure; when the failure is a coroutine used as a value, the
logged message says "you forgot an await" and names the step, its file and
line, and the coroutine is closed (a closed coroutine never warns).
"""

from __future__ import annotations

import inspect
import types
from typing import Any

__all__ = ["forgotten_await", "coroutine_in", "hint"]


def _close(value: Any) -> bool:
    """Close ``value`` if it is a coroutine that never started; True if it is a coroutine at all."""
    if not isinstance(value, types.CoroutineType):
        return False
    if inspect.getcoroutinestate(value) == inspect.CORO_CREATED:
        value.close()  # a closed coroutine never warns "was never awaited"
    return True


def forgotten_await(exc: BaseException) -> bool:
    """Whether ``exc`` comes from using a coroutine as a value; closes the coroutines involved.

    The coroutine is ``exc.obj`` for an attribute lookup (``result.new_value``);
    for a ``TypeError`` about a ``'coroutine' object`` (``result["id"]``) it
    is looked for among the locals of the frames the exception passed through.
    """
    if isinstance(exc, AttributeError) and _close(getattr(exc, "obj", None)):
        found = True
    elif isinstance(exc, (TypeError, AttributeError)) and "'coroutine' object" in str(exc):
        found = True
    else:
        return False
    tb = exc.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            _close(value)
        tb = tb.tb_next
    return found


def coroutine_in(value: Any) -> bool:
    """Whether a handler's response body, or a value of a dict body, is a coroutine; closes it.

    Only the top level is looked at: one ``isinstance`` per key keeps it off
    the request's cost, and a forgotten ``await`` is almost always there
    (``ApiResponse(200, ctx.streams.todo.get(...))``, ``{"item": ...}``).
    """
    found = _close(value)
    if type(value) is dict:
        for item in value.values():
            found = _close(item) or found
    return found


def hint(step_name: str, file: str | None, line: int | None) -> str:
    where = f" ({file}:{line})" if file and line else f" ({file})" if file else ""
    return (f"you forgot an await: step {step_name!r}{where} used a coroutine as a value; "
            "write `await` before the async call (ctx.streams.<name>.set/update/get..., ctx.enqueue, "
            "ctx.state...)")
