"""Server settings, with the defaults of protocol.md ("Listeners", "Limits")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

__all__ = ["ServerSettings", "SLOW_RESYNC", "SLOW_CLOSE", "HTTP_FAST", "HTTP_ASGI"]

#: What serves the HTTP port (`ServerSettings.http`).
HTTP_FAST = "fast"
HTTP_ASGI = "asgi"

#: Slow-consumer policies: drop the backlog and send a fresh sync once the
#: client drains (default), or close the connection.
SLOW_RESYNC = "resync"
SLOW_CLOSE = "close"


@attrs.frozen
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 3111
    stream_port: int = 3112
    #: Bind both ports with SO_REUSEPORT, so several processes (``serve --workers``) share
    #: them and the kernel spreads connections over them (see bind.py).
    reuse_port: bool = False
    #: ``serve --workers``: this worker's id (1..N), the ``worker`` label of /metrics; 0 alone.
    worker_id: int = 0
    #: Request bodies above this many bytes get 413.
    body_limit: int = 1024 * 1024
    #: Where SSE subscriptions live: ``{prefix}/{stream}/{group}[/{item}]``.
    sse_prefix: str = "/streams"
    #: Bound of each connection's queue of outgoing events, in bytes.
    outbox_limit: int = 1024 * 1024
    #: What happens to a subscriber that falls behind its outbox bound.
    slow_consumer: str = SLOW_RESYNC
    #: What serves the HTTP port: "fast" (default: the runtime's own HTTP/1.1 on the raw
    #: socket, front_door.py; SSE is served only here) or "asgi" (hypercorn + quart-trio,
    #: asgi.py: for TLS, HTTP/2 and ASGI middleware). docs/http.md compares them.
    http: str = HTTP_FAST
    #: With http="asgi": TLS on the HTTP port (PEM files), and HTTP/2 by ALPN.
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    #: With http="asgi": a callable that wraps the ASGI app (``lambda app: Middleware(app)``).
    asgi_middleware: Callable[[Any], Any] | None = None
    #: Seconds an idle HTTP keep-alive connection is kept between two requests (and
    #: before its first); a request head or body that stalls this long is dropped too.
    keep_alive_timeout: float = 75.0
    #: SSE comment heartbeat, seconds.
    sse_heartbeat: float = 15.0
    #: SSE ``retry:`` hint for EventSource reconnects, milliseconds.
    sse_retry_ms: int = 2000
    #: Seconds the server waits for handlers and streams at shutdown.
    shutdown_timeout: float = 5.0
    #: CORS: origins allowed to call step routes and SSE from a browser
    #: (empty = CORS off; "*" = any). Preflights are answered when set.
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: Origins allowed to open SSE (and WebSocket) subscriptions; when set, a
    #: request carrying another ``Origin`` is refused with 403, so a page on
    #: another site cannot ride a user's cookies into a stream.
    allowed_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    #: WebSocket limits (protocol.md "Limits"): subscriptions per connection (an extra join gets
    #: TOO_MANY_SUBSCRIPTIONS), bytes per client message (more: close 1009), seconds for the
    #: upgrade, seconds between pings, and seconds to answer one (else close 1001).
    ws_max_subscriptions: int = 1000
    ws_max_message: int = 64 * 1024
    ws_handshake_timeout: float = 10.0
    ws_ping_interval: float = 25.0
    ws_pong_timeout: float = 20.0
    #: Seconds before an auth context's ``expires_at`` that ``refresh_required`` is sent (or half
    #: the remaining lifetime when that is shorter): WebSocket and SSE (auth_lease.py).
    refresh_before: float = 30.0
    #: Once listening, collect and `gc.freeze()` what start-up made (modules,
    #: the app's definitions: ~60k objects), so that the full collections a
    #: busy server triggers do not scan them again each time (~40 ms each on
    #: the bench machine, a pause for every subscriber). Process-wide, so off
    #: by default for embedded use; ``python -m runtime serve`` turns it on.
    gc_freeze: bool = False

    def cors_allows(self, origin: str | None) -> bool:
        return bool(origin) and bool(self.cors_origins) and ("*" in self.cors_origins or origin in self.cors_origins)

    def origin_allowed(self, origin: str | None) -> bool:
        return not origin or not self.allowed_origins or "*" in self.allowed_origins or origin in self.allowed_origins

    def __attrs_post_init__(self) -> None:
        if self.http not in (HTTP_FAST, HTTP_ASGI):
            raise ValueError(f"http must be {HTTP_FAST!r} or {HTTP_ASGI!r}")
        if self.http != HTTP_ASGI and (self.tls_certfile or self.asgi_middleware is not None):
            raise ValueError("TLS and ASGI middleware need http='asgi'")
        if self.slow_consumer not in (SLOW_RESYNC, SLOW_CLOSE):
            raise ValueError(f"slow_consumer must be {SLOW_RESYNC!r} or {SLOW_CLOSE!r}")
        if not self.sse_prefix.startswith("/") or self.sse_prefix.endswith("/"):
            raise ValueError("sse_prefix must start with '/' and not end with one")
