"""hypercorn + quart-trio, for what the fast path does not do: TLS, HTTP/2, ASGI middleware.

``ServerSettings(http="asgi")`` (``python -m runtime serve --http asgi``)
serves the HTTP port with hypercorn (its public ``hypercorn.trio.serve``,
nothing of its internals) running a quart-trio app whose one catch-all view
routes every request to the step runtime, as the fast path does. Choose it
for TLS termination in process (``tls_certfile`` / ``tls_keyfile``; HTTP/2
is then offered by ALPN) or to wrap the app in ASGI middleware
(``asgi_middleware``). Everything else is better served by the fast path
(docs/http.md compares them): SSE subscriptions are served only there (one
SSE path), so this app answers them 501 with a pointer to WebSocket or the
fast path. Quart's response timeout is off (it would cut long streams); a
client that leaves a streaming response cancels the handler (the body's
``aclose``).

The hypercorn versions this is tested with are pinned in pyproject.toml.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from ..steps.context import new_trace_id
from ..steps.inputs import ApiRequest, ApiResponse
from .cors import cors_headers
from .metrics import render_metrics
from .responses import ResponseStream
from .routes import ALL_METHODS as ROUTE_METHODS
from .routes import encode_body

if TYPE_CHECKING:
    from .http import HttpServer

__all__ = ["QuartFront", "serve_asgi", "hypercorn_config"]

logger = logging.getLogger("runtime.server")

ALL_METHODS = list(ROUTE_METHODS)
_JSON = "application/json"


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    response = Response(orjson.dumps(body), status=status, content_type=_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _query_params(args: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in args.keys():
        values = args.getlist(name)
        params[name] = values[0] if len(values) == 1 else values
    return params


def to_quart_response(result: ApiResponse) -> Response:
    payload, headers = encode_body(result)  # the fast path's encoding: the same bytes either way
    response = Response(payload, status=result.status)
    for name, value in headers:
        response.headers[name] = value
    return response


class _StepStreamBody:
    """The body of a streaming step response; leaving early cancels the handler."""

    def __init__(self, stream: ResponseStream, handler_scope: trio.CancelScope) -> None:
        self._stream = stream
        self._scope = handler_scope

    def __aiter__(self) -> _StepStreamBody:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._stream.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._scope.cancel()


class QuartFront:
    """The quart-trio app of one `HttpServer`: the same answers as `routes.Routes`, through ASGI."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.app = server.app
        self.settings = server.settings
        self.metrics = server.metrics
        self.handlers = server.handlers
        self.quart = self._build()

    def _build(self) -> QuartTrio:
        quart = QuartTrio("runtime")
        quart.config.update(
            MAX_CONTENT_LENGTH=self.settings.body_limit,
            RESPONSE_TIMEOUT=None,  # Quart's 60 s default would cut SSE and long streams
            PROVIDE_AUTOMATIC_OPTIONS=False,
        )
        quart.add_url_rule("/health", "health", self._health, methods=["GET"])
        quart.add_url_rule("/metrics", "metrics", self._metrics, methods=["GET"])
        prefix = self.settings.sse_prefix
        quart.add_url_rule(f"{prefix}/<stream>/<group>", "sse_group", self._sse, methods=["GET"])
        quart.add_url_rule(f"{prefix}/<stream>/<group>/<item>", "sse_item", self._sse, methods=["GET"])
        quart.add_url_rule("/", "steps_root", self._step, methods=ALL_METHODS, defaults={"path": ""})
        quart.add_url_rule("/<path:path>", "steps", self._step, methods=ALL_METHODS)
        quart.before_request(self._preflight)
        quart.after_request(self._after)
        return quart

    async def _preflight(self) -> Response | None:
        """Answer CORS preflights for allowed origins (CORS is off until origins are configured)."""
        origin = request.headers.get("Origin")
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return None
        if not self.settings.cors_allows(origin):
            return None  # not a CORS request we serve: routed as usual
        response = Response(b"", status=204)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(ALL_METHODS)
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            response.headers["Access-Control-Allow-Headers"] = requested
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    async def _after(self, response: Response) -> Response:
        for name, value in cors_headers(self.settings, request.headers.get("Origin")):
            response.headers[name] = value
        if "X-Trace-Id" not in response.headers:  # every response, as protocol.md says (steps set their own)
            response.headers["X-Trace-Id"] = request.headers.get("X-Trace-Id") or new_trace_id()
        self.metrics.http_requests[response.status_code] += 1
        return response

    async def _health(self) -> Response:
        return json_response(200, {"status": "ok"})

    async def _metrics(self) -> Response:
        return Response(render_metrics(self.app, self.metrics), content_type="text/plain; version=0.0.4")

    # -- steps -----------------------------------------------------------------------

    async def _read_request(self, trace_id: str) -> ApiRequest | Response:
        try:
            raw = await request.get_data(cache=True)
        except RequestEntityTooLarge:
            # The unread rest of the body makes the connection unusable: say so,
            # so the client opens a new one instead of waiting on this one.
            return json_response(413, {"error": "too_large", "limit": self.settings.body_limit, "trace_id": trace_id},
                                 {"X-Trace-Id": trace_id, "Connection": "close"})
        content_type = (request.mimetype or "").lower()
        body: Any = None
        if raw:
            if content_type == _JSON or content_type.endswith("+json"):
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    return json_response(400, {"error": "invalid_json", "message": str(exc), "trace_id": trace_id},
                                         {"X-Trace-Id": trace_id})
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.form
                body = _query_params(form)
            else:
                body = raw
        api_request = ApiRequest(
            method=request.method,
            path=request.path,
            query_params=_query_params(request.args),
            headers=list(request.headers.items()),
            body=body,
            trace_id=trace_id,
        )
        api_request.request_body.stream.append(raw.encode() if isinstance(raw, str) else raw)
        return api_request

    async def _step(self, path: str) -> Response:
        trace_id = request.headers.get("X-Trace-Id") or new_trace_id()
        api_request = await self._read_request(trace_id)
        if isinstance(api_request, Response):
            return api_request
        stream = ResponseStream(self.settings.body_limit)
        api_request.response = stream
        outcome: dict[str, Any] = {}
        handler_scope = trio.CancelScope()

        async def run_handler() -> None:
            with handler_scope:
                try:
                    outcome["response"] = await self.app.steps.call_http(api_request)
                finally:
                    stream.finish()

        self.handlers.start_soon(run_handler, name=f"http {request.method} {request.path}")
        try:
            await stream.started.wait()
        except BaseException:
            handler_scope.cancel()  # the client left before anything was sent
            raise
        result = outcome.get("response")
        if result is not None and not stream.wrote:  # a plain response
            return to_quart_response(result)
        response = Response(_StepStreamBody(stream, handler_scope), status=stream.status_code)
        for name, value in stream.header_values.items():
            response.headers[name] = value
        response.headers.setdefault("X-Trace-Id", trace_id)
        response.timeout = None
        return response

    async def _sse(self, stream: str, group: str, item: str | None = None) -> Response:
        return json_response(501, {"error": {"code": "SSE_NOT_SERVED", "message":
                                             "SSE subscriptions are served with ServerSettings(http='fast') "
                                             "(the default); subscribe over WebSocket here"}})


