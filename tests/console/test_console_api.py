"""The console's API in process: the trace ring's bounds, can_access on what it shows, OpenTelemetry spans."""

from __future__ import annotations

import logging

import orjson
import pytest
import trio
import trio.testing

from runtime import ApiResponse, App, StreamConfig, http, queue, step
from runtime.console import Console, TraceRing
from runtime.console.otel import _Sink, otel_trace_id


def _app(**options):
    secret = StreamConfig(name="secret", can_access=lambda subscription, auth: subscription.group_id == "open")
    s = step({"name": "Write", "enqueues": ["later"], "triggers": [http("POST", "/write/:group")]})

    @s.handle
    async def write(request, ctx):
        ctx.logger.info("writing")
        await ctx.streams.secret.set(request.path_params["group"], "x", {"v": 1})
        await ctx.enqueue({"topic": "later", "data": {}})
        return ApiResponse(200, {})

    later = step({"name": "Later", "triggers": [queue("later")]}, lambda data, ctx: None)
    app = App(streams=[secret], steps=[s, later], **options)
    console = Console(app).install()
    return app, console


async def test_a_trace_follows_a_request_through_the_step_the_write_the_enqueue_and_the_queue_step(caplog):
    caplog.set_level(logging.INFO, logger="runtime")
    app, console = _app()
    async with app:
        with console.capturing(), trio.fail_after(10):
            response = await app.request("POST", "/write/open")
            trace_id = response.headers["X-Trace-Id"]
            while not any(e["name"] == "Later" and "end" in e for e in console.traces.get(trace_id)["entries"]):
                await trio.testing.wait_all_tasks_blocked()  # the queue step runs in its own task
    entries = console.traces.get(trace_id)["entries"]
    kinds = [(e["kind"], e["name"]) for e in entries]
    assert kinds[:2] == [("http", "POST /write/open"), ("step", "Write")]
    assert ("log", "writing") in kinds and ("enqueue", "later") in kinds and ("step", "Later") in kinds
    write = next(e for e in entries if e["kind"] == "stream")
    assert (write["name"], write["offset"], write["type"]) == ("secret/open/x", 1, "create")
    assert entries[0]["status"] == 200


async def test_without_the_token_the_console_shows_nothing_past_can_access():
    app, console = _app()
    async with app:
        await app.request("POST", "/write/open")
        denied = await app.request("POST", "/write/closed")
        groups = (await app.request("GET", "/_console/api/streams/secret/groups")).body
        assert [g["group"] for g in orjson.loads(groups)["groups"]] == ["open"]
        assert (await app.request("GET", "/_console/api/streams/secret/groups/closed/events")).status == 403
        assert (await app.request("GET", "/_console/api/streams/secret/groups/closed/items/x")).status == 403
        assert (await app.request("GET", "/_console/api/streams/secret/groups/open/items/x")).status == 200
        trace = orjson.loads((await app.request("GET", f"/_console/api/traces/{denied.headers['X-Trace-Id']}")).body)
        write = next(e for e in trace["entries"] if e["kind"] == "stream")
        assert write["name"] == "secret/(no access)" and write["group"] is None


def test_the_ring_keeps_the_last_traces_and_bounds_each():
    ring = TraceRing(max_traces=3, max_entries=2)
    for n in range(5):
        ring.event(f"t{n}", "enqueue", "topic")
    assert [t["trace_id"] for t in ring.recent()] == ["t4", "t3", "t2"] and ring.evicted == 2
    for _ in range(3):
        with ring.span("t4", "step", "S"):
            pass
    assert len(ring.get("t4")["entries"]) == 2 and ring.get("t4")["dropped"] == 2
    with pytest.raises(ValueError), ring.span("t9", "step", "Boom"):
        raise ValueError("no")
    assert ring.get("t9")["entries"][0]["error"] == "ValueError: no" and ring.get("t9")["errors"] == 1


def test_spans_go_to_opentelemetry_in_the_trace_of_our_trace_id():
    sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ring = TraceRing(sink=_Sink(provider.get_tracer("test")))
    with ring.span("ab12", "http", "POST /x") as span:
        span["status"] = 201
    ring.event("ab12", "stream", "todo/g/1", offset=3)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["http POST /x", "stream todo/g/1"]
    assert {s.context.trace_id for s in spans} == {otel_trace_id("ab12")}
    assert spans[0].attributes["runtime.status"] == 201 and spans[1].attributes["runtime.offset"] == 3
    assert spans[0].attributes["runtime.trace_id"] == "ab12"
