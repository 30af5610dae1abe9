"""Queue delivery: at-least-once, retries with backoff, dead letters, bounded concurrency.

Each (topic, step) pair is a lane: a heap of messages by due time, a
dispatcher that starts a handler task when a message is due and the lane's
concurrency limit allows, and nothing else. Storage holds every pending
message until its handler succeeds (or it is dead-lettered), so SQLite
keeps pending work across a restart; the lane's schedule is rebuilt from it
on start.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

import attrs
import trio

from ..storage.base import QueuedMessage, Storage
from .transport import Deliver

__all__ = ["Lane", "LocalQueues"]

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


class LocalQueues:
    """The queue transport of a storage this process alone writes (memory, SQLite).

    One `Lane` per (topic, step) keeps the schedule in memory; storage only
    persists each pending message and each dead letter, so a durable backend
    hands the pending ones back at the next start (`run` restores them).
    It implements transport.py's `QueueTransport`, as `RedisQueues` does for
    a shared storage.
    """

    def __init__(self, storage: Storage, trio_time_at_ms: Callable[[int], float]) -> None:
        self._storage = storage
        self._trio_time_at_ms = trio_time_at_ms
        self._pending_lanes: list[tuple[str, str, int, Deliver]] = []
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._running = False

    def add_lane(self, topic: str, step: str, *, concurrency: int, attempts: int, deliver: Deliver) -> None:
        self._pending_lanes.append((topic, step, concurrency, deliver))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for topic, step, concurrency, deliver in self._pending_lanes:
                lane = Lane(
                    topic, step, concurrency=concurrency, trio_time_at_ms=self._trio_time_at_ms,
                    deliver=functools.partial(self._deliver, deliver),
                )
                self._lanes[(topic, step)] = lane
                nursery.start_soon(lane.run, nursery, name=f"lane {topic} -> {step}")
            await self._restore_pending()
            self._running = True
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._running = False
                self._lanes.clear()

    async def _restore_pending(self) -> None:
        storage = self._storage
        for message in await storage.queue_pending():
            lane = self._lanes.get((message.topic, message.step))
            if lane is None:
                reason = f"step {message.step!r} no longer takes topic {message.topic!r}"
                logger.warning("queue message %s dead-lettered: %s", message.id, reason)
                await storage.queue_dead(attrs.evolve(message, last_error=reason))
                continue
            lane.push(message)

    async def put(self, message: QueuedMessage) -> None:
        """Store ``message`` and schedule it (refused, storing nothing, while not running)."""
        if not self._running:
            raise RuntimeError("the step runtime is not running")
        await self._storage.queue_put(message)
        lane = self._lanes.get((message.topic, message.step))
        if lane is not None:  # else it waits in storage for a step that takes it again
            lane.push(message)

    async def claim_tick(self, step: str, tick_ms: int) -> bool:
        return True  # one process: every tick is this one's

    def idle(self, now: float) -> bool:
        """No handler runs and none is due by ``now`` (Trio time): for the test harness's ``settle``."""
        return all(not lane.running and lane.next_due() > now for lane in self._lanes.values())

    async def _deliver(self, deliver: Deliver, message: QueuedMessage) -> None:
        await deliver(message, _LocalReceipt(self, message))


class _LocalReceipt:
    __slots__ = ("_queues", "_message")

    def __init__(self, queues: LocalQueues, message: QueuedMessage) -> None:
        self._queues = queues
        self._message = message

    async def ack(self) -> None:
        await self._queues._storage.queue_ack(self._message.id)

    async def retry(self, message: QueuedMessage) -> None:
        await self._queues.put(message)

    async def bury(self, message: QueuedMessage) -> None:
        await self._queues._storage.queue_dead(message)
