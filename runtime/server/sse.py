"""Server-Sent Events: the wire format, as pure functions.

An event's SSE block is built once and cached on the event, so every
subscriber of a group writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson

from ..streams.events import Event
from .auth import parse_query
from .outbox import Outbox

if TYPE_CHECKING:
    from .settings import ServerSettings

__all__ = [
    "sse_block", "refresh_required_block", "SSEOutbox", "SSE_HEADERS", "cors_headers", "chunk", "LAST_CHUNK",
    "subscription_target",
]

#: The headers of an SSE response (both serving paths).
SSE_HEADERS = (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no"))


def sse_block(event: Event) -> bytes:
    """``id:`` (sync and state events), ``event:`` and ``data:`` lines, encoded once per event."""
    cached = event.frames.get("sse")
    if cached is None:
        position = event.position
        head = f"id: {position}\nevent: {event.type}\ndata: " if position else f"event: {event.type}\ndata: "
        cached = event.frames["sse"] = head.encode() + event.json + b"\n\n"
    return cached


def refresh_required_block(expires_at: float) -> bytes:
    """(ext) ``event: refresh_required`` with ``{"expiresAt": E}``, no ``id:`` line."""
    return b"event: refresh_required\ndata: " + orjson.dumps({"expiresAt": expires_at}) + b"\n\n"


def SSEOutbox(limit: int, *, metrics: object = None) -> Outbox:  # noqa: N802 - reads as a class
    """An outbox that encodes events as SSE blocks."""
    return Outbox(limit, sse_block, metrics=metrics)


def cors_headers(settings: ServerSettings, origin: str | None) -> list[tuple[str, str]]:
    """What a response to ``origin`` carries when CORS allows it (nothing otherwise)."""
    if not settings.cors_allows(origin):
        return []
    allow = "*" if "*" in settings.cors_origins else str(origin)
    return [("Access-Control-Allow-Origin", allow), ("Access-Control-Expose-Headers", "X-Trace-Id"), ("Vary", "Origin")]


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk (``Transfer-Encoding: chunked``) carrying ``data``."""
    return b"%x\r\n%s\r\n" % (len(data), data)


#: The chunk that ends a chunked body.
LAST_CHUNK = b"0\r\n\r\n"


def subscription_target(prefix: str, method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]],
                        ) -> tuple[str, list[str], dict[str, Any]] | None:
    """``(path, [stream, group] or [stream, group, item], query)`` when a request head is an SSE
    subscription the direct path serves; None for anything else (hypercorn serves it, as before).

    Only a plain ``GET`` without a body or an upgrade; the path is percent-decoded before it is
    split, as hypercorn and Quart do, and no segment may be empty.
    """
    if method != b"GET":
        return None
    for name, value in headers:
        if name in (b"content-length", b"transfer-encoding", b"upgrade", b"expect") and value not in (b"0",):
            return None
    raw_path, _, raw_query = target.partition(b"?")
    try:
        path = unquote(raw_path.decode("ascii"))
    except UnicodeDecodeError:
        return None
    if not path.startswith(prefix + "/"):
        return None
    parts = path[len(prefix) + 1:].split("/")
    if len(parts) not in (2, 3) or not all(parts):
        return None
    return path, parts, parse_query(raw_query.decode("latin-1"))
