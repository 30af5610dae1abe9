"""`FlowContext` and the per-invocation context variables.

Each handler invocation runs with its own context (trace id, logger, which
trigger fired) in a context variable, so the module-level ``logger``,
``enqueue`` and ``state`` that Motia's newer SDK imports act for the
invocation in progress, and the trace id reaches everything it causes: a
stream write carries it to the stream triggers it fires, an enqueue to the
queue handler that takes the message.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..logs import Logger
from ..state import State
from ..streams.tracing import current_trace_id, new_trace_id, trace_id_var

if TYPE_CHECKING:
    from ..streams.stream import Stream
    from .runner import StepRuntime

__all__ = [
    "FlowContext", "TriggerInfo", "Streams", "new_trace_id", "current_context", "current_trace_id",
    "logger", "enqueue", "emit", "state",
]

_context: contextvars.ContextVar[FlowContext] = contextvars.ContextVar("flow_context")
_trace_id = trace_id_var


def current_context() -> FlowContext | None:
    return _context.get(None)


@attrs.frozen
class TriggerInfo:
    """Which trigger fired: ``type`` and the fields that identify it."""

    type: str
    method: str | None = None
    path: str | None = None
    topic: str | None = None
    stream: str | None = None
    expression: str | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class Streams:
    """``ctx.streams.todo``: every declared stream, by attribute or item."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: StepRuntime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Stream:
        return self._runtime.stream_handle(name)

    def __getitem__(self, name: str) -> Stream:
        return self._runtime.stream_handle(name)

    def __dir__(self) -> list[str]:
        return self._runtime.engine.stream_names


class FlowContext:
    """What a handler gets besides its input."""

    __slots__ = ("trace_id", "logger", "state", "streams", "trigger", "step", "input_value", "_runtime")

    #: ``FlowContext[Any]`` in a ported file's annotations is just FlowContext.
    __class_getitem__ = classmethod(lambda cls, _item: cls)

    def __init__(
        self, runtime: StepRuntime, *, step: str, trace_id: str, trigger: TriggerInfo, input_value: Any = None
    ) -> None:
        self._runtime = runtime
        self.input_value = input_value
        self.step = step
        self.trace_id = trace_id
        self.trigger = trigger
        self.logger = Logger(step=step, trace_id=trace_id)
        self.state: State = runtime.state
        self.streams = Streams(runtime)

    def __repr__(self) -> str:
        return f"<FlowContext step={self.step!r} trace_id={self.trace_id!r} trigger={self.trigger.type}>"

    async def enqueue(self, message: Mapping[str, Any]) -> None:
        """Enqueue ``{"topic": ..., "data": ...}`` for the steps subscribed to the topic."""
        if not isinstance(message, Mapping) or not isinstance(message.get("topic"), str):
            raise TypeError('enqueue takes {"topic": str, "data": ...}')
        ids = await self._runtime.enqueue(message["topic"], message.get("data"), trace_id=self.trace_id)
        self._runtime.tracer.event(self.trace_id, "enqueue", message["topic"], step=self.step, messages=ids)

    emit = enqueue

    @property
    def idempotency_key(self) -> str | None:
        """The HTTP request's ``Idempotency-Key`` header, or None (and None for other triggers).

        Pass it on to the stream calls that must apply once per key:
        ``await stream.set(..., idempotency_key=ctx.idempotency_key)``. A
        queue handler needs nothing: its stream calls are keyed by the
        message (docs/steps.md, "Exactly-once effects").
        """
        if self.trigger.type != "http":
            return None
        headers = getattr(self.input_value, "headers", None)
        value = headers.get("idempotency-key") if headers is not None else None
        return value or None

    # Motia's multi-trigger helpers, so one handler can serve several triggers.
    def is_http(self) -> bool:
        return self.trigger.type == "http"

    is_api = is_http

    def is_queue(self) -> bool:
        return self.trigger.type == "queue"

    def is_cron(self) -> bool:
        return self.trigger.type == "cron"

    def is_stream(self) -> bool:
        return self.trigger.type == "stream"

    def get_data(self) -> Any:
        """The payload whatever the trigger: a request's body, a message's data, None for cron."""
        if self.is_cron():
            return None
        value = self.input_value
        return value.body if self.is_http() else value

    async def match(self, handlers: Mapping[str, Any]) -> Any:
        """Call ``handlers[trigger type]`` (``http``/``api``, ``queue``, ``cron``, ``stream``, ``default``)."""
        kind = self.trigger.type
        handler = handlers.get(kind) or (handlers.get("api") if kind == "http" else None)
        if handler is not None:
            return await (handler() if kind == "cron" else handler(self.input_value))
        if handlers.get("default") is not None:
            return await handlers["default"](self.input_value)
        have = sorted(k for k in handlers if k != "default")
        raise RuntimeError(f"no handler for trigger type {kind!r}; have {have}")



def activate(ctx: FlowContext) -> tuple[contextvars.Token, contextvars.Token]:
    """Make ``ctx`` the invocation of the running task; undo with `deactivate`."""
    return _context.set(ctx), _trace_id.set(ctx.trace_id)


def deactivate(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _context.reset(tokens[0])
    _trace_id.reset(tokens[1])


def _require_context() -> FlowContext:
    ctx = _context.get(None)
    if ctx is None:
        raise RuntimeError("no step invocation in progress: use ctx.* or call from a handler")
    return ctx


class _ModuleLogger:
    """``from runtime import logger``: the current invocation's logger (or a plain one)."""

    def __getattr__(self, name: str) -> Any:
        ctx = _context.get(None)
        return getattr(ctx.logger if ctx is not None else Logger(trace_id=_trace_id.get()), name)


class _ModuleState:
    """``from runtime import state``: the current app's state."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_require_context().state, name)


async def enqueue(message: Mapping[str, Any]) -> None:
    """``from runtime import enqueue``: enqueue for the invocation in progress."""
    await _require_context().enqueue(message)


emit = enqueue
logger: Any = _ModuleLogger()
state: Any = _ModuleState()
