"""The ``progress`` stream: one group per job (group id = job id), one item ``status`` in it.

A client watches a job with the runtime's SSE subscription
``GET /streams/progress/<jobId>`` (the group; or ``/streams/progress/<jobId>/status``
for the item alone) or the WebSocket protocol, and gets a snapshot then one
``update`` per stage.

``watch(job_id)`` is the same subscription from Python: the ``GET
/jobs/:id/events`` step uses it to stream progress as its own SSE response.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from runtime import Stream, StreamConfig, Subscriber
from runtime.streams import current_engine

STATUS_ID = "status"
STAGES = ("download", "validate", "transform", "render", "upload")
FINAL_STATES = frozenset({"done"})

progress = Stream(StreamConfig(
    name="progress",
    description="Progress of long jobs: group = job id, item 'status'",
    schema={  # JSON Schema (the todo example shows the shorthand)
        "type": "object",
        "properties": {
            "state": {"enum": ["queued", "running", "done"]},
            "stage": {"type": "integer", "minimum": 0},
            "stages": {"type": "integer", "minimum": 1},
            "percent": {"type": "number", "minimum": 0, "maximum": 100},
            "label": {"type": ["string", "null"]},
            "createdAt": {"type": "number"},
        },
        "required": ["state", "stage", "stages", "percent"],
    },
))


class _ChannelSubscriber(Subscriber):
    """Hands the job's status item (or None) to a memory channel; never blocks the group.

    The channel is unbounded: a job emits a handful of events (one per stage),
    so the backlog is bounded by the job itself.
    """

    def __init__(self, send: trio.MemorySendChannel[dict[str, Any] | None]) -> None:
        self._send = send

    def deliver(self, event: Any, *, initial: bool = False) -> bool:
        if event.type not in ("sync", "create", "update", "delete"):
            return True  # ephemeral events and resume markers carry no status
        status = None if event.type == "delete" else event.data
        try:
            self._send.send_nowait(status)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True


@asynccontextmanager
async def watch(job_id: str) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any] | None]]:
    """Subscribe to ``progress/<job_id>/status``: the current status (or None), then each change.

    Snapshot then events with no gap and no duplicate, as for any subscriber.
    Leaves the group on exit, cancellation included.
    """
    engine = current_engine()
    send, receive = trio.open_memory_channel[dict[str, Any] | None](math.inf)
    subscriber = _ChannelSubscriber(send)
    subscription_id = uuid.uuid4().hex
    await engine.join(subscriber, progress.name, job_id, subscription_id=subscription_id, item_id=STATUS_ID)
    try:
        async with receive:
            yield receive
    finally:
        send.close()
        with trio.CancelScope(shield=True):
            await engine.leave(subscriber, progress.name, job_id, subscription_id)
