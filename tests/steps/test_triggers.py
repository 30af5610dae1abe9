"""Every trigger type through an App in process, conditions, chains with one trace id."""

from __future__ import annotations

import logging
import threading

import pytest
import trio

import runtime
from runtime import (
    ApiResponse,
    App,
    FlowContext,
    RetryPolicy,
    RuntimeClock,
    Stream,
    StreamConfig,
    cron,
    http,
    queue,
    step,
    stream,
)

todos = Stream(StreamConfig(name="todos", schema={"title": "string", "done": "boolean"}))
audit = Stream("audit")


async def test_http_route_gets_params_query_headers_and_body():
    seen = {}

    show_step = step({"name": "Show", "triggers": [http("POST", "/lists/:list/items/:item")]})

    @show_step.handle
    async def show(request, ctx: FlowContext):
        seen.update(
            params=request.path_params, query=request.query_params, auth=request.headers["authorization"],
            body=request.body, trigger=ctx.trigger.type, path=ctx.trigger.path,
        )
        return {"status": 201, "body": {"ok": True}, "headers": {"X-Extra": "1"}}

    async with App(steps=[show_step]) as app:
        response = await app.request(
            "POST", "/lists/l1/items/a%20b?tag=x&tag=y&one=1", json={"n": 1}, headers={"Authorization": "Bearer t"}
        )
    assert response.status == 201 and response.body == {"ok": True}
    assert response.headers["X-Extra"] == "1" and response.headers["X-Trace-Id"]
    assert seen == {
        "params": {"list": "l1", "item": "a b"}, "query": {"tag": ["x", "y"], "one": "1"},
        "auth": "Bearer t", "body": {"n": 1}, "trigger": "http", "path": "/lists/:list/items/:item",
    }


async def test_routing_errors_never_reach_a_handler():
    calls = []
    create = step({"name": "Create", "triggers": [http("POST", "/todos", body_schema={
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]})]})
    today = step({"name": "Today", "triggers": [http("GET", "/todos/today")]})
    one = step({"name": "One", "triggers": [http("GET", "/todos/:id")]})
    create.handle(lambda request: calls.append("create") or {"status": 201})
    today.handle(lambda request: ApiResponse(200, "today"))
    one.handle(lambda request: ApiResponse(200, request.path_params["id"]))
    async with App(steps=[create, today, one]) as app:
        assert (await app.request("GET", "/nope")).status == 404
        response = await app.request("DELETE", "/todos")
        assert response.status == 405 and response.headers["Allow"] == "POST"
        response = await app.request("POST", "/todos", json={"title": 5})
        assert response.status == 400 and response.body["error"] == "validation"
        assert [e["path"] for e in response.body["errors"]] == ["/title"]
        assert (await app.request("GET", "/todos/today")).body == "today"  # literal beats :id
        assert (await app.request("GET", "/todos/42")).body == "42"
        assert (await app.request("POST", "/todos", json={"title": "t"})).status == 201
    assert calls == ["create"]


async def test_a_failing_handler_is_a_500_with_the_trace_id_and_others_carry_on(caplog):
    caplog.set_level(logging.ERROR, logger="runtime.steps")
    boom = step({"name": "Boom", "triggers": [http("GET", "/boom")]})
    fine = step({"name": "Fine", "triggers": [http("GET", "/fine")]})

    @boom.handle
    async def explode(request, ctx):
        raise RuntimeError("kaput")

    fine.handle(lambda request: {"status": 200, "body": "ok"})
    async with App(steps=[boom, fine]) as app:
        response = await app.request("GET", "/boom")
        assert response.status == 500
        assert response.body == {"error": "internal", "trace_id": response.headers["X-Trace-Id"]}
        assert "kaput" not in str(response.body)
        assert (await app.request("GET", "/fine")).status == 200
    record = next(r for r in caplog.records if r.levelno == logging.ERROR)
    assert record.step == "Boom" and record.trace_id == response.headers["X-Trace-Id"]
    assert record.exc_info and "kaput" in str(record.exc_info[1])


