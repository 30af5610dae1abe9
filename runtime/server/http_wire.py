"""HTTP/1.1 on the wire, sans I/O: request framing, the connection-ending rules, response heads.

Nothing here touches a socket. `RequestReader` turns the bytes a client
sends into events (`Request` heads, `Body` chunks, `EndOfMessage`, `BadRequest`),
pipelined requests in order; `Lifecycle` is the connection's state with its
transition table, in the manner of h11's ``_state.py``; `keep_alive` is the
one place that decides whether a connection survives a response; and
`response_head` formats what the server sends. The driver
(``front_door.py``) only moves bytes between these and the socket.

The framing is llhttp's (the parser of Node.js), through ``httptools``:
on this machine a minimal Trio server answered ~34.8k req/s with httptools
and ~10.5k with h11 (``wrk -t1 -c50``, docs/performance.md), and llhttp's
strict mode already refuses every request-smuggling shape we test
(``Content-Length`` with ``Transfer-Encoding``, two ``Content-Length``\\s,
obs-fold, bare CR or LF, a chunk size it cannot read). What llhttp leaves
to us is checked in `RequestReader._on_headers_complete`: the size of a head,
transfer codings other than ``chunked``, a ``Host``-less HTTP/1.1 request is
allowed (clients in tests and wrk send one anyway).
"""

from __future__ import annotations

import enum
import re
import time
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus

import httptools

__all__ = [
    "Request", "Body", "EndOfMessage", "BadRequest", "NEED_DATA", "RequestReader",
    "State", "Lifecycle", "LifecycleError", "keep_alive", "response_head", "chunk", "LAST_CHUNK",
    "MAX_HEAD", "CONTINUE", "valid_header", "clean_trace_id", "bodiless",
]

#: A request head (request line and headers) larger than this gets 431.
MAX_HEAD = 64 * 1024

#: The interim answer to ``Expect: 100-continue`` before the body is read.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Request:
    """One request head. Header names are lower-cased; values are the raw bytes the client sent."""

    __slots__ = ("method", "target", "version", "headers", "keep_alive", "chunked", "content_length",
                 "expect_continue", "upgrade")

    def __init__(self, method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]],
                 *, chunked: bool, content_length: int | None, upgrade: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.chunked = chunked
        self.content_length = content_length
        self.upgrade = upgrade
        connection = self.tokens(b"connection")
        # RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
        self.keep_alive = b"close" not in connection if version == "1.1" else b"keep-alive" in connection
        self.expect_continue = version == "1.1" and (self.header(b"expect") or b"").lower() == b"100-continue"

    def header(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """The last value of ``name`` (lower case), or ``default``."""
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return default

    def tokens(self, name: bytes) -> set[bytes]:
        """The comma-separated tokens of every ``name`` header, lower-cased."""
        return {token.strip().lower() for key, value in self.headers if key == name for token in value.split(b",")}

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target!r} HTTP/{self.version}>"


class Body:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class EndOfMessage:
    __slots__ = ()


class BadRequest:
    """The client sent something that cannot be framed: answer ``status`` and close."""

    __slots__ = ("status", "reason")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"<BadRequest {self.status} {self.reason}>"


class _NeedData:
    __repr__ = lambda self: "NEED_DATA"  # noqa: E731 - a one-line repr for a sentinel


#: `RequestReader.next_event` when it must be fed more bytes.
NEED_DATA = _NeedData()

Event = Request | Body | EndOfMessage | BadRequest | _NeedData
_END = EndOfMessage()


