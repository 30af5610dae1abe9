"""Server-Sent Events: the wire format, as pure functions.

An event's SSE block is built once and cached on the event, so every
subscriber of a group writes the same bytes.
"""

from __future__ import annotations

from ..streams.events import Event, parse_position
from .outbox import Outbox

__all__ = ["sse_block", "parse_last_event_id", "SSEOutbox"]


def sse_block(event: Event) -> bytes:
    """``id:`` (sync and state events), ``event:`` and ``data:`` lines, encoded once per event."""
    cached = event.frames.get("sse")
    if cached is None:
        position = event.position
        head = f"id: {position}\nevent: {event.type}\ndata: " if position else f"event: {event.type}\ndata: "
        cached = event.frames["sse"] = head.encode() + event.json + b"\n\n"
    return cached


#: ``Last-Event-ID`` / ``lastEventId`` → ``(epoch, offset)``, or None (a fresh sync).
parse_last_event_id = parse_position


def SSEOutbox(limit: int, *, metrics: object = None) -> Outbox:  # noqa: N802 - reads as a class
    """An outbox that encodes events as SSE blocks."""
    return Outbox(limit, sse_block, metrics=metrics)
