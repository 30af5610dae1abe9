"""History entries and published batches: their JSON, as pure functions.

A history entry is ``{"o":offset,"t":timestamp,"e":{"i":item id,"y":type,"d":data}}``;
a published batch is ``{"g":origin,"p":epoch,"v":[entry, ...]}``, where a
``send`` has offset 0 and no history entry. The scripts only ever prepend
the first two fields, so Python is the only JSON codec that touches data.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from ..base import QueuedMessage, RemoteBatch, RemoteEvent, StoredEvent

__all__ = [
    "decode_batch", "decode_entry", "decode_message", "encode_body", "encode_message", "publish_head",
]


def encode_body(item_id: str | None, type_: str, data: Any) -> bytes:
    return orjson.dumps({"i": item_id, "y": type_, "d": data})


def publish_head(origin: str, epoch: str) -> bytes:
    """What the commit script puts before the entries of the batch it publishes."""
    return b'{"g":' + orjson.dumps(origin) + b',"p":' + orjson.dumps(epoch) + b',"v":['


def decode_entry(raw: bytes | str) -> StoredEvent:
    entry = orjson.loads(raw)
    body = entry["e"]
    return StoredEvent(entry["o"], entry["t"], body["i"], body["y"], body["d"])


def decode_batch(stream: str, group: str, raw: bytes | str) -> RemoteBatch:
    """Raises ValueError (orjson's, or a KeyError/TypeError turned into one) on a malformed batch."""
    try:
        batch = orjson.loads(raw)
        events = tuple(
            RemoteEvent(entry["o"], entry["t"], entry["e"]["i"], entry["e"]["y"], entry["e"]["d"])
            for entry in batch["v"]
        )
        return RemoteBatch(stream, group, batch["p"], batch["g"], events)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed batch: {exc!r}") from exc


def encode_message(message: QueuedMessage) -> bytes:
    """A queued message as JSON; a ``data`` JSON cannot represent raises TypeError."""
    return orjson.dumps(attrs.asdict(message))


def decode_message(raw: bytes) -> QueuedMessage:
    return QueuedMessage(**orjson.loads(raw))