class RequestReader:
    """Bytes in, request events out: ``feed(data)`` then ``next_event()`` until `NEED_DATA`.

    Feed only once `NEED_DATA` came back, and the events waiting are bounded
    by what one ``feed`` carried. After a `BadRequest`, or after an upgrade
    request (``Upgrade:`` / ``CONNECT``: what follows is not HTTP), the reader
    is ``finished``: nothing more is parsed and the connection must end after
    its answer. End of input (``feed(b"")``) in the middle of a request is a
    client that left: ``next_event`` then returns `NEED_DATA` forever and
    ``eof`` is True.
    """

    def __init__(self, *, max_head: int = MAX_HEAD) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._events: deque[Event] = deque()
        self._max_head = max_head
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0  # bytes fed since the current head began, while it is incomplete
        self._head_size = 0  # its header lines' size, exactly
        self._in_head = False
        self._began = False  # a message began during the current feed
        self._in_message = False
        self.finished = False
        self.eof = False

    @property
    def idle(self) -> bool:
        """Between requests: nothing of a next request received yet."""
        return not self._in_message and not self._events

    def feed(self, data: bytes) -> None:
        if self.finished:
            return
        if not data:
            self.eof = True
            self.finished = True
            return
        self._began = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.finished = True  # the request is answered as any other; the connection then ends
        except httptools.HttpParserError as exc:
            if not self.finished:  # a callback below may have said why already
                self._fail(400, str(exc) or type(exc).__name__)
            return
        if self._in_head and not self.finished:
            # An incomplete head: what of it has arrived, never counting the pipelined bytes
            # before it (a head that began in this read counts its complete parts, the rest of
            # the read, at most RECEIVE_SIZE, is llhttp's to hold). Counting the whole read
            # refused a 150-byte head with 431 when it straddled a full read (tests/server/test_fuzz_http.py).
            self._head_bytes = len(self._url) + self._head_size if self._began else self._head_bytes + len(data)
            if self._head_bytes > self._max_head:
                self._fail(431, "request head too large")

    def next_event(self) -> Event:
        if self._events:
            return self._events.popleft()
        return NEED_DATA

    def _fail(self, status: int, reason: str) -> None:
        self.finished = True
        self._events.append(BadRequest(status, reason))

    # -- llhttp's callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = self._in_head = self._began = True
        self._url = b""
        self._headers = []
        self._head_bytes = 0
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser, headers = self._parser, self._headers
        if len(self._url) + self._head_size > self._max_head:
            self._fail(431, "request head too large")
            raise httptools.HttpParserError("request head too large")
        chunked, content_length = False, None
        for name, value in headers:
            if name == b"transfer-encoding":
                if value.strip().lower() != b"chunked":  # llhttp accepts "gzip, chunked": we decode no codings
                    self._fail(501, "only the chunked transfer coding is supported")
                    raise httptools.HttpParserError("unsupported transfer coding")
                chunked = True
            elif name == b"content-length":
                content_length = int(value)  # llhttp has checked it is digits and given once
        method = parser.get_method().decode("ascii")
        upgrade = parser.should_upgrade() or method == "CONNECT"
        self._events.append(Request(method, self._url, parser.get_http_version(), headers,
                                    chunked=chunked, content_length=content_length, upgrade=upgrade))

    def on_body(self, body: bytes) -> None:
        self._events.append(Body(body))

    def on_message_complete(self) -> None:
        self._in_message = False
        self._events.append(_END)


# -- the connection's lifecycle ----------------------------------------------------------------

class State(enum.Enum):
    IDLE = "idle"  # waiting for a request head (the keep-alive timeout runs)
    READING = "reading"  # a request head begun, or its body being read
    RESPONDING = "responding"  # the request is complete; its answer is being made and written
    STREAMING = "streaming"  # a response (step stream or SSE) whose body is written as it is made
    CLOSING = "closing"  # the last answer is written; the write side shuts, unread input is drained
    CLOSED = "closed"


class LifecycleError(Exception):
    """A transition the table does not allow: a bug in the driver, never the client's doing."""


#: What may follow what. Every way in which a connection ends goes through CLOSING or straight to
#: CLOSED, and nothing leaves CLOSED: the driver closes the socket on entering either.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.IDLE, "data"): State.READING,
    (State.IDLE, "eof"): State.CLOSED,
    (State.IDLE, "timeout"): State.CLOSED,
    (State.IDLE, "drain"): State.CLOSED,
    (State.READING, "request"): State.RESPONDING,
    (State.READING, "bad"): State.CLOSING,  # 400/413/431/501, then close: the framing is lost
    (State.READING, "eof"): State.CLOSED,
    (State.READING, "timeout"): State.CLOSED,
    (State.RESPONDING, "bad"): State.CLOSING,  # the head was fine, its body cannot be framed
    (State.RESPONDING, "stream"): State.STREAMING,
    (State.RESPONDING, "keep"): State.IDLE,
    (State.RESPONDING, "close"): State.CLOSING,
    (State.STREAMING, "keep"): State.IDLE,
    (State.STREAMING, "close"): State.CLOSING,
    (State.STREAMING, "gone"): State.CLOSED,
    (State.RESPONDING, "gone"): State.CLOSED,
    (State.CLOSING, "closed"): State.CLOSED,
}


