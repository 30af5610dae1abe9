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
from contextlib import nullcontext
from typing import Any, Callable, Iterable

import attrs
import croniter
import trio

from ..errors import StorageError, ValidationError
from ..logs import Logger
from ..state import State
from ..storage.base import QueuedMessage
from ..streams.engine import StreamEngine
from ..streams.events import Event
from ..streams.ops import check_json, json_copy
from ..streams.schema import Validator, compile_schema
from ..streams.stream import Stream
from .awaits import forgotten_await, hint
from .clock import RuntimeClock
from .context import FlowContext, TriggerInfo, activate, deactivate, new_trace_id
from .inputs import ApiRequest, ApiResponse, StreamEventInfo, StreamTriggerInput, to_response
from .queues import Lane
from .routes import MethodNotAllowed, RouteTable
from .step import Step
from .transport import Receipt, SharedQueues, shared_queues_for
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
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._crons: list[tuple[Step, CronTrigger]] = []
        self._nursery: trio.Nursery | None = None
        self._handles: dict[str, Stream] = {}
        #: Queues and cron ticks shared with other processes (a shared storage), else None.
        self._shared: SharedQueues | None = shared_queues_for(
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
                if not croniter.croniter.is_valid(trigger.expression) or len(trigger.expression.split()) != 5:
                    raise ValueError(f"step {one.name!r}: invalid cron expression {trigger.expression!r}")
                self._crons.append((one, trigger))

    def stream_handle(self, name: str) -> Stream:
        handle = self._handles.get(name)
        if handle is None:
            self.engine.definition(name)  # StreamNotFound for an undeclared name
            handle = self._handles[name] = Stream(name).bind(self.engine)
        return handle

    # -- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver queued messages and fire cron ticks until cancelled.

        With a local storage each (topic, step) is a `Lane` in this process;
        with a shared one the `SharedQueues` transport (``transport.py``)
        consumes instead, in a nursery started in this one.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self._shared is not None:
                await self._start_shared(nursery)
            for topic, bindings in self._queues.items() if self._shared is None else ():
                for binding in bindings:
                    lane = Lane(
                        topic, binding.step.name,
                        concurrency=binding.trigger.concurrency or self._queue_concurrency,
                        deliver=functools.partial(self._deliver, binding),
                        trio_time_at_ms=lambda ms: self.clock.trio_time_at(ms / 1000),
                    )
                    self._lanes[(topic, binding.step.name)] = lane
                    nursery.start_soon(lane.run, nursery, name=f"lane {topic} -> {binding.step.name}")
            if self._shared is None:
                await self._restore_pending()
            for one, trigger in self._crons:
                nursery.start_soon(self._run_cron, one, trigger, name=f"cron {one.name}")
            task_status.started()
            await trio.sleep_forever()

    async def _start_shared(self, nursery: trio.Nursery) -> None:
        """Hand every (topic, step) to the shared transport and start it consuming."""
        assert self._shared is not None
        for topic, bindings in self._queues.items():
            for binding in bindings:
                self._shared.add_lane(
                    topic, binding.step.name,
                    concurrency=binding.trigger.concurrency or self._queue_concurrency,
                    attempts=binding.step.config.retry.attempts,
                    deliver=functools.partial(self._deliver, binding),
                )
        await nursery.start(self._shared.run)

    async def _restore_pending(self) -> None:
        for message in await self.engine.storage.queue_pending():
            lane = self._lanes.get((message.topic, message.step))
            if lane is None:
                reason = f"step {message.step!r} no longer takes topic {message.topic!r}"
                logger.warning("queue message %s dead-lettered: %s", message.id, reason)
                await self.engine.storage.queue_dead(attrs.evolve(message, last_error=reason))
                continue
            lane.push(message)

    # -- invoking -------------------------------------------------------------------

    async def invoke(self, one: Step, input: Any, trigger: TriggerInfo, *, trace_id: str | None, condition: Any) -> Any:
        """Run ``one``'s handler for ``input`` (after its condition) in this task.

        Exceptions propagate to the caller, who decides (500, retry, log).
        """
        ctx = FlowContext(self, step=one.name, trace_id=trace_id or new_trace_id(), trigger=trigger, input_value=input)
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
            with trio.fail_after(timeout) if timeout else nullcontext():
                if one.is_async:
                    result = await one.handler(*args)  # type: ignore[misc]
                else:
                    result = await trio.to_thread.run_sync(functools.partial(one.handler, *args))  # type: ignore[arg-type]
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
        if match is None:
            return _error(404, "not_found", trace_id, message=f"no route for {request.method} {request.path}")
        if isinstance(match, MethodNotAllowed):
            response = _error(405, "method_not_allowed", trace_id, message=f"{request.method} is not allowed here")
            response.headers["Allow"] = ", ".join(match.allowed)
            return response
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
            result = await self.invoke(route.step, request, trigger, trace_id=trace_id, condition=route.trigger.condition)
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
            if self._shared is not None:
                await self._shared.put(message)
            else:
                await self.engine.storage.queue_put(message)
                self._lane(topic, binding.step.name).push(message)
            ids.append(message.id)
        return ids

    def _lane(self, topic: str, step_name: str) -> Lane:
        lane = self._lanes.get((topic, step_name))
        if lane is None:
            raise RuntimeError("the step runtime is not running")
        return lane

    async def _deliver(self, binding: _QueueBinding, message: QueuedMessage, receipt: Receipt | None = None) -> None:
        one = binding.step
        trigger = TriggerInfo("queue", topic=message.topic)
        try:
            await self.invoke(one, message.data, trigger, trace_id=message.trace_id, condition=binding.trigger.condition)
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered
            await self._retry_or_bury(one, message, exc, receipt)
            return
        if receipt is not None:
            await receipt.ack()
        else:
            await self.engine.storage.queue_ack(message.id)

    async def _retry_or_bury(
        self, one: Step, message: QueuedMessage, exc: Exception, receipt: Receipt | None = None
    ) -> None:
        attempts = message.attempts + 1
        policy = one.config.retry
        error = f"{type(exc).__name__}: {exc}"
        failed = attrs.evolve(message, attempts=attempts, last_error=error)
        if attempts >= policy.attempts:
            self._log_failure(one, message.trace_id, f"queue {message.topic} (attempt {attempts}, dead-lettered)", exc)
            self.metrics.dead_lettered += 1
            if receipt is not None:
                await receipt.bury(failed)
            else:
                await self.engine.storage.queue_dead(failed)
            return
        delay = policy.delay(attempts, self._rng)
        self._log_failure(one, message.trace_id, f"queue {message.topic} (attempt {attempts}, retry in {delay:.3g} s)", exc)
        self.metrics.retries += 1
        retry = attrs.evolve(failed, due_ms=self.clock.now_ms() + int(delay * 1000))
        if receipt is not None:
            await receipt.retry(retry)
            return
        await self.engine.storage.queue_put(retry)
        self._lane(message.topic, message.step).push(retry)

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
        if self._shared is not None:
            await self._shared.put(revived)
            await storage.dead_letter_take(message_id)
            return revived
        await storage.queue_put(revived)
        await storage.dead_letter_take(message_id)
        lane = self._lanes.get((message.topic, message.step))
        if lane is not None:
            lane.push(revived)
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
        schedule = croniter.croniter(trigger.expression, self.clock.now())
        while True:
            tick = schedule.get_next(float)
            await trio.sleep_until(self.clock.trio_time_at(tick))
            if self._shared is not None:
                self._nursery.start_soon(self._fire_shared_cron, one, trigger, tick, name=f"cron tick {one.name}")
            else:
                self._nursery.start_soon(self._fire_cron, one, trigger, name=f"cron tick {one.name}")

    async def _fire_shared_cron(self, one: Step, trigger: CronTrigger, tick: float) -> None:
        """Fire a tick only in the process that claims it first: once per tick across processes."""
        assert self._shared is not None
        try:
            won = await self._shared.claim_tick(one.name, round(tick * 1000))
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


def _error(status: int, code: str, trace_id: str, *, message: str | None = None) -> ApiResponse:
    body: dict[str, Any] = {"error": code, "trace_id": trace_id}
    if message:
        body["message"] = message
    return ApiResponse(status, body, {"X-Trace-Id": trace_id})
