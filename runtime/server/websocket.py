"""The WebSocket transport: Motia's stream protocol on raw Trio sockets.

wsproto does the handshake and parses what clients send; what the server
sends is framed in `ws_protocol` (once per event: `event_frame`, the same
bytes in every matching connection's outbox). What a subscription
connection is — admission, the subscription table, leave and ``on_leave``,
the slow-consumer policy, the heartbeat, the writer — is the connection
layer's (`subscriptions.Subscriptions`): here a connection is its
handshake, a reader that turns client frames into layer calls strictly in
arrival order, and the refusal frames Motia's clients expect.

Frames are written by the server's one `Flusher` task, not by each
connection's writer: a fan-out to a thousand connections then costs one
task wake-up, not a thousand. The writer wakes only when its socket would
block, for a resync, and for the final flush when the connection closes.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import trio
from werkzeug.datastructures import Headers
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .auth import AuthRequest, Subscription, parse_query, token_from
from .flusher import Flusher
from .heartbeat import Heartbeat
from .listeners import NETWORK_ERRORS, Accepted, Listener
from .metrics import ServerMetrics
from .settings import ServerSettings
from .subscriptions import Joined, Refusal, Subscriptions
from .ws_protocol import (
    BadFrame,
    JoinCommand,
    RefreshCommand,
    bad_frame_error,
    close_frame,
    control_frame,
    event_frame,
    join_error_frame,
    not_found_frame,
    parse_client_message,
    ping_frame,
    refusal_frames,
)

if TYPE_CHECKING:
    from ..app import App

__all__ = ["WebSocketServer"]

logger = logging.getLogger("runtime.server")

CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 4008


#: What a client's broken WebSocket framing raises: its doing, not a bug (logged like a reset).
_PROTOCOL_ERRORS = (RemoteProtocolError, LocalProtocolError)


#: The answer to a request that is not a WebSocket upgrade we can read.
_BAD_UPGRADE = (b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 31\r\n"
                b"connection: close\r\n\r\nnot a WebSocket upgrade request")


def _bytes_after_request(ws: WSConnection) -> bytes:
    """What the client sent after its upgrade request, in the reads that carried the request.

    A client that sends its first frames without waiting for the 101 (RFC 6455
    says it must wait; some do not, and TCP may deliver both in one read) would
    otherwise lose them silently: wsproto's server handshake starts the frame
    parser without the bytes h11 read past the request
    (tests/server/test_websocket.py pins this, should wsproto change).
    """
    h11_connection = getattr(ws.handshake, "_h11_connection", None)
    return h11_connection.trailing_data[0] if h11_connection is not None else b""


class Connection:
    """One client on the stream port: its handshake, its frames, and its connection layer."""

    def __init__(self, server: WebSocketServer, stream: trio.SocketStream, accepted: Accepted | None = None) -> None:
        self.server = server
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        # the flusher writes to sockets; other streams (tests' memory streams) keep their own writer
        on_socket = isinstance(stream, trio.SocketStream)
        #: What this connection is to the streams: auth context, subscriptions, outbox, writer.
        self.subscriptions = Subscriptions(
            server.app, server.settings, server.metrics, "websocket", encode=event_frame,
            slow_close=close_frame(CLOSE_SLOW, "slow"), max_subscriptions=server.settings.ws_max_subscriptions,
            flusher=server.flusher if on_socket else None, fd=stream.socket.fileno() if on_socket else -1,
            heartbeat=server.heartbeat, ping=ping_frame(b"hb"),
            ping_timeout_close=close_frame(CLOSE_GOING_AWAY, "ping timeout"),
        )
        self.outbox = self.subscriptions.outbox
        self._early_events: list[Any] = []
        #: The listener's view of it (peer, stage): what its fault boundary logs and counts.
        self.accepted = accepted if accepted is not None else Accepted(stream, Accepted.peer_of(stream), "handshake")
        self.peer = self.accepted.peer

    @property
    def stage(self) -> str:
        """Where the connection is: the ``stage`` label of `runtime_connection_errors_total`."""
        return self.accepted.stage

    @stage.setter
    def stage(self, stage: str) -> None:
        self.accepted.stage = stage

    # -- lifecycle ------------------------------------------------------------------

    async def run(self) -> None:
        server = self.server
        try:
            if server.draining:
                return  # accepted just before the port stopped: closed unanswered, as a refusal would be
            with trio.move_on_after(server.settings.ws_handshake_timeout) as handshake:
                server.handshaking.add(handshake)  # a drain cancels it
                try:
                    accepted = await self._handshake()
                finally:
                    server.handshaking.discard(handshake)
            if handshake.cancelled_caught or not accepted:
                return
            self.stage = "frames"
            server.connections.add(self)
            try:
                async with self.subscriptions.connected(self.stream), trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, nursery.cancel_scope)
                    lease = self.subscriptions.lease
                    if lease is not None:
                        nursery.start_soon(lease.watch, self._refresh_required, self._expired)
                    await self._reader()
                    # the client said goodbye: flush what is queued, then stop
                    self.outbox.close()
            finally:
                server.connections.discard(self)
        finally:  # whatever ended it (a reset, a bug) goes on to the listener's fault boundary (listeners.py)
            with trio.move_on_after(1, shield=True):
                await self.stream.aclose()

    async def _writer(self, connection_scope: trio.CancelScope) -> None:
        await self.subscriptions.write()
        connection_scope.cancel()  # everything written: end the reader too

    def close(self, code: int, reason: str = "") -> None:
        """Queue a close frame and end the connection once it is written."""
        try:
            data = self.ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:
            data = close_frame(code, reason)
        self.outbox.push_raw(data)
        self.outbox.close()

    # -- handshake ------------------------------------------------------------------

    async def _handshake(self) -> bool:
        request = None
        received = 0
        while request is None:
            data = await self.stream.receive_some(16384)
            if not data:
                return False
            received += len(data)
            if received > 16384:
                await self.stream.send_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n")
                return False
            try:
                self.ws.receive_data(data)
                for event in self.ws.events():
                    if isinstance(event, Request):
                        request = event
                        break
            except (RemoteProtocolError, UnicodeError):
                # not a WebSocket upgrade (wsproto's refusal), or header bytes it cannot decode
                # (a non-ASCII Host or Connection raised UnicodeDecodeError: tests/server/test_fuzz_websocket.py)
                await self.stream.send_all(_BAD_UPGRADE)
                return False
        # the same shapes as over HTTP: case-insensitive headers, repeated query names as lists
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.extra_headers])
        target = urlsplit(request.target)
        query = parse_query(target.query)
        offered = list(request.subprotocols)
        subprotocol_token = None
        chosen = None
        if "Authorization" in offered:
            chosen = "Authorization"
            others = [p for p in offered if p != "Authorization"]
            subprotocol_token = others[0] if others else None
        auth_request = AuthRequest(
            headers=headers, path=target.path or "/", query_params=query, addr=self.peer,
            token=token_from(headers, query, subprotocol_token),
        )
        refusal = await self.subscriptions.authenticate(auth_request, headers.get("origin"))
        if refusal is not None:
            await self._reject(refusal)
            return False
        await self.stream.send_all(self.ws.send(AcceptConnection(subprotocol=chosen)))
        # Keep only the frame protocol: the handshake machinery (h11 and its
        # buffers) would cost ~3 KB for every idle connection (bench/fanout.py).
        self._early_events = list(self.ws.events())
        connection = self.ws.connection
        assert connection is not None  # the handshake was accepted just above
        early = _bytes_after_request(self.ws)
        if early:
            connection.receive_data(early)
            self._early_events += connection.events()
        self.ws = connection  # type: ignore[assignment]  # the frame protocol alone, from here on
        return True

    async def _reject(self, refusal: Refusal) -> None:
        body = orjson.dumps(refusal.body)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        data = self.ws.send(RejectConnection(status_code=refusal.status, headers=headers, has_body=True))
        data += self.ws.send(RejectData(data=body))
        await self.stream.send_all(data)

    # -- the reader -----------------------------------------------------------------

    async def _reader(self) -> None:
        message: list[Any] = []  # one message's frames: all str or all bytes
        size = 0
        limit = self.server.settings.ws_max_message
        # events wsproto had already parsed when the handshake completed
        pending: Any = self._early_events
        self._early_events = []
        while True:
            for event in pending:
                if isinstance(event, (TextMessage, BytesMessage)):
                    part = event.data  # the limit is in bytes: a text frame's are its UTF-8
                    size += len(part) if not isinstance(part, str) or part.isascii() else len(part.encode())
                    if size > limit:
                        self.close(CLOSE_TOO_BIG, "frame too big")
                        return
                    message.append(part)
                    if event.message_finished:
                        data = "".join(message) if isinstance(event, TextMessage) else b"".join(message)
                        message, size = [], 0
                        await self.outbox.wait_for_room()  # what the client causes is bounded here
                        await self._handle(data)
                elif isinstance(event, Ping):
                    await self.outbox.wait_for_room()
                    self.outbox.push_raw(self.ws.send(event.response()))
                elif isinstance(event, Pong):
                    self.server.heartbeat.answered(self.subscriptions)
                elif isinstance(event, CloseConnection):
                    try:
                        self.outbox.push_raw(self.ws.send(event.response()))
                    except LocalProtocolError:
                        pass
                    return
            data = await self.stream.receive_some(65536)
            if not data:
                return  # the peer went away without a close frame
            self.ws.receive_data(data)
            pending = self.ws.events()

    # -- protocol -------------------------------------------------------------------

    @property
    def auth_context(self) -> Any:
        return self.subscriptions.auth_context

    async def _handle(self, data: str | bytes) -> None:
        command = parse_client_message(data)
        if isinstance(command, BadFrame):
            self.outbox.push_raw(bad_frame_error(command.message))
            return
        async with self.subscriptions.lock:
            if isinstance(command, JoinCommand):
                await self._join(command)
            elif isinstance(command, RefreshCommand):
                await self._refresh(command)
            else:
                await self.subscriptions.leave(command.subscription_id)

    async def _join(self, command: JoinCommand) -> None:
        subscription = Subscription(command.stream, command.group, command.item_id)
        options = {"presence": command.presence, "presence_data": command.presence_data} if command.presence else {}
        refusal = await self.subscriptions.join(command.subscription_id, subscription, since=command.since,
                                                options=options)
        if refusal is not None:
            self.outbox.push_raw(refusal_frame(refusal, subscription, self.server.app.engine.clock()))

    # -- token refresh and expiry (ext: docs/websocket.md, auth_lease.py) -------------

    def _refresh_required(self, expires_at: float) -> None:
        self.outbox.push_raw(control_frame("refresh_required", {"expiresAt": expires_at}))

    async def _refresh(self, command: RefreshCommand) -> None:
        """A new token: re-authenticate; refused subscriptions end, the others go on with no gap."""
        subscriptions = self.subscriptions
        refusal = await subscriptions.renew(command.token)
        if refusal is not None:
            self.outbox.push_raw(bad_frame_error(refusal.message, refusal.code))
            return  # the old context, and its expiry, stay
        assert subscriptions.lease is not None  # renewed just above
        self.outbox.push_raw(control_frame("refreshed", {"expiresAt": subscriptions.lease.expires_at}))
        await subscriptions.recheck(lambda _, joined: self._tell_refused(
            joined, "STREAM_ACCESS_DENIED", "access to this stream is denied with the new token"))

    async def _expired(self) -> None:
        """The auth context lapsed unrefreshed: every subscription ends as refused; the connection stays."""
        async with self.subscriptions.lock:
            await self.subscriptions.end_all(lambda _, joined: self._tell_refused(
                joined, "TOKEN_EXPIRED", "the token has expired"))

    def _tell_refused(self, joined: Joined, code: str, message: str) -> None:
        sub = joined.subscription
        self.outbox.push_raw(refusal_frames(sub.stream_name, sub.group_id, sub.id, self.server.app.engine.clock(),
                                            message, code=code))


def refusal_frame(refusal: Refusal, subscription: Subscription, timestamp: int) -> bytes:
    """A refused join, in its envelope: what Motia's clients expect for each refusal."""
    stream, group, item_id = subscription.stream_name, subscription.group_id, subscription.id
    if refusal.code == "STREAM_NOT_FOUND":
        return not_found_frame(stream, group, item_id, timestamp)
    if refusal.code in ("STREAM_ACCESS_DENIED", "TOKEN_EXPIRED"):
        return refusal_frames(stream, group, item_id, timestamp, refusal.message, code=refusal.code)
    return join_error_frame(stream, group, item_id, timestamp, refusal.code, refusal.message)


