"""The reply slot of an ask.

A tell puts the bare message in the mailbox; an ask wraps it in `Ask`, which
parks the asking task with Trio's low-level API and reschedules it with the
handler's outcome. That is one object and two task switches per ask, which
is what makes tens of thousands of asks per second possible.
"""

from __future__ import annotations

from typing import Any

import outcome
import trio

from .errors import AskTimeout

__all__ = ["Ask"]


class Ask:
    """A message whose sender waits for the handler's result."""

    __slots__ = ("message", "_task", "_done", "_early", "started", "withdrawn", "deadlines", "target")

    def __init__(self, message: Any) -> None:
        self.message = message
        self._task: trio.lowlevel.Task | None = None
        self._done = False
        self._early: outcome.Outcome[Any] | None = None
        #: The handler took it up; it can no longer be withdrawn.
        self.started = False
        #: The asker gave up (timeout, cancellation); the reply is discarded
        #: and, if it had not started, the message is skipped.
        self.withdrawn = False
        #: The timeout registry holding this ask while it waits (see deadlines.py).
        self.deadlines: dict[Ask, float] | None = None
        #: What was asked, for the timeout message.
        self.target: Any = None

    @property
    def pending(self) -> bool:
        return not (self._done or self.withdrawn)

    def resolve(self, result: outcome.Outcome[Any]) -> None:
        """Deliver the result; a no-op if already answered or withdrawn."""
        if self._done or self.withdrawn:
            return
        self._done = True
        self._forget_deadline()
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task, result)
        else:  # answered before the asker parked (same turn): keep it
            self._early = result

    def _forget_deadline(self) -> None:
        deadlines = self.deadlines
        if deadlines is not None:
            self.deadlines = None
            deadlines.pop(self, None)

    def expire(self, timeout: float) -> None:
        """Called by the deadline timer: withdraw and raise `AskTimeout` in the asker."""
        if self._done or self.withdrawn:
            return
        self.withdrawn = True
        task = self._task
        if task is not None:
            self._task = None
            error = AskTimeout(f"no reply from {self.target!r} within {timeout} s")
            trio.lowlevel.reschedule(task, outcome.Error(error))

    async def wait(self) -> Any:
        """Park until resolved; cancellation withdraws the ask."""
        if self._done:  # pragma: no cover - resolve() always runs in another task
            assert self._early is not None
            return self._early.unwrap()
        self._task = trio.lowlevel.current_task()

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._task = None
            self.withdrawn = True
            self._forget_deadline()
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)
