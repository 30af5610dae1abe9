"""The development console: ``/_console/`` on the HTTP port (docs/console.md).

Streams with their schemas, groups and live items; a live monitor; steps
with a request form, queues, dead letters and cron; traces as timelines.
Its assets ship in this package (``assets/``: HTML, CSS and ES modules, no
build step, no CDN). It sits between the server and the app: it reads the
engine and the step runtime, registers its pages as the runtime's own
routes, and is a client of the product's own SSE and ``/metrics``.
"""

from .console import PREFIX, Console, console_enabled
from .traces import TraceRing

__all__ = ["Console", "console_enabled", "TraceRing", "PREFIX"]
