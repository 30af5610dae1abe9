"""The seam between the step runner and its queue transport: `QueueTransport`, one protocol, two implementations.

With a local storage (memory, SQLite) the transport is `LocalQueues`
(queues.py): one `Lane` per (topic, step) in this process, storage only
persisting pending messages. With a shared storage (a `SharedStorage`,
e.g. Redis), whose every process would otherwise run every message it
enqueued and restore every pending list, it is the storage's own
(`RedisQueues`, storage/redis/queues.py), which spreads messages and cron
ticks over the processes. The runner sees only this protocol:

* ``add_lane`` before ``run``: one per (topic, step), with its concurrency
  and the runner's ``deliver(message, receipt)``;
* ``run`` consumes (in a nursery of its own, started in the runner's) and
  calls ``deliver`` for each message this process gets;
* ``put`` stores a new message where a consumer can take it;
* the `Receipt` that comes with a delivery acknowledges it, schedules its
  retry or dead-letters it (each an atomic change in the transport);
* ``claim_tick`` says whether this process won a cron tick.

Receipt methods of a shared transport never raise for a storage outage:
the message then stays pending and is delivered again after the
visibility timeout.

A new transport is a class with these four methods and a branch in
`queue_transport_for`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ..storage.base import QueuedMessage, SharedStorage, Storage

__all__ = ["Deliver", "QueueTransport", "Receipt", "SharedQueues", "queue_transport_for"]


class Receipt(Protocol):
    """One delivery of one message to this process."""

    async def ack(self) -> None:
        """The handler succeeded: forget the message."""

    async def retry(self, message: QueuedMessage) -> None:
        """Deliver ``message`` (the failed one, attempts counted) again at its ``due_ms``."""

    async def bury(self, message: QueuedMessage) -> None:
        """Move ``message`` to the dead letters."""


Deliver = Callable[[QueuedMessage, Receipt], Awaitable[None]]


class QueueTransport(Protocol):
    def add_lane(self, topic: str, step: str, *, concurrency: int, attempts: int, deliver: Deliver) -> None: ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None: ...

    async def put(self, message: QueuedMessage) -> None: ...

    async def claim_tick(self, step: str, tick_ms: int) -> bool: ...


#: The earlier name of `QueueTransport`, when only a shared storage had one.
SharedQueues = QueueTransport


def queue_transport_for(storage: Storage, clock: Any, *, visibility_timeout: float) -> QueueTransport:
    """The queue transport for ``storage``: the runner's own lanes, or a shared storage's transport."""
    if not isinstance(storage, SharedStorage):
        from .queues import LocalQueues

        return LocalQueues(storage, lambda ms: clock.trio_time_at(ms / 1000))
    from ..storage.redis import RedisStorage
    from ..storage.redis.queues import RedisQueues

    if isinstance(storage, RedisStorage):
        return RedisQueues(storage, clock, visibility_timeout=visibility_timeout)
    raise TypeError(f"{type(storage).__name__} is shared but has no queue transport")
