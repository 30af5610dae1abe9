"""One subscriber's outbox: what a group actor delivers, waiting for a connection's writer.

The outbox is bounded in bytes and ``deliver`` never waits: a subscriber
that falls behind loses its backlog and is brought back with a fresh sync
(or closed), and the group never waits for it. Events are encoded by the
transport's encoder, which caches the bytes on the event, so every
subscriber of a group queues the same bytes. Queued writes are taken all
at once, so a busy connection sends many frames per write.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import trio

from ..streams.events import Event

__all__ = ["Outbox"]


class Outbox:
    """The bounded queue between a group actor's ``deliver`` and a connection's writer.

    ``deliver`` never waits: past ``limit`` bytes the backlog is dropped and
    the outbox is marked ``overflowed``; events are then dropped until the
    writer re-joins and the fresh sync (an ``initial`` frame) arrives.
    """

    def __init__(
        self,
        limit: int,
        encode: Callable[[Event], bytes],
        *,
        metrics: Any = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.limit = limit
        self._encode = encode
        #: Called (synchronously, from the group actor) when the backlog is dropped.
        self._on_overflow = on_overflow
        self._chunks: deque[bytes] = deque()
        self.size = 0
        self.overflowed = False
        self.closed = False
        self._wake = trio.Event()
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<Outbox {self.size} bytes{' overflowed' if self.overflowed else ''}>"

    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        if self.closed:
            return False
        if initial:
            if event.type == "sync":
                self.overflowed = False  # the resync has arrived: accept events again
            self._push(self._encode(event))
            return True
        if self.overflowed:
            return False
        block = self._encode(event)
        if self.size + len(block) > self.limit:
            self.overflowed = True
            self._chunks.clear()
            self.size = 0
            self._wake.set()
            if self._metrics is not None:
                self._metrics.slow_consumer_drops += 1
            if self._on_overflow is not None:
                self._on_overflow()
            return False
        self._push(block)
        return True

    def push_raw(self, data: bytes) -> None:
        """Queue bytes outside the bound and never dropped (control frames, hints, errors)."""
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
