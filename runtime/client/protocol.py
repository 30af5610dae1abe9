"""The client side of the WebSocket stream protocol, as pure functions over text and data.

Nothing here touches a socket: server frames are parsed into `StreamFrame`
/ `ErrorFrame` / `MalformedFrame`, client frames are encoded from plain
arguments, frames are routed to rooms the way Motia's clients route them,
and the reconnect delay is computed from an attempt number and a random
source. The wire format is docs/protocol.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson

from ..streams.events import STATE_TYPES, parse_position

__all__ = [
    "Position", "StreamFrame", "ErrorFrame", "ControlFrame", "MalformedFrame", "Room", "STATE_TYPES",
    "REFUSAL_CODES", "JOIN_ERROR_CODES", "PRESENCE_TYPES", "PresenceEntry", "parse_frame", "join_message",
    "leave_message", "refresh_message", "frame_rooms", "room_of", "backoff_delay",
]

#: Codes of the custom ``error`` event that answers a join that was not made (in the join's envelope).
REFUSAL_CODES = frozenset({
    "STREAM_ACCESS_DENIED", "STREAM_NOT_FOUND", "TOO_MANY_SUBSCRIPTIONS", "JOIN_FAILED", "TOKEN_EXPIRED",
})

#: (ext) The envelope event types of presence (docs/presence.md): the list, then upserts and removals.
PRESENCE_TYPES = frozenset({"presence", "presence_join", "presence_leave"})

#: Codes of top-level error frames that answered a join before servers sent them in its envelope
#: (they name no stream: the oldest unanswered join is meant).
JOIN_ERROR_CODES = frozenset({"TOO_MANY_SUBSCRIPTIONS", "JOIN_FAILED"})

#: (stream, group, item id or None): where a frame is delivered.
Room = tuple[str, str, "str | None"]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A point in a group's history: ``epoch`` (the incarnation) and ``offset`` (state changes so far)."""

    epoch: str
    offset: int

    @property
    def token(self) -> str:
        """``"<epoch>:<offset>"``: what a join's ``since`` (and SSE's ``Last-Event-ID``) carries."""
        return f"{self.epoch}:{self.offset}"

    @classmethod
    def parse(cls, token: str) -> Position:
        parsed = parse_position(token)
        if parsed is None:
            raise ValueError(f"not an <epoch>:<offset> position: {token!r}")
        return cls(*parsed)

    def __str__(self) -> str:
        return self.token


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """One ``{"type":"stream", ...}`` envelope.

    ``type`` is the envelope's event type (``sync``, ``create``, ``update``,
    ``delete``, ``event``, ``unauthorized``, ``resumed``, or anything newer).
    ``data`` is the item (the items of a group sync; the old value of a
    delete) or, for ``event``, the custom event's data with its type in
    ``event_type``.
    """

    stream: str
    group: str
    item_id: str | None
    timestamp: int
    type: str
    data: Any = None
    event_type: str | None = None
    epoch: str | None = None
    offset: int | None = None
    replayed: int | None = None

    @property
    def room(self) -> Room:
        return (self.stream, self.group, self.item_id)

    @property
    def position(self) -> Position | None:
        if self.epoch is None or self.offset is None:
            return None
        return Position(self.epoch, self.offset)

    @property
    def is_state(self) -> bool:
        return self.type in STATE_TYPES

    @property
    def refusal_code(self) -> str | None:
        """The code of a refused join's custom ``error`` event, else None."""
        if self.type != "event" or self.event_type != "error" or not isinstance(self.data, dict):
            return None
        code = self.data.get("code")
        return code if code in REFUSAL_CODES else None


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """``{"type":"error","error":{"code":...,"message":...}}``: an error that belongs to no stream."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ControlFrame:
    """(ext) A stream-less frame about the connection: ``refresh_required`` or ``refreshed``;
    ``expires_at`` is the auth context's expiry (seconds since the epoch) or None."""

    type: str
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class PresenceEntry:
    """(ext) One identity present in a group: how many subscriptions it has, and its data."""

    key: str
    count: int
    data: Any = None


@dataclass(frozen=True, slots=True)
class MalformedFrame:
    """Something the client cannot read (not JSON, an unknown frame type, missing fields)."""

    reason: str
    text: str


def _text(data: str | bytes, limit: int = 200) -> str:
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."


