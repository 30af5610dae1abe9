"""One subscriber's outbox: what a group actor delivers, waiting to be written.

The outbox is bounded in bytes and ``deliver`` never waits: a subscriber
that falls behind loses its backlog and is brought back with a fresh sync
(or closed), and the group never waits for it. Events are encoded by the
transport's encoder, which caches the bytes on the event, so every
subscriber of a group queues the same bytes. Queued writes are taken all
at once, so a busy connection sends many frames per write; a transport
that frames each write (SSE's HTTP chunks) gives ``wrap``.

Who writes it: the server's one flusher (`flusher.py`) for connections on a
socket (``on_ready`` and ``fd`` given) — WebSocket and direct SSE alike —
which writes whatever became ready since its last pass without waking a
task per connection (`flush`). The flusher hands an outbox back to its
connection's writer task (`hand_back`) when the socket would block, and the
writer returns it (`resume_flushing`) once drained, so a stalled reader never
holds up the flusher and the writer only wakes for the connections that need
it. Without a flusher (the ASGI SSE route, tests' memory streams) the writer
writes everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import trio

from ..streams.events import Event, Turn
from .waiter import Waiter

__all__ = ["Outbox"]


class Outbox:
    """The bounded queue between a group actor's ``deliver`` and whoever writes the socket.

    ``deliver`` never waits: past ``limit`` bytes the backlog of events is
    dropped, the outbox starts dropping events (``overflowed``) and asks for
    a resync (``needs_resync``). Only the writer ends that state, when it
    starts re-joining its subscriptions (`begin_resync`), so a join answered
    in between cannot hide a gap. Frames that must arrive — join answers
    (``initial``), control frames, errors — are never dropped.

    Queued frames are a plain list of the (shared) frame bytes — no object
    per delivery — with the positions of the ones that must not be dropped
    kept aside (they are rare: joins and control frames).
    """

    __slots__ = (
        "limit", "_encode", "_wrap", "_on_overflow", "_on_ready", "_chunks", "_keep", "_unsent", "size", "overflowed",
        "needs_resync", "_awaiting_sync", "closed", "flushing", "ready", "fd", "last_write", "writing", "_waiter",
        "_room", "_metrics",
    )

    def __init__(
        self,
        limit: int,
        encode: Callable[[Event], bytes],
        *,
        metrics: Any = None,
        on_overflow: Callable[[], None] | None = None,
        on_ready: Callable[[Outbox], None] | None = None,
        fd: int = -1,
        wrap: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.limit = limit
        self._encode = encode
        #: Frames each write (SSE: one HTTP chunk of everything taken at once).
        self._wrap = wrap
        #: Called (synchronously, from the group actor) when the backlog is dropped.
        self._on_overflow = on_overflow
        #: Called with this outbox when frames are queued for the flusher and it was not told yet
        #: (see `ready`): the flusher's ``mark``.
        self._on_ready = on_ready
        self._chunks: list[bytes] = []
        self._keep: list[int] = []  # indices in _chunks of frames never dropped
        #: Taken (and wrapped) but not accepted by the socket; written first, never dropped,
        #: outside the bound (like bytes in flight in a blocking send).
        self._unsent = b""
        self.size = 0
        self.overflowed = False
        self.needs_resync = False
        #: During a resync: (stream, group) -> subscriptions of it whose fresh sync is not queued yet.
        self._awaiting_sync: dict[tuple[str, str], int] = {}
        self.closed = False
        #: True while the flusher writes this outbox; False while the writer does.
        self.flushing = on_ready is not None
        #: The flusher was told (``on_ready``) and has not taken the frames yet.
        self.ready = False
        #: The socket the flusher writes to (-1 once the connection is ending, see `detach`).
        self.fd = fd
        #: When the flusher or the writer last wrote (Trio clock): SSE heartbeats count from it.
        self.last_write = 0.0
        #: The writer is inside `write_out`'s ``send_all``: cancelled there, the stream is cut at an
        #: unknown byte, so nothing may be written after it (no last close frame or chunk).
        self.writing = False
        self._waiter = Waiter()
        self._room = Waiter()  # the connection's reader, waiting for the backlog to fit (`wait_for_room`)
        self._metrics = metrics

    def __repr__(self) -> str:
        return f"<Outbox {self.size} bytes{' overflowed' if self.overflowed else ''}>"

    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        if self.closed:
            return False
        if initial:
            if self._awaiting_sync:
                self._synced(event)
            self._push(self._encode(event), droppable=False)
            return True
        if self.overflowed:
            return False
        if self._awaiting_sync and (event.stream, event.group) in self._awaiting_sync:
            return True  # before its group's fresh sync, which holds it: not sent, not a new drop
        block = self._encode(event)
        if self.size + len(block) > self.limit:
            self._overflow()
            return False
        self._push(block, droppable=True)
        return True

    def deliver_many(self, events: list[Event]) -> int:
        """A group turn's events in one call; returns how many were dropped.

        What ``deliver`` does for each, as one block: a `Turn` encodes its
        events together once for every outbox with this encoder. A turn that
        crosses the bound overflows the outbox whole — as delivering it event
        by event would, since an overflow drops the backlog anyway.
        """
        if self.closed or self.overflowed:
            return len(events)
        if self._awaiting_sync and (events[0].stream, events[0].group) in self._awaiting_sync:
            return 0  # one group's turn, before that group's fresh sync (see `deliver`)
        if type(events) is Turn:
            block = events.encoded(self._encode)
        else:
            encode = self._encode
            block = b"".join([encode(event) for event in events])
        if self.size + len(block) > self.limit:
            self._overflow()
            return len(events)
        self._chunks.append(block)
        self.size += len(block)
        if self._metrics is not None:
            self._metrics.deliveries += len(events)
        self._notify()
        return 0

    def _overflow(self) -> None:
        self.overflowed = True
        self.needs_resync = True
        chunks = self._chunks
        kept = [chunks[i] for i in self._keep]
        self._chunks = kept
        self._keep = list(range(len(kept)))
        self.size = sum(len(frame) for frame in kept)
        self._waiter.wake()
        if self._metrics is not None:
            self._metrics.slow_consumer_drops += 1
        if self._on_overflow is not None:
            self._on_overflow()

    def begin_resync(self, groups: Iterable[tuple[str, str]] = ()) -> None:
        """The writer is about to re-join its subscriptions, of ``groups`` ((stream, group), one per
        subscription): accept events again, except a group's own until its fresh sync is queued.

        Those come before the sync on the wire but are already part of it: sent,
        they would show the client a gap with no sync before it. So each group's
        events are left out until the group actor queues its sync (an initial
        frame, in the join's turn), and flow from exactly there.
        """
        awaiting: dict[tuple[str, str], int] = {}
        for key in groups:
            awaiting[key] = awaiting.get(key, 0) + 1
        self._awaiting_sync = awaiting
        self.needs_resync = False
        self.overflowed = False

    def abandon_resync(self, stream: str, group: str) -> None:
        """Re-joining one of ``group``'s subscriptions failed: stop holding its events back."""
        self._awaiting_sync.pop((stream, group), None)

    def _synced(self, event: Event) -> None:
        key = (event.stream, event.group)
        left = self._awaiting_sync.get(key)
        if left is not None:
            if left > 1:
                self._awaiting_sync[key] = left - 1
            else:
                del self._awaiting_sync[key]

    def preface(self, data: bytes) -> None:
        """Bytes written before anything queued, as they are (not wrapped, outside the bound): a
        response head that must reach the socket before the first frame, whoever writes first."""
        self._unsent += data
        self._notify()

    def push_raw(self, data: bytes) -> None:
        """Queue bytes outside the bound and never dropped (control frames, hints, errors)."""
        self._push(data, droppable=False)

    def _push(self, data: bytes, *, droppable: bool) -> None:
        chunks = self._chunks
        if not droppable:
            self._keep.append(len(chunks))
        chunks.append(data)
        self.size += len(data)
        if self._metrics is not None:
            self._metrics.deliveries += 1
        self._notify()

    def _notify(self) -> None:
        """Frames were queued: wake the writer, or tell the flusher once until it takes them."""
        if not self.flushing:
            self._waiter.wake()
        elif not self.ready:
            self.ready = True
            self._on_ready(self)  # type: ignore[misc]  # a callable slot mypy reads as a method

    @property
    def pending(self) -> bool:
        """Bytes are waiting to be written (queued or unsent)."""
        return bool(self._chunks or self._unsent)

    def take(self) -> bytes:
        """Everything queued, as one write: what the socket did not take last time, then the
        queued frames (wrapped, when the transport frames its writes)."""
        chunks = self._chunks
        if chunks:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            # emptied in place: a new list per take, under load, lived long enough to be
            # promoted and brought on full collections (every connection's objects scanned)
            chunks.clear()
            if self._keep:
                self._keep.clear()
            self.size = 0
            self._room.wake()
            if self._wrap is not None:
                data = self._wrap(data)
        else:
            data = b""
        if self._unsent:
            data = self._unsent + data
            self._unsent = b""
        return data

    def flush(self, now: float) -> None:
        """The flusher's pass: write what is queued without waiting; the rest goes to the writer.

        The socket is non-blocking (Trio keeps it so), so the write returns at
        once with all, part or nothing taken. What is left — the socket buffer
        is full, or the peer went away — is handed back to the connection's
        writer, whose ``send_all`` waits for the socket or meets the error and
        ends the connection as usual.
        """
        self.ready = False
        if not self.flushing:
            return  # handed back: the writer writes it
        data = self.take()
        if not data:
            return
        try:
            sent = os.write(self.fd, data)
        except OSError:  # BlockingIOError, InterruptedError, or the peer went away
            sent = 0
        if sent:
            self.last_write = now
        if sent < len(data):
            self.hand_back(data[sent:] if sent else data)

    async def write_out(self, stream: Any) -> bool:
        """The writer's turn (handed back, or closed): write everything queued, waiting for the
        socket, then give the outbox back to the flusher if it has one and nothing more came.
        False when there was nothing to write."""
        self.flushing = False
        data = self.take()
        if data:
            self.writing = True
            await stream.send_all(data)
            self.writing = False
            self.last_write = trio.current_time()
        self.resume_flushing()
        return bool(data)

    def detach(self) -> None:
        """The connection is ending: the flusher never writes to it again (its descriptor may be reused)."""
        self.flushing = False
        self.fd = -1

    def take_unsent(self) -> bytes:
        """Only the part of a frame the socket did not take (to write before a last close frame)."""
        unsent, self._unsent = self._unsent, b""
        return unsent

    def hand_back(self, unsent: bytes) -> None:
        """The flusher could not write ``unsent`` (the socket would block): the writer takes over."""
        self._unsent = unsent + self._unsent if self._unsent else unsent
        self.flushing = False
        self._waiter.wake()

    def resume_flushing(self) -> bool:
        """The writer drained everything: the flusher writes again. False if there is more to write."""
        if self._on_ready is None or self.fd < 0 or self.pending or self.closed:
            return False
        self.flushing = True
        self.ready = False
        return True

    async def wait(self) -> None:
        """Until the writer has work: frames to write (unless the flusher writes them), a resync, or close."""
        if (self.pending and not self.flushing) or self.needs_resync or self.closed:
            return
        await self._waiter.park()

    async def wait_for_room(self) -> None:
        """Until what is queued and unsent fits the bound again (or the outbox is closed).

        Frames a client causes — the answers to its joins, pongs, errors — are
        never dropped, so they are bounded here instead: the connection's reader
        waits before handling the client's next frame, and a client that asks
        without reading is held back by TCP rather than growing the server's
        memory (its pings go unanswered too, and the heartbeat ends it).
        """
        while self.size + len(self._unsent) > self.limit and not self.closed:
            await self._room.park()

    def close(self) -> None:
        self.closed = True
        self._waiter.wake()
        self._room.wake()
