"""Stream-trigger dispatch: after commit, in offset order, never blocking a mutation.

The group actor hands each published event to `TriggerDispatcher.dispatch`,
which only appends to a bounded queue. One worker per (listener, group)
drains that queue in order and exits when it is empty, so order holds per
listener and group, different groups run concurrently, and an idle runtime
keeps no task per group. Workers live in the dispatcher's nursery, owned by
the engine: none outlives it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from .events import Event

__all__ = ["StreamListener", "TriggerDispatcher"]

logger = logging.getLogger("runtime.streams")


@attrs.frozen(eq=False)
class StreamListener:
    """``handler(event)`` for events of ``stream``, optionally one group or item."""

    stream: str
    handler: Callable[[Event], Awaitable[Any]]
    group_id: str | None = None
    item_id: str | None = None
    name: str = "listener"

    def matches(self, event: Event) -> bool:
        return (self.group_id is None or self.group_id == event.group) and (
            self.item_id is None or self.item_id == event.item_id
        )


class TriggerDispatcher:
    """Queues per (listener, group), each drained by at most one worker."""

    def __init__(self, *, queue_size: int = 10_000) -> None:
        self.queue_size = queue_size
        self._listeners: dict[str, list[StreamListener]] = {}
        self._queues: dict[tuple[StreamListener, str], deque[Event]] = {}
        self._nursery: trio.Nursery | None = None
        #: Events not dispatched because a listener's queue was full.
        self.dropped = 0
        #: Handler invocations that raised.
        self.errors = 0
        self._idle: trio.Event | None = None

    def add(self, listener: StreamListener) -> None:
        self._listeners.setdefault(listener.stream, []).append(listener)

    def has_listeners(self, stream: str) -> bool:
        return stream in self._listeners

    @property
    def pending(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def wait_idle(self) -> None:
        """Wait until every queued event has been handled."""
        if self._queues:
            if self._idle is None:
                self._idle = trio.Event()
            await self._idle.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def dispatch(self, event: Event) -> None:
        """Queue ``event`` for every matching listener. Never waits."""
        for listener in self._listeners.get(event.stream, ()):
            if not listener.matches(event):
                continue
            key = (listener, event.group)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
                if self._nursery is None:
                    raise RuntimeError("the trigger dispatcher is not running")
                self._nursery.start_soon(self._drain, key, queue, name=f"trigger {listener.name}")
            if len(queue) >= self.queue_size:
                self.dropped += 1
                logger.error(
                    "trigger %s: queue for group %r is full (%d); event at offset %s dropped",
                    listener.name, event.group, self.queue_size, event.offset,
                )
                continue
            queue.append(event)

    async def _drain(self, key: tuple[StreamListener, str], queue: deque[Event]) -> None:
        listener = key[0]
        try:
            while queue:
                event = queue[0]
                try:
                    await listener.handler(event)
                except Exception:  # noqa: BLE001 - one failing handler affects nothing else
                    self.errors += 1
                    logger.exception(
                        "trigger %s failed on %s/%s offset %s", listener.name, event.stream, event.group, event.offset
                    )
                queue.popleft()
        finally:
            # Synchronous with the emptiness check: a dispatch after this
            # point starts a new worker rather than queueing to a dead one.
            if self._queues.get(key) is queue:
                del self._queues[key]
            if not self._queues and self._idle is not None:
                self._idle.set()
                self._idle = None
