"""`StepRuntime`: runs steps on their triggers, supervised, with one trace id per cause.

It owns the nurseries handlers run in (queue deliveries, stream triggers,
cron ticks; an HTTP handler runs in its request's task), so no handler
outlives the runtime. Whatever a handler raises is logged with its
traceback, trace id and step name, and affects nothing else: an HTTP call
gets a 500, a queue message is retried, a stream or cron invocation is
counted as an error.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import attrs
import trio

from ..errors import ConfigurationError, StorageError, ValidationError
from ..logs import Logger
from ..state import State
from ..storage.base import QueuedMessage
from ..streams.engine import StreamEngine
from ..streams.events import Event
from ..streams.idempotency import keyed_calls
from ..streams.ops import check_json, json_copy
from ..streams.schema import Validator, compile_schema
from ..streams.stream import Stream
from ..streams.tracing import NO_TRACER, Tracer
from .awaits import forgotten_await, hint
from .clock import RuntimeClock
from .context import FlowContext, TriggerInfo, activate, deactivate, new_trace_id
from .inputs import ApiRequest, ApiResponse, StreamEventInfo, StreamTriggerInput, to_response
from .queues import LocalQueues
from .routes import MethodNotAllowed, RouteMatch, RouteTable, split_path
from .step import Step
from .transport import QueueTransport, Receipt, queue_transport_for
from .triggers import CronTrigger, HttpTrigger, QueueTrigger, StreamTrigger

__all__ = ["StepRuntime", "SKIPPED", "StepMetrics", "HttpRoute"]

logger = logging.getLogger("runtime.steps")


class _Skipped:
    def __repr__(self) -> str:
        return "SKIPPED"


#: Returned by `StepRuntime.invoke` when the trigger's condition said no.
SKIPPED: Any = _Skipped()


@attrs.define
class StepMetrics:
    invocations: int = 0
    handler_errors: int = 0
    skipped: int = 0
    retries: int = 0
    dead_lettered: int = 0


@attrs.frozen
class HttpRoute:
    step: Step
    trigger: HttpTrigger
    validator: Validator | None
    #: A route the runtime serves itself (`StepRuntime.add_internal_route`): not a user step.
    internal: bool = False


@attrs.frozen
class _QueueBinding:
    step: Step
    trigger: QueueTrigger
    validator: Validator | None


class StepRuntime:
    """The steps of one app, wired to its stream engine and storage."""

    def __init__(
        self,
        engine: StreamEngine,
        steps: Iterable[Step],
        *,
        clock: RuntimeClock | None = None,
        queue_concurrency: int = 10,
        rng: random.Random | None = None,
        queue_visibility_timeout: float = 30.0,
    ) -> None:
        self.engine = engine
        self.clock = clock or RuntimeClock()
        self.state = State(engine.storage)
        self.metrics = StepMetrics()
        self.steps: dict[str, Step] = {}
        self.routes: RouteTable[HttpRoute] = RouteTable()
        self._queue_concurrency = queue_concurrency
        self._rng = rng or random.Random()
        self._queues: dict[str, list[_QueueBinding]] = {}
        self._crons: list[tuple[Step, CronTrigger]] = []
        self._nursery: trio.Nursery | None = None
        self._handles: dict[str, Stream] = {}
        #: Where spans go (the console's trace ring, OpenTelemetry); nowhere by default.
        self.tracer: Tracer = NO_TRACER
        #: Where queue messages wait and which process fires a cron tick: this process's own
        #: lanes, or the transport of a storage several processes share (transport.py).
        self._transport: QueueTransport = queue_transport_for(
            engine.storage, self.clock, visibility_timeout=queue_visibility_timeout)
        for one in steps:
            self._add(one)

    # -- wiring -------------------------------------------------------------------

    def _add(self, one: Step) -> None:
        if one.handler is None:
            raise ValueError(f"step {one.name!r} has no handler")
        if one.name in self.steps:
            raise ValueError(f"two steps are named {one.name!r}")
        self.steps[one.name] = one
        for trigger in one.triggers:
            if isinstance(trigger, HttpTrigger):
                validator = compile_schema(dict(trigger.body_schema)) if trigger.body_schema else None
                self.routes.add(trigger.method, trigger.path, HttpRoute(one, trigger, validator))
            elif isinstance(trigger, QueueTrigger):
                validator = compile_schema(dict(trigger.input)) if trigger.input else None
                self._queues.setdefault(trigger.topic, []).append(_QueueBinding(one, trigger, validator))
            elif isinstance(trigger, StreamTrigger):
                self.engine.on_change(
                    trigger.stream_name,
                    functools.partial(self._on_stream_event, one, trigger),
                    group_id=trigger.group_id,
                    item_id=trigger.item_id,
                    name=one.name,
                )
            elif isinstance(trigger, CronTrigger):
                import croniter  # here, not at the top: ~15 ms of `import runtime` for every user

                if not croniter.croniter.is_valid(trigger.expression) or len(trigger.expression.split()) != 5:
                    raise ValueError(f"step {one.name!r}: invalid cron expression {trigger.expression!r}")
                self._crons.append((one, trigger))

    def add_internal_route(self, method: str, path: str, handler: Callable[[ApiRequest], Any]) -> None:
        """Serve ``method path`` with ``handler(request) -> ApiResponse`` (sync or async), as the runtime's own.

        For the console (``/_console/...``) and the browser client
        (``/_client/stream.js``): an ordinary route-table entry, so whatever
        serves step routes serves it too, but no step: it is not in
        ``steps``, starts no trace and counts no invocation. A ``bytes`` or
        ``str`` body with an explicit ``content-type`` is sent as it is.
        The first path segment is reserved for the runtime: a user step on
        it is a `ConfigurationError` naming the step.
        """
        first = split_path(path)[:1]
        for other_method, other_path, route in self.routes.routes():
            if not route.internal and split_path(other_path)[:1] == first:
                raise ConfigurationError(
                    f"step {route.step.name!r}: {other_method} {other_path} is on /{first[0]}/, "
                    "which the runtime serves itself; move the route"
                )
        trigger = HttpTrigger(method.upper(), path)
        one = Step({"name": f"runtime {method.upper()} {path}", "triggers": [trigger]}, handler)
        self.routes.add(method, path, HttpRoute(one, trigger, None, internal=True))

    def stream_handle(self, name: str) -> Stream:
        handle = self._handles.get(name)
        if handle is None:
            self.engine.definition(name)  # StreamNotFound for an undeclared name
            handle = self._handles[name] = Stream(name).bind(self.engine)
        return handle

    # -- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver queued messages and fire cron ticks until cancelled.

        Every (topic, step) is handed to the queue transport (transport.py),
        which consumes in a nursery started in this one.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            transport = self._transport
            for topic, bindings in self._queues.items():
                for binding in bindings:
                    transport.add_lane(
                        topic, binding.step.name,
                        concurrency=binding.trigger.concurrency or self._queue_concurrency,
                        attempts=binding.step.config.retry.attempts,
                        deliver=functools.partial(self._deliver, binding),
                    )
            await nursery.start(transport.run)
            for one, trigger in self._crons:
                nursery.start_soon(self._run_cron, one, trigger, name=f"cron {one.name}")
            task_status.started()
            await trio.sleep_forever()

    # -- invoking -------------------------------------------------------------------

    async def invoke(self, one: Step, input: Any, trigger: TriggerInfo, *, trace_id: str | None, condition: Any) -> Any:
        """Run ``one``'s handler for ``input`` (after its condition) in this task, as one span of its trace.

        Exceptions propagate to the caller, who decides (500, retry, log).
        """
        trace_id = trace_id or new_trace_id()
        with self.tracer.span(trace_id, "step", one.name, trigger=trigger.type) as span:
            result = await self._invoke(one, input, trigger, trace_id, condition)
            if result is SKIPPED:
                span["skipped"] = True
            return result

    async def _invoke(self, one: Step, input: Any, trigger: TriggerInfo, trace_id: str, condition: Any) -> Any:
        ctx = FlowContext(self, step=one.name, trace_id=trace_id, trigger=trigger, input_value=input)
        tokens = activate(ctx)
        try:
            if condition is not None and not await self._condition_allows(condition, input, ctx):
                self.metrics.skipped += 1
                return SKIPPED
            self.metrics.invocations += 1
            if one.arity == 2:
                args: tuple[Any, ...] = (input, ctx)
            else:  # Motia's cron handlers take (ctx): a cron tick has no input to give
                args = (ctx,) if trigger.type == "cron" else (input,)
            timeout = one.config.timeout
            handler = one.handler
            assert handler is not None  # a step without a handler is refused when it is added
            with trio.fail_after(timeout) if timeout else nullcontext():
                if one.is_async:
                    result = await handler(*args)
                else:
                    result = await trio.to_thread.run_sync(functools.partial(handler, *args))
                if inspect.isawaitable(result):
                    result = await result
            return result
        finally:
            deactivate(tokens)

    async def _condition_allows(self, condition: Callable[..., Any], input: Any, ctx: FlowContext) -> bool:
        try:
            result = condition(input, ctx)
            if inspect.isawaitable(result):
                result = await result
        except Exception:  # noqa: BLE001 - a failing condition skips, and says why
            ctx.logger.exception("condition raised; the step is skipped")
            return False
        return result is not False

    def _log_failure(self, one: Step, trace_id: str | None, what: str, exc: BaseException) -> None:
        self.metrics.handler_errors += 1
        message = f"{what} failed: {exc!r}"
        if forgotten_await(exc):
            message += f"; {hint(one.name, one.file, one.line)}"
        Logger(step=one.name, trace_id=trace_id).error(message, exc_info=exc)

    # -- HTTP ---------------------------------------------------------------------------

    async def call_http(self, request: ApiRequest) -> ApiResponse | None:
        """Route and run an HTTP request in process; None after a streamed response.

        Bad input never reaches a handler: 404, 405, 400 for a body that fails
        the trigger's schema. A handler exception is a 500 with the trace id.
        """
        trace_id = request.trace_id or new_trace_id()
        request.trace_id = trace_id
        match = self.routes.match(request.method, request.path)
        if isinstance(match, RouteMatch) and match.target.internal:
            request.path_params = match.params
            return await _call_internal(match.target, request, trace_id)
        with self.tracer.span(trace_id, "http", f"{request.method} {request.path}") as span:
            response = await self._call_http(request, match, trace_id)
            span["status"] = response.status if response is not None else 200
            return response

    async def _call_http(self, request: ApiRequest, match: Any, trace_id: str) -> ApiResponse | None:
        if match is None:
            return _error(404, "not_found", trace_id, message=f"no route for {request.method} {request.path}")
        if isinstance(match, MethodNotAllowed):
            refusal = _error(405, "method_not_allowed", trace_id, message=f"{request.method} is not allowed here")
            refusal.headers["Allow"] = ", ".join(match.allowed)
            return refusal
        route: HttpRoute = match.target
        request.path_params = match.params
        if route.validator is not None:
            try:
                route.validator.validate(request.body)
            except ValidationError as exc:
                body = {"error": "validation", "errors": exc.errors, "trace_id": trace_id}
                return ApiResponse(400, body, {"X-Trace-Id": trace_id})
        trigger = TriggerInfo("http", method=route.trigger.method, path=route.trigger.path)
        try:
            result = await self.invoke(
                route.step, request, trigger, trace_id=trace_id, condition=route.trigger.condition
            )
            if result is SKIPPED:
                return _error(404, "not_found", trace_id, message="the step's condition declined this request")
            response = to_response(result)
        except Exception as exc:  # noqa: BLE001 - a 500 for the client, the traceback for the log
            self._log_failure(route.step, trace_id, f"{request.method} {request.path}", exc)
            return _error(500, "internal", trace_id)
        if response is not None:
            response.headers.setdefault("X-Trace-Id", trace_id)
        return response

    # -- queues -------------------------------------------------------------------------

    def topics(self) -> list[str]:
        return sorted(self._queues)

    async def enqueue(self, topic: str, data: Any, *, trace_id: str | None = None) -> list[str]:
        """Store one message per step subscribed to ``topic``; returns their ids.

        Data must be JSON and pass every subscriber's ``input`` schema, or
        this raises (TypeError, ValidationError) and nothing is stored.
        """
        if not isinstance(topic, str) or not topic:
            raise TypeError("a topic is a non-empty string")
        check_json(data, "queue data")
        bindings = self._queues.get(topic, [])
        for binding in bindings:
            if binding.validator is not None:
                binding.validator.validate(data)
        if not bindings:
            logger.warning("enqueue to %r: no step takes this topic; the message is dropped", topic)
            return []
        now = self.clock.now_ms()
        ids = []
        for binding in bindings:
            message = QueuedMessage(
                id=uuid.uuid4().hex, topic=topic, step=binding.step.name, data=json_copy(data),
                trace_id=trace_id, enqueued_ms=now, due_ms=now,
            )
            await self._transport.put(message)
            ids.append(message.id)
        return ids

    def queues_idle(self, now: float) -> bool:
        """No queue handler of this process runs or is due by ``now`` (Trio time), as far as it can tell:
        a shared transport's messages may be anywhere (for the test harness's ``settle``)."""
        transport = self._transport
        return transport.idle(now) if isinstance(transport, LocalQueues) else True

    async def _deliver(self, binding: _QueueBinding, message: QueuedMessage, receipt: Receipt) -> None:
        one = binding.step
        trigger = TriggerInfo("queue", topic=message.topic)
        try:
            # Each stream call of the run is keyed by (message, ordinal): a retry does not apply it twice.
            with keyed_calls(f"queue:{message.id}"):
                await self.invoke(
                    one, message.data, trigger, trace_id=message.trace_id, condition=binding.trigger.condition
                )
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
            await self._retry_or_bury(one, message, exc, receipt)
            return
        await receipt.ack()

    async def _retry_or_bury(self, one: Step, message: QueuedMessage, exc: Exception, receipt: Receipt) -> None:
        attempts = message.attempts + 1
        policy = one.config.retry
        error = f"{type(exc).__name__}: {exc}"
        failed = attrs.evolve(message, attempts=attempts, last_error=error)
        if attempts >= policy.attempts:
            self._log_failure(one, message.trace_id, f"queue {message.topic} (attempt {attempts}, dead-lettered)", exc)
            self.metrics.dead_lettered += 1
            await receipt.bury(failed)
            return
        delay = policy.delay(attempts, self._rng)
        where = f"queue {message.topic} (attempt {attempts}, retry in {delay:.3g} s)"
        self._log_failure(one, message.trace_id, where, exc)
        self.metrics.retries += 1
        retry = attrs.evolve(failed, due_ms=self.clock.now_ms() + int(delay * 1000))
        await receipt.retry(retry)

    async def dead_letters(self, topic: str | None = None) -> list[QueuedMessage]:
        return await self.engine.storage.dead_letters(topic)

    async def replay_dead_letter(self, message_id: str) -> QueuedMessage:
        """Put a dead letter back in its queue with a fresh attempt count."""
        storage = self.engine.storage
        message = next((m for m in await storage.dead_letters() if m.id == message_id), None)
        if message is None:
            raise KeyError(f"no dead letter with id {message_id!r}")
        revived = attrs.evolve(message, attempts=0, due_ms=self.clock.now_ms(), last_error=None)
        # Pending first, then out of the dead letters: a crash in between
        # leaves a duplicate (at-least-once), never a lost message.
        await self._transport.put(revived)
        await storage.dead_letter_take(message_id)
        return revived

    # -- stream triggers ------------------------------------------------------------------

    async def _on_stream_event(self, one: Step, trigger: StreamTrigger, event: Event) -> None:
        data = json_copy(event.data)
        payload = StreamTriggerInput(
            stream_name=event.stream, group_id=event.group, id=event.item_id, timestamp=event.timestamp,
            offset=event.offset, event=StreamEventInfo(event.type, data),
        )
        info = TriggerInfo("stream", stream=event.stream)
        try:
            await self.invoke(one, payload, info, trace_id=event.trace_id, condition=trigger.condition)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the stream is unaffected
            self._log_failure(one, event.trace_id, f"stream trigger on {event.stream}/{event.group}", exc)

    # -- cron ----------------------------------------------------------------------------------

    async def _run_cron(self, one: Step, trigger: CronTrigger) -> None:
        """Fire at each tick from now on; ticks missed while down are not replayed."""
        assert self._nursery is not None
        import croniter

        schedule = croniter.croniter(trigger.expression, self.clock.now())
        while True:
            tick = schedule.get_next(float)
            await trio.sleep_until(self.clock.trio_time_at(tick))
            self._nursery.start_soon(self._fire_tick, one, trigger, tick, name=f"cron tick {one.name}")

    async def _fire_tick(self, one: Step, trigger: CronTrigger, tick: float) -> None:
        """Fire a tick only in the process that claims it first: once per tick across processes."""
        try:
            won = await self._transport.claim_tick(one.name, round(tick * 1000))
        except StorageError as exc:
            logger.error("cron %s: tick skipped, it could not be claimed: %s", one.name, exc)
            return
        if won:
            await self._fire_cron(one, trigger)

    async def fire_cron(self, step_name: str) -> None:
        """Run a cron step once now, as a tick would (for tests and operators)."""
        for one, trigger in self._crons:
            if one.name == step_name:
                await self._fire_cron(one, trigger)
                return
        raise KeyError(f"no cron step named {step_name!r}")

    async def _fire_cron(self, one: Step, trigger: CronTrigger) -> None:
        info = TriggerInfo("cron", expression=trigger.expression)
        trace_id = new_trace_id()
        try:
            await self.invoke(one, None, info, trace_id=trace_id, condition=trigger.condition)
        except Exception as exc:  # noqa: BLE001 - logged and counted
            self._log_failure(one, trace_id, "cron tick", exc)


async def _call_internal(route: HttpRoute, request: ApiRequest, trace_id: str) -> ApiResponse | None:
    assert route.step.handler is not None
    try:
        result = route.step.handler(request)
        if inspect.isawaitable(result):
            result = await result
        response = to_response(result)
    except Exception:  # noqa: BLE001 - a 500 for the client, the traceback for the log
        logger.exception("%s %s (the runtime's own route) failed; trace id %s", request.method, request.path, trace_id)
        return _error(500, "internal", trace_id)
    if response is not None:
        response.headers.setdefault("X-Trace-Id", trace_id)
    return response


def _error(status: int, code: str, trace_id: str, *, message: str | None = None) -> ApiResponse:
    body: dict[str, Any] = {"error": code, "trace_id": trace_id}
    if message:
        body["message"] = message
    return ApiResponse(status, body, {"X-Trace-Id": trace_id})
