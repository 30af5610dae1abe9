"""A single parked task, woken without allocating anything.

An outbox's writer and the server's flusher each wait in a loop for "there
is work"; a `trio.Event` per wait is an allocation and a parking lot per
wait. Exactly one task ever waits here, so it parks with
`trio.lowlevel.wait_task_rescheduled` and `wake` reschedules it: no object
per wait, and a wake with no one parked costs one attribute test.
"""

from __future__ import annotations

import trio

__all__ = ["Waiter"]


class Waiter:
    """Park one task until `wake`; cancellation unparks it cleanly."""

    __slots__ = ("_task",)

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None

    @property
    def parked(self) -> bool:
        return self._task is not None

    async def park(self) -> None:
        if self._task is not None:
            raise RuntimeError("another task is already parked here")
        self._task = trio.lowlevel.current_task()
        await trio.lowlevel.wait_task_rescheduled(self._abort)

    def _abort(self, _raise_cancel: object) -> trio.lowlevel.Abort:
        self._task = None
        return trio.lowlevel.Abort.SUCCEEDED

    def wake(self) -> None:
        task = self._task
        if task is not None:
            self._task = None
            trio.lowlevel.reschedule(task)
