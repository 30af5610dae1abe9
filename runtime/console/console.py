"""`Console`: the routes under ``/_console/`` and what they read.

The console is a client of the product: its live tables are the product's
own SSE subscriptions (``{sse_prefix}/{stream}/{group}``), its request form
calls step routes with ``fetch``, its charts read ``/metrics``. What the
public protocol does not carry (trace ids of events, traces, queue depths,
dead letters, cron schedules) comes from the JSON API here, served as the
runtime's own routes (`App.add_internal_route`).

Access (docs/console.md): without a token the console is only ever on when
the server listens on loopback, and what it shows of a stream's data goes
through that stream's ``can_access`` for the request's own auth context,
as a subscription would. With a console token every console request needs
it (``Authorization: Bearer``, ``X-Console-Token``, ``?token=`` or the
cookie the page sets), and subscriptions made with it see every stream
(`ConsoleAccess`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import croniter
import orjson

from ..server.auth import AuthRequest, ConsoleAccess, Refused, Subscription, authenticate, call_hook, token_from
from ..steps.inputs import ApiRequest, ApiResponse
from ..steps.triggers import CronTrigger, HttpTrigger, QueueTrigger
from .eventlog import EventLog
from .otel import span_sink_from_environment
from .traces import TraceLogHandler, TraceRing

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Console", "console_enabled", "PREFIX"]

logger = logging.getLogger("runtime.console")

PREFIX = "/_console"
COOKIE = "runtime_console"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}
_DENIED = object()

Handler = Callable[[ApiRequest], Awaitable[ApiResponse]]


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def console_enabled(host: str, console: bool | None, token: str | None) -> bool:
    """On by default only on loopback; on any other interface only with a token. ``console=False``: off."""
    if console is False:
        return False
    if token:
        return True
    if not is_loopback(host):
        if console:
            logger.warning("the console is off: %s is not a loopback interface and no --console-token was given", host)
        return False
    return True


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(status, orjson.dumps(body, default=repr),
                       {"content-type": "application/json", "cache-control": "no-store", **(headers or {})})


def _cookie(headers: Any) -> str | None:
    for part in (headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


class Console:
    """The console of one `App`; `install` it before the app is served, run it with `capturing`."""

    def __init__(self, app: App, *, token: str | None = None, sse_prefix: str = "/streams",
                 max_traces: int = 2000) -> None:
        self.app = app
        self.token = token or None
        self.sse_prefix = sse_prefix
        self.traces = TraceRing(max_traces=max_traces, sink=span_sink_from_environment())
        self.events = EventLog(self.traces)
        #: Files `python -m runtime dev` could not load (file, line, message), shown in a banner.
        self.dev_errors: list[dict[str, Any]] = []
        #: Set by `dev`: reloads so far, and when the last one happened (ms).
        self.dev: dict[str, Any] | None = None

    # -- wiring -------------------------------------------------------------------------

    def install(self) -> Console:
        app = self.app
        app.steps.tracer = self.traces
        self.events.attach(app.engine, app.engine.stream_names)
        if self.token:
            app.authenticate = self._console_aware(app.authenticate)
        for method, path, handler in self._routes():
            app.add_internal_route(method, PREFIX + path, self._guarded(handler))
        return self

    @contextmanager
    def capturing(self) -> Iterator[Console]:
        """While the app is served: log lines carrying a trace id join their trace."""
        handler = TraceLogHandler(self.traces)
        target = logging.getLogger("runtime")
        target.addHandler(handler)
        try:
            yield self
        finally:
            target.removeHandler(handler)

    def url(self, http_url: str) -> str:
        return f"{http_url}{PREFIX}/" + (f"?token={self.token}" if self.token else "")

    def _console_aware(self, hook: Any) -> Any:
        async def authenticate_or_console(request: Any) -> Any:
            if request.token and hmac.compare_digest(request.token, self.token or ""):
                return ConsoleAccess()
            return None if hook is None else await call_hook(hook, request)

        return authenticate_or_console

    def _routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/", self._index),
            ("GET", "/assets/:name", self._asset),
            ("GET", "/api/overview", self._overview),
            ("GET", "/api/streams/:stream/groups", self._groups),
            ("GET", "/api/streams/:stream/groups/:group/events", self._group_events),
            ("GET", "/api/streams/:stream/groups/:group/items/:item", self._item),
            ("GET", "/api/monitor", self._monitor),
            ("GET", "/api/queues", self._queues),
            ("POST", "/api/dead-letters/:id/replay", self._replay),
            ("POST", "/api/cron/:step/run", self._run_cron),
            ("GET", "/api/traces", self._trace_list),
            ("GET", "/api/traces/:id", self._trace),
        ]

    # -- access -----------------------------------------------------------------------------

    def _token_of(self, request: ApiRequest) -> str | None:
        headers = request.headers
        query = request.query_params.get("token")
        return (headers.get("x-console-token") or (query if isinstance(query, str) else None)
                or token_from(headers, {}) or _cookie(headers))

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: ApiRequest) -> ApiResponse:
            if self.token is not None:
                given = self._token_of(request)
                if not given or not hmac.compare_digest(given, self.token):
                    if request.path.rstrip("/") == PREFIX:
                        return ApiResponse(401, _page("console-token.html"), {"content-type": _TYPES[".html"]})
                    return _json(401, {"error": "console_token_required",
                                       "message": "this console needs its token (--console-token)"})
            return await handler(request)

        return guarded

    async def _reader(self, request: ApiRequest) -> Any:
        """The request's auth context as a subscription's would be (the token, authenticate); _DENIED if refused."""
        if self.token is not None:
            return ConsoleAccess()
        try:
            return await authenticate(self.app.authenticate, AuthRequest(
                request.headers, request.path, request.query_params, None,
                token_from(request.headers, request.query_params)))
        except Refused:
            return _DENIED

    async def _may_read(self, reader: Any, stream: str, group: str, item: str | None = None) -> bool:
        """``can_access`` of the stream, for this reader (the console token sees everything)."""
        if isinstance(reader, ConsoleAccess):
            return True
        if reader is _DENIED:
            return False
        config = self.app.engine.definition(stream).config
        if config.can_access is None:
            return True
        try:
            return bool(await call_hook(config.can_access, Subscription(stream, group, item), reader))
        except Exception:  # noqa: BLE001 - a broken hook refuses, as for a subscription
            logger.exception("can_access of %s raised; the console shows nothing of it", stream)
            return False

    # -- pages --------------------------------------------------------------------------------

    async def _index(self, request: ApiRequest) -> ApiResponse:
        html = _page("index.html")
        token = self.token if self.token is not None else ""
        html = html.replace("{{token}}", token).replace("{{sse_prefix}}", self.sse_prefix)
        headers = {"content-type": _TYPES[".html"], "cache-control": "no-store"}
        if self.token is not None:
            headers["set-cookie"] = f"{COOKIE}={self.token}; Path={PREFIX}; HttpOnly; SameSite=Strict"
        return ApiResponse(200, html, headers)

    async def _asset(self, request: ApiRequest) -> ApiResponse:
        name = request.path_params["name"]
        suffix = name[name.rfind("."):] if "." in name else ""
        if "/" in name or name.startswith(".") or suffix not in _TYPES or name == "index.html":
            return _json(404, {"error": "not_found"})
        try:
            body = resources.files(__package__).joinpath("assets", name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            return _json(404, {"error": "not_found"})
        return ApiResponse(200, body, {"content-type": _TYPES[suffix], "cache-control": "no-cache"})

    # -- streams ------------------------------------------------------------------------------

    async def _overview(self, request: ApiRequest) -> ApiResponse:
        app, steps = self.app, self.app.steps
        now = steps.clock.now()
        streams = []
        for name in app.engine.stream_names:
            config = app.engine.definition(name).config
            streams.append({
                "name": name, "description": config.description, "schema": config.schema,
                "hooks": [h for h in ("can_access", "on_join", "on_leave") if getattr(config, h) is not None],
            })
        described = []
        for one in steps.steps.values():
            triggers = []
            for trigger in one.triggers:
                info = trigger.describe()
                if isinstance(trigger, HttpTrigger) and trigger.body_schema:
                    info["body_schema"] = trigger.body_schema
                if isinstance(trigger, CronTrigger):
                    info["next_ms"] = round(croniter.croniter(trigger.expression, now).get_next(float) * 1000)
                triggers.append(info)
            described.append({
                "name": one.name, "file": one.file, "description": one.config.description, "flows": one.config.flows,
                "enqueues": one.config.enqueues, "triggers": triggers, "retry_attempts": one.config.retry.attempts,
            })
        return _json(200, {
            "streams": streams, "steps": described, "sse_prefix": self.sse_prefix, "now_ms": round(now * 1000),
            "storage": type(app.storage).__name__, "dev": self.dev, "dev_errors": self.dev_errors,
            "traces": {"kept": len(self.traces), "max": self.traces.max_traces},
        })

    async def _groups(self, request: ApiRequest) -> ApiResponse:
        stream = request.path_params["stream"]
        if stream not in self.app.engine.stream_names:
            return _json(404, {"error": "stream_not_found", "stream": stream})
        reader = await self._reader(request)
        handle = self.app.stream(stream)
        groups = []
        names = await handle.list_groups()
        for group in names[:200]:  # each is an ask to its actor: a console page, not an export
            if not await self._may_read(reader, stream, group):
                continue
            stats = await self.app.engine.group_stats(stream, group)
            groups.append({"group": group, "items": stats.get("items"), "subscribers": stats.get("subscribers"),
                           "epoch": stats.get("epoch"), "offset": stats.get("offset")})
        return _json(200, {"stream": stream, "groups": groups, "total": len(names),
                           "events": self.events.events[stream], "bytes": self.events.bytes[stream]})

    async def _group_events(self, request: ApiRequest) -> ApiResponse:
        stream, group = request.path_params["stream"], request.path_params["group"]
        if stream not in self.app.engine.stream_names:
            return _json(404, {"error": "stream_not_found", "stream": stream})
        if not await self._may_read(await self._reader(request), stream, group):
            return _json(403, {"error": "stream_access_denied"})
        after = _one(request, "after") or "0"
        events = self.events.group_events(stream, group, item=_one(request, "item"), type=_one(request, "type"),
                                          after=int(after) if after.isdigit() else 0)
        return _json(200, {"events": [{k: v for k, v in e.items() if k != "data"} for e in events]})

    async def _item(self, request: ApiRequest) -> ApiResponse:
        stream, group, item = (request.path_params[k] for k in ("stream", "group", "item"))
        if stream not in self.app.engine.stream_names:
            return _json(404, {"error": "stream_not_found", "stream": stream})
        if not await self._may_read(await self._reader(request), stream, group, item):
            return _json(403, {"error": "stream_access_denied"})
        value = await self.app.stream(stream).get(group, item)
        history = self.events.group_events(stream, group, item=item)
        return _json(200, {"value": value, "history": history})

    async def _monitor(self, request: ApiRequest) -> ApiResponse:
        return _json(200, {"time_ms": round(time.time() * 1000), "streams": {
            name: {"events": self.events.events[name], "bytes": self.events.bytes[name]}
            for name in self.app.engine.stream_names}})

    # -- steps ----------------------------------------------------------------------------------

    async def _queues(self, request: ApiRequest) -> ApiResponse:
        steps = self.app.steps
        lanes: dict[tuple[str, str], dict[str, Any]] = {}
        for one in steps.steps.values():
            for trigger in one.triggers:
                if isinstance(trigger, QueueTrigger):
                    lanes[(trigger.topic, one.name)] = {"topic": trigger.topic, "step": one.name, "depth": 0,
                                                        "retrying": 0, "in_flight": 0}
        try:
            pending = await self.app.storage.queue_pending()
        except Exception:  # noqa: BLE001 - e.g. a shared storage that lists no pending set
            pending = []
        for message in pending:
            lane = lanes.get((message.topic, message.step))
            if lane is not None:
                lane["depth"] += 1
                lane["retrying"] += message.attempts > 0
        local_lanes = getattr(getattr(steps, "_transport", None), "_lanes", {})  # local queues only
        for (topic, name), lane in local_lanes.items():
            if (topic, name) in lanes:
                lanes[(topic, name)]["in_flight"] = lane.running
        dead = [{"id": m.id, "topic": m.topic, "step": m.step, "attempts": m.attempts, "error": m.last_error,
                 "trace_id": m.trace_id, "enqueued_ms": m.enqueued_ms, "data": m.data}
                for m in await self.app.dead_letters()]
        return _json(200, {"lanes": list(lanes.values()), "dead_letters": dead,
                           "retries": steps.metrics.retries, "dead_lettered": steps.metrics.dead_lettered})

    async def _replay(self, request: ApiRequest) -> ApiResponse:
        message_id = request.path_params["id"]
        try:
            revived = await self.app.replay_dead_letter(message_id)
        except KeyError:
            return _json(404, {"error": "not_found", "message": f"no dead letter with id {message_id}"})
        return _json(200, {"replayed": revived.id, "topic": revived.topic, "step": revived.step})

    async def _run_cron(self, request: ApiRequest) -> ApiResponse:
        name = request.path_params["step"]
        try:
            await self.app.steps.fire_cron(name)
        except KeyError:
            return _json(404, {"error": "not_found", "message": f"no cron step named {name}"})
        return _json(200, {"ran": name})

    # -- traces ---------------------------------------------------------------------------------

    async def _trace_list(self, request: ApiRequest) -> ApiResponse:
        return _json(200, {"traces": self.traces.recent(), "kept": len(self.traces), "max": self.traces.max_traces})

    async def _trace(self, request: ApiRequest) -> ApiResponse:
        trace = self.traces.get(request.path_params["id"])
        if trace is None:
            return _json(404, {"error": "not_found", "message": "no such trace in the last traces kept"})
        reader = await self._reader(request)
        for entry in trace["entries"]:  # stream writes name groups and items: can_access decides
            if entry["kind"] == "stream" and not await self._may_read(
                    reader, entry["stream"], entry["group"], entry["item"]):
                entry.update(name=f"{entry['stream']}/(no access)", group=None, item=None)
        return _json(200, trace)


def _one(request: ApiRequest, name: str) -> str | None:
    """A query parameter's value (the first, if repeated); None when absent or empty."""
    value = request.query_params.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return value or None


def _page(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text()
