"""Spans to OpenTelemetry, when the ``otel`` extra is installed: a thin, import-guarded adapter.

``pip install 'trio-streams-runtime[otel]'`` (the OpenTelemetry API, SDK and
OTLP exporter). Configuration is OpenTelemetry's own: the standard
``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_TRACES_EXPORTER=otlp|console|none``, ``OTEL_SDK_DISABLED``...). If the
program already set a tracer provider, spans go to it and nothing is
configured here.

Each finished entry of the trace ring (HTTP request, step invocation, stream
write, enqueue) becomes one span with its start and end times, in the
OpenTelemetry trace derived from our trace id (the id itself when it is 32
hex digits, else a hash of it; the original is the ``runtime.trace_id``
attribute), so a user's tracing backend sees the same flows as the console.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from typing import Any

__all__ = ["span_sink_from_environment", "otel_trace_id"]

logger = logging.getLogger("runtime.console")


def otel_trace_id(trace_id: str) -> int:
    """Our trace id as OpenTelemetry's 128-bit one."""
    if len(trace_id) == 32:
        try:
            value = int(trace_id, 16)
            if value:
                return value
        except ValueError:
            pass
    return int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=16).digest(), "big") or 1


def span_sink_from_environment() -> Callable[[str, dict[str, Any]], None] | None:
    """A sink for the trace ring, or None without OpenTelemetry (or with ``OTEL_SDK_DISABLED=true``)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # nobody configured one: do it from OTEL_*
        provider = _provider_from_environment()
        if provider is None:
            return None
    return _Sink(provider.get_tracer("trio-streams-runtime"))


def _provider_from_environment() -> Any:
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        return None
    exporters = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if e.strip()]
    provider = TracerProvider(resource=Resource.create())
    added = False
    for name in exporters:
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
            added = True
        elif name == "otlp":
            try:
                protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
                if protocol == "grpc":
                    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
                        OTLPSpanExporter,
                    )
                else:
                    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                        OTLPSpanExporter,
                    )
            except ImportError:
                logger.debug("OpenTelemetry: no OTLP exporter installed (the otel extra has it); "
                             "spans are not exported")
                continue
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            added = True
    return provider if added else None


def _root_span_id(trace_id: str) -> int:
    """One parent per trace (it is never exported itself), so a backend groups a trace's spans."""
    return int.from_bytes(hashlib.blake2b(trace_id.encode(), digest_size=8, person=b"root").digest(), "big") or 1


_OWN = ("kind", "name", "start", "end", "duration_ms")


class _Sink:
    def __init__(self, tracer: Any) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer

    def __call__(self, trace_id: str, entry: dict[str, Any]) -> None:
        trace = self._trace
        parent = trace.NonRecordingSpan(trace.SpanContext(
            trace_id=otel_trace_id(trace_id), span_id=_root_span_id(trace_id),
            is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)))
        start = int(entry["start"] * 1_000_000)
        attributes = {"runtime.trace_id": trace_id, "runtime.kind": entry["kind"]}
        for key, value in entry.items():
            if key not in _OWN and isinstance(value, (str, int, float, bool)):
                attributes[f"runtime.{key}"] = value
        span = self._tracer.start_span(
            f"{entry['kind']} {entry['name']}", context=trace.set_span_in_context(parent),
            kind=trace.SpanKind.SERVER if entry["kind"] == "http" else trace.SpanKind.INTERNAL,
            start_time=start, attributes=attributes,
        )
        if entry.get("error"):
            span.set_status(trace.Status(trace.StatusCode.ERROR, entry["error"]))
        span.end(end_time=int(entry.get("end", entry["start"]) * 1_000_000))
