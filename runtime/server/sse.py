"""The SSE transport: one subscription on its own socket, the bytes of its response.

The front door (`front_door.py`) hands over a connection whose first request
is ``GET <prefix>/<stream>/<group>[/<item>]`` (`sse_wire.subscription_target`).
Everything a subscription connection is — admission, the group registration,
``on_leave``, the slow-consumer policy, the heartbeat, the writer — is the
connection layer's (`subscriptions.Subscriptions`); this module only frames:
the response head and the ``retry:`` hint go first (`Outbox.preface`), then
each event as an SSE block (`sse_wire.sse_block`), each write one HTTP chunk,
the ``: ping`` keep-alive when the stream is quiet, (ext) ``refresh_required``
before the auth context's expiry, and the last chunk at the end (at the
expiry too: the client reconnects with a new token and resumes). A reader
task notices the client leaving (a subscriber sends nothing after its request).

The body is written by the server's `Flusher` (`flusher.py`, the one
mechanism WebSocket connections use too): what the group turns since its
last pass queued goes to every ready subscriber with one non-blocking write
each, one HTTP chunk carrying all of those events, so no task wakes per
subscriber per event. Memory per connection is bounded: the outbox
(``outbox_limit``) plus at most one unsent chunk taken from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from .auth import AuthRequest, Subscription, token_from
from .listeners import NETWORK_ERRORS
from .sse_wire import LAST_CHUNK, chunk, refresh_required_block, resume_position, sse_block
from .subscriptions import Refusal, Subscriptions

if TYPE_CHECKING:
    from .auth import HeaderMap
    from .flusher import Flusher
    from .heartbeat import Heartbeat
    from .http import HttpServer

__all__ = ["SSEConnection", "PING"]

#: The keep-alive comment sent when a stream has been quiet for ``sse_heartbeat`` seconds.
PING = b": ping\n\n"
#: Bytes read (and dropped) at a time from a subscriber, to notice it leaving.
_READ_SIZE = 4096


class SSEConnection:
    """One SSE subscription on its socket: `admit`, then `run` until closed or gone."""

    def __init__(self, server: HttpServer, stream: trio.SocketStream, subscription: Subscription, *,
                 flusher: Flusher | None, heartbeat: Heartbeat | None) -> None:
        self.server = server
        self.stream = stream
        self.subscription = subscription
        self.subscriptions = Subscriptions(
            server.app, server.settings, server.metrics, "sse", encode=sse_block, wrap=chunk,
            slow_close=LAST_CHUNK, max_subscriptions=1, flusher=flusher, fd=stream.socket.fileno(),
            heartbeat=heartbeat, ping=PING,
        )
        #: One subscription per connection: it goes by the connection's id.
        self._id = self.subscriptions.id
        self._since: tuple[str, int] | None = None
        self._options: dict[str, Any] = {}

    async def admit(self, *, headers: HeaderMap, path: str, query: Mapping[str, Any],
                    addr: tuple[str, int] | None) -> Refusal | None:
        """The connection layer's admission (origin, authenticate, stream, can_access, on_join);
        None when admitted. The resume position is read here too."""
        request = AuthRequest(headers=headers, path=path, query_params=query, addr=addr,
                              token=token_from(headers, query))
        subscriptions = self.subscriptions
        refusal = await subscriptions.authenticate(request, headers.get("Origin"))
        if refusal is None:
            refusal = await subscriptions.check(self._id, self.subscription)
        self._since = resume_position(headers, query)
        if query.get("presence") == "true" and self.subscription.id is None:
            self._options = {"presence": True}  # (ext) presence events after the sync
        return refusal

    async def run(self, head: bytes) -> None:
        """Write the head, join, serve until closed or gone; the layer cleans up whatever happened."""
        server, subscriptions = self.server, self.subscriptions
        outbox = subscriptions.outbox
        server.open_outboxes.add(outbox)
        try:
            async with subscriptions.connected(self.stream):
                # before the join queues the sync: the head is the first thing on the wire
                outbox.preface(head + chunk(f"retry: {server.settings.sse_retry_ms}\n\n".encode()))
                refusal = await subscriptions.attach(self._id, self.subscription, since=self._since,
                                                     options=self._options)
                if refusal is not None:
                    subscriptions.end_now(LAST_CHUNK)  # the head, then the end: EventSource retries
                    return
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._reader, nursery.cancel_scope)
                        lease = subscriptions.lease
                        if lease is not None and lease.expires_at is not None:
                            nursery.start_soon(lease.watch, self._refresh_required, self._expired)
                        await subscriptions.write(last=LAST_CHUNK)
                        nursery.cancel_scope.cancel()
                except NETWORK_ERRORS:
                    pass  # the client went away
        finally:
            server.open_outboxes.discard(outbox)

    def _refresh_required(self, expires_at: float) -> None:
        self.subscriptions.outbox.push_raw(refresh_required_block(expires_at))

    async def _expired(self) -> None:
        """The token lapsed: the response ends cleanly once what is queued is written; the client
        reconnects with a new token and its Last-Event-ID and resumes."""
        self.subscriptions.outbox.close()

    async def _reader(self, scope: trio.CancelScope) -> None:
        """A subscriber sends nothing after its request: reading only tells when it leaves."""
        try:
            while await self.stream.receive_some(_READ_SIZE):
                pass
        except NETWORK_ERRORS:
            pass
        self.subscriptions.outbox.detach()
        scope.cancel()
