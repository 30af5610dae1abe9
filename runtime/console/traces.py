"""The last traces in memory: what one trace id caused, as timed entries, for the console's timeline.

A `TraceRing` is the app's `Tracer` while the console is on. Each trace
holds entries in the order they were recorded: ``http`` (a request, with its
status), ``step`` (a handler invocation, with its trigger: http, queue,
stream, cron), ``stream`` (a committed write, with its offset and epoch),
``enqueue`` (messages put on a topic) and ``log`` (a log line that carried
the trace id). Everything is bounded: the ring keeps the last
``max_traces`` (2,000) trace ids, each at most ``max_entries`` (500)
entries, and counts what it dropped. Spans also go to an optional sink
(OpenTelemetry, `otel.py`).

Sync handlers run in worker threads and log from there, so the ring takes a
lock (uncontended it costs ~0.1 µs; a span costs ~3 µs in all).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["TraceRing", "TraceLogHandler"]

#: Called with (trace_id, entry) for every finished span: the OpenTelemetry adapter.
SpanSink = Callable[[str, dict[str, Any]], None]


def _now_ms() -> float:
    return time.time() * 1000


class _Trace:
    __slots__ = ("id", "started", "entries", "dropped", "errors")

    def __init__(self, trace_id: str, started: float) -> None:
        self.id = trace_id
        self.started = started
        self.entries: list[dict[str, Any]] = []
        self.dropped = 0
        self.errors = 0

    def summary(self) -> dict[str, Any]:
        first = self.entries[0] if self.entries else {}
        ends = [e.get("end", e["start"]) for e in self.entries]
        return {
            "trace_id": self.id, "started": self.started, "root": f"{first.get('kind', '?')} {first.get('name', '')}",
            "entries": len(self.entries) + self.dropped, "errors": self.errors,
            "duration_ms": round(max(ends, default=self.started) - self.started, 3),
        }


class TraceRing:
    """A `Tracer` keeping the last ``max_traces`` traces; see the module docstring."""

    def __init__(self, *, max_traces: int = 2000, max_entries: int = 500, sink: SpanSink | None = None) -> None:
        self.max_traces = max_traces
        self.max_entries = max_entries
        self.sink = sink
        self.evicted = 0
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._traces)

    def _add(self, trace_id: str, entry: dict[str, Any], *, create: bool = True) -> None:
        with self._lock:
            trace = self._traces.get(trace_id)
            if trace is None:
                if not create:
                    return
                trace = self._traces[trace_id] = _Trace(trace_id, entry["start"])
                if len(self._traces) > self.max_traces:
                    self._traces.popitem(last=False)
                    self.evicted += 1
            if len(trace.entries) >= self.max_entries:
                trace.dropped += 1
                return
            trace.entries.append(entry)
            if entry.get("error"):
                trace.errors += 1

    # -- Tracer --------------------------------------------------------------------

    @contextmanager
    def span(self, trace_id: str, kind: str, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {"kind": kind, "name": name, "start": _now_ms(), **fields}
        self._add(trace_id, entry)  # listed when it starts, so the timeline shows work in flight
        try:
            yield entry
        except BaseException as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            with self._lock:
                trace = self._traces.get(trace_id)
                if trace is not None:
                    trace.errors += 1
            raise
        finally:
            entry["end"] = _now_ms()
            entry["duration_ms"] = round(entry["end"] - entry["start"], 3)
            self._export(trace_id, entry)

    def event(self, trace_id: str | None, kind: str, name: str, **fields: Any) -> None:
        if trace_id:
            entry = {"kind": kind, "name": name, "start": fields.pop("at", None) or _now_ms(), **fields}
            self._add(trace_id, entry)
            self._export(trace_id, entry)

    def _export(self, trace_id: str, entry: dict[str, Any]) -> None:
        if self.sink is None:
            return
        try:
            self.sink(trace_id, entry)
        except Exception:  # noqa: BLE001 - an exporter's failure is not the traced code's
            logging.getLogger("runtime.console").exception("exporting a span failed")

    def log(self, trace_id: str, entry: dict[str, Any]) -> None:
        """A log line joins its trace if the ring holds it (a log line alone does not start one)."""
        self._add(trace_id, entry, create=False)

    # -- reading ---------------------------------------------------------------------

    def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        """Summaries, newest first."""
        with self._lock:
            traces = list(self._traces.values())[-limit:]
        return [t.summary() for t in reversed(traces)]

    def get(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            trace = self._traces.get(trace_id)
            if trace is None:
                return None
            entries = sorted((dict(e) for e in trace.entries), key=lambda e: e["start"])
            return {**trace.summary(), "dropped": trace.dropped, "entries": entries}


class TraceLogHandler(logging.Handler):
    """Every log record with a trace id (``ctx.logger``, the runner's failure lines) into its trace."""

    def __init__(self, ring: TraceRing) -> None:
        super().__init__(logging.DEBUG)
        self.ring = ring

    def emit(self, record: logging.LogRecord) -> None:
        trace_id = getattr(record, "trace_id", None)
        if not trace_id:
            return
        try:
            entry: dict[str, Any] = {
                "kind": "log", "name": record.getMessage()[:2000], "start": record.created * 1000,
                "level": record.levelname.lower(), "step": getattr(record, "step", None),
                "fields": {k: repr(v)[:200] for k, v in (getattr(record, "fields", None) or {}).items()},
            }
            if record.exc_info and record.exc_info[1] is not None:
                entry["exception"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            self.ring.log(trace_id, entry)
        except Exception:  # noqa: BLE001 - logging must never fail the code that logs
            self.handleError(record)
