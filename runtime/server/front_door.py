"""The HTTP port: every connection, from its first byte to its end, on the raw Trio socket.

`FrontDoor.handle` is the per-connection handler: it reads requests with
`http_wire.RequestReader` (httptools' llhttp: pipelined requests answered in
order), applies the connection's rules (`http_wire.keep_alive`, moved by
`http_wire.Lifecycle`) and hands each complete request to `routes.Routes`;
an SSE subscription (``GET <prefix>/<stream>/<group>[/<item>]``) goes to
the SSE transport (`sse.SSEConnection`: admitted by the connection layer, `subscriptions.py`).

How a connection ends, whatever the route (docs/http.md, "Connection rules"):

* a response that says ``Connection: close`` is followed by the end of the
  connection: the write side is shut at once (the client reads EOF) and the
  socket closed; when unread input may be pending (a 413, a request that
  could not be framed, pipelined bytes), what the client still sends is read
  and dropped for up to `LINGER` seconds first, so that closing does not
  reset the connection before the client has read the answer;
* an idle keep-alive connection is closed after ``keep_alive_timeout``
  between any two requests, not only before the first;
* a client that half-closes after its request (``shutdown(SHUT_WR)``, as
  ``nc -N`` does) still gets its answer: end of input is acted on only once
  the requests already received are answered;
* when the server drains (`drain`), idle connections close at once and a
  request in flight is answered with ``Connection: close``.

Anything a client does ends its own connection only: whatever escapes
`handle` is caught, logged and counted by the listener's fault boundary
(`listeners.Listener`), which also owns accepting and stopping it.
"""

from __future__ import annotations

import logging
import math
import select
from typing import TYPE_CHECKING, Any

import trio
from werkzeug.datastructures import Headers

from ..steps.context import new_trace_id
from .auth import Subscription
from .flusher import Flusher
from .heartbeat import Heartbeat
from .http_wire import (
    CONTINUE,
    NEED_DATA,
    BadRequest,
    Body,
    EndOfMessage,
    Lifecycle,
    Request,
    RequestReader,
    State,
    bodiless,
    clean_trace_id,
    keep_alive,
    response_head,
)
from .listeners import NETWORK_ERRORS, Accepted, Listener
from .presence_wire import is_presence_read, read_presence
from .routes import Reply, Routes, Streamed, json_reply, split_target
from .sse import SSEConnection
from .sse_wire import SSE_HEADERS, subscription_target

if TYPE_CHECKING:
    from .http import HttpServer

__all__ = ["FrontDoor", "HttpConnection", "LINGER", "RECEIVE_SIZE"]

logger = logging.getLogger("runtime.server")

#: Bytes asked of the socket per read: a 1 MiB body in 16 reads, a pipelined burst of small requests in one.
RECEIVE_SIZE = 64 * 1024
#: Seconds a closing connection keeps reading (and dropping) what its client still sends.
LINGER = 1.0
#: Bytes a closing connection drops at most while lingering.
LINGER_BYTES = 4 * 1024 * 1024


class _Gone(Exception):
    """The client went away (end of input before its request was complete, or a broken socket)."""


class _Unframed(Exception):
    """The request's body could not be framed: answer its `BadRequest` and close."""

    def __init__(self, bad: BadRequest) -> None:
        self.bad = bad


def _readable(sock: Any) -> bool:
    """Whether input (or its end) is waiting, without reading it."""
    try:
        return bool(select.select([sock.fileno()], [], [], 0)[0])
    except (OSError, ValueError):
        return False


