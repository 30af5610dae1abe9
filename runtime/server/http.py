"""The HTTP listener: step routes, SSE subscriptions, health and metrics, on quart-trio.

Routes are matched by the step runtime, not by Quart, so one catch-all view
serves every step; Quart provides request parsing and the ASGI plumbing.
Quart's response timeout is off (it would cut long streams), and both
streaming bodies end cleanly when the client leaves: quart-trio cancels
the request, the body's ``aclose`` runs, and our cleanup (shielded and
bounded) unregisters the subscription or cancels the step handler.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import RequestEntityTooLarge

from ..errors import ConfigurationError
from ..steps.context import new_trace_id
from ..steps.inputs import ApiRequest, ApiResponse
from .auth import Subscription
from .metrics import ServerMetrics, render_metrics
from .responses import ResponseStream
from .settings import SLOW_CLOSE, ServerSettings
from .sse import SSE_HEADERS, SSEOutbox, cors_headers
from .sse_session import Refusal, admit, leave

if TYPE_CHECKING:
    from ..app import App
    from .outbox import Outbox

__all__ = ["HttpServer"]

logger = logging.getLogger("runtime.server")

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
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
    body = result.body
    headers = {str(k): str(v) for k, v in (result.headers or {}).items()}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if body is None:
        payload = b""
    elif isinstance(body, (bytes, bytearray)):
        payload = bytes(body)
        content_type = content_type or "application/octet-stream"
    elif isinstance(body, str) and content_type is not None and not content_type.startswith(_JSON):
        payload = body.encode()
    else:
        payload = orjson.dumps(body)
        content_type = content_type or _JSON
    response = Response(payload, status=result.status)
    for name, value in headers.items():
        response.headers[name] = value
    if content_type:
        response.headers["Content-Type"] = content_type
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


class _SSEBody:
    """One SSE subscription: joins on first read, leaves on close, whatever ended it."""

    def __init__(self, server: HttpServer, outbox: Outbox, subscription: Subscription,
                 since: tuple[str, int] | None, auth_context: Any) -> None:
        self._server = server
        self._outbox = outbox
        self._subscription = subscription
        self._since = since
        self._auth = auth_context
        self._id = uuid.uuid4().hex
        self._joined = False
        self._finished = False

    def __aiter__(self) -> _SSEBody:
        return self

    async def _join(self, since: tuple[str, int] | None) -> None:
        sub = self._subscription
        await self._server.app.engine.join(
            self._outbox, sub.stream_name, sub.group_id, subscription_id=self._id, item_id=sub.id, since=since
        )

    async def __anext__(self) -> bytes:
        server, outbox = self._server, self._outbox
        if self._finished:
            raise StopAsyncIteration
        if not self._joined:
            self._joined = True
            server.open_outboxes.add(outbox)
            server.metrics.connections["sse"] += 1
            server.metrics.subscriptions["sse"] += 1
            try:
                await self._join(self._since)
            except Exception:  # noqa: BLE001 - the stream ends; EventSource will retry
                subscription = self._subscription
                logger.exception("SSE join to %s/%s failed", subscription.stream_name, subscription.group_id)
                raise StopAsyncIteration from None
        while True:
            if outbox.closed:
                raise StopAsyncIteration
            if outbox.needs_resync:
                if server.settings.slow_consumer == SLOW_CLOSE:
                    server.metrics.slow_consumer_closes += 1
                    raise StopAsyncIteration
                server.metrics.resyncs += 1
                sub = self._subscription
                outbox.begin_resync([(sub.stream_name, sub.group_id)])
                await self._join(None)  # a fresh sync replaces the dropped backlog
            data = outbox.take()
            if data:
                return data
            with trio.move_on_after(server.settings.sse_heartbeat) as waited:
                await outbox.wait()
            if waited.cancelled_caught:
                return b": ping\n\n"

    async def aclose(self) -> None:
        if self._finished:
            return
        self._finished = True
        if not self._joined:
            return
        server = self._server
        server.open_outboxes.discard(self._outbox)
        self._outbox.close()
        server.metrics.connections["sse"] -= 1
        server.metrics.subscriptions["sse"] -= 1
        await leave(server, self._outbox, self._subscription, self._id, self._auth)


class HttpServer:
    """Builds the Quart app for one `App` and holds what its views share."""

    def __init__(self, app: App, settings: ServerSettings, handlers: trio.Nursery) -> None:
        self.app = app
        self.settings = settings
        self.handlers = handlers
        self.metrics = ServerMetrics()
        self.open_outboxes: set[Outbox] = set()
        self._check_routes()
        self.quart = self._build()

    def _check_routes(self) -> None:
        reserved = {"/health", "/metrics"}
        prefix = self.settings.sse_prefix
        for method, path, route in self.app.steps.routes.routes():
            if path in reserved or path == prefix or path.startswith(prefix + "/"):
                raise ConfigurationError(
                    f"step {route.step.name!r}: {method} {path} collides with the server's own routes "
                    f"({', '.join(sorted(reserved))} and {prefix}/...)"
                )

    def close_streams(self) -> None:
        """End every open SSE stream (graceful shutdown)."""
        for outbox in list(self.open_outboxes):
            outbox.close()

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

    # -- SSE ----------------------------------------------------------------------------

    async def _sse(self, stream: str, group: str, item: str | None = None) -> Response:
        """An SSE request on a keep-alive connection (a connection's first request is served by sse_direct)."""
        query = _query_params(request.args)
        remote = request.scope.get("client")
        admitted = await admit(self, Subscription(stream, group, item), headers=request.headers, path=request.path,
                               query=query, addr=(remote[0], remote[1]) if remote else None)
        if isinstance(admitted, Refusal):
            return json_response(admitted.status, admitted.body)
        outbox = SSEOutbox(self.settings.outbox_limit, metrics=self.metrics)
        outbox.push_raw(f"retry: {self.settings.sse_retry_ms}\n\n".encode())
        response = Response(
            _SSEBody(self, outbox, admitted.subscription, admitted.since, admitted.auth_context),
            status=200,
            headers=dict(SSE_HEADERS),
        )
        response.timeout = None
        return response
