"""The network ports: HTTP (step routes, SSE, health, metrics) and the WebSocket stream port.

Layout, top down (each module owns one thing; arrows point down only)::

    serve.py          starts both ports for an App, graceful shutdown
    listeners.py      both ports' accept loop and per-connection fault boundary
    bind.py           listening sockets (SO_REUSEPORT for --workers)
    http.py           what the HTTP port's parts share (HttpServer: app, settings, metrics)
      front_door.py   HTTP/1.1 connection driver: requests in, answers out, SSE hand-over
      http_wire.py    sans-I/O HTTP/1.1: framing, Lifecycle table, keep-alive rule, heads
      routes.py       what the HTTP port answers: /health, /metrics, preflights, step routes
      responses.py    Motia-style streaming step responses
      cors.py         CORS response headers
      asgi.py         hypercorn + quart-trio, only behind ServerSettings(http="asgi")
    websocket.py      WebSocket transport: handshake (wsproto), client frames in
      ws_protocol.py  sans-I/O WebSocket frames of Motia's stream protocol
    sse.py            SSE transport: one subscription's response on its socket
      sse_wire.py     sans-I/O SSE: subscription targets, resume position, blocks, chunks
    subscriptions.py  THE CONNECTION LAYER both transports stand on: admission, the
                      subscription table, leave/on_leave, overflow policy, heartbeat,
                      writer hand-off (its docstring is the contract)
      auth.py         authenticate / can_access / on_join / on_leave hooks
      outbox.py       the bounded queue between a group's deliveries and the socket
      flusher.py      the one task that writes every ready outbox
      heartbeat.py    pings (WebSocket) and keep-alives (SSE) from one task
      waiter.py       a single parked task, woken without allocating
    settings.py, metrics.py   leaves: ServerSettings, the Prometheus counters

The rule: a transport (websocket.py, sse.py) only frames bytes and parses
what its client sends; what a subscription connection *is* lives in
subscriptions.py, so both transports admit, count, leave and end alike. The
package imports steps/, streams/ and below, never app.py (tests/test_layering.py).
"""

from .serve import Listening, serve
from .settings import SLOW_CLOSE, SLOW_RESYNC, ServerSettings

__all__ = ["Listening", "SLOW_CLOSE", "SLOW_RESYNC", "ServerSettings", "serve"]
