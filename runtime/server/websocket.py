"""The WebSocket stream listener: Motia's stream protocol on raw Trio sockets.

wsproto does the handshake and parses what clients send; what the server
sends is framed here, once per event (`ws_protocol.event_frame`), and the
same bytes go to every matching connection's outbox. Each connection is a
small actor with two tasks in its own nursery — a reader that handles
frames strictly in arrival order, and a writer; its pings come from the
server's one `Heartbeat` (heartbeat.py) — and a cleanup that
runs however the connection ends (client close, network drop, slow-consumer
policy, server shutdown) and leaves nothing behind: no task, no
registration in any group, no buffer.

Frames are written by the server's one `Flusher` task, not by each
connection's writer: a fan-out to a thousand connections then costs one
task wake-up, not a thousand. The writer wakes only when its socket would
block (it then writes, waiting until writable, and hands the outbox back
once drained), for a resync, and for the final flush when the connection
closes.
"""

from __future__ import annotations

import logging
import uuid
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

from actors import ActorStopped

from ..errors import StreamNotFound
from .auth import (
    AuthRequest,
    Refused,
    Subscription,
    authenticate,
    check_access,
    notify_leave,
    parse_query,
    token_from,
)
from .auth_lease import AuthLease, renew, still_allowed
from .flusher import Flusher
from .heartbeat import Heartbeat
from .listeners import NETWORK_ERRORS, Accepted, Listener
from .metrics import ServerMetrics
from .outbox import Outbox
from .presence_wire import join_presence, leave_presence
from .settings import SLOW_CLOSE, ServerSettings
from .ws_protocol import (
    BadFrame,
    JoinCommand,
    LeaveCommand,
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


#: How a connection that the network dropped shows itself: nothing to report.
_NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, RemoteProtocolError, LocalProtocolError)


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
    """One client: its subscriptions, its outbox, its tasks."""

    def __init__(self, server: WebSocketServer, stream: trio.SocketStream, accepted: Accepted | None = None) -> None:
        self.server = server
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        # the flusher writes to sockets; other streams (tests' memory streams) keep their own writer
        flusher = server.flusher if isinstance(stream, trio.SocketStream) else None
        if flusher is not None and not flusher.running:
            flusher = None
        self.outbox = Outbox(
            server.settings.outbox_limit, event_frame, metrics=server.metrics, on_overflow=self._overflowed,
            on_ready=None if flusher is None else flusher.mark,
            fd=-1 if flusher is None else stream.socket.fileno(),
        )
        #: (code, reason) when the connection is being ended at once (slow-consumer close, ping
        #: timeout): its tasks are cancelled and the close frame is written best effort.
        self._abort: tuple[int, str] | None = None
        self.subscriptions: dict[str, tuple[str, str, str | None]] = {}
        #: (ext) the subscriptions that asked for presence events (resent after a resync)
        self.presence_listeners: set[str] = set()
        #: the auth context and its expiry (auth_lease.py); the request it came from, for a refresh
        self.lease: AuthLease | None = None
        self.auth_request: AuthRequest | None = None
        #: joins, leaves, refreshes and the expiry change the subscription table one at a time
        self._table = trio.Lock()
        self.id = uuid.uuid4().hex
        self._early_events: list[Any] = []
        #: Heartbeat bookkeeping (heartbeat.py): pings sent, and the last one a pong answered.
        self.pings_sent = 0
        self.pings_answered = 0
        self._open = False
        self._cancel: trio.CancelScope | None = None
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
            self._open = True
            server.heartbeat.watch(self)
            server.metrics.connections["websocket"] += 1
            try:
                with trio.CancelScope() as self._cancel:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._writer, nursery.cancel_scope)
                        if self.lease is not None:
                            nursery.start_soon(self.lease.watch, self._refresh_required, self._expired)
                        await self._reader()
                        # the client said goodbye: flush what is queued, then stop
                        self.outbox.close()
            finally:
                self.outbox.detach()  # the flusher never writes to a connection that is ending
                self._open = False
                server.connections.discard(self)
                server.metrics.connections["websocket"] -= 1
                with trio.move_on_after(server.settings.shutdown_timeout, shield=True):
                    await self._cleanup()
                if self._abort is not None and not self.outbox.writing:
                    with trio.move_on_after(1, shield=True):  # best effort: it may not be reading at all
                        # after any part of a frame the socket did not take, so the close frame stays whole
                        await self.stream.send_all(self.outbox.take_unsent() + close_frame(*self._abort))
        finally:  # whatever ended it (a reset, a bug) goes on to the listener's fault boundary (listeners.py)
            with trio.move_on_after(1, shield=True):
                await self.stream.aclose()

    async def _cleanup(self) -> None:
        self.outbox.close()
        for subscription_id in list(self.subscriptions):
            await self._leave(subscription_id)

    def _overflowed(self) -> None:
        """The group dropped our backlog. Under the close policy, end now: the
        writer may be stuck on a client that reads nothing, and must not wait."""
        if self.server.settings.slow_consumer == SLOW_CLOSE and self._abort is None:
            self.server.metrics.slow_consumer_closes += 1
            self._end_now(CLOSE_SLOW, "slow")

    def _end_now(self, code: int, reason: str) -> None:
        """End the connection without waiting for its client to read what is queued."""
        if self._abort is None:
            self._abort = (code, reason)
            self.outbox.flushing = False
            if self._cancel is not None:
                self._cancel.cancel()

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
        settings = self.server.settings
        if not settings.origin_allowed(headers.get("origin")):
            await self._reject(403, "ORIGIN_NOT_ALLOWED", "this origin may not subscribe")
            return False
        peer = self.peer
        auth_request = AuthRequest(
            headers=headers, path=target.path or "/", query_params=query, addr=peer,
            token=token_from(headers, query, subprotocol_token),
        )
        try:
            auth_context = await authenticate(self.server.app.authenticate, auth_request)
        except Refused as refused:
            await self._reject(refused.status, refused.code, str(refused))
            return False
        self.auth_request = auth_request
        self.lease = AuthLease(auth_context, refresh_before=settings.refresh_before)
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

    async def _reject(self, status: int, code: str, message: str) -> None:
        body = orjson.dumps({"error": {"code": code, "message": message}})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        data = self.ws.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += self.ws.send(RejectData(data=body))
        await self.stream.send_all(data)

    # -- tasks ----------------------------------------------------------------------

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
                    self.server.heartbeat.answered(self)
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

    async def _writer(self, connection_scope: trio.CancelScope) -> None:
        """Writes only what the flusher handed back, resyncs, and the final flush."""
        outbox = self.outbox
        while True:
            await outbox.wait()
            if self._abort is not None:
                await trio.sleep_forever()  # already cancelled: ending at once
            if outbox.needs_resync and not outbox.closed:
                await self._resync()
            if outbox.flushing and not outbox.closed:
                continue  # woken for the resync only: the flusher writes the frames
            if not await outbox.write_out(self.stream) and outbox.closed:
                connection_scope.cancel()  # everything written: end the reader too
                return

    # -- heartbeat (called by the server's `Heartbeat`) -----------------------------

    @property
    def open(self) -> bool:
        return self._open

    def ping(self) -> None:
        self.outbox.push_raw(ping_frame(b"hb"))

    def timed_out(self) -> None:
        # at once: a client that answers no ping may read nothing either, and a queued close
        # frame would wait behind everything it has not read
        self._end_now(CLOSE_GOING_AWAY, "ping timeout")

    # -- protocol -------------------------------------------------------------------

    @property
    def auth_context(self) -> Any:
        return None if self.lease is None else self.lease.context

    async def _handle(self, data: str | bytes) -> None:
        command = parse_client_message(data)
        if isinstance(command, BadFrame):
            self.outbox.push_raw(bad_frame_error(command.message))
            return
        async with self._table:
            if isinstance(command, JoinCommand):
                await self._join(command)
            elif isinstance(command, RefreshCommand):
                await self._refresh(command)
            else:
                await self._leave_command(command)

    # -- token refresh and expiry (ext: docs/websocket.md, auth_lease.py) -------------

    def _refresh_required(self, expires_at: float) -> None:
        self.outbox.push_raw(control_frame("refresh_required", {"expiresAt": expires_at}))

    async def _refresh(self, command: RefreshCommand) -> None:
        """A new token: re-authenticate; refused subscriptions end, the others go on with no gap."""
        assert self.lease is not None and self.auth_request is not None  # set by the handshake
        try:
            context = await renew(self.server.app, self.auth_request, command.token)
        except Refused as refused:
            self.outbox.push_raw(bad_frame_error(str(refused), "REFRESH_FAILED"))
            return  # the old context, and its expiry, stay
        self.lease.replace(context)
        self.outbox.push_raw(control_frame("refreshed", {"expiresAt": self.lease.expires_at}))
        engine = self.server.app.engine
        for subscription_id, (stream, group, item_id) in list(self.subscriptions.items()):
            subscription = Subscription(stream, group, item_id)
            if not await still_allowed(engine.definition(stream).config, subscription, context):
                self.outbox.push_raw(refusal_frames(stream, group, item_id, engine.clock(),
                                                    "access to this stream is denied with the new token"))
                await self._leave(subscription_id)

    async def _expired(self) -> None:
        """The auth context lapsed unrefreshed: every subscription ends as refused; the connection stays."""
        async with self._table:
            clock = self.server.app.engine.clock
            for subscription_id, (stream, group, item_id) in list(self.subscriptions.items()):
                self.outbox.push_raw(refusal_frames(stream, group, item_id, clock(), "the token has expired",
                                                    code="TOKEN_EXPIRED"))
                await self._leave(subscription_id)

    async def _join(self, command: JoinCommand) -> None:
        server = self.server
        engine = server.app.engine
        timestamp = engine.clock()
        most = server.settings.ws_max_subscriptions
        if command.subscription_id not in self.subscriptions and len(self.subscriptions) >= most:
            self.outbox.push_raw(join_error_frame(
                command.stream, command.group, command.item_id, timestamp, "TOO_MANY_SUBSCRIPTIONS",
                f"at most {most} subscriptions per connection"))
            return
        try:
            definition = engine.definition(command.stream)
        except StreamNotFound:
            self.outbox.push_raw(not_found_frame(command.stream, command.group, command.item_id, timestamp))
            return
        subscription = Subscription(command.stream, command.group, command.item_id)
        if self.lease is not None and self.lease.expired:
            self.outbox.push_raw(refusal_frames(command.stream, command.group, command.item_id, timestamp,
                                                "the token has expired: refresh it first", code="TOKEN_EXPIRED"))
            return
        try:
            await check_access(server.app, definition.config, subscription, self.auth_context)
        except Refused as refused:
            frames = refusal_frames(command.stream, command.group, command.item_id, timestamp, str(refused))
            self.outbox.push_raw(frames)
            return
        previous = self.subscriptions.get(command.subscription_id)
        if previous is not None and previous[:2] != (command.stream, command.group):
            await self._leave(command.subscription_id)  # replaced by a join elsewhere: on_leave, uncounted
            previous = None
        try:
            await engine.join(self.outbox, command.stream, command.group, subscription_id=command.subscription_id,
                              item_id=command.item_id, since=command.since)
        except Exception as exc:  # noqa: BLE001 - answered to this client only
            logger.error("websocket join to %s/%s failed: %r", command.stream, command.group, exc)
            self.outbox.push_raw(join_error_frame(command.stream, command.group, command.item_id, engine.clock(),
                                                  "JOIN_FAILED", f"join failed: {type(exc).__name__}"))
            await self._notify_leave(subscription)  # on_join ran for a join that was not made
            return
        if previous is None:
            server.metrics.subscriptions["websocket"] += 1
        else:  # replaced in the same group: the registration was swapped, the old one has left
            if previous[2] is None and command.item_id is not None:  # (group -> group: join_presence replaces)
                await leave_presence(server.app, self.outbox, Subscription(*previous), command.subscription_id)
            await self._notify_leave(Subscription(*previous))
        self.subscriptions[command.subscription_id] = (command.stream, command.group, command.item_id)
        self.presence_listeners.discard(command.subscription_id)
        if command.presence:
            self.presence_listeners.add(command.subscription_id)
        await join_presence(server.app, self.outbox, subscription, command.subscription_id, self.auth_context,
                            connection_id=self.id, listen=command.presence, client_data=command.presence_data)

    async def _leave_command(self, command: LeaveCommand) -> None:
        if command.subscription_id in self.subscriptions:
            await self._leave(command.subscription_id)

    async def _leave(self, subscription_id: str) -> None:
        stream, group, item_id = self.subscriptions.pop(subscription_id)
        self.presence_listeners.discard(subscription_id)
        self.server.metrics.subscriptions["websocket"] -= 1
        await leave_presence(self.server.app, self.outbox, Subscription(stream, group, item_id), subscription_id)
        try:
            await self.server.app.engine.leave(self.outbox, stream, group, subscription_id)
        except (ActorStopped, RuntimeError):
            pass  # the engine is gone (shutdown): so is the registration
        await self._notify_leave(Subscription(stream, group, item_id))

    async def _notify_leave(self, subscription: Subscription) -> None:
        try:
            await notify_leave(self.server.app, subscription, self.auth_context)
        except Exception:  # noqa: BLE001 - a failing hook must not stop the cleanup
            logger.exception("on_leave for %s/%s raised", subscription.stream_name, subscription.group_id)

    async def _resync(self) -> None:
        """Dropped backlog: a fresh sync for every subscription, in order."""
        self.server.metrics.resyncs += 1
        engine = self.server.app.engine
        subscriptions = list(self.subscriptions.items())
        self.outbox.begin_resync((stream, group) for _, (stream, group, _) in subscriptions)
        for subscription_id, (stream, group, item_id) in subscriptions:
            try:
                await engine.join(self.outbox, stream, group, subscription_id=subscription_id, item_id=item_id)
            except Exception as exc:  # noqa: BLE001 - one group's resync fails alone, the rest go on
                logger.error("resync of %s/%s failed: %r", stream, group, exc)
                self.outbox.abandon_resync(stream, group)
            if self.subscriptions.get(subscription_id) != (stream, group, item_id):
                # left (or replaced) while we re-joined: undo the registration we just made
                await engine.leave(self.outbox, stream, group, subscription_id)
            elif subscription_id in self.presence_listeners:
                engine.presence.resend(self.outbox, stream, group, subscription_id)


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
                                 network_errors=(*NETWORK_ERRORS, *_NETWORK_ERRORS))
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
