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

    ``deliver`` never waits: past ``limit`` bytes the backlog of events is
    dropped, the outbox starts dropping events (``overflowed``) and asks for
    a resync (``needs_resync``). Only the writer ends that state, when it
    starts re-joining its subscriptions (`begin_resync`), so a join answered
    in between cannot hide a gap. Frames that must arrive — join answers
    (``initial``), control frames, errors — are never dropped.
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
        self._chunks: deque[tuple[bytes, bool]] = deque()  # (frame, droppable)
        self.size = 0
        self.overflowed = False
        self.needs_resync = False
        self.closed = False
        self._wake = trio.Event()
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<Outbox {self.size} bytes{' overflowed' if self.overflowed else ''}>"

    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        if self.closed:
            return False
        if initial:
            self._push(self._encode(event), droppable=False)
            return True
        if self.overflowed:
            return False
        block = self._encode(event)
        if self.size + len(block) > self.limit:
            self._overflow()
            return False
        self._push(block, droppable=True)
        return True

    def _overflow(self) -> None:
        self.overflowed = True
        self.needs_resync = True
        kept = [entry for entry in self._chunks if not entry[1]]
        self._chunks = deque(kept)
        self.size = sum(len(frame) for frame, _ in kept)
        self._wake.set()
        if self._metrics is not None:
            self._metrics.slow_consumer_drops += 1
        if self._on_overflow is not None:
            self._on_overflow()

    def begin_resync(self) -> None:
        """The writer is about to re-join everything: accept events again."""
        self.needs_resync = False
        self.overflowed = False

    def push_raw(self, data: bytes) -> None:
        """Queue bytes outside the bound and never dropped (control frames, hints, errors)."""
        self._push(data, droppable=False)

    def _push(self, data: bytes, *, droppable: bool) -> None:
        self._chunks.append((data, droppable))
        self.size += len(data)
        if self._metrics is not None:
            self._metrics.deliveries += 1
        self._wake.set()

    def take(self) -> bytes:
        """Everything queued, as one write (coalescing under load)."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0][0] if len(chunks) == 1 else b"".join([frame for frame, _ in chunks])
        chunks.clear()
        self.size = 0
        return data

    async def wait(self) -> None:
        """Until something is queued, a resync is needed, or the outbox is closed."""
        if self._chunks or self.needs_resync or self.closed:
            return
        self._wake = trio.Event()
        await self._wake.wait()

    def close(self) -> None:
        self.closed = True
        self._wake.set()
