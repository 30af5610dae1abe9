"""What the HTTP port's parts share for one `App`: settings, metrics, open SSE streams.

The port itself is served by the fast path (``front_door.py``, ``routes.py``)
or, with ``ServerSettings(http="asgi")``, by hypercorn + quart-trio
(``asgi.py``); both route through ``app.steps`` and count in the same
`ServerMetrics`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ..errors import ConfigurationError
from .metrics import ServerMetrics
from .settings import ServerSettings

if TYPE_CHECKING:
    from ..app import App
    from .outbox import Outbox

__all__ = ["HttpServer"]

logger = logging.getLogger("runtime.server")


class HttpServer:
    """What the HTTP port's connections and routes share (the SSE transport reaches the app through it)."""

    def __init__(self, app: App, settings: ServerSettings, handlers: trio.Nursery) -> None:
        self.app = app
        self.settings = settings
        self.handlers = handlers
        self.metrics = ServerMetrics()
        self.open_outboxes: set[Outbox] = set()
        self.front_door: Any = None  # the HTTP port's connection handler, once serving
        self._check_routes()

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
