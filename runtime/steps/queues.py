"""Queue delivery: at-least-once, retries with backoff, dead letters, bounded concurrency.

Each (topic, step) pair is a lane: a heap of messages by due time, a
dispatcher that starts a handler task when a message is due and the lane's
concurrency limit allows, and nothing else. Storage holds every pending
message until its handler succeeds (or it is dead-lettered), so SQLite
keeps pending work across a restart; the lane's schedule is rebuilt from it
on start.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

import trio

from ..storage.base import QueuedMessage

__all__ = ["Lane"]

logger = logging.getLogger("runtime.steps")


class Lane:
    """Messages of one topic for one step."""

    def __init__(
        self,
        topic: str,
        step: str,
        *,
        concurrency: int,
        deliver: Callable[[QueuedMessage], Awaitable[None]],
        trio_time_at_ms: Callable[[int], float],
        max_pending: int = 100_000,
    ) -> None:
        self.topic = topic
        self.step = step
        self.concurrency = concurrency
        self.max_pending = max_pending
        self._deliver = deliver
        self._trio_time_at_ms = trio_time_at_ms
        self._heap: list[tuple[float, int, QueuedMessage]] = []
        self._order = itertools.count()
        self._wake = trio.Event()
        self._limiter = trio.CapacityLimiter(concurrency)
        #: Handlers running now.
        self.running = 0

    def __len__(self) -> int:
        return len(self._heap)

    def next_due(self) -> float:
        """Trio time at which the earliest waiting message is due (inf when none waits)."""
        return self._heap[0][0] if self._heap else float("inf")

    def push(self, message: QueuedMessage) -> None:
        """Schedule ``message`` for its due time (already stored by the caller)."""
        heapq.heappush(self._heap, (self._trio_time_at_ms(message.due_ms), next(self._order), message))
        self._wake.set()

    async def run(self, nursery: trio.Nursery) -> None:
        """Start handlers as messages come due; runs until cancelled."""
        while True:
            if not self._heap:
                await self._wait_for_push()
                continue
            due = self._heap[0][0]
            if due > trio.current_time():
                with trio.move_on_at(due):
                    await self._wait_for_push()
                continue
            token = object()
            await self._limiter.acquire_on_behalf_of(token)
            _, _, message = heapq.heappop(self._heap)
            self.running += 1
            nursery.start_soon(self._run_one, message, token, name=f"queue {self.topic} -> {self.step}")

    async def _wait_for_push(self) -> None:
        await self._wake.wait()
        self._wake = trio.Event()

    async def _run_one(self, message: QueuedMessage, token: object) -> None:
        try:
            await self._deliver(message)
        finally:
            self.running -= 1
            self._limiter.release_on_behalf_of(token)
