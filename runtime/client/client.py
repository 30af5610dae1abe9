"""`StreamClient`: subscriptions to a stream server over one WebSocket, on Trio.

::

    async with StreamClient("ws://127.0.0.1:3112", token="...") as client:
        todos = await client.subscribe_group("todo", "inbox", sort_key="title")
        print(todos.get_state())
        async for change in todos:
            ...

``async with`` owns a nursery holding the connection task: connect (the
token as the ``Authorization`` subprotocol pair, as Motia's clients send
it), join every subscription — with ``since`` = its last position when it
has one, so a reconnect replays what was missed inside the history window
— read frames and apply them in arrival order; when the connection ends,
wait (exponential backoff with jitter, on the Trio clock) and connect again.

Inside a connection: a reader (frames → subscriptions), a writer (the only
task that sends joins and leaves, so the order of joins on the wire is the
order in which their answers are matched) and a pinger (no pong within
``ping_timeout`` ends the connection), in the connection's own nursery.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import orjson
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, HandshakeError, open_websocket_url

from .errors import (
    ClientClosed,
    ConnectError,
    Forbidden,
    HandshakeRejected,
    ServerError,
    StreamClientError,
    SubscriptionRefused,
    Unauthorized,
)
from .protocol import (
    JOIN_ERROR_CODES,
    ControlFrame,
    ErrorFrame,
    MalformedFrame,
    Room,
    StreamFrame,
    backoff_delay,
    frame_rooms,
    join_message,
    leave_message,
    parse_frame,
    refresh_message,
)
from .subscription import GroupSubscription, ItemSubscription, Subscription, _call

__all__ = ["StreamClient", "TokenSource"]

logger = logging.getLogger("runtime.client")

#: A token, or a callable (sync or async) asked for the current token before each connection attempt.
TokenSource = str | None | Callable[[], str | None | Awaitable[str | None]]

#: Connection states, as `StreamClient.state` and connection listeners see them.
IDLE, CONNECTING, CONNECTED, DISCONNECTED, FAILED, CLOSED = (
    "idle", "connecting", "connected", "disconnected", "failed", "closed",
)

_TRANSIENT = (HandshakeError, OSError, ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)


def _bad_token(token: str) -> str | None:
    """Why ``token`` cannot travel in ``Sec-WebSocket-Protocol`` (comma-separated, latin-1), if it cannot."""
    if "," in token or any(ord(ch) < 0x20 or ord(ch) > 0x7E for ch in token):
        return "a token sent as a WebSocket subprotocol must be printable ASCII without commas"
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HandshakeError) and exc.__cause__ is not None and not str(exc):
        exc = exc.__cause__  # e.g. the OSError of a refused connection
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StreamClient:
    """A connection to a stream server, shared by any number of subscriptions.

    ``url``: ``ws://host:port/`` or ``wss://...``. ``token``: sent as the
    ``Authorization`` subprotocol pair; a callable is asked before each
    connection attempt (then a 401 is retried, for the token may change;
    with a fixed token a 401 or 403 is final: every subscription fails with
    `Unauthorized` / `Forbidden` and the client stops).

    Reconnection: after a lost connection or a failed attempt the client
    waits ``backoff_initial × 2^n`` seconds (capped at ``backoff_max``,
    ±``backoff_jitter``), on the Trio clock; ``n`` restarts at 0 once a
    connection has answered a join. ``reconnect=False`` fails every
    subscription with `ConnectError` instead.

    ``change_buffer``: the default bound of each change iterator;
    ``replay_buffer``: how many frames a pending resume may hold;
    ``ping_interval`` / ``ping_timeout``: the client's own heartbeat (0
    disables it); ``on_error``: a first error listener (see `on_error`).
    """

    def __init__(
        self,
        url: str,
        token: TokenSource = None,
        *,
        reconnect: bool = True,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_jitter: float = 0.2,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        change_buffer: int = 256,
        replay_buffer: int = 10_000,
        max_message_size: int = 64 * 1024 * 1024,
        message_queue_size: int = 16,
        on_error: Callable[[BaseException], Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            raise ValueError(f"a stream URL starts with ws:// or wss://, not {url!r}")
        if isinstance(token, str) and _bad_token(token):
            raise ValueError(_bad_token(token))
        if change_buffer < 1 or replay_buffer < 1:
            raise ValueError("change_buffer and replay_buffer must be at least 1")
        self.url = url
        self._token = token
        self.reconnect = reconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.backoff_jitter = backoff_jitter
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.change_buffer = change_buffer
        self.replay_buffer = replay_buffer
        self.max_message_size = max_message_size
        self.message_queue_size = message_queue_size
        self._rng = rng or random.Random()
        #: Successful connections so far (a reconnect makes it 2).
        self.connections = 0
        self._subs: dict[str, Subscription] = {}
        self._rooms: dict[Room, list[Subscription]] = {}
        self._pending: deque[Subscription] = deque()  # joins on the wire, in wire order, unanswered
        self._outgoing: deque[tuple[str, Subscription, bool, trio.Event | None]] = deque()
        self._writer_wake = trio.Event()
        self._refusing: tuple[Room, Subscription] | None = None
        #: (ext) live subscriptions the server just ended (``unauthorized``): the error event
        #: that follows says why (a refused refresh, an expired token)
        self._ending: tuple[Room, list[Subscription]] | None = None
        #: (ext) subscriptions ended by an expired token, re-joined once a refresh succeeds
        self._expired: list[Subscription] = []
        self._refreshing = False
        #: (ext) the connection's auth expiry as the server last said (seconds since the epoch), or None
        self.expires_at: float | None = None
        #: (ext) successful token refreshes on live connections
        self.refreshes = 0
        self._connection_nursery: trio.Nursery | None = None
        self._ws: Any = None
        self._state = IDLE
        self._last_error: BaseException | None = None
        self._state_changed = trio.Event()
        self._fatal: StreamClientError | None = None
        self._closed = False
        self._answered = False
        self._opened = False
        self._close_detail = ""
        self._error_listeners: list[Callable[[BaseException], Any]] = [on_error] if on_error else []
        self._connection_listeners: list[Callable[[str, BaseException | None], Any]] = []
        self._run_scope = trio.CancelScope()
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"<StreamClient {self.url} {self._state}, {len(self._subs)} subscription(s)>"

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> StreamClient:
        if self._stack is not None:
            raise RuntimeError("a StreamClient is used in one `async with` block, once")
        async with AsyncExitStack() as stack:
            nursery = await stack.enter_async_context(trio.open_nursery())
            nursery.start_soon(self._run)
            stack.push_async_callback(self.close)  # runs first on exit, then the nursery ends
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> bool | None:
        assert self._stack is not None
        try:
            return await self._stack.__aexit__(exc_type, exc, traceback)
        except BaseExceptionGroup as group:
            # The connection task handles its own errors, so a group holding only the
            # body's exception is that exception: raise it as it was, not wrapped.
            if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                context = exc.__context__
                try:
                    raise exc  # noqa: B904 - the original, with its own cause and context
                finally:
                    exc.__context__ = context
                    del exc, context
            raise

    async def close(self) -> None:
        """Close every subscription and the connection (a close frame, bounded by ``close_timeout``)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        closed = ClientClosed("the stream client is closed")
        for sub in list(self._subs.values()):
            sub._finish(closed)
        ws = self._ws
        if ws is not None:
            with trio.move_on_after(self.close_timeout, shield=True):
                try:
                    await ws.aclose(1000, "client closed")
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass
        self._run_scope.cancel()
        self._set_state(CLOSED, None)

    # -- public -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``idle``, ``connecting``, ``connected``, ``disconnected`` (waiting to retry), ``failed``, ``closed``."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == CONNECTED

    @property
    def error(self) -> StreamClientError | None:
        """The error that stopped the client for good (a rejected handshake), if any."""
        return self._fatal

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subs.values())

    async def subscribe_group(self, stream: str, group: str, sort_key: str | None = None, *,
                              presence: bool = False, presence_data: Any = None) -> GroupSubscription:
        """Subscribe to a whole group; returns once its first sync has arrived.

        (ext) ``presence=True`` also keeps the group's presence (`GroupSubscription.presence`),
        with ``presence_data`` (a JSON object, at most 1 KiB encoded) as this subscription's own.

        Raises `SubscriptionRefused` (``STREAM_ACCESS_DENIED``, ``STREAM_NOT_FOUND``...),
        `Unauthorized` / `Forbidden` when the handshake is rejected, `ClientClosed`.
        While the server is unreachable it keeps waiting (the client retries):
        bound it with ``trio.fail_after`` if needed; a cancelled call leaves nothing behind.
        """
        sub = GroupSubscription(self, stream, group, sort_key, presence=presence, presence_data=presence_data)
        await self._subscribe(sub)
        return sub

    async def subscribe_item(self, stream: str, group: str, id: str) -> ItemSubscription:  # noqa: A002 - Motia's name
        """Subscribe to one item; returns once its first sync has arrived (see `subscribe_group`)."""
        if not isinstance(id, str) or not id:
            raise ValueError("an item subscription needs a non-empty item id")
        sub = ItemSubscription(self, stream, group, id)
        await self._subscribe(sub)
        return sub

    async def wait_connected(self) -> None:
        """Until the client is connected. Raises the error of the next failed attempt
        (`ConnectError`, `HandshakeRejected`) instead, or `ClientClosed`."""
        while True:
            self._check_usable()
            if self._state == CONNECTED:
                await trio.lowlevel.checkpoint()
                return
            changed = self._state_changed
            await changed.wait()
            if self._state == DISCONNECTED and self._last_error is not None:
                raise self._last_error

    def on_error(self, listener: Callable[[BaseException], Any]) -> None:
        """``listener(error)`` for what no waiting call can raise: a re-join refused after a
        reconnect (`SubscriptionRefused`), a rejected handshake (`HandshakeRejected`), an
        error frame or an unreadable frame from the server (`ServerError`)."""
        self._error_listeners.append(listener)

    def on_connection_change(self, listener: Callable[[str, BaseException | None], Any]) -> None:
        """``listener(state, error)`` on each change of `state`; ``error`` says why a
        connection ended or an attempt failed (a `ConnectError` or `HandshakeRejected`)."""
        self._connection_listeners.append(listener)

    # -- subscriptions --------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise ClientClosed("the stream client is closed")
        if self._stack is None:
            raise RuntimeError("use the client inside `async with StreamClient(...) as client:`")

    async def _subscribe(self, sub: Subscription) -> None:
        self._check_usable()
        self._subs[sub.subscription_id] = sub
        self._rooms.setdefault(sub.room, []).append(sub)
        self._enqueue(("join", sub, False, None))
        try:
            await sub._wait_ready()
        except BaseException:
            if not sub._finished:  # cancelled while waiting: leave nothing behind
                with trio.CancelScope(shield=True):
                    await sub.close()
            raise

    def _enqueue(self, entry: tuple[str, Subscription, bool, trio.Event | None]) -> None:
        """Queue a join or leave for the writer; without a connection the next one re-joins everything."""
        if self._ws is None:
            if entry[3] is not None:
                entry[3].set()
            return
        self._outgoing.append(entry)
        self._writer_wake.set()

    def _rejoin(self, sub: Subscription, *, fresh: bool) -> None:
        self._enqueue(("join", sub, fresh, None))

    async def _leave(self, sub: Subscription) -> None:
        if self._ws is None or self._closed:
            await trio.lowlevel.checkpoint()
            return
        sent = trio.Event()
        self._enqueue(("leave", sub, False, sent))
        with trio.move_on_after(self.close_timeout):
            await sent.wait()

    def _forget(self, sub: Subscription) -> None:
        self._subs.pop(sub.subscription_id, None)
        room = self._rooms.get(sub.room)
        if room is not None and sub in room:
            room.remove(sub)
            if not room:
                del self._rooms[sub.room]

    def _pop_pending(self, room: Room | None) -> Subscription | None:
        """The oldest unanswered join in ``room`` (or the oldest at all): answers come in join order."""
        for index, sub in enumerate(self._pending):
            if room is None or sub.room == room:
                del self._pending[index]
                return sub
        return None

    # -- errors and states ------------------------------------------------------------------

    def _report(self, error: BaseException) -> None:
        if not self._error_listeners:
            logger.warning("stream client: %s", error)
        for listener in list(self._error_listeners):
            _call(listener, error)

    def _set_state(self, state: str, error: BaseException | None) -> None:
        self._state = state
        self._last_error = error
        changed, self._state_changed = self._state_changed, trio.Event()
        changed.set()
        for listener in list(self._connection_listeners):
            _call(listener, state, error)

    def _refuse(self, sub: Subscription, code: str, message: Any, data: Any = None) -> None:
        if code == "TOKEN_EXPIRED" and callable(self._token) and not self._closed and not sub._finished:
            # (ext) not the end: a new token from the source, then the same join again (resumed)
            sub._awaiting = False
            self._expired.append(sub)
            self._start_refresh()
            return
        error = SubscriptionRefused(
            code, str(message or code), stream=sub.stream, group=sub.group, item_id=sub.item_id
        )
        if sub._fail(error, refusal_data=data):
            self._report(error)

    def _fail_all(self, error: StreamClientError) -> None:
        self._fatal = error
        for sub in list(self._subs.values()):
            sub._fail(error)
        self._report(error)
        self._set_state(FAILED, error)

    async def _token_now(self) -> str | None:
        source = self._token
        if not callable(source):
            return source or None
        token = source()
        if inspect.isawaitable(token):
            token = await token
        return token or None

    # -- token refresh (ext: docs/client.md) ----------------------------------------------------

    def _control(self, frame: ControlFrame) -> None:
        if frame.type == "refresh_required":
            self.expires_at = frame.expires_at
            if callable(self._token):
                self._start_refresh()
            else:
                logger.info("stream client: the server asks for a new token, and the token is fixed: "
                            "pass token= as a callable to refresh it")
            return
        # refreshed
        self.expires_at = frame.expires_at
        self.refreshes += 1
        self._refreshing = False
        expired, self._expired = self._expired, []
        for sub in expired:
            if not sub._finished:
                self._rejoin(sub, fresh=False)  # resumes from its position: nothing is missed

    def _start_refresh(self) -> None:
        nursery = self._connection_nursery
        if self._refreshing or nursery is None:
            return
        self._refreshing = True
        nursery.start_soon(self._refresh, self._ws)

    async def _refresh(self, ws: Any) -> None:
        """Ask the token source, send ``refresh``; the answer comes as ``refreshed`` or ``REFRESH_FAILED``."""
        try:
            token = await self._token_now()
        except Exception as exc:  # noqa: BLE001 - reported; the server's expiry decides what follows
            self._refreshing = False
            self._report(ServerError("TOKEN_SOURCE_FAILED", f"the token source raised {exc!r}"))
            return
        if not token or _bad_token(token):
            self._refreshing = False
            self._report(ServerError("BAD_TOKEN", "the token source gave no usable token"))
            return
        try:
            await ws.send_message(refresh_message(token))
        except ConnectionClosed:
            self._refreshing = False  # the next connection authenticates with a fresh token anyway

    # -- the connection task ------------------------------------------------------------------

    async def _run(self) -> None:
        with self._run_scope:
            attempt = 0
            while not self._closed:
                self._answered = self._opened = False
                self._close_detail = ""
                self._set_state(CONNECTING, None)
                error: StreamClientError
                try:
                    await self._connection()
                    error = ConnectError(f"connection to {self.url} lost" + (
                        f" ({self._close_detail})" if self._close_detail else ""))
                except HandshakeRejected as rejected:
                    error = rejected
                except _TRANSIENT as exc:
                    error = ConnectError(
                        f"connection to {self.url} lost ({self._close_detail or _describe(exc)})" if self._opened
                        else f"cannot connect to {self.url}: {_describe(exc)}"
                    )
                    error.__cause__ = exc
                if self._closed:
                    return
                if isinstance(error, (Unauthorized, Forbidden)) and not callable(self._token):
                    self._fail_all(error)
                    return
                if isinstance(error, HandshakeRejected):
                    self._report(error)
                if not self.reconnect:
                    self._fail_all(error)
                    return
                if self._answered:
                    attempt = 0
                self._set_state(DISCONNECTED, error)
                delay = backoff_delay(
                    attempt, initial=self.backoff_initial, maximum=self.backoff_max, jitter=self.backoff_jitter,
                    rng=self._rng,
                )
                attempt += 1
                logger.info("stream client: %s; reconnecting in %.2fs", error, delay)
                await trio.sleep(delay)

    async def _connection(self) -> None:
        try:
            token = await self._token_now()
        except Exception as exc:  # noqa: BLE001 - reported, and asked again next attempt
            raise HandshakeRejected(0, "TOKEN_SOURCE_FAILED", f"the token source raised {exc!r}") from exc
        if token is not None and _bad_token(token):
            raise HandshakeRejected(0, "BAD_TOKEN", _bad_token(token) or "")
        try:
            async with open_websocket_url(
                self.url,
                subprotocols=["Authorization", token] if token else None,
                connect_timeout=self.connect_timeout,
                disconnect_timeout=self.close_timeout,
                message_queue_size=self.message_queue_size,
                max_message_size=self.max_message_size,
            ) as ws:
                await self._serve(ws)
        except ConnectionRejected as exc:
            raise self._rejected(exc) from None

    @staticmethod
    def _rejected(exc: ConnectionRejected) -> HandshakeRejected:
        status = exc.status_code or 0
        code, message = None, f"the server refused the connection (HTTP {status})"
        try:
            error = orjson.loads(exc.body or b"")["error"]
            code, message = str(error["code"]), f"HTTP {status} {error['code']}: {error['message']}"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
        kind = Unauthorized if status == 401 else Forbidden if status == 403 else HandshakeRejected
        return kind(status, code, message, exc.body)

    async def _serve(self, ws: Any) -> None:
        async with trio.open_nursery() as nursery:
            # one synchronous step: every subscription is re-joined exactly once,
            # by this connection, and new ones made from now on are queued here too
            self._ws = ws
            self._opened = True
            self._pending.clear()
            self._refusing = self._ending = None
            self._expired.clear()  # this connection re-joins them, with a fresh token
            self._refreshing = False
            self._connection_nursery = nursery
            subs = list(self._subs.values())
            for sub in subs:
                sub._disconnected()
            self._outgoing = deque(("join", sub, False, None) for sub in subs)
            self._writer_wake = trio.Event()
            self.connections += 1
            self._set_state(CONNECTED, None)
            nursery.start_soon(self._writer, ws)
            if self.ping_interval > 0:
                nursery.start_soon(self._pinger, ws, nursery.cancel_scope)
            try:
                await self._reader(ws)
            finally:
                self._ws = None
                self._connection_nursery = None
                for _, _, _, sent in self._outgoing:
                    if sent is not None:
                        sent.set()
                self._outgoing.clear()
                self._pending.clear()
                refusing, self._refusing = self._refusing, None
                if refusing is not None:
                    self._refuse(refusing[1], "STREAM_ACCESS_DENIED", "the join was refused")
                for sub in list(self._subs.values()):
                    sub._disconnected()
                nursery.cancel_scope.cancel()

    async def _reader(self, ws: Any) -> None:
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed as closed:
                reason = closed.reason
                if reason is not None and not self._close_detail:
                    self._close_detail = f"code {reason.code}" + (f" {reason.reason}" if reason.reason else "")
                return
            await self._dispatch(parse_frame(message))

    async def _writer(self, ws: Any) -> None:
        try:
            while True:
                while self._outgoing:
                    kind, sub, fresh, sent = self._outgoing.popleft()
                    try:
                        if kind == "join":
                            if sub._finished:
                                continue
                            since = sub._begin_join(fresh)
                            self._pending.append(sub)
                            group_sub = sub if isinstance(sub, GroupSubscription) and sub.wants_presence else None
                            await ws.send_message(join_message(
                                sub.stream, sub.group, sub.subscription_id, sub.item_id, since,
                                presence=group_sub is not None,
                                presence_data=group_sub.presence_data if group_sub is not None else None))
                        else:
                            await ws.send_message(leave_message(sub.stream, sub.group, sub.subscription_id,
                                                                sub.item_id))
                    finally:
                        if sent is not None:
                            sent.set()
                self._writer_wake = trio.Event()
                await self._writer_wake.wait()
        except ConnectionClosed:
            return  # the reader sees the close too

    async def _pinger(self, ws: Any, connection: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.ping_interval)
            with trio.move_on_after(self.ping_timeout) as waited:
                try:
                    await ws.ping()
                except ConnectionClosed:
                    return
            if waited.cancelled_caught:
                self._close_detail = f"no pong within {self.ping_timeout:g}s"
                connection.cancel()
                return

    # -- frames -----------------------------------------------------------------------------

    async def _dispatch(self, frame: StreamFrame | ErrorFrame | ControlFrame | MalformedFrame) -> None:
        if isinstance(frame, MalformedFrame):
            self._report(ServerError("MALFORMED_FRAME", f"{frame.reason}: {frame.text}"))
            return
        if isinstance(frame, ControlFrame):
            self._control(frame)
            return
        if isinstance(frame, ErrorFrame) and frame.code == "REFRESH_FAILED":
            self._refreshing = False
            self._report(ServerError(frame.code, frame.message))
            return
        if isinstance(frame, ErrorFrame):
            if frame.code in JOIN_ERROR_CODES:
                sub = self._pop_pending(None)  # these errors answer the oldest unanswered join
                if sub is not None:
                    self._refuse(sub, frame.code, frame.message)
                    return
            self._report(ServerError(frame.code, frame.message))
            return
        room = frame.room
        refusal = frame.refusal_code
        ending, self._ending = self._ending, None
        if ending is not None:
            if refusal is not None and ending[0] == room:  # why the server ended them
                for sub in ending[1]:
                    self._refuse(sub, refusal, frame.data.get("message"), frame.data)
                return
            for sub in ending[1]:
                self._refuse(sub, "STREAM_ACCESS_DENIED", "the subscription was ended by the server")
        refusing, self._refusing = self._refusing, None
        if refusing is not None:
            if refusal is not None and refusing[0] == room:  # the error event that follows "unauthorized"
                self._refuse(refusing[1], refusal, frame.data.get("message"), frame.data)
                return
            self._refuse(refusing[1], "STREAM_ACCESS_DENIED", "the join was refused")
        kind = frame.type
        if kind == "unauthorized":
            sub = self._pop_pending(room)
            if sub is not None:
                self._refusing = (room, sub)  # completed by the error event with its message
            else:  # (ext) live subscriptions ended: a refresh refused them, or the token expired
                live = [s for s in self._rooms.get(room, ()) if s._synced and not s._awaiting]
                if live:
                    self._ending = (room, live)
            return
        if refusal is not None:
            sub = self._pop_pending(room)
            if sub is not None:
                self._refuse(sub, refusal, frame.data.get("message"), frame.data)
                return
            # no join waits in this room: an ordinary custom event named "error"
        if kind == "sync":
            self._answered = True
            answer = self._pop_pending(room)
            for sub in list(self._rooms.get(room, ())):
                if sub is answer:
                    await sub._answer_sync(frame)
                else:
                    await sub._other_sync(frame, solicited=answer is not None)
            return
        if kind == "resumed":
            self._answered = True
            answer = self._pop_pending(room)
            if answer is not None:
                await answer._answer_resumed(frame)
            return
        for target in frame_rooms(frame):
            for sub in list(self._rooms.get(target, ())):
                await sub._frame(frame)
