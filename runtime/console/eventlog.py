"""What the console remembers of each stream: its last events (with their trace ids) and its rates.

One engine listener per stream (``engine.on_change``, the seam stream
triggers use: it runs after the commit and never delays a write) records
each event: type, item, offset, epoch, timestamp, trace id, size of its
envelope, a preview, and the value itself when small. Bounded: the last
``per_stream`` (2,000) events of each stream; a value over ``max_value``
bytes (16 KiB) is kept as its preview only. Counters per stream (events,
bytes) feed the live monitor's rates. The same listener reports the write
to the trace ring, so a trace shows each stream write with its offset.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from ..streams.events import Event
from ..streams.tracing import Tracer

__all__ = ["EventLog"]

PREVIEW = 160


class EventLog:
    def __init__(self, tracer: Tracer, *, per_stream: int = 2000, max_value: int = 16 * 1024) -> None:
        self._tracer = tracer
        self._per_stream = per_stream
        self._max_value = max_value
        self._logs: dict[str, deque[dict[str, Any]]] = {}
        self._seq = itertools.count(1)
        self.events: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    def attach(self, engine: Any, streams: Iterable[str]) -> None:
        for name in streams:
            engine.on_change(name, self.record, name="console")

    async def record(self, event: Event) -> None:
        size = len(event.json)
        stream = event.stream
        self.events[stream] += 1
        self.bytes[stream] += size
        preview = event.json.decode(errors="replace")
        body_at = preview.find('"event":')
        preview = preview[body_at + 8:-1] if body_at >= 0 else preview
        entry = {
            "seq": next(self._seq), "stream": stream, "group": event.group, "item": event.item_id,
            "type": event.type if event.type != "event" else f"event:{(event.data or {}).get('type')}",
            "offset": event.offset, "epoch": event.epoch, "timestamp": event.timestamp,
            "trace_id": event.trace_id, "size": size,
            "preview": preview if len(preview) <= PREVIEW else preview[:PREVIEW] + "…",
            "data": event.data if size <= self._max_value else None,
        }
        log = self._logs.get(stream)
        if log is None:
            log = self._logs[stream] = deque(maxlen=self._per_stream)
        log.append(entry)
        self._tracer.event(
            event.trace_id, "stream", f"{stream}/{event.group}/{event.item_id or '*'}", timestamp=event.timestamp,
            stream=stream, group=event.group, item=event.item_id, type=entry["type"], offset=event.offset,
            epoch=event.epoch, size=size,
        )

    def group_events(self, stream: str, group: str, *, item: str | None = None, type: str | None = None,
                     after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """The group's remembered events, oldest first (``after``: only those with a larger ``seq``)."""
        found = [
            e for e in self._logs.get(stream, ())
            if e["group"] == group and e["seq"] > after
            and (item is None or e["item"] == item) and (type is None or e["type"] == type)
        ]
        return found[-limit:]
