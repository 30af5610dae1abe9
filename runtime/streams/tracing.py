"""The trace id of the work in progress, as a context variable, and the seam tracers plug into.

It lives here, below both streams and steps, so that a stream write made
inside a step handler can carry the handler's trace id to the stream
triggers it fires without streams knowing anything about steps.

`Tracer` is what the step runtime reports to (``StepRuntime.tracer``): a
span around each HTTP request and each handler invocation, and a point
event for each message enqueued. The default, `NO_TRACER`, does nothing;
the console (``runtime.console``) installs one that keeps the last traces in
memory and, with the ``otel`` extra, forwards spans to OpenTelemetry.
"""

from __future__ import annotations

import contextvars
import secrets
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

__all__ = ["trace_id_var", "current_trace_id", "new_trace_id", "Tracer", "NO_TRACER"]

trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)


def current_trace_id() -> str | None:
    """The trace id of the invocation (or request) in progress, if any."""
    return trace_id_var.get()


def new_trace_id() -> str:
    return secrets.token_hex(8)


class Tracer(Protocol):
    def span(self, trace_id: str, kind: str, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        """Time the block as one span of ``trace_id``; the caller may add fields to the dict it yields.
        An exception leaving the block is recorded on the span and propagates."""
        ...

    def event(self, trace_id: str | None, kind: str, name: str, **fields: Any) -> None:
        """Record a point in time of ``trace_id`` (a message enqueued, a stream write)."""
        ...


class _NoTracer:
    def span(self, trace_id: str, kind: str, name: str, **fields: Any) -> AbstractContextManager[dict[str, Any]]:
        return nullcontext({})

    def event(self, trace_id: str | None, kind: str, name: str, **fields: Any) -> None:
        return None


#: The tracer of an app with no console: nothing is recorded.
NO_TRACER: Tracer = _NoTracer()
