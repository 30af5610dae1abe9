"""Ask timeouts without a cancel scope per ask.

A Trio cancel scope costs about as much as the ask itself, so timeouts are
kept in one registry per system and expired by a single timer task. Asks
with the same timeout expire in the order they were made, so each timeout
value keeps an insertion-ordered dict: registering and forgetting an ask are
O(1), and the timer only ever looks at the oldest ask of each timeout.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .envelope import Ask

__all__ = ["AskDeadlines"]


class AskDeadlines:
    """Expires parked asks whose deadline has passed."""

    def __init__(self) -> None:
        self._by_timeout: dict[float, dict[Ask, float]] = {}
        self._sleep: trio.CancelScope | None = None

    def __len__(self) -> int:
        return sum(len(pending) for pending in self._by_timeout.values())

    def register(self, ask: Ask, timeout: float) -> None:
        pending = self._by_timeout.get(timeout)
        if pending is None:
            pending = self._by_timeout[timeout] = {}
        deadline = trio.current_time() + timeout
        pending[ask] = deadline
        ask.deadlines = pending
        sleep = self._sleep
        if sleep is not None and deadline < sleep.deadline:
            sleep.deadline = deadline

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            now = trio.current_time()
            earliest = math.inf
            for timeout, pending in list(self._by_timeout.items()):
                while pending:
                    ask, deadline = next(iter(pending.items()))
                    if deadline > now:
                        earliest = min(earliest, deadline)
                        break
                    del pending[ask]
                    ask.deadlines = None
                    ask.expire(timeout)
                if not pending:
                    del self._by_timeout[timeout]
            with trio.CancelScope(deadline=earliest) as self._sleep:
                await trio.sleep_forever()
            self._sleep = None