class FrontDoor:
    """The HTTP port: its `listeners.Listener`, and its connections, each served by an `HttpConnection`."""

    def __init__(self, server: HttpServer, *, keep_alive_timeout: float = 75.0, backlog: int = 2048) -> None:
        self.server = server
        self.routes = Routes(server)
        self.flusher = Flusher()
        #: The ``: ping`` of quiet SSE streams, from one task (heartbeat.py).
        self.heartbeat = Heartbeat(ping_interval=server.settings.sse_heartbeat, pong_timeout=None)
        self.keep_alive_timeout = keep_alive_timeout
        self._backlog = backlog
        self.draining = False
        self._idle: set[HttpConnection] = set()  # connections waiting for their next request
        self.open = 0  # connections being served, for tests and shutdown
        server.front_door = self

    def drain(self) -> None:
        """Shutdown begins: idle connections close now, requests in flight are answered with close."""
        self.draining = True
        for connection in list(self._idle):
            connection.cancel()

    async def watch(self, draining: trio.Event) -> None:
        """`drain` once ``draining`` is set."""
        await draining.wait()
        self.drain()

    async def handle(self, accepted: Accepted) -> None:
        """One connection, behind its listener's fault boundary (listeners.py), which closes it after."""
        self.open += 1
        connection = HttpConnection(self, accepted.stream)
        try:
            await connection.run()
        finally:
            self.open -= 1
            accepted.stage = connection.lifecycle.state.value  # for the boundary's line, should it have failed
            accepted.trace_id = connection.trace_id

    # -- the port ---------------------------------------------------------------------------------

    async def serve(self, shutdown: trio.Event, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Accept until ``shutdown``; then new connections are refused at once, idle ones close,
        and requests in flight and streams end within the grace period."""
        settings = self.server.settings
        listener = Listener("http", self.handle, self.server.metrics, first_stage=State.IDLE.value)
        host, port = await listener.open(settings.port, settings.host, backlog=self._backlog,
                                         reuse_port=settings.reuse_port)
        try:
            async with trio.open_nursery() as outer:
                await outer.start(self.flusher.run)
                await outer.start(self.heartbeat.run)
                async with trio.open_nursery() as connections:
                    await connections.start(listener.serve, connections)
                    task_status.started([f"http://{host}:{port}"])
                    await shutdown.wait()
                    listener.stop()  # new connections are refused from now on
                    self.drain()
                    # SSE streams were closed by the server and end once written; requests in flight
                    # finish: all within the grace period.
                    connections.cancel_scope.deadline = trio.current_time() + settings.shutdown_timeout
                outer.cancel_scope.cancel()  # the flusher and the heartbeat
        finally:
            listener.stop()


class HttpConnection:
    """One HTTP/1.1 connection: requests in, answers out, in order, until one of the rules ends it."""

    __slots__ = ("door", "stream", "reader", "lifecycle", "http10", "trace_id", "_deadline", "_nursery")

    def __init__(self, door: FrontDoor, stream: trio.SocketStream) -> None:
        self.door = door
        self.stream = stream
        self.reader = RequestReader()
        self.lifecycle = Lifecycle()
        self.http10 = False
        #: The trace id of the request being answered (the fault boundary's log line names it).
        self.trace_id: str | None = None
        self._deadline = trio.current_time() + door.keep_alive_timeout
        #: The connection's one nursery: its cancel scope is the read timeout (a deadline set only
        #: while reading), the drain of an idle connection, and a streaming client's leaving; a
        #: stream's writer runs in it. One scope per connection, not one per request or read.
        self._nursery: trio.Nursery | None = None

    # -- the Connection protocol routes.py writes streams through -----------------------------------

    async def send(self, data: bytes) -> None:
        # The socket's own send: SocketStream.send_all's conflict detector and error
        # translation cost ~5 us a call, and this task is the connection's only writer
        # (a stream's writer runs while the connection's task waits for the handler).
        sock = self.stream.socket
        sent = await sock.send(data)
        if sent < len(data):
            view = memoryview(data)
            while sent < len(data):
                sent += await sock.send(view[sent:])

    async def watch(self) -> None:
        """Read while a response streams: the end of input means the client left. Bytes of a
        pipelined next request are kept (fed to the reader), up to one head's worth."""
        reader = self.reader
        try:
            while len(reader._events) < 64:
                data = await self.stream.receive_some(RECEIVE_SIZE)
                if not data:
                    return
                reader.feed(data)
                if reader.finished:
                    break
        except NETWORK_ERRORS:
            return
        await trio.sleep_forever()  # enough is buffered: the writer's end cancels this

    def start_soon(self, fn: Any, *args: Any) -> None:
        """Run ``fn`` beside the connection's task (a stream's writer), ending with the connection."""
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)

    def cancel(self) -> None:
        """End the connection now, whatever it is doing (its client left, or it idles at a drain)."""
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    # -- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        lifecycle = self.lifecycle
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._serve()
        if nursery.cancel_scope.cancelled_caught and lifecycle.state is not State.CLOSED:
            if lifecycle.state in (State.IDLE, State.READING):
                lifecycle.advance("drain" if self.door.draining and lifecycle.state is State.IDLE else "timeout")
            else:
                lifecycle.state = State.CLOSED  # a streaming client left, mid-answer

    async def _serve(self) -> None:
        reader, lifecycle = self.reader, self.lifecycle
        try:
            while True:
                event = reader.next_event()
                if lifecycle.state is State.IDLE and event is not NEED_DATA:
                    lifecycle.advance("data")
                if event is NEED_DATA:
                    if reader.finished:  # end of input, or after an upgrade request: nothing more to answer
                        lifecycle.advance("eof")
                        return
                    if not await self._receive():
                        return
                    continue
                if type(event) is Request:
                    lifecycle.advance("request")
                    if not await self._request(event):
                        return
                    self._deadline = trio.current_time() + self.door.keep_alive_timeout
                elif type(event) is BadRequest:
                    await self._refuse(event)
                    return
                # a stray Body / EndOfMessage cannot happen: _request reads its body to the end
        except _Gone:
            if lifecycle.state is not State.CLOSED:
                lifecycle.state = State.CLOSED

    async def _receive(self) -> bool:
        """Feed the reader the next bytes (end of input included); False at a drain. A timeout
        cancels the connection (its nursery's deadline, set only while reading)."""
        reader, door = self.reader, self.door
        idle = reader.idle
        if idle and door.draining:
            self.lifecycle.advance("drain")
            return False
        assert self._nursery is not None
        scope = self._nursery.cancel_scope
        scope.deadline = self._deadline  # expiry cancels the connection: run() says why
        if idle:
            door._idle.add(self)
        try:
            data = await self.stream.socket.recv(RECEIVE_SIZE)
        except NETWORK_ERRORS:
            data = b""
        finally:
            scope.deadline = math.inf
            if idle:
                door._idle.discard(self)
        reader.feed(data)
        return True

    async def _body(self, request: Request, limit: int) -> bytes | None:
        """The request's body to its end; None when it is over ``limit`` (the rest stays unread)."""
        reader = self.reader
        parts: list[bytes] = []
        size = 0
        while True:
            event = reader.next_event()
            if event is NEED_DATA:
                if reader.finished:
                    if request.upgrade and not reader.eof:
                        return b"".join(parts)  # what follows an upgrade request is not its body
                    raise _Gone
                self._deadline = trio.current_time() + self.door.keep_alive_timeout
                if not await self._receive():
                    raise _Gone
                continue
            if isinstance(event, Body):
                size += len(event.data)
                if size > limit:
                    return None
                parts.append(event.data)
            elif isinstance(event, EndOfMessage):
                return parts[0] if len(parts) == 1 else b"".join(parts)
            elif isinstance(event, BadRequest):  # in the body: a chunk size it cannot read, ...
                raise _Unframed(event)

    async def _request(self, request: Request) -> bool:
        """Answer one request; True when the connection carries on."""
        door, settings = self.door, self.door.server.settings
        routes = door.routes
        self.http10 = request.version == "1.0"
        trace_id = self.trace_id = clean_trace_id(request.header(b"x-trace-id")) or new_trace_id()
        if request.version == "1.1" and not request.has_body:
            target = subscription_target(settings.sse_prefix, request.method.encode(), request.target,
                                         request.headers)
            if target is not None:
                return await self._subscribe(request, target, trace_id)
        limit = settings.body_limit
        if request.content_length is not None and request.content_length > limit:
            await self._reply(request, routes.too_large(request, trace_id), keep=False)
            return await self._end(False, linger=True)
        if request.expect_continue and request.has_body:
            await self.send(CONTINUE)
        try:
            body = await self._body(request, limit)
        except _Unframed as unframed:
            return await self._refuse(unframed.bad)
        if body is None:
            await self._reply(request, routes.too_large(request, trace_id), keep=False)
            return await self._end(False, linger=True)
        path, query = split_target(request.target)
        answer = await routes.answer(request, path, query, body, trace_id, self)
        if isinstance(answer, Streamed):
            door.server.metrics.http_requests[answer.status] += 1
            keep = answer.complete and keep_alive(request, body_read=True, status=answer.status,
                                                  draining=door.draining, close_delimited=answer.close)
            self.lifecycle.advance("stream")
            return await self._end(keep)
        keep = keep_alive(request, body_read=True, status=answer.status, draining=door.draining,
                          response_close=answer.close)
        await self._reply(request, answer, keep=keep)
        return await self._end(keep)

    async def _end(self, keep: bool, *, linger: bool = False) -> bool:
        """After an answer: carry on, or close (the state table's "keep" / "close")."""
        self.lifecycle.advance("keep" if keep else "close")
        if not keep:
            await self._close(linger=linger)
        return keep

    async def _refuse(self, bad: BadRequest) -> bool:
        """A request that cannot be framed: its answer, then the end (the framing is lost)."""
        self.lifecycle.advance("bad")
        await self._reply(None, self.door.routes.bad_request(bad.status, bad.reason, new_trace_id()), keep=False)
        await self._close(linger=True)
        return False

    async def _reply(self, request: Request | None, reply: Reply, *, keep: bool) -> None:
        head = response_head(reply.status, reply.headers, content_length=len(reply.body), keep=keep,
                             http10=self.http10)
        self.door.server.metrics.http_requests[reply.status] += 1
        if (request is not None and request.method == "HEAD") or bodiless(reply.status):
            await self.send(head)  # a 1xx, 204 or 304 has no body whatever the handler gave
        else:
            await self.send(head + reply.body if len(reply.body) < 65536 else head)
            if len(reply.body) >= 65536:
                await self.send(reply.body)

    async def _close(self, *, linger: bool) -> None:
        """The write side shuts now (the client reads EOF after the last answer); unread input
        is read and dropped for a bounded time first when some may be pending."""
        if self.lifecycle.state is State.CLOSING:
            self.lifecycle.advance("closed")
        stream = self.stream
        try:
            await stream.send_eof()
        except NETWORK_ERRORS:
            return
        if not (linger or not self.reader.idle or _readable(stream.socket)):
            return
        dropped = 0
        with trio.move_on_after(0.05 if self.door.draining else LINGER):
            try:
                while dropped < LINGER_BYTES:
                    data = await stream.receive_some(RECEIVE_SIZE)
                    if not data:
                        return
                    dropped += len(data)
            except NETWORK_ERRORS:
                return

    # -- SSE -------------------------------------------------------------------------------------

    async def _subscribe(self, request: Request, target: tuple[str, list[str], dict[str, Any]], trace_id: str) -> bool:
        """Admit an SSE subscription and hand the connection to the SSE transport; a refusal is
        an ordinary answer (the connection goes on by the same rules as any other)."""
        door = self.door
        server = door.server
        try:
            await self._body(request, 0)  # a GET without a body: its end of message
        except _Unframed as unframed:
            return await self._refuse(unframed.bad)
        path, parts, query = target
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers])
        try:
            peer = self.stream.socket.getpeername()
        except OSError:
            raise _Gone from None  # reset before we could look at it
        if is_presence_read(parts, headers):  # (ext) who is there, as JSON
            status, body = await read_presence(server, parts[0], parts[1], headers=headers, path=path, query=query,
                                               addr=tuple(peer[:2]) if peer else None)
            keep = keep_alive(request, body_read=True, status=status, draining=door.draining)
            await self._reply(request, json_reply(status, body, door.routes.common(request, trace_id)), keep=keep)
            return await self._end(keep)
        sse = SSEConnection(server, self.stream, Subscription(*parts), flusher=door.flusher,
                            heartbeat=door.heartbeat)
        refusal = await sse.admit(headers=headers, path=path, query=query, addr=tuple(peer[:2]) if peer else None)
        common = door.routes.common(request, trace_id)
        if refusal is not None:
            keep = keep_alive(request, body_read=True, status=refusal.status, draining=door.draining)
            await self._reply(request, json_reply(refusal.status, refusal.body, common), keep=keep)
            return await self._end(keep)
        self.lifecycle.advance("stream")
        # connection: close — the stream ends with its connection (at shutdown, at a token's expiry),
        # so a client must not send its reconnect on this one
        head = response_head(200, [*((k.lower(), v) for k, v in SSE_HEADERS), *common], chunked=True, keep=False)
        server.metrics.http_requests[200] += 1
        await sse.run(head)
        self.lifecycle.advance("gone")  # an SSE stream ends with its connection
        return False