class Lifecycle:
    """A connection's state; `advance` moves it by the table above."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.IDLE

    def advance(self, event: str) -> State:
        try:
            self.state = _TRANSITIONS[(self.state, event)]
        except KeyError:
            raise LifecycleError(f"{event!r} in state {self.state.name}") from None
        return self.state


def keep_alive(request: Request | None, *, body_read: bool, status: int, draining: bool = False,
               response_close: bool = False, close_delimited: bool = False) -> bool:
    """Whether the connection may carry another request after this response (RFC 9112 §9.3, §9.6).

    It does not when: the request could not be framed (``request`` None) or
    was an upgrade; the client asked to close (HTTP/1.1 ``Connection:
    close``, HTTP/1.0 without ``keep-alive``); the request's body was not
    read to its end (a 413, an early refusal: its unread rest would be taken
    for the next request); the response says ``Connection: close`` or ends
    when the connection does (a stream to an HTTP/1.0 client); or the server
    is shutting down. Each such response says ``Connection: close`` and the
    socket is then closed.
    """
    if request is None or request.upgrade or not request.keep_alive:
        return False
    return body_read and not (draining or response_close or close_delimited or status == 413)


# -- responses -----------------------------------------------------------------------------------

_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}
_STATUS_LINES: dict[int, bytes] = {}


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
    return line


_date_second = -1
_date_header = b""


def _date() -> bytes:
    """``date: ...\\r\\n``, formatted once a second."""
    global _date_second, _date_header  # noqa: PLW0603 - a cache of the clock, nothing else
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_header = b"date: " + time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode() + b"\r\n"
    return _date_header


def bodiless(status: int) -> bool:
    """Statuses whose responses never carry a body (RFC 9110 §6.4.1)."""
    return status < 200 or status in (204, 304)


def response_head(status: int, headers: Iterable[tuple[str, str]], *, content_length: int | None = None,
                  chunked: bool = False, keep: bool = True, http10: bool = False) -> bytes:
    """The status line and headers, ending with the blank line.

    ``headers`` must have passed `valid_header`; framing (``content-length``
    or ``transfer-encoding: chunked``), ``date`` and ``connection`` are
    written here, and any of them in ``headers`` is skipped. No ``server``
    header: this server claims to be nothing else.
    """
    parts = [_status_line(status)]
    for name, value in headers:
        if name.lower() in _FRAMING:
            continue
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    if not bodiless(status):
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        elif content_length is not None:
            parts.append(b"content-length: %d\r\n" % content_length)
    parts.append(_date())
    if not keep:
        parts.append(b"connection: close\r\n")
    elif http10:
        parts.append(b"connection: keep-alive\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


_FRAMING = frozenset({"content-length", "transfer-encoding", "connection", "date", "keep-alive"})


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk carrying ``data`` (never empty: an empty chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


#: The chunk that ends a chunked body.
LAST_CHUNK = b"0\r\n\r\n"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_VALUE = re.compile(r"[^\r\n\x00\u0100-\U0010ffff]*\Z")


def valid_header(name: str, value: str) -> bool:
    """A header a handler may send: a token name, a value without CR, LF or NUL, in latin-1."""
    return _TOKEN.match(name) is not None and _VALUE.match(value) is not None


def clean_trace_id(raw: bytes | None) -> str | None:
    """A client's ``X-Trace-Id`` when it is 1-128 visible ASCII characters; None (make a new one) otherwise.

    A trace id is echoed in the response and written to logs: anything else
    (non-ASCII, control characters, a huge value) is replaced, never refused.
    """
    if not raw or len(raw) > 128:
        return None
    if any(b < 0x21 or b > 0x7E for b in raw):
        return None
    return raw.decode("ascii")
