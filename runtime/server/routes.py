"""What the HTTP port answers: /health, /metrics, CORS preflights, step routes and their streams.

The connection driver (``front_door.py``) frames each request and hands it
here whole (head and body); this module decides the answer and, for a
streaming step response, writes it as the handler makes it. Routing is the
step runtime's (``app.steps.call_http``), so a route behaves the same in
process and over the network. SSE subscriptions are recognised by the
driver and go to the SSE transport; everything else is here.

A step handler runs in the connection's own task: a plain response costs
no task and no channel. Only when the handler writes to its streaming
response does a writer task start (`ResponseStream.on_first_write`), with a
watcher that notices the client leaving and cancels the handler (its
``finally`` blocks run), as protocol.md says.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

import orjson
import trio

from ..steps.inputs import ApiRequest, ApiResponse
from .auth import parse_query
from .cors import cors_headers
from .http_wire import LAST_CHUNK, Request, chunk, response_head, valid_header
from .metrics import render_metrics
from .responses import ResponseStream

if TYPE_CHECKING:
    from .http import HttpServer

__all__ = ["Reply", "Routes", "Streamed", "Connection", "ALL_METHODS", "split_target", "encode_body", "json_reply"]

logger = logging.getLogger("runtime.server")

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_JSON = "application/json"
_SERVER_ROUTES = ("/health", "/metrics")


class Connection(Protocol):
    """What a streaming response needs from the connection that carries it."""

    http10: bool

    async def send(self, data: bytes) -> None: ...

    async def watch(self) -> None:
        """Return when the client has gone (end of input, or the connection broke)."""

    def start_soon(self, fn: Any, *args: Any) -> None:
        """Run ``fn`` in a task that ends with the connection."""

    def cancel(self) -> None:
        """End the connection (and the handler running in its task) now."""


class Reply:
    """A whole response: status, headers (name, value) and the body's bytes."""

    __slots__ = ("status", "headers", "body", "close")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, close: bool = False) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close


class Streamed:
    """A response already written as it was made; ``complete``: its body ended properly."""

    __slots__ = ("status", "complete", "close", "written")

    def __init__(self, status: int, complete: bool, close: bool) -> None:
        self.status = status
        self.complete = complete
        self.close = close
        self.written = trio.Event()  # the writer is done


def json_reply(status: int, body: Any, headers: list[tuple[str, str]] | None = None, *, close: bool = False) -> Reply:
    return Reply(status, [("content-type", _JSON), *(headers or ())], orjson.dumps(body), close=close)


def split_target(target: bytes) -> tuple[str, bytes]:
    """``(percent-decoded path, raw query)`` of a request target (origin or absolute form)."""
    if not target.startswith(b"/"):
        scheme, sep, rest = target.partition(b"://")  # absolute form: http://host/path?q
        target = b"/" + rest.partition(b"/")[2] if sep else target
    raw_path, _, query = target.partition(b"?")
    return unquote(raw_path.decode("latin-1")), query


def encode_body(result: ApiResponse) -> tuple[bytes, list[tuple[str, str]]]:
    """A handler's ApiResponse as body bytes and headers (``content-type`` made explicit)."""
    body = result.body
    headers = [(str(k), str(v)) for k, v in (result.headers or {}).items()]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    if body is None:
        payload = b""
    elif isinstance(body, (bytes, bytearray, memoryview)):
        payload = bytes(body)
        content_type = content_type or "application/octet-stream"
    elif isinstance(body, str) and content_type is not None and not content_type.startswith(_JSON):
        payload = body.encode()
    else:
        payload = orjson.dumps(body)
        content_type = content_type or _JSON
    if content_type:
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("content-type", content_type))
    return payload, headers


def _form(raw: bytes, content_type: str, header: str) -> dict[str, Any]:
    if content_type == "application/x-www-form-urlencoded":
        return parse_query(raw.decode("latin-1"))
    from io import BytesIO

    from werkzeug.formparser import FormDataParser  # multipart only: rare, and werkzeug is heavy
    from werkzeug.http import parse_options_header

    mimetype, options = parse_options_header(header)
    _, form, _files = FormDataParser().parse(BytesIO(raw), mimetype, len(raw), options)
    params: dict[str, Any] = {}
    for name in form.keys():
        values = form.getlist(name)
        params[name] = values[0] if len(values) == 1 else values
    return params


