"""Running an App with its network listeners, embedded or from the command line.

`serve` runs inside the caller's nursery (``await nursery.start(serve, app)``)
and stops when cancelled, or gracefully when ``shutdown`` is set: both
ports stop accepting at once (their listening sockets close: a connection
opened after that is refused), every WebSocket gets a 1001 close frame and
every SSE stream its last chunk, idle keep-alive HTTP connections close,
requests in flight and streaming responses finish within
``shutdown_timeout``; then the app drains its groups and closes its
storage, and `serve` returns as soon as that is done (docs/operations.md,
"Shutdown", has the measured timings). The HTTP port is served by
`front_door.FrontDoor` (``ServerSettings.http == "fast"``, the default) or by
hypercorn + quart-trio (``"asgi"``, `asgi.serve_asgi`).
"""

from __future__ import annotations

import errno
import gc
import logging
from typing import TYPE_CHECKING

import attrs
import trio

from actors.exceptions import sole_error

from .front_door import FrontDoor
from .http import HttpServer
from .settings import HTTP_ASGI, ServerSettings
from .websocket import WebSocketServer

if TYPE_CHECKING:
    from ..app import App

__all__ = ["serve", "Listening"]

logger = logging.getLogger("runtime.server")


@attrs.frozen
class Listening:
    """What `serve` reports once it accepts connections."""

    http_url: str
    stream_url: str
    server: HttpServer
    websocket: WebSocketServer


async def serve(
    app: App,
    settings: ServerSettings = ServerSettings(),
    *,
    shutdown: trio.Event | None = None,
    task_status: trio.TaskStatus[Listening] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``app`` (entered here) with its HTTP listener; see the module docstring.

    ``port=0`` picks a free port; the `Listening` passed to ``task_status``
    says which. Raises OSError with a clear message when the port is taken.
    """
    shutdown = shutdown if shutdown is not None else trio.Event()
    async with app:
        async with trio.open_nursery() as handlers:
            server = HttpServer(app, settings, handlers)
            server.metrics.worker = settings.worker_id
            websocket = WebSocketServer(app, settings, server.metrics)

            async def graceful() -> None:
                await shutdown.wait()
                websocket.drain()  # the stream port stops accepting; every WebSocket gets 1001
                server.close_streams()  # every SSE stream ends with its last chunk

            port_done = trio.Event()

            async def run_http_port(task_status: trio.TaskStatus[list[str]]) -> None:
                try:
                    if settings.http == HTTP_ASGI:
                        from .asgi import serve_asgi  # hypercorn and Quart are imported only when used

                        await serve_asgi(server, shutdown, task_status=task_status)
                    else:
                        front = FrontDoor(server, keep_alive_timeout=settings.keep_alive_timeout)
                        await front.serve(shutdown, task_status=task_status)
                finally:
                    port_done.set()

            handlers.start_soon(graceful)
            try:
                binds = await handlers.start(run_http_port)
            except (OSError, BaseExceptionGroup) as exc:
                error = sole_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
                if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
                    raise OSError(error.errno, f"{settings.host}:{settings.port} is already in use") from None
                raise
            try:
                stream_url = await handlers.start(websocket.serve)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise OSError(exc.errno, f"{settings.host}:{settings.stream_port} is already in use") from None
                raise
            if settings.gc_freeze:
                gc.collect()
                gc.freeze()  # start-up's objects live as long as the process: no full collection scans them
            task_status.started(Listening(http_url=binds[0], stream_url=stream_url, server=server, websocket=websocket))
            await shutdown.wait()
            # the HTTP port returns once its connections are done (bounded by
            # graceful_timeout); then stop the handlers still running.
            with trio.move_on_after(settings.shutdown_timeout + 1):
                await port_done.wait()
                while websocket.connections:  # each ends once its close frame is written
                    await trio.sleep(0.01)
            handlers.cancel_scope.cancel()