async def test_chain_http_set_stream_trigger_enqueue_queue_set_keeps_one_trace_id():
    traces: dict[str, str] = {}

    create = step({"name": "CreateTodo", "triggers": [http("POST", "/todos")], "enqueues": []})

    @create.handle
    async def create_todo(request, ctx):
        traces["http"] = ctx.trace_id
        await todos.set("inbox", request.body["id"], {"title": request.body["title"]})
        return {"status": 201, "body": {"id": request.body["id"]}}

    on_todo = step({"name": "OnTodo", "triggers": [stream("todos")], "enqueues": ["todo.created"]})

    @on_todo.handle
    async def react(event, ctx):
        traces["stream"] = ctx.trace_id
        assert event.stream_name == "todos" and event.event.type == "create"
        await ctx.enqueue({"topic": "todo.created", "data": {"id": event.id, "title": event.event.data["title"]}})

    record = step({"name": "Audit", "triggers": [queue("todo.created")]})

    @record.handle
    async def write_audit(data, ctx):
        traces["queue"] = ctx.trace_id
        await ctx.streams.audit.set("log", data["id"], {"title": data["title"], "trace": ctx.trace_id})

    async with App(steps=[create, on_todo, record], streams=[todos, audit]) as app:
        response = await app.request("POST", "/todos", json={"id": "t1", "title": "milk"})
        with trio.fail_after(5):
            while await audit.get("log", "t1") is None:
                await trio.sleep(0.01)
        assert (await audit.get("log", "t1"))["trace"] == response.headers["X-Trace-Id"]
    assert set(traces.values()) == {response.headers["X-Trace-Id"]}
    assert set(traces) == {"http", "stream", "queue"}


async def test_conditions_only_false_skips_and_an_exception_skips(autojump_clock):
    ran = []

    def never(data, ctx):
        return False

    async def later(data, ctx):
        await trio.sleep(1)
        return data["go"]

    def broken(data, ctx):
        raise ValueError("bad condition")

    def says_none(data, ctx):
        return None  # only False skips

    steps = []
    for name, condition in [("Never", never), ("Later", later), ("Broken", broken), ("None", says_none)]:
        one = step({"name": name, "triggers": [queue("t", condition=condition)]})
        one.handle(lambda data, ctx, name=name: ran.append((name, data["go"])))
        steps.append(one)
    async with App(steps=steps) as app:
        await app.enqueue("t", {"go": True})
        await app.enqueue("t", {"go": False})
        await trio.sleep(5)
        assert await app.dead_letters() == []  # a skip is not a failure
    assert sorted(ran) == [("Later", True), ("None", False), ("None", True)]


async def test_queue_retries_with_the_exact_backoff_then_dead_letters_and_replays(autojump_clock):
    attempts: list[float] = []
    fail = [True]
    flaky = step({"name": "Flaky", "triggers": [queue("work")],
                  "retry": RetryPolicy(attempts=4, backoff=2.0, factor=3.0, jitter=0)})

    @flaky.handle
    async def work(data, ctx):
        attempts.append(trio.current_time())
        if fail[0]:
            raise RuntimeError(f"attempt {len(attempts)} failed")

    async with App(steps=[flaky]) as app:
        start = trio.current_time()
        await app.enqueue("work", {"job": 1})
        await trio.sleep(100)
        assert [t - start for t in attempts] == pytest.approx([0, 2.0, 8.0, 26.0], abs=0.002)  # ms precision
        dead = await app.dead_letters()
        assert len(dead) == 1 and dead[0].attempts == 4 and dead[0].data == {"job": 1}
        assert dead[0].last_error == "RuntimeError: attempt 4 failed"
        fail[0] = False
        await app.replay_dead_letter(dead[0].id)
        await trio.sleep(1)
        assert len(attempts) == 5 and await app.dead_letters() == []
        assert await app.engine.storage.queue_pending() == []


async def test_queue_concurrency_is_limited_per_topic(autojump_clock):
    running, peak = [0], [0]
    busy = step({"name": "Busy", "triggers": [queue("jobs", concurrency=3)]})

    @busy.handle
    async def job(data, ctx):
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await trio.sleep(1)
        running[0] -= 1

    async with App(steps=[busy]) as app:
        for i in range(10):
            await app.enqueue("jobs", i)
        start = trio.current_time()
        while await app.engine.storage.queue_pending():
            await trio.sleep(0.1)
        assert peak[0] == 3 and trio.current_time() - start == pytest.approx(4, abs=0.2)


