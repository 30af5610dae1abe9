"""The WebSocket stream protocol as pure functions over bytes and dicts.

Server frames are built here, once per event: a server frame is unmasked
and, without compression, identical for every receiver, so a fan-out to a
thousand connections appends the same ``bytes`` to a thousand outboxes.
Client messages are parsed into commands or a `BadFrame` that names what
is wrong; nothing here touches a socket (the sans-I/O style of wsproto).
"""

from __future__ import annotations

import struct
from typing import Any

import attrs
import orjson

from ..streams.events import Event, envelope, parse_position
from ..streams.presence import MAX_PRESENCE_DATA

__all__ = [
    "text_frame", "event_frame", "close_frame", "JoinCommand", "LeaveCommand", "RefreshCommand", "BadFrame",
    "parse_client_message", "bad_frame_error", "refusal_frames", "not_found_frame", "join_error_frame",
    "control_frame",
]

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9


def _frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    first = 0x80 | opcode  # FIN, no extensions
    if length < 126:
        return bytes((first, length)) + payload
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final text frame carrying ``payload`` (UTF-8 JSON)."""
    return _frame(OP_TEXT, payload)


def event_frame(event: Event) -> bytes:
    """The event's frame, built once and cached on the event for every receiver."""
    cached = event.frames.get("ws")
    if cached is None:
        cached = event.frames["ws"] = _frame(OP_TEXT, event.json)
    return cached


def close_frame(code: int, reason: str = "") -> bytes:
    return _frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])


def ping_frame(payload: bytes = b"") -> bytes:
    return _frame(OP_PING, payload)


@attrs.frozen
class JoinCommand:
    stream: str
    group: str
    subscription_id: str
    item_id: str | None = None
    since: tuple[str, int] | None = None
    #: (ext) the join asked for presence events, with this data for its own entry (group joins only).
    presence: bool = False
    presence_data: Any = None


@attrs.frozen
class RefreshCommand:
    """(ext) ``{"type":"refresh","data":{"token":T}}``: re-authenticate the live connection."""

    token: str


@attrs.frozen
class LeaveCommand:
    stream: str
    group: str
    subscription_id: str
    item_id: str | None = None


@attrs.frozen
class BadFrame:
    message: str


def _since(value: Any) -> tuple[str, int] | None:
    """The resume position, or None for a fresh sync — a token that does not parse included, as
    the protocol says (and as SSE does with a bad Last-Event-ID): the client gets the state."""
    return parse_position(value) if isinstance(value, str) else None


def parse_client_message(data: str | bytes) -> JoinCommand | LeaveCommand | RefreshCommand | BadFrame:
    """One client frame (text, or binary parsed as UTF-8 JSON) → a command, or what is wrong with it."""
    if not data:
        return BadFrame("empty frame")
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return BadFrame("not JSON")
    if not isinstance(message, dict):
        return BadFrame("a frame must be a JSON object")
    kind = message.get("type")
    if kind not in ("join", "leave", "refresh"):
        return BadFrame(f"unknown frame type {kind!r} (join, leave or refresh)")
    body = message.get("data")
    if not isinstance(body, dict):
        return BadFrame(f'a {kind} frame needs an object "data"')
    if kind == "refresh":
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return BadFrame('refresh: "data.token" must be a non-empty string')
        return RefreshCommand(token)
    fields = {}
    for name in ("streamName", "groupId", "subscriptionId"):
        value = body.get(name)
        if not isinstance(value, str) or not value:
            return BadFrame(f'{kind}: "data.{name}" must be a non-empty string')
        fields[name] = value
    item_id = body.get("id")
    if item_id is not None and (not isinstance(item_id, str) or not item_id):
        return BadFrame(f'{kind}: "data.id" must be a non-empty string or null')
    if kind == "leave":
        return LeaveCommand(fields["streamName"], fields["groupId"], fields["subscriptionId"], item_id)
    presence = body.get("presence") is True and item_id is None  # only group joins get presence
    presence_data = body.get("presenceData") if presence else None
    if presence_data is not None:
        if not isinstance(presence_data, dict):
            return BadFrame('join: "data.presenceData" must be a JSON object')
        if len(orjson.dumps(presence_data)) > MAX_PRESENCE_DATA:
            return BadFrame(f'join: "data.presenceData" is larger than {MAX_PRESENCE_DATA} bytes encoded')
    return JoinCommand(fields["streamName"], fields["groupId"], fields["subscriptionId"], item_id,
                       _since(body.get("since")), presence, presence_data)


def bad_frame_error(message: str, code: str = "BAD_FRAME") -> bytes:
    """A protocol error that belongs to no stream (Motia clients ignore it); also ``REFRESH_FAILED``."""
    return text_frame(orjson.dumps({"type": "error", "error": {"code": code, "message": message}}))


def control_frame(kind: str, data: dict[str, Any]) -> bytes:
    """(ext) A stream-less frame: ``refreshed`` / ``refresh_required`` (Motia clients ignore them)."""
    return text_frame(orjson.dumps({"type": kind, "data": data}))


def _stream_frame(stream: str, group: str, item_id: str | None, timestamp: int, event: dict[str, Any]) -> bytes:
    body = envelope(
        stream=stream, group=group, item_id=item_id, timestamp=timestamp, epoch=None, offset=None, event=event
    )
    return text_frame(orjson.dumps(body))


def refusal_frames(stream: str, group: str, item_id: str | None, timestamp: int, message: str,
                   code: str = "STREAM_ACCESS_DENIED") -> bytes:
    """``unauthorized`` then the custom error event, as protocol.md says: ``STREAM_ACCESS_DENIED``,
    or (ext) ``TOKEN_EXPIRED`` when the connection's auth context lapsed."""
    return _stream_frame(stream, group, item_id, timestamp, {"type": "unauthorized"}) + _stream_frame(
        stream, group, item_id, timestamp + 1,
        {"type": "event", "event": {"type": "error", "data": {"code": code, "message": message}}},
    )


def join_error_frame(stream: str, group: str, item_id: str | None, timestamp: int, code: str, message: str) -> bytes:
    """A join that was not made: the custom ``error`` event in the join's own envelope, so a client
    (Motia's included) routes it to that subscription's listeners — ``STREAM_NOT_FOUND``,
    ``TOO_MANY_SUBSCRIPTIONS``, ``JOIN_FAILED``."""
    return _stream_frame(
        stream, group, item_id, timestamp,
        {"type": "event", "event": {"type": "error", "data": {"code": code, "message": message}}},
    )


def not_found_frame(stream: str, group: str, item_id: str | None, timestamp: int) -> bytes:
    return join_error_frame(stream, group, item_id, timestamp, "STREAM_NOT_FOUND",
                            f"stream {stream!r} is not declared")
