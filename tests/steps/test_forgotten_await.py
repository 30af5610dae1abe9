"""A handler that forgets ``await``: a 500 whose log line says so, and no warning at exit."""

from __future__ import annotations

import json
import logging
import signal
import warnings

import httpx
import trio

from runtime import ApiResponse, App, Stream, http, step
from tests.server.conftest import serve_process

FORGETFUL = '''\
from runtime import ApiResponse, http, step

bump = step({"name": "Bump", "triggers": [http("POST", "/counters/:name")]})


@bump.handle
async def bump_counter(request, ctx):
    result = ctx.streams.counter.update("counters", request.path_params["name"],
                                        [{"type": "increment", "path": "value", "by": 1}])
    return ApiResponse(200, result.new_value)


show = step({"name": "Show", "triggers": [http("GET", "/counters/:name")]})


@show.handle
async def show_counter(request, ctx):
    return ApiResponse(200, {"counter": ctx.streams.counter.get("counters", request.path_params["name"])})
'''


async def test_a_forgotten_await_is_a_500_that_says_so_and_no_warning_at_exit(tmp_path):
    (tmp_path / "counter_stream.py").write_text(
        "from runtime import StreamConfig\nconfig = StreamConfig(name='counter')\n")
    (tmp_path / "counter_step.py").write_text(FORGETFUL)
    async with serve_process(str(tmp_path), "--storage", "memory") as (process, url):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            bumped = await client.post("/counters/clicks")
            shown = await client.get("/counters/clicks")
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            await process.wait()
        stderr = b""
        while chunk := await process.stderr.receive_some(65536):
            stderr += chunk
    assert bumped.status_code == 500 and bumped.json()["error"] == "internal"
    assert shown.status_code == 500 and shown.json()["error"] == "internal"
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records if r.get("level") == "error"]
    assert any(m.startswith("POST /counters/clicks failed: AttributeError(\"'coroutine' object has no attribute")
               and "; you forgot an await: step 'Bump' (" in m
               and m.endswith("counter_step.py:3) used a coroutine as a value; "
                              "write `await` before the async call (ctx.streams.<name>.set/update/get..., "
                              "ctx.enqueue, ctx.state...)") for m in messages), messages
    assert any("counter_step.py:13) used a coroutine" in m and "step 'Show'" in m for m in messages), messages
    assert process.returncode == 0
    assert "RuntimeWarning" not in stderr.decode() and "never awaited" not in stderr.decode()


async def test_in_process_every_shape_of_a_forgotten_await_is_named(caplog):
    caplog.set_level(logging.ERROR, logger="runtime.steps")
    counter = Stream("counter")
    shapes = step({"name": "Shapes", "triggers": [http("GET", "/shape/:kind")]})

    @shapes.handle
    async def shape(request, ctx):
        kind = request.path_params["kind"]
        pending = counter.get("g", "x")  # no await
        if kind == "subscript":
            return ApiResponse(200, pending["value"])
        if kind == "body":
            return ApiResponse(200, pending)
        return {"status": 200, "body": {"item": pending}}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine left unclosed would warn when collected
        async with App(steps=[shapes], streams=[counter]) as app:
            for kind in ("subscript", "body", "dict"):
                response = await app.request("GET", f"/shape/{kind}")
                assert response.status == 500
        import gc

        gc.collect()
    hints = [r.getMessage() for r in caplog.records if "you forgot an await: step 'Shapes'" in r.getMessage()]
    assert len(hints) == 3, [r.getMessage() for r in caplog.records]
    assert hints[1].startswith("GET /shape/body failed: TypeError(\"the response body is a 'coroutine' object")


async def test_an_ordinary_attribute_error_gets_no_await_hint(caplog):
    caplog.set_level(logging.ERROR, logger="runtime.steps")
    plain = step({"name": "Plain", "triggers": [http("GET", "/plain")]})

    @plain.handle
    async def broken(request, ctx):
        return ApiResponse(200, None.value)

    async with App(steps=[plain]) as app:
        assert (await app.request("GET", "/plain")).status == 500
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures and not any("await" in m for m in failures)
