"""The seam between the step runner and a queue transport shared by several processes.

With a local storage (memory, SQLite) the runner keeps the schedule itself:
one `Lane` per (topic, step), storage only persisting pending messages. With
a shared storage (``storage.shared``, e.g. Redis) that would run every
message in the process that enqueued it and restore every process's
pending list in each of them, so the runner hands queues and cron ticks to
a `SharedQueues` instead:

* ``add_lane`` before ``run``: one per (topic, step), with its concurrency
  and the runner's ``deliver(message, receipt)``;
* ``run`` consumes (in a nursery of its own, started in the runner's) and
  calls ``deliver`` for each message this process gets;
* ``put`` stores a new message where any process can take it;
* the `Receipt` that comes with a delivery acknowledges it, schedules its
  retry or dead-letters it (each an atomic change in the transport);
* ``claim_tick`` says whether this process won a cron tick.

Receipt methods never raise for a storage outage: the message then stays
pending and is delivered again after the visibility timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ..storage.base import QueuedMessage, Storage

__all__ = ["Receipt", "SharedQueues", "shared_queues_for"]


class Receipt(Protocol):
    """One delivery of one message to this process."""

    async def ack(self) -> None:
        """The handler succeeded: forget the message."""

    async def retry(self, message: QueuedMessage) -> None:
        """Deliver ``message`` (the failed one, attempts counted) again at its ``due_ms``."""

    async def bury(self, message: QueuedMessage) -> None:
        """Move ``message`` to the dead letters."""


Deliver = Callable[[QueuedMessage, Receipt], Awaitable[None]]


class SharedQueues(Protocol):
    def add_lane(self, topic: str, step: str, *, concurrency: int, attempts: int, deliver: Deliver) -> None: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def put(self, message: QueuedMessage) -> None: ...

    async def claim_tick(self, step: str, tick_ms: int) -> bool: ...


def shared_queues_for(storage: Storage, clock: Any, *, visibility_timeout: float) -> SharedQueues | None:
    """The transport of a shared storage, or None for a local one (the runner's lanes)."""
    if not storage.shared:
        return None
    from ..storage.redis import RedisStorage
    from ..storage.redis.queues import RedisQueues

    if isinstance(storage, RedisStorage):
        return RedisQueues(storage, clock, visibility_timeout=visibility_timeout)
    raise TypeError(f"{type(storage).__name__} is shared but has no queue transport")
