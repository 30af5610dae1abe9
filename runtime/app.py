"""`App`: a project's streams and steps, running inside the caller's Trio program.

``async with App.from_directory("project") as app:`` starts the stream
engine (group actors, storage) and the step runtime (queues, cron, stream
triggers) in nurseries owned by the caller's task; leaving the block stops
them gracefully, cancelling it stops them at once. The HTTP server and the
WebSocket listener are layers on top of an App; without them, `request`
routes an HTTP call in process, which is what tests and embedding use.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager, nullcontext
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import trio

from actors import raise_sole_error
from actors.lifecycle import SingleUse

from .steps.clock import RuntimeClock
from .steps.inputs import ApiRequest, ApiResponse
from .steps.loader import Project, collect, load_project
from .steps.runner import StepRuntime
from .steps.step import Step
from .storage import Storage, open_storage
from .streams.engine import StreamEngine

__all__ = ["App"]


class App(SingleUse):
    """Streams, steps and their runtime; see the module docstring.

    ``storage`` is a `Storage` or a URL (``memory``, ``sqlite:PATH``);
    ``clock`` is the runtime clock cron and queue retries run on;
    ``queue_visibility_timeout`` (seconds; shared storage only) is how long
    a message a process took stays unacknowledged, its lease unrenewed,
    before another process claims it;
    ``authenticate`` is the app-level hook guarding stream subscriptions
    (defaults to the project's ``runtime_config.authenticate``). Other
    keyword arguments go to `StreamEngine`.
    """

    def __init__(
        self,
        project: Project | None = None,
        *,
        steps: Iterable[Step] = (),
        streams: Iterable[Any] = (),
        storage: Storage | str = "memory",
        authenticate: Any = None,
        clock: RuntimeClock | None = None,
        queue_concurrency: int = 10,
        queue_visibility_timeout: float = 30.0,
        **engine_options: Any,
    ) -> None:
        project = project or Project(None)
        self.project = project
        self.storage = open_storage(storage) if isinstance(storage, str) else storage
        self.authenticate = authenticate or project.authenticate
        self.engine = StreamEngine([*project.streams, *streams], storage=self.storage, **engine_options)
        self.steps = StepRuntime(
            self.engine, [*project.steps, *steps], clock=clock, queue_concurrency=queue_concurrency,
            queue_visibility_timeout=queue_visibility_timeout,
        )
        #: The development console, once `serve` turned it on (runtime.console.Console).
        self.console: Any = None
        self._client_assets = False  # /_client/ (the browser client), registered by the first `serve`

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str], **options: Any) -> App:
        """Load a project directory (raises `ProjectError` listing every problem)."""
        return cls(load_project(directory), **options)

    @classmethod
    def from_modules(cls, modules: Iterable[ModuleType], **options: Any) -> App:
        """Build from imported modules holding steps and streams (tests, embedding)."""
        project = collect([(getattr(m, "__file__", None) or m.__name__, m) for m in modules])
        return cls(project, **options)

    # -- lifecycle ---------------------------------------------------------------

    async def serve(
        self,
        settings: Any = None,
        *,
        shutdown: trio.Event | None = None,
        console: bool | None = None,
        console_token: str | None = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
        **options: Any,
    ) -> None:
        """Run with network listeners: ``listening = await nursery.start(app.serve, port=0)``.

        ``settings`` is a `ServerSettings` (or give its fields as keywords).
        Stops when cancelled, or gracefully once ``shutdown`` is set.
        The console (``/_console/``, docs/console.md) is on when the host is
        loopback, or with ``console_token`` on any host; ``console=False``
        turns it off. It is then ``app.console``.
        """
        from .console import Console, console_enabled
        from .server.client_assets import install_client_assets
        from .server.serve import serve
        from .server.settings import ServerSettings

        settings = settings or ServerSettings(**options)
        if not self._client_assets:
            install_client_assets(self)
            self._client_assets = True
        if self.console is None and console_enabled(settings.host, console, console_token):
            self.console = Console(self, token=console_token, sse_prefix=settings.sse_prefix).install()
        with self.console.capturing() if self.console is not None else nullcontext():
            await serve(self, settings, shutdown=shutdown, task_status=task_status)

    async def run(self, *, task_status: trio.TaskStatus[App] = trio.TASK_STATUS_IGNORED) -> None:
        """``app = await nursery.start(app.run)``: run until cancelled."""
        async with self:
            task_status.started(self)
            await trio.sleep_forever()

    @asynccontextmanager
    async def _lifecycle(self) -> AsyncIterator[App]:
        try:
            async with self.engine:
                async with trio.open_nursery() as nursery:
                    await nursery.start(self.steps.run)
                    yield self
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise_sole_error(group)

    def add_internal_route(self, method: str, path: str, handler: Any) -> None:
        """A route the runtime serves itself (the console, the browser client); see
        `StepRuntime.add_internal_route`. Call it before the app is served."""
        self.steps.add_internal_route(method, path, handler)

    # -- in-process calls ------------------------------------------------------------

    def stream(self, name: str) -> Any:
        """A `Stream` handle bound to this app, usable from any task.

        Module-level handles find the app through the task they run in
        (handlers, and code inside ``async with app``); code in other tasks
        (a program that started ``app.serve`` in a nursery) uses this.
        """
        return self.steps.stream_handle(name)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> ApiResponse | None:
        """Route an HTTP request to its step in process (no sockets).

        ``json`` is sent as the parsed body (as a JSON client would); the
        response is what the server would send, trace id header included.
        """
        parts = urlsplit(url)
        query_params: dict[str, Any] = {}
        for name, value in [*parse_qsl(parts.query, keep_blank_values=True), *(query or {}).items()]:
            for one in value if isinstance(value, list) else [value]:
                if name in query_params:
                    existing = query_params[name]
                    query_params[name] = [*existing, one] if isinstance(existing, list) else [existing, one]
                else:
                    query_params[name] = one
        raw = orjson.dumps(json) if json is not None else (body or b"")
        request = ApiRequest(
            method=method.upper(),
            path=parts.path or "/",
            query_params=query_params,
            headers=dict(headers or {}),
            body=json if json is not None else (body or None),
        )
        request.request_body.stream.append(raw)
        return await self.steps.call_http(request)

    async def enqueue(self, topic: str, data: Any, *, trace_id: str | None = None) -> list[str]:
        return await self.steps.enqueue(topic, data, trace_id=trace_id)

    async def dead_letters(self, topic: str | None = None) -> list[Any]:
        return await self.steps.dead_letters(topic)

    async def replay_dead_letter(self, message_id: str) -> Any:
        return await self.steps.replay_dead_letter(message_id)