def parse_frame(data: str | bytes) -> StreamFrame | ErrorFrame | ControlFrame | MalformedFrame:
    """One server message (text, or binary holding UTF-8 JSON) → what it is."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return MalformedFrame("not JSON", _text(data))
    if not isinstance(message, dict):
        return MalformedFrame("not a JSON object", _text(data))
    kind = message.get("type")
    if kind == "error":
        error = message.get("error")
        if not isinstance(error, dict):
            return MalformedFrame('an error frame without an "error" object', _text(data))
        return ErrorFrame(str(error.get("code") or "ERROR"), str(error.get("message") or ""))
    if kind in ("refresh_required", "refreshed"):
        body = message.get("data")
        expiry = body.get("expiresAt") if isinstance(body, dict) else None
        if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
            expiry = None
        return ControlFrame(kind, None if expiry is None else float(expiry))
    if kind != "stream":
        return MalformedFrame(f"unknown frame type {kind!r}", _text(data))
    stream, group, item_id = message.get("streamName"), message.get("groupId"), message.get("id")
    event = message.get("event")
    timestamp = message.get("timestamp")
    if not isinstance(stream, str) or not isinstance(group, str) or not isinstance(event, dict):
        return MalformedFrame("a stream frame needs streamName, groupId and an event object", _text(data))
    if item_id is not None and not isinstance(item_id, str):
        return MalformedFrame('"id" must be a string or null', _text(data))
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        timestamp = 0  # Motia's clients compare timestamps; a frame without one is older than anything
    event_type = event.get("type")
    if not isinstance(event_type, str):
        return MalformedFrame('the event needs a string "type"', _text(data))
    epoch, offset = message.get("epoch"), message.get("offset")
    if not isinstance(epoch, str) or not isinstance(offset, int) or isinstance(offset, bool):
        epoch, offset = None, None
    custom_type, payload = None, event.get("data")
    if event_type == "event":
        custom = event.get("event")
        if not isinstance(custom, dict) or not isinstance(custom.get("type"), str):
            return MalformedFrame('a custom event needs "event": {"type": ..., "data": ...}', _text(data))
        custom_type, payload = custom["type"], custom.get("data")
    replayed = event.get("replayed") if event_type == "resumed" else None
    return StreamFrame(
        stream=stream, group=group, item_id=item_id, timestamp=timestamp, type=event_type, data=payload,
        event_type=custom_type, epoch=epoch, offset=offset, replayed=replayed if isinstance(replayed, int) else None,
    )


def _body(stream: str, group: str, subscription_id: str, item_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"streamName": stream, "groupId": group}
    if item_id is not None:
        body["id"] = item_id
    body["subscriptionId"] = subscription_id
    return body


def join_message(
    stream: str, group: str, subscription_id: str, item_id: str | None = None, since: Position | None = None,
    *, presence: bool = False, presence_data: Any = None,
) -> str:
    """A join frame; ``since`` asks the server to replay what came after that position; (ext)
    ``presence`` asks for the group's presence events, ``presence_data`` is this join's own."""
    body = _body(stream, group, subscription_id, item_id)
    if since is not None:
        body["since"] = since.token
    if presence:
        body["presence"] = True
        if presence_data is not None:
            body["presenceData"] = presence_data
    return orjson.dumps({"type": "join", "data": body}).decode()


def refresh_message(token: str) -> str:
    """(ext) A new token for the live connection."""
    return orjson.dumps({"type": "refresh", "data": {"token": token}}).decode()


def leave_message(stream: str, group: str, subscription_id: str, item_id: str | None = None) -> str:
    return orjson.dumps({"type": "leave", "data": _body(stream, group, subscription_id, item_id)}).decode()


def room_of(stream: str, group: str, item_id: str | None = None) -> Room:
    return (stream, group, item_id)


def frame_rooms(frame: StreamFrame) -> list[Room]:
    """Where a frame goes, as in Motia's clients: its own room, and an item's
    frame also to its group's room (the server sends one frame per
    connection even when a group and an item subscription both match).
    Syncs, resume markers and refusals answer one join: their own room only."""
    rooms = [frame.room]
    if frame.item_id is not None and frame.type not in ("sync", "resumed", "unauthorized"):
        rooms.append((frame.stream, frame.group, None))
    return rooms


def backoff_delay(
    attempt: int, *, initial: float = 0.5, maximum: float = 30.0, jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0-based): ``initial × 2^attempt``,
    capped at ``maximum``, then spread by ±``jitter`` (a fraction) so clients do not reconnect in step."""
    base = min(maximum, initial * (2 ** min(attempt, 62)))
    if jitter:
        base *= 1 + (rng or random).uniform(-jitter, jitter)
    return max(0.0, base)
