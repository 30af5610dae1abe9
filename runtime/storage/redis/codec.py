"""History entries and published batches: their JSON, as pure functions.

A history entry is ``{"o":offset,"t":timestamp,"e":{"i":item id,"y":type,"d":data}}``;
a published message is ``{"g":origin,"b":[batch, ...]}``, one batch per group
that committed in that script call, each ``{"s":stream,"r":group,"p":epoch,
"v":[entry, ...]}``, where a ``send`` has offset 0 and no history entry.
The scripts only ever prepend the first two fields of an entry and join
what Python built, so Python is the only JSON codec that touches data.

Why one message for many groups: a process receives its own publications
too (every process subscribes to them), so one message per group commit
cost each process a pub/sub message to parse and drop per commit; one per
script call costs one per round trip (see pipeline.py).
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from ..base import QueuedMessage, RemoteBatch, RemoteEvent, StoredEvent

__all__ = [
    "decode_batches", "decode_entry", "decode_message", "encode_body", "encode_message", "group_head",
    "message_head",
]


def encode_body(item_id: str | None, type_: str, data: Any) -> bytes:
    return orjson.dumps({"i": item_id, "y": type_, "d": data})


def message_head(origin: str) -> bytes:
    """What the commit script puts before the batches of the message it publishes."""
    return b'{"g":' + orjson.dumps(origin) + b',"b":['


def group_head(stream: str, group: str, epoch: str) -> bytes:
    """What the commit script puts before one group's entries in that message."""
    return orjson.dumps({"s": stream, "r": group, "p": epoch})[:-1] + b',"v":['


def decode_entry(raw: bytes | str) -> StoredEvent:
    entry = orjson.loads(raw)
    body = entry["e"]
    return StoredEvent(entry["o"], entry["t"], body["i"], body["y"], body["d"])


def decode_batches(raw: bytes | str) -> list[RemoteBatch]:
    """Raises ValueError (orjson's, or a KeyError/TypeError turned into one) on a malformed message."""
    try:
        message = orjson.loads(raw)
        origin = message["g"]
        return [
            RemoteBatch(batch["s"], batch["r"], batch["p"], origin, tuple(
                RemoteEvent(entry["o"], entry["t"], entry["e"]["i"], entry["e"]["y"], entry["e"]["d"])
                for entry in batch["v"]
            ))
            for batch in message["b"]
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed batch: {exc!r}") from exc


def encode_message(message: QueuedMessage) -> bytes:
    """A queued message as JSON; a ``data`` JSON cannot represent raises TypeError."""
    return orjson.dumps(attrs.asdict(message))


def decode_message(raw: bytes) -> QueuedMessage:
    return QueuedMessage(**orjson.loads(raw))