def hypercorn_config(settings: Any) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("runtime.server.hypercorn")
    config.graceful_timeout = settings.shutdown_timeout
    config.keep_alive_timeout = settings.keep_alive_timeout
    config.h11_max_incomplete_size = 64 * 1024
    config.backlog = 2048  # a thousand clients reconnecting at once must not be refused
    config.include_server_header = False  # no header that claims to be another server
    if settings.tls_certfile:
        config.certfile = settings.tls_certfile
        config.keyfile = settings.tls_keyfile
    return config


def _last_body_shielded(app: Any) -> Any:
    """``app`` with the send of each response's last body message shielded from cancellation.

    quart-trio cancels its message task as the response completes, and that send is where
    hypercorn re-arms the connection's idle task (the one that closes a keep-alive connection
    when shutdown begins): cancelled there, it was never re-armed, and one idle keep-alive
    connection held a SIGTERM for the whole grace period (5.1-5.3 s; 0.05 s with this, measured
    with a `serve --http asgi` subprocess). Bounded: hypercorn shields its socket writes anyway.
    """

    async def shielded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_last_shielded(message: Any) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await app(scope, receive, send_last_shielded)

    return shielded


async def serve_asgi(server: HttpServer, shutdown: trio.Event, *,
                     task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """hypercorn on the HTTP port until ``shutdown`` (it then drains within the grace period)."""
    settings = server.settings
    app: Any = QuartFront(server).quart
    if settings.asgi_middleware is not None:
        app = settings.asgi_middleware(app)
    await hypercorn_serve(_last_body_shielded(app), hypercorn_config(settings), shutdown_trigger=shutdown.wait,
                          task_status=task_status)
