"""SSE subscriptions served on the raw Trio socket, outside the ASGI stack.

The front door (`front_door.py`) hands over a connection whose first request
is ``GET <prefix>/<stream>/<group>[/<item>]``. Admission is the same as on
the ASGI route (`sse_session.admit`); the response head is formatted by h11;
the body is written here. One server-wide `Flusher` task writes what the group
turns since its last pass queued to every ready subscriber with one
non-blocking ``send`` each (one HTTP chunk carrying all of those events), so
no task wakes per subscriber per event. Only when the kernel's send buffer is full does the
connection's own task take over (``send_all``, waiting for the client) until
its outbox is drained. Each connection's task also sends the ``: ping``
heartbeat, runs resyncs, applies the slow-consumer close policy at once
(even to a client that reads nothing), and a reader task notices the client
leaving. Memory per connection is bounded: the outbox (``outbox_limit``) plus
at most one unsent chunk taken from it.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import TYPE_CHECKING, Any

import trio

from .outbox import Outbox
from .settings import SLOW_CLOSE
from .sse import LAST_CHUNK, chunk, sse_block
from .sse_session import Admitted, leave

if TYPE_CHECKING:
    from .http import HttpServer

__all__ = ["Flusher", "DirectSSE"]

logger = logging.getLogger("runtime.server")

#: Bytes read (and dropped) at a time from a subscriber, to notice it leaving.
_READ_SIZE = 4096
#: Scheduler passes the flusher lets go by before it writes, so that the
#: group turns the last one woke (a closed-loop producer's next commits) join
#: this write instead of needing their own: microseconds of latency when the
#: server is idle, 5 events per write instead of 1 with one producer
#: (bench/sse.py: 4 µs of server CPU per delivery instead of 12).
FLUSH_YIELDS = 8
_NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


class _NotifyingOutbox(Outbox):
    """An outbox that tells its connection whenever there is something to do."""

    def __init__(self, limit: int, connection: DirectSSE, *, metrics: Any) -> None:
        super().__init__(limit, sse_block, metrics=metrics)
        self._connection = connection

    def deliver(self, event: Any, *, initial: bool = False) -> bool:
        queued = super().deliver(event, initial=initial)
        self._connection.notify()
        return queued

    def deliver_many(self, events: list[Any]) -> int:
        dropped = super().deliver_many(events)
        self._connection.notify()
        return dropped

    def push_raw(self, data: bytes) -> None:
        super().push_raw(data)
        self._connection.notify()

    def close(self) -> None:
        super().close()
        self._connection.notify()


class Flusher:
    """One task that writes every notified connection's queue, non-blocking, after the group's turn."""

    def __init__(self) -> None:
        self._ready: list[DirectSSE] = []
        self._wake = trio.Event()

    def ready(self, connection: DirectSSE) -> None:
        self._ready.append(connection)
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            for _ in range(FLUSH_YIELDS):  # let the tasks already running finish their turn (see FLUSH_YIELDS)
                await trio.lowlevel.checkpoint()
            self._wake = trio.Event()
            ready, self._ready = self._ready, []
            now = trio.current_time()
            for connection in ready:
                connection.flush(now)


class DirectSSE:
    """One subscription on its own socket: the states are idle (the flusher writes) or
    ``writing`` (the connection's task owns the socket until the queue is drained)."""

    def __init__(self, server: HttpServer, flusher: Flusher, stream: trio.SocketStream, admitted: Admitted) -> None:
        self.server = server
        self.stream = stream
        self.admitted = admitted
        self._flusher = flusher
        self._fd = stream.socket.fileno()
        self.outbox = _NotifyingOutbox(server.settings.outbox_limit, self, metrics=server.metrics)
        self._id = uuid.uuid4().hex
        self._notified = False
        self._unsent = b""  # a chunk the kernel did not take whole: the task writes it
        self._writing = False
        self._gone = False
        self._wake = trio.Event()
        self._scope = trio.CancelScope()
        self.last_write = trio.current_time()

    # -- called synchronously by the group actor and the flusher -----------------------------

    def notify(self) -> None:
        if not self._notified:
            self._notified = True
            self._flusher.ready(self)

    def flush(self, now: float) -> None:
        self._notified = False
        outbox = self.outbox
        if not self._writing and not self._gone:
            data = outbox.take()
            if data:
                self._send(chunk(data), now)
        if outbox.needs_resync and self.server.settings.slow_consumer == SLOW_CLOSE and not outbox.closed:
            self.server.metrics.slow_consumer_closes += 1
            outbox.close()
            if not self._writing and not self._gone:
                self._send(LAST_CHUNK, now)  # best effort: end the body properly
            self._gone = True
            self._scope.cancel()  # at once: the client may read nothing at all
        if self._writing or outbox.needs_resync or outbox.closed:
            self._wake.set()

    def _send(self, data: bytes, now: float) -> None:
        try:
            sent = os.write(self._fd, data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the client went away (EPIPE, ECONNRESET)
            self._gone = True
            self._scope.cancel()
            return
        self.last_write = now
        if sent < len(data):
            self._unsent = data[sent:]
            self._writing = True

    # -- the connection's task -------------------------------------------------------------------

    async def run(self, head: bytes) -> None:
        """Write the head, join, serve until closed or gone; clean up whatever happened."""
        server, sub = self.server, self.admitted.subscription
        settings = server.settings
        server.open_outboxes.add(self.outbox)
        server.metrics.connections["sse"] += 1
        server.metrics.subscriptions["sse"] += 1
        try:
            with self._scope:
                await self.stream.send_all(head + chunk(f"retry: {settings.sse_retry_ms}\n\n".encode()))
                try:
                    await self._join(self.admitted.since)
                except Exception:  # noqa: BLE001 - the stream ends; EventSource will retry
                    logger.exception("SSE join to %s/%s failed", sub.stream_name, sub.group_id)
                    return
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader, nursery.cancel_scope)
                    await self._writer()
                    nursery.cancel_scope.cancel()
        except _NETWORK_ERRORS:
            pass  # the client went away
        finally:
            self._gone = True  # from now on the flusher must not touch the descriptor: it may be reused
            server.open_outboxes.discard(self.outbox)
            self.outbox.close()
            server.metrics.connections["sse"] -= 1
            server.metrics.subscriptions["sse"] -= 1
            await leave(server, self.outbox, sub, self._id, self.admitted.auth_context)

    async def _join(self, since: tuple[str, int] | None) -> None:
        sub = self.admitted.subscription
        await self.server.app.engine.join(self.outbox, sub.stream_name, sub.group_id, subscription_id=self._id,
                                          item_id=sub.id, since=since)

    async def _reader(self, scope: trio.CancelScope) -> None:
        """A subscriber sends nothing after its request: reading only tells when it leaves."""
        try:
            while await self.stream.receive_some(_READ_SIZE):
                pass
        except _NETWORK_ERRORS:
            pass
        self._gone = True
        scope.cancel()

    async def _writer(self) -> None:
        try:
            await self._write()
        except _NETWORK_ERRORS:
            self._gone = True

    async def _write(self) -> None:
        outbox, settings, metrics = self.outbox, self.server.settings, self.server.metrics
        while True:
            self._wake = trio.Event()
            if self._writing:
                await self.stream.send_all(self._unsent)
                self._unsent = b""
                self.last_write = trio.current_time()
                data = outbox.take()
                if data:
                    self._unsent = chunk(data)
                else:
                    self._writing = False
                continue
            if outbox.closed:
                self.flush(trio.current_time())  # whatever the flusher has not written yet
                if not self._writing:
                    await self.stream.send_all(LAST_CHUNK)
                    return
                continue
            if outbox.needs_resync:  # the close policy never gets here: flush() ended the stream
                metrics.resyncs += 1
                outbox.begin_resync()
                await self._join(None)  # a fresh sync replaces the dropped backlog
                continue
            with trio.move_on_at(self.last_write + settings.sse_heartbeat):
                await self._wake.wait()
                continue
            outbox.push_raw(b": ping\n\n")
            self.last_write = trio.current_time()