async def test_input_schema_rejects_at_enqueue_and_stores_nothing():
    typed = step({"name": "Typed", "triggers": [queue("typed", input={"n": "number"})]})
    typed.handle(lambda data, ctx: None)
    async with App(steps=[typed]) as app:
        with pytest.raises(runtime.ValidationError):
            await app.enqueue("typed", {"n": "not a number"})
        with pytest.raises(TypeError):
            await app.enqueue("typed", {"n": {1, 2}})
        assert await app.engine.storage.queue_pending() == []


async def test_stream_trigger_filters_by_group_and_item_and_sees_offsets_in_order(autojump_clock):
    seen = []
    watcher = step({"name": "Watch", "triggers": [stream("todos", group_id="inbox", item_id="a")]})

    @watcher.handle
    async def watch(event, ctx):
        await trio.sleep(0.5)  # slower than the writes
        seen.append((event.group_id, event.id, event.offset, event.event.type))

    async with App(steps=[watcher], streams=[todos]):
        for i in range(5):
            await todos.set("inbox", "a", {"title": str(i)})
            await todos.set("inbox", "b", {"title": str(i)})
            await todos.set("other", "a", {"title": str(i)})
        await todos.delete("inbox", "a")
    assert [s[2] for s in seen] == [1, 3, 5, 7, 9, 11]
    assert {s[:2] for s in seen} == {("inbox", "a")} and seen[-1][3] == "delete"


async def test_cron_fires_on_the_minute_in_virtual_time(autojump_clock):
    fired = []
    clock = RuntimeClock(start_wall=1_800_000_000.0 + 30)  # 30 s past a minute boundary
    every_5 = step({"name": "Tick", "triggers": [cron("*/5 * * * *")]})

    @every_5.handle
    async def tick(_, ctx):
        fired.append((clock.now(), ctx.trigger.expression))

    async with App(steps=[every_5], clock=clock):
        await trio.sleep(16 * 60)
    times = [t for t, _ in fired]
    assert all(t % 300 == 0 for t in times) and len(times) == 3
    assert [b - a for a, b in zip(times, times[1:])] == [300, 300]
    assert fired[0][1] == "*/5 * * * *"


async def test_a_blocking_sync_handler_does_not_delay_others():
    release = threading.Event()
    done = []
    blocker = step({"name": "Blocker", "triggers": [queue("slow")]})
    quick = step({"name": "Quick", "triggers": [http("GET", "/quick")]})

    @blocker.handle
    def block(data):  # sync: runs in a worker thread
        release.wait(10)
        done.append("blocker")

    quick.handle(lambda request: {"status": 200, "body": "quick"})
    async with App(steps=[blocker, quick]) as app:
        await app.enqueue("slow", {})
        await trio.sleep(0.05)
        with trio.fail_after(2):
            assert (await app.request("GET", "/quick")).body == "quick"
        assert done == []
        release.set()
        with trio.fail_after(5):
            while not done:
                await trio.sleep(0.01)


async def test_per_step_timeout(autojump_clock):
    slow = step({"name": "Slow", "triggers": [http("GET", "/slow")], "timeout": 2})

    @slow.handle
    async def handler(request):
        await trio.sleep(10)

    async with App(steps=[slow]) as app:
        start = trio.current_time()
        response = await app.request("GET", "/slow")
        assert response.status == 500 and trio.current_time() - start == pytest.approx(2)


async def test_module_level_logger_enqueue_and_state(caplog):
    caplog.set_level(logging.INFO, logger="runtime.steps")
    got = []
    first = step({"name": "First", "triggers": [http("POST", "/go")]})
    second = step({"name": "Second", "triggers": [queue("next")]})

    @first.handle
    async def go(request):  # Motia's newer one-argument style
        runtime.logger.info("going", {"n": 1})
        await runtime.state.set("scope", "k", {"v": 1})
        await runtime.enqueue({"topic": "next", "data": await runtime.state.get("scope", "k")})
        return {"status": 202}

    @second.handle
    async def after(data):
        got.append(data)

    async with App(steps=[first, second]) as app:
        response = await app.request("POST", "/go")
        with trio.fail_after(5):
            while not got:
                await trio.sleep(0.01)
    assert got == [{"v": 1}]
    record = next(r for r in caplog.records if r.getMessage() == "going")
    assert record.step == "First" and record.fields == {"n": 1}
    assert record.trace_id == response.headers["X-Trace-Id"]
