"""The trace id of the work in progress, as a context variable.

It lives here, below both streams and steps, so that a stream write made
inside a step handler can carry the handler's trace id to the stream
triggers it fires without streams knowing anything about steps.
"""

from __future__ import annotations

import contextvars
import secrets

__all__ = ["trace_id_var", "current_trace_id", "new_trace_id"]

trace_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)


def current_trace_id() -> str | None:
    """The trace id of the invocation (or request) in progress, if any."""
    return trace_id_var.get()


def new_trace_id() -> str:
    return secrets.token_hex(8)