class WebSocketServer:
    """Accepts connections on the stream port and owns their tasks."""

    def __init__(self, app: App, settings: ServerSettings, metrics: ServerMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.connections: set[Connection] = set()
        #: Writes every connection's frames (see flusher.py); runs in `serve`'s nursery.
        self.flusher: Flusher | None = Flusher()
        #: Pings every connection and closes the silent ones; runs in `serve`'s nursery.
        self.heartbeat = Heartbeat(ping_interval=settings.ws_ping_interval, pong_timeout=settings.ws_pong_timeout)
        #: The stream port's accept loop and fault boundary (listeners.py).
        self.listener = Listener("stream", self.handle, metrics, first_stage="handshake",
                                 network_errors=(*NETWORK_ERRORS, *_PROTOCOL_ERRORS))
        self.draining = False
        #: The cancel scopes of handshakes in progress: a drain ends them.
        self.handshaking: set[trio.CancelScope] = set()

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept until `drain`; the connections run in this nursery (the caller cancels it at the end)."""
        async with trio.open_nursery() as nursery:
            if self.flusher is not None:
                await nursery.start(self.flusher.run)
            await nursery.start(self.heartbeat.run)
            host, port = await self.listener.open(self.settings.stream_port, self.settings.host,
                                                  reuse_port=self.settings.reuse_port)
            await nursery.start(self.listener.serve, nursery)
            task_status.started(f"ws://{host}:{port}")

    async def handle(self, accepted: Accepted) -> None:
        """One connection, behind the listener's fault boundary (listeners.py)."""
        await Connection(self, accepted.stream, accepted).run()

    def drain(self, code: int = CLOSE_GOING_AWAY) -> None:
        """Shutdown begins: the port stops accepting (new connections are refused), handshakes in
        progress end unanswered, and every open connection gets ``code`` (1001) once its queue is written."""
        self.draining = True
        self.listener.stop()
        for handshake in list(self.handshaking):
            handshake.cancel()
        self.close_all(code)

    def close_all(self, code: int = CLOSE_GOING_AWAY) -> None:
        """Every connection gets ``code`` (1001) once its queue is written."""
        for connection in list(self.connections):
            connection.close(code, "server shutting down")
