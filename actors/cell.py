"""The life of one actor: incarnations, message turns, restarts, passivation.

A cell outlives the instances it runs. It owns the mailbox, so messages
waiting when an instance fails, restarts or passivates are handled by the
next instance instead of being lost. A cell ends only when it is stopped,
passivated with an empty mailbox, or gives up; ending is one synchronous
step (no await), so no message can slip in between "empty" and "gone".
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import attrs
import outcome
import trio

from .actor import Actor, ActorRef
from .deadlines import AskDeadlines
from .envelope import Ask
from .errors import ActorFailed, ActorStopped
from .mailbox import Mailbox
from .policy import Directive, RestartPolicy

if TYPE_CHECKING:
    from .virtual import VirtualActors

__all__ = ["ActorCell"]

logger = logging.getLogger("actors")


class _Passivated:
    pass


class _Stopped:
    pass


class _Idle:
    pass


_PASSIVATED = _Passivated()
_STOPPED = _Stopped()
_IDLE = _Idle()


@attrs.frozen
class _Failure:
    exc: BaseException
    directive: Directive


class ActorCell:
    """Runs an actor's incarnations under its restart policy."""

    def __init__(
        self,
        *,
        factory: Callable[[], Actor],
        key: Hashable,
        mailbox: Mailbox,
        policy: RestartPolicy,
        ask_timeout: float | None,
        stop_timeout: float,
        idle_timeout: float | None = None,
        deadlines: AskDeadlines,
        kind: VirtualActors | None = None,
        on_end: Callable[[ActorCell], None] | None = None,
    ) -> None:
        self.key = key
        self.deadlines = deadlines
        self.mailbox = mailbox
        self.policy = policy
        self.ref = ActorRef(self, key=key, kind=kind, ask_timeout=ask_timeout)
        self._factory = factory
        self._stop_timeout = stop_timeout
        self._idle_timeout = idle_timeout
        self._on_end = on_end
        self._last_active = 0.0
        #: Set once, synchronously, when the cell is gone for good.
        self.ended = False
        #: Restarts over the cell's whole life (for metrics and tests).
        self.restarts = 0
        #: Incarnations started (1 + restarts + re-activations after passivation).
        self.incarnations = 0

    def __repr__(self) -> str:
        return f"<ActorCell {self.key!r}>"

    @property
    def name(self) -> str:
        return repr(self.key)

    def request_stop(self) -> None:
        """Graceful stop: refuse new messages, handle those waiting, then end."""
        self.mailbox.close()

    async def run(self) -> None:
        """Run until stopped or passivated; raise `ActorFailed` to escalate."""
        error: BaseException = ActorStopped(f"actor {self.key!r} stopped")
        try:
            await self._run_incarnations()
        except ActorFailed as exc:
            error = exc
            raise
        finally:
            self._end(error)

    def _end(self, error: BaseException) -> None:
        self.ended = True
        self.mailbox.close()
        dropped = 0
        for item in self.mailbox.take_all():
            if type(item) is Ask:
                item.resolve(outcome.Error(error))
            else:
                dropped += 1
        if dropped:
            logger.warning("actor %r ended with %d unhandled tell(s) dropped", self.key, dropped)
        if self._on_end is not None:
            self._on_end(self)

    async def _run_incarnations(self) -> None:
        recent_restarts: deque[float] = deque()
        while True:
            result = await self._run_incarnation()
            if result is _PASSIVATED:
                if self.mailbox:  # messages arrived while on_stop ran
                    continue
                return
            if result is _STOPPED:
                return
            assert isinstance(result, _Failure)
            directive = result.directive
            if directive is Directive.RESTART or directive is Directive.RESUME:
                now = trio.current_time()
                while recent_restarts and recent_restarts[0] <= now - self.policy.within:
                    recent_restarts.popleft()
                if len(recent_restarts) < self.policy.max_restarts:
                    recent_restarts.append(now)
                    self.restarts += 1
                    delay = self.policy.delay(len(recent_restarts))
                    logger.warning(
                        "actor %r restarting in %.3g s (%d of %d within %g s)",
                        self.key, delay, len(recent_restarts), self.policy.max_restarts, self.policy.within,
                    )
                    await trio.sleep(delay)
                    continue
                directive = Directive.ESCALATE
            if directive is Directive.STOP:
                logger.error("actor %r stopped by its policy after: %r", self.key, result.exc)
                return
            raise ActorFailed(
                f"actor {self.key!r} failed and exceeded {self.policy.max_restarts} "
                f"restart(s) within {self.policy.within} s: {result.exc!r}"
            ) from result.exc

    async def _run_incarnation(self) -> Any:
        self.incarnations += 1
        try:
            instance = self._factory()
        except Exception as exc:
            logger.error("actor %r could not be created", self.key, exc_info=exc)
            return _Failure(exc, Directive.RESTART)
        instance._cell = self
        try:
            async with trio.open_nursery() as nursery:
                instance._nursery = nursery
                try:
                    result = await self._start_and_serve(instance)
                finally:
                    await self._stop_instance(instance)
                nursery.cancel_scope.cancel()
            return result
        except BaseExceptionGroup as group:
            # A task in the actor's own nursery crashed (cancelling the rest),
            # or the cell itself is being cancelled.
            failures, others = group.split(Exception)
            if failures is None or (others is not None and others.split(trio.Cancelled)[1] is not None):
                raise
            failure = failures.exceptions[0] if len(failures.exceptions) == 1 else failures
            logger.error("actor %r: a task in its nursery failed", self.key, exc_info=failure)
            return _Failure(failure, self._decide(failure))

    def _decide(self, exc: BaseException) -> Directive:
        try:
            return self.policy.decide(exc)
        except Exception:  # a broken decider must not wedge the actor
            logger.exception("restart policy of %r raised; restarting", self.key)
            return Directive.RESTART

    async def _start_and_serve(self, instance: Actor) -> Any:
        try:
            await instance.on_start()
        except Exception as exc:
            logger.error("actor %r: on_start failed", self.key, exc_info=exc)
            directive = self._decide(exc)
            return _Failure(exc, Directive.RESTART if directive is Directive.RESUME else directive)
        self._last_active = trio.current_time()
        return await self._serve(instance)

    async def _stop_instance(self, instance: Actor) -> None:
        with trio.move_on_after(self._stop_timeout, shield=True) as scope:
            try:
                await instance.on_stop()
            except Exception:
                logger.exception("actor %r: on_stop failed", self.key)
        if scope.cancelled_caught:
            logger.warning("actor %r: on_stop exceeded %g s and was cut short", self.key, self._stop_timeout)

    async def _serve(self, instance: Actor) -> Any:
        idle = self._idle_timeout
        while True:
            # One cancel scope for many turns: opening a scope per wait cost
            # about as much as a whole turn (bench/streams.py). Its deadline is
            # armed only while waiting for mail, so a handler is never cut off.
            result: Any = _IDLE
            with trio.CancelScope() as idle_scope:
                result = await self._serve_turns(instance, idle_scope)
            if result is not _IDLE and not idle_scope.cancelled_caught:
                return result
            assert idle is not None
            if not self.mailbox and instance.can_passivate():
                return _PASSIVATED
            self._last_active = trio.current_time()  # busy or watched: stay, check again later

    async def _serve_turns(self, instance: Actor, idle_scope: trio.CancelScope) -> Any:
        mailbox = self.mailbox
        limit = max(1, instance.max_batch)
        handle = self._handle_batch if type(instance).receive_batch is not Actor.receive_batch else self._handle_each
        idle = self._idle_timeout
        while True:
            if idle is not None and not mailbox and not mailbox.closed:
                idle_scope.deadline = self._last_active + idle
                batch = await mailbox.get_batch(limit)
                idle_scope.deadline = math.inf
                if idle_scope.cancel_called:
                    # The deadline passed as mail arrived: the scope would cut
                    # the handler short, so put the mail back and start afresh.
                    mailbox.requeue_front(batch)
                    return _IDLE
            else:
                batch = await mailbox.get_batch(limit)
            if not batch:
                return _STOPPED  # closed and drained
            failure = await handle(instance, batch)
            if failure is not None:
                return failure
            if idle is not None:
                self._last_active = trio.current_time()

    async def _handle_each(self, instance: Actor, batch: list[Any]) -> _Failure | None:
        receive = instance.receive
        for index, item in enumerate(batch):
            is_ask = type(item) is Ask
            if is_ask:
                if item.withdrawn:
                    continue
                item.started = True
                message = item.message
            else:
                message = item
            try:
                value = await receive(message)
            except Exception as exc:  # noqa: BLE001 - the supervisor's directive decides (the ask gets it)
                if is_ask:
                    item.resolve(outcome.Error(exc))
                directive = self._decide(exc)
                self._log_failure(exc, message, directive)
                if directive is Directive.RESUME:
                    continue
                self.mailbox.requeue_front(batch[index + 1 :])
                return _Failure(exc, directive)
            except BaseException:
                if is_ask:
                    item.resolve(outcome.Error(ActorStopped(f"actor {self.key!r} was interrupted")))
                self.mailbox.requeue_front(batch[index + 1 :])
                raise
            if is_ask:
                item.resolve(outcome.Value(value))
        return None

    async def _handle_batch(self, instance: Actor, batch: list[Any]) -> _Failure | None:
        live = [item for item in batch if not (type(item) is Ask and item.withdrawn)]
        if not live:
            return None
        messages = []
        for item in live:
            if type(item) is Ask:
                item.started = True
                messages.append(item.message)
            else:
                messages.append(item)
        try:
            results = await instance.receive_batch(messages)
            if len(results) != len(messages):
                raise RuntimeError(
                    f"{type(instance).__name__}.receive_batch returned {len(results)} outcomes "
                    f"for {len(messages)} messages"
                )
        except Exception as exc:  # noqa: BLE001 - the supervisor's directive decides (the asks get it)
            for item in live:
                if type(item) is Ask:
                    item.resolve(outcome.Error(exc))
            directive = self._decide(exc)
            self._log_failure(exc, f"a batch of {len(messages)}", directive)
            return None if directive is Directive.RESUME else _Failure(exc, directive)
        except BaseException:
            interrupted = ActorStopped(f"actor {self.key!r} was interrupted")
            for item in live:
                if type(item) is Ask:
                    item.resolve(outcome.Error(interrupted))
            raise
        for item, result in zip(live, results):
            if type(item) is Ask:
                item.resolve(result)
        return None

    def _log_failure(self, exc: BaseException, message: Any, directive: Directive) -> None:
        what = message if isinstance(message, str) else type(message).__name__
        logger.error("actor %r failed handling %s (%s)", self.key, what, directive.value, exc_info=exc)
