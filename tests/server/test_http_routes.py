"""Step routes through a real server: every status and error body, trace ids, streaming."""

from __future__ import annotations

import trio

from runtime import ApiResponse, App, Stream, StreamConfig, http, step

from .conftest import client, running

todos = Stream(StreamConfig(name="todos", schema={"title": "string"}))


def make_app(events: list | None = None) -> App:
    create = step({"name": "Create", "triggers": [http("POST", "/todos", body_schema={
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]})]})

    @create.handle
    async def create_todo(request, ctx):
        result = await todos.set("inbox", request.body.get("id", "x"), {"title": request.body["title"]})
        return ApiResponse(201, result.new_value)

    show = step({"name": "Show", "triggers": [http("GET", "/todos/:id")]})

    @show.handle
    async def show_todo(request, ctx):
        item = await todos.get("inbox", request.path_params["id"])
        if item is None:
            return {"status": 404, "body": {"error": "no such todo"}}
        return {"status": 200, "body": {**item, "q": request.query_params}}

    echo = step({"name": "Echo", "triggers": [http("PUT", "/echo")]})
    echo.handle(lambda request: {"status": 200, "body": {
        "body": request.body if not isinstance(request.body, bytes) else request.body.decode(),
        "ct": request.headers.get("content-type"),
    }})

    boom = step({"name": "Boom", "triggers": [http("GET", "/boom")]})

    @boom.handle
    async def explode(request, ctx):
        raise RuntimeError("secret detail")

    gate = trio.Event()
    stream_step = step({"name": "Count", "triggers": [http("GET", "/count")]})

    @stream_step.handle
    async def count(request, ctx):
        response = request.response
        await response.status(200)
        await response.headers({"content-type": "text/plain"})
        try:
            response.writer.stream.write(b"first\n")
            await gate.wait()  # released by the test once it has read the first chunk
            response.writer.stream.write(b"second\n")
            await trio.sleep_forever() if request.query_params.get("hang") else None
            response.close()
        finally:
            if events is not None:
                events.append("handler finally ran")

    app = App(steps=[create, show, echo, boom, stream_step], streams=[todos])
    app.test_gate = gate
    return app


async def test_statuses_and_error_bodies():
    async with running(make_app()) as (url, _):
        async with client(url) as c:
            created = await c.post("/todos", json={"id": "a", "title": "milk"})
            assert created.status_code == 201 and created.json() == {"id": "a", "title": "milk"}
            shown = await c.get("/todos/a", params=[("tag", "x"), ("tag", "y"), ("one", "1")])
            assert shown.json() == {"id": "a", "title": "milk", "q": {"tag": ["x", "y"], "one": "1"}}
            assert (await c.get("/todos/zzz")).status_code == 404

            invalid = await c.post("/todos", content=b"{nope", headers={"content-type": "application/json"})
            assert invalid.status_code == 400 and invalid.json()["error"] == "invalid_json"
            failing = await c.post("/todos", json={"title": 7})
            assert failing.status_code == 400
            assert failing.json()["error"] == "validation" and failing.json()["errors"][0]["path"] == "/title"
            too_big = await c.post(
                "/todos", content=b"x" * (1024 * 1024 + 1), headers={"content-type": "application/json"}
            )
            assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
            assert (await c.get("/nowhere")).status_code == 404
            not_allowed = await c.delete("/todos")
            assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "POST"
            crashed = await c.get("/boom")
            assert crashed.status_code == 500
            assert crashed.json() == {"error": "internal", "trace_id": crashed.headers["x-trace-id"]}
            assert "secret" not in crashed.text
            for response in (created, shown, invalid, failing, too_big, crashed, not_allowed):
                assert response.headers["x-trace-id"]
            # the server is still fine for everyone
            assert (await c.get("/health")).json() == {"status": "ok"}


async def test_bodies_of_every_kind():
    async with running(make_app()) as (url, _):
        async with client(url) as c:
            form = await c.put("/echo", data={"a": "1", "b": "2"})
            assert form.json()["body"] == {"a": "1", "b": "2"}
            raw = await c.put("/echo", content=b"plain", headers={"content-type": "text/plain"})
            assert raw.json()["body"] == "plain"
            empty = await c.put("/echo")
            assert empty.json()["body"] is None


async def test_a_streaming_response_arrives_write_by_write():
    app = make_app()
    async with running(app) as (url, _):
        async with client(url) as c:
            async with c.stream("GET", "/count") as response:
                assert response.status_code == 200 and response.headers["content-type"] == "text/plain"
                chunks = response.aiter_bytes()
                assert await chunks.__anext__() == b"first\n"  # before the handler may go on
                app.test_gate.set()
                assert await chunks.__anext__() == b"second\n"


async def test_a_client_that_leaves_cancels_the_handler():
    events: list = []
    app = make_app(events)
    async with running(app) as (url, server):
        async with client(url) as c:
            app.test_gate.set()
            async with c.stream("GET", "/count", params={"hang": "1"}) as response:
                chunks = response.aiter_bytes()
                await chunks.__anext__()
            # the connection is closed by leaving the block
        with trio.fail_after(5):
            while not events:
                await trio.sleep(0.01)
        assert events == ["handler finally ran"]


async def test_cors_is_off_until_origins_are_configured_then_preflights_are_answered():
    async with running(make_app()) as (url, _):
        async with client(url) as c:
            plain = await c.get("/todos/a", headers={"Origin": "https://app.example"})
            assert "access-control-allow-origin" not in plain.headers
    async with running(make_app(), cors_origins=["https://app.example"]) as (url, _):
        async with client(url) as c:
            preflight = await c.options("/todos", headers={
                "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"})
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == "https://app.example"
            assert "POST" in preflight.headers["access-control-allow-methods"]
            assert preflight.headers["access-control-allow-headers"] == "content-type"
            created = await c.post("/todos", json={"title": "t"}, headers={"Origin": "https://app.example"})
            assert created.headers["access-control-allow-origin"] == "https://app.example"
            other = await c.post("/todos", json={"title": "t"}, headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in other.headers


async def test_sse_refuses_other_origins_when_origins_are_configured():
    from runtime import Stream

    app = App(streams=[Stream("feed")])
    async with running(app, allowed_origins=["https://app.example"]) as (url, _):
        async with client(url) as c:
            refused = await c.get("/streams/feed/g", headers={"Origin": "https://evil.example"})
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "ORIGIN_NOT_ALLOWED"
            async with c.stream("GET", "/streams/feed/g", headers={"Origin": "https://app.example"}) as ok:
                assert ok.status_code == 200
            async with c.stream("GET", "/streams/feed/g") as no_origin:  # not a browser: no Origin
                assert no_origin.status_code == 200


async def test_a_sync_handler_runs_in_a_worker_thread_and_the_loop_keeps_serving():
    import threading

    entered, release = threading.Event(), threading.Event()
    blocking = step({"name": "Blocking", "triggers": [http("GET", "/blocking")]})

    @blocking.handle
    def block(request):  # sync: runs in a worker thread
        entered.set()
        release.wait(10)
        return {"status": 200, "body": {"thread": threading.current_thread() is not threading.main_thread()}}

    app = App(steps=[blocking])
    async with running(app) as (url, _):
        async with client(url) as c, trio.open_nursery() as nursery:
            answers: list = []

            async def call() -> None:
                answers.append((await c.get("/blocking")).json())

            nursery.start_soon(call)
            await trio.to_thread.run_sync(entered.wait, 10)  # the handler is blocked in its thread
            assert (await c.get("/health")).status_code == 200  # answered meanwhile
            release.set()
        assert answers == [{"thread": True}]
