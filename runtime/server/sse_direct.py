"""SSE subscriptions served on the raw Trio socket, outside the ASGI stack.

The front door (`front_door.py`) hands over a connection whose first request
is ``GET <prefix>/<stream>/<group>[/<item>]``. Admission is the same as on
the ASGI route (`sse_session.admit`); the response head is formatted by h11;
the body is written by the server's `Flusher` (`flusher.py`, the same one
mechanism as WebSocket connections): what the group turns since its last
pass queued goes to every ready subscriber with one non-blocking write each,
one HTTP chunk carrying all of those events, so no task wakes per subscriber
per event. Only when the kernel's send buffer is full does the connection's
own task take over (``send_all``, waiting for the client) until its outbox
is drained. Each connection's task also sends the ``: ping`` heartbeat and
runs resyncs; the slow-consumer close policy ends the connection at once
(even a client that reads nothing); a reader task notices the client
leaving. Memory per connection is bounded: the outbox (``outbox_limit``)
plus at most one unsent chunk taken from it.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import trio

from .auth_lease import AuthLease
from .flusher import Flusher
from .outbox import Outbox
from .presence_wire import join_presence, leave_presence
from .settings import SLOW_CLOSE
from .sse import LAST_CHUNK, chunk, refresh_required_block, sse_block
from .sse_session import Admitted, leave

if TYPE_CHECKING:
    from .http import HttpServer

__all__ = ["DirectSSE"]

logger = logging.getLogger("runtime.server")

#: Bytes read (and dropped) at a time from a subscriber, to notice it leaving.
_READ_SIZE = 4096
_NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError)


class DirectSSE:
    """One subscription on its own socket: the flusher writes its outbox, its task does the rest."""

    def __init__(self, server: HttpServer, flusher: Flusher, stream: trio.SocketStream, admitted: Admitted) -> None:
        self.server = server
        self.stream = stream
        self.admitted = admitted
        self.outbox = Outbox(
            server.settings.outbox_limit, sse_block, metrics=server.metrics, on_overflow=self._overflowed,
            on_ready=flusher.mark if flusher.running else None,
            fd=stream.socket.fileno() if flusher.running else -1, wrap=chunk,
        )
        self._id = uuid.uuid4().hex
        #: (ext) the auth context's expiry: refresh_required, then the end of the response
        self.lease = AuthLease(admitted.auth_context, refresh_before=server.settings.refresh_before)
        self._slow = False
        self._joined = False
        self._scope = trio.CancelScope()

    def _overflowed(self) -> None:
        """The group dropped our backlog (called by the group actor). Under the close policy,
        end now: the client may read nothing at all, so its task must not wait to write."""
        if self.server.settings.slow_consumer == SLOW_CLOSE and not self._slow:
            self._slow = True
            self.outbox.detach()
            self.server.metrics.slow_consumer_closes += 1
            self._scope.cancel()

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
                self.outbox.last_write = trio.current_time()
                try:
                    await self._join(self.admitted.since)
                except Exception:  # noqa: BLE001 - the stream ends; EventSource will retry
                    logger.exception("SSE join to %s/%s failed", sub.stream_name, sub.group_id)
                    return
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._reader, nursery.cancel_scope)
                    if self.lease.expires_at is not None:
                        nursery.start_soon(self.lease.watch, self._refresh_required, self._expired)
                    await self._writer()
                    nursery.cancel_scope.cancel()
        except _NETWORK_ERRORS:
            pass  # the client went away
        finally:
            self.outbox.detach()  # from now on the flusher must not touch the descriptor: it may be reused
            server.open_outboxes.discard(self.outbox)
            self.outbox.close()
            server.metrics.connections["sse"] -= 1
            server.metrics.subscriptions["sse"] -= 1
            with trio.move_on_after(settings.shutdown_timeout, shield=True):
                await leave_presence(server.app, self.outbox, sub, self._id)
            await leave(server, self.outbox, sub, self._id, self.admitted.auth_context)
            if self._slow and not self.outbox.writing:
                with trio.move_on_after(1, shield=True):  # best effort: it may not be reading at all
                    # after any part of a chunk the socket did not take, so the body ends well-formed
                    await self.stream.send_all(self.outbox.take_unsent() + LAST_CHUNK)

    async def _join(self, since: tuple[str, int] | None) -> None:
        sub = self.admitted.subscription
        engine = self.server.app.engine
        await engine.join(self.outbox, sub.stream_name, sub.group_id, subscription_id=self._id,
                          item_id=sub.id, since=since)
        if self._joined:  # a resync: the registration stands, the list comes again after the new sync
            if self.admitted.presence:
                engine.presence.resend(self.outbox, sub.stream_name, sub.group_id, self._id)
            return
        self._joined = True
        await join_presence(self.server.app, self.outbox, sub, self._id, self.admitted.auth_context,
                            connection_id=self._id, listen=self.admitted.presence)

    def _refresh_required(self, expires_at: float) -> None:
        self.outbox.push_raw(refresh_required_block(expires_at))

    async def _expired(self) -> None:
        """The token lapsed: the response ends cleanly once what is queued is written; the client
        reconnects with a new token and its Last-Event-ID and resumes."""
        self.outbox.close()

    async def _reader(self, scope: trio.CancelScope) -> None:
        """A subscriber sends nothing after its request: reading only tells when it leaves."""
        try:
            while await self.stream.receive_some(_READ_SIZE):
                pass
        except _NETWORK_ERRORS:
            pass
        self.outbox.detach()
        scope.cancel()

    async def _writer(self) -> None:
        """Writes only what the flusher handed back, heartbeats, resyncs, and the final flush."""
        outbox, settings, metrics = self.outbox, self.server.settings, self.server.metrics
        while True:
            with trio.move_on_at(outbox.last_write + settings.sse_heartbeat) as quiet:
                await outbox.wait()
            if quiet.cancelled_caught:
                outbox.push_raw(b": ping\n\n")  # written by the flusher, or below when handed back
                outbox.last_write = trio.current_time()
                continue
            if outbox.needs_resync and not outbox.closed:  # the close policy never gets here: see _overflowed
                metrics.resyncs += 1
                sub = self.admitted.subscription
                outbox.begin_resync([(sub.stream_name, sub.group_id)])
                await self._join(None)  # a fresh sync replaces the dropped backlog
                continue
            if outbox.flushing and not outbox.closed:
                continue  # woken for the resync only: the flusher writes the events
            if not await outbox.write_out(self.stream) and outbox.closed:
                await self.stream.send_all(LAST_CHUNK)
                return
