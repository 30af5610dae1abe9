"""Server-Sent Events: the wire format (pure functions) and one subscriber's outbox.

An event's SSE block is built once and cached on the event, so every
subscriber of a group writes the same bytes. The outbox is bounded in
bytes: a subscriber that falls behind loses its backlog and is brought back
with a fresh sync (or closed), and the group never waits for it.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

from ..streams.events import Event

__all__ = ["sse_block", "sse_comment", "parse_last_event_id", "SSEOutbox"]


def sse_block(event: Event) -> bytes:
    """``id:`` (sync and state events), ``event:`` and ``data:`` lines, encoded once per event."""
    cached = event.frames.get("sse")
    if cached is None:
        position = event.position
        head = f"id: {position}\nevent: {event.type}\ndata: " if position else f"event: {event.type}\ndata: "
        cached = event.frames["sse"] = head.encode() + event.json + b"\n\n"
    return cached


def sse_comment(text: str) -> bytes:
    return b"".join(b": " + line.encode() + b"\n" for line in text.splitlines() or [""]) + b"\n"


def parse_last_event_id(value: str | None) -> tuple[str, int] | None:
    """``epoch:offset`` → ``(epoch, offset)``; anything else → None (a fresh sync)."""
    if not value:
        return None
    epoch, sep, offset = value.strip().rpartition(":")
    if not sep or not epoch or not offset.isdigit():
        return None
    return epoch, int(offset)


class SSEOutbox:
    """The bounded queue between a group actor's ``deliver`` and a response writer.

    ``deliver`` never waits: past ``limit`` bytes the backlog is dropped and
    the outbox is marked ``overflowed``; events are then dropped until the
    writer re-joins and the fresh sync (an ``initial`` frame) arrives.
    """

    def __init__(self, limit: int, *, metrics: Any = None) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self.size = 0
        self.overflowed = False
        self.closed = False
        self._wake = trio.Event()
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<SSEOutbox {self.size} bytes{' overflowed' if self.overflowed else ''}>"

    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        if self.closed:
            return False
        if initial:
            if event.type == "sync":
                self.overflowed = False  # the resync has arrived: accept events again
            self._push(sse_block(event))
            return True
        if self.overflowed:
            return False
        block = sse_block(event)
        if self.size + len(block) > self.limit:
            self.overflowed = True
            self._chunks.clear()
            self.size = 0
            self._wake.set()
            if self._metrics is not None:
                self._metrics.slow_consumer_drops += 1
            return False
        self._push(block)
        return True

    def push_raw(self, data: bytes) -> None:
        """Queue bytes outside the bound (heartbeats, the retry hint)."""
        self._push(data)

    def _push(self, data: bytes) -> None:
        self._chunks.append(data)
        self.size += len(data)
        if self._metrics is not None:
            self._metrics.deliveries += 1
        self._wake.set()

    def take(self) -> bytes:
        """Everything queued, as one write (coalescing under load)."""
        if not self._chunks:
            return b""
        data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks.clear()
        self.size = 0
        return data

    async def wait(self) -> None:
        """Until something is queued, the outbox overflows, or it is closed."""
        if self._chunks or self.overflowed or self.closed:
            return
        self._wake = trio.Event()
        await self._wake.wait()

    def close(self) -> None:
        self.closed = True
        self._wake.set()