class Routes:
    """The HTTP port's answers for one `HttpServer`."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.settings = server.settings

    def common(self, request: Request, trace_id: str) -> list[tuple[str, str]]:
        """CORS (when the request's origin is allowed) and the trace id: on every response."""
        origin = request.header(b"origin")
        cors = origin is not None and self.settings.cors_origins
        headers = cors_headers(self.settings, origin.decode("latin-1")) if cors and origin is not None else []
        headers.append(("x-trace-id", trace_id))
        return headers

    def too_large(self, request: Request, trace_id: str) -> Reply:
        # The unread rest of the body makes the connection unusable: it closes after this answer.
        return json_reply(413, {"error": "too_large", "limit": self.settings.body_limit, "trace_id": trace_id},
                          self.common(request, trace_id), close=True)

    def bad_request(self, status: int, reason: str, trace_id: str) -> Reply:
        code = {431: "head_too_large", 501: "not_implemented"}.get(status, "bad_request")
        return json_reply(status, {"error": code, "message": reason, "trace_id": trace_id},
                          [("x-trace-id", trace_id)], close=True)

    async def answer(self, request: Request, path: str, query: bytes, body: bytes, trace_id: str,
                     connection: Connection) -> Reply | Streamed:
        method = request.method
        if method == "OPTIONS" and request.header(b"access-control-request-method") is not None:
            preflight = self._preflight(request, trace_id)
            if preflight is not None:
                return preflight
        if path in _SERVER_ROUTES:
            if method not in ("GET", "HEAD"):
                refusal = {"error": "method_not_allowed", "message": f"{method} is not allowed here",
                           "trace_id": trace_id}
                return json_reply(405, refusal, [("allow", "GET, HEAD"), *self.common(request, trace_id)])
            if path == "/health":
                return json_reply(200, {"status": "ok"}, self.common(request, trace_id))
            text = render_metrics(self.server.app, self.server.metrics).encode()
            return Reply(200, [("content-type", "text/plain; version=0.0.4; charset=utf-8"),
                               *self.common(request, trace_id)], text)
        return await self._step(request, path, query, body, trace_id, connection)

    def _preflight(self, request: Request, trace_id: str) -> Reply | None:
        """Answer CORS preflights for allowed origins (CORS is off until origins are configured)."""
        origin = request.header(b"origin")
        if origin is None or not self.settings.cors_allows(origin.decode("latin-1")):
            return None  # not a CORS request we serve: routed as usual
        headers = [("access-control-allow-methods", ", ".join(ALL_METHODS))]
        requested = request.header(b"access-control-request-headers")
        if requested:
            headers.append(("access-control-allow-headers", requested.decode("latin-1")))
        headers.append(("access-control-max-age", "600"))
        return Reply(204, [*headers, *self.common(request, trace_id)])

    # -- step routes -------------------------------------------------------------------------------

    def _request(self, request: Request, path: str, query: bytes, raw: bytes, trace_id: str) -> ApiRequest | Reply:
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
        body: Any = None
        if raw:
            header = (request.header(b"content-type") or b"").decode("latin-1")
            content_type = header.partition(";")[0].strip().lower()
            if content_type == _JSON or content_type.endswith("+json"):
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    return json_reply(400, {"error": "invalid_json", "message": str(exc), "trace_id": trace_id},
                                      self.common(request, trace_id))
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                try:
                    body = _form(raw, content_type, header)
                except ValueError as exc:
                    return json_reply(400, {"error": "invalid_form", "message": str(exc), "trace_id": trace_id},
                                      self.common(request, trace_id))
            else:
                body = raw
        api_request = ApiRequest(method=request.method, path=path, query_params=parse_query(query.decode("latin-1")),
                                 headers=headers, body=body, trace_id=trace_id,
                                 response=ResponseStream(self.settings.body_limit))
        api_request.request_body.stream.append(raw)
        return api_request

    async def _step(self, request: Request, path: str, query: bytes, raw: bytes, trace_id: str,
                    connection: Connection) -> Reply | Streamed:
        api_request = self._request(request, path, query, raw, trace_id)
        if isinstance(api_request, Reply):
            return api_request
        stream: ResponseStream = api_request.response  # made with the request: attrs' setattr hooks cost
        outcome: list[Streamed] = []

        def first_write() -> None:
            # The handler runs in the connection's task: only a stream costs a task, its writer.
            outcome.append(Streamed(stream.status_code, False, True))
            connection.start_soon(self._write_stream, request, trace_id, stream, connection, outcome[0])

        stream.on_first_write = first_write
        try:
            result = await self.server.app.steps.call_http(api_request)
        finally:
            stream.finish()
        if outcome:  # written as it was made
            await outcome[0].written.wait()
            return outcome[0]
        if result is not None:
            return self._plain(request, result, trace_id)
        # None and nothing written: a stream closed empty
        return await self._write_empty_stream(request, trace_id, stream, connection)

    def _plain(self, request: Request, result: ApiResponse, trace_id: str) -> Reply:
        try:
            body, headers = encode_body(result)
        except TypeError as exc:
            logger.error("a handler's response body is not JSON: %r (trace %s)", exc, trace_id)
            return json_reply(500, {"error": "internal", "trace_id": trace_id}, self.common(request, trace_id))
        bad = [name for name, value in headers if not valid_header(name, value)]
        if bad:
            logger.error("a handler's response has invalid headers %r (trace %s)", bad, trace_id)
            return json_reply(500, {"error": "internal", "trace_id": trace_id}, self.common(request, trace_id))
        close = any(name.lower() == "connection" and "close" in value.lower() for name, value in headers)
        return Reply(result.status, self._merge(request, headers, trace_id), body, close=close)

    def _merge(self, request: Request, headers: list[tuple[str, str]], trace_id: str) -> list[tuple[str, str]]:
        """A handler's headers, then CORS and the trace id unless the handler set its own."""
        names = {name.lower() for name, _ in headers}
        return [*headers, *((n, v) for n, v in self.common(request, trace_id) if n not in names)]

    def _stream_head(self, request: Request, stream: ResponseStream, trace_id: str, connection: Connection) -> bytes:
        headers = [(k, v) for k, v in stream.header_values.items() if valid_header(k, v)]
        if len(headers) != len(stream.header_values):
            logger.error("a streaming response dropped invalid headers (trace %s)", trace_id)
        return response_head(stream.status_code, self._merge(request, headers, trace_id),
                             chunked=not connection.http10, keep=not connection.http10)

    async def _write_empty_stream(self, request: Request, trace_id: str, stream: ResponseStream,
                                  connection: Connection) -> Streamed:
        head = self._stream_head(request, stream, trace_id, connection)
        await connection.send(head if connection.http10 or request.method == "HEAD" else head + LAST_CHUNK)
        return Streamed(stream.status_code, True, connection.http10)

    async def _write_stream(self, request: Request, trace_id: str, stream: ResponseStream, connection: Connection,
                            result: Streamed) -> None:
        """Head, then each batch of writes as one chunk, then the last chunk; the client leaving
        (seen by the watcher, or by a failed write) ends the connection, the handler with it."""
        framed = not connection.http10
        bodiless = request.method == "HEAD"
        async with trio.open_nursery() as inner:
            async def watch() -> None:
                await connection.watch()
                connection.cancel()  # the client left: the handler and this writer end

            inner.start_soon(watch)
            try:
                await connection.send(self._stream_head(request, stream, trace_id, connection))
                while (data := await stream.next_chunk()) is not None:
                    if data and not bodiless:
                        await connection.send(chunk(data) if framed else data)
                if framed and not bodiless:
                    await connection.send(LAST_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                connection.cancel()
                return
            finally:
                inner.cancel_scope.cancel()
        result.complete = True
        result.close = not framed
        result.written.set()
