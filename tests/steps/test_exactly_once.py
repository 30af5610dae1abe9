"""At-least-once queues, exactly-once effects on streams: a retried handler's stream calls apply once.

Each stream call a queue handler makes is keyed by (message id, its ordinal
in the run), so a run retried after a failure, or after its process was
killed with SIGKILL (attempt 1 killed, attempt 2 raises, attempt 3
succeeds), gets the first results back instead of applying them
again. Side effects outside streams (here: a line appended to a file per
attempt) happen once per attempt; that is what the tests count attempts by.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from runtime import App, RedisStorage, RetryPolicy, Stream, StreamConfig, http, queue, step
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix
from tests.server.conftest import running, serve_process

INCREMENT = [{"type": "increment", "path": "n"}]


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def storage(request, tmp_path):
    if request.param == "redis":
        prefix = unique_prefix()
        yield lambda: RedisStorage(f"{ensure_redis()}?prefix={prefix}")
        delete_prefix(prefix)
    else:
        yield lambda: "memory" if request.param == "memory" else f"sqlite:{tmp_path / 'app.db'}"


async def test_a_handler_that_increments_then_fails_twice_increments_once(storage):
    attempts: dict[int, int] = {1: 0, 2: 0}  # outside streams: counted once per attempt
    finished: list[int] = []
    work = step({"name": "Work", "triggers": [queue("work")], "retry": RetryPolicy(attempts=5, backoff=0.01, jitter=0)})

    @work.handle
    async def handle(data: Any, ctx: Any) -> None:
        await ctx.streams.counter.update("g", "c", INCREMENT)
        await ctx.streams.counter.update("g", "c", [{"type": "increment", "path": "m", "by": 10}])
        attempts[data["k"]] += 1
        if attempts[data["k"]] < 3:
            raise RuntimeError("not yet")
        finished.append(data["k"])

    async with App(steps=[work], streams=[StreamConfig(name="counter")], storage=storage()) as app:
        await app.enqueue("work", {"k": 1})
        await app.enqueue("work", {"k": 2})  # another message: its calls are its own
        with trio.fail_after(20):
            while len(finished) < 2:
                await trio.sleep(0.01)
        assert attempts == {1: 3, 2: 3}
        assert await Stream("counter").bind(app.engine).get("g", "c") == {"id": "c", "n": 2, "m": 20}


async def test_an_http_step_applies_once_per_idempotency_key_header():
    bump = step({"name": "Bump", "triggers": [http("POST", "/bump")]})

    @bump.handle
    async def handle(request: Any, ctx: Any) -> dict:
        result = await ctx.streams.counter.update("g", "c", INCREMENT, idempotency_key=ctx.idempotency_key)
        return {"status": 200, "body": {"n": result.new_value["n"], "key": ctx.idempotency_key}}

    app = App(steps=[bump], streams=[StreamConfig(name="counter")])
    async with running(app) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        first = await client.post("/bump", headers={"Idempotency-Key": "order-1"})
        again = await client.post("/bump", headers={"Idempotency-Key": "order-1"})
        other = await client.post("/bump", headers={"idempotency-key": "order-2"})
        plain = [await client.post("/bump") for _ in range(2)]
        assert first.json() == again.json() == {"n": 1, "key": "order-1"}
        assert other.json() == {"n": 2, "key": "order-2"}
        assert [response.json() for response in plain] == [{"n": 3, "key": None}, {"n": 4, "key": None}]


# -- kill -9 between attempts: real `python -m runtime serve` processes --------------------------------

STEPS = '''
import trio
from runtime import ApiResponse, RetryPolicy, http, queue, step

ATTEMPTS = {attempts!r}

go = step({{"name": "Go", "triggers": [http("POST", "/go")]}})


@go.handle
async def go_handler(request, ctx):
    await ctx.enqueue({{"topic": "work", "data": {{}}}})
    return ApiResponse(202, {{}})


show = step({{"name": "Show", "triggers": [http("GET", "/counter")]}})


@show.handle
async def show_handler(request, ctx):
    return ApiResponse(200, await ctx.streams.counter.get("g", "c") or {{}})


work = step({{"name": "Work", "triggers": [queue("work")],
             "retry": RetryPolicy(attempts=5, backoff=0.01, jitter=0)}})


@work.handle
async def work_handler(data, ctx):
    await ctx.streams.counter.update("g", "c", [{{"type": "increment", "path": "n"}}])
    with open(ATTEMPTS, "a") as attempts:  # outside streams: once per attempt
        attempts.write("attempt\\n")
    with open(ATTEMPTS) as attempts:
        attempt = len(attempts.read().splitlines())
    if attempt == 1:
        await trio.sleep_forever()  # the test kills the process here, the message unacknowledged
    if attempt == 2:
        raise RuntimeError("fails once more, the ordinary way")
    await ctx.streams.counter.update("g", "c", [{{"type": "set", "path": "done", "value": True}}])
'''


COUNTER_STREAM = 'from runtime import StreamConfig\nconfig = StreamConfig(name="counter")\n'


def attempts_in(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


async def until(check: Any, timeout: float = 30.0) -> None:
    """Wait for another process to do something (a real event), within a bound."""
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.02)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_kill_9_between_attempts_still_increments_once(kind, tmp_path, request):
    project = tmp_path / "project"
    project.mkdir()
    attempts = tmp_path / "attempts.txt"
    (project / "work_step.py").write_text(STEPS.format(attempts=str(attempts)))
    (project / "counter_stream.py").write_text(COUNTER_STREAM)
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
        args = ["--storage", url, "--queue-visibility-timeout", "0.5"]
    else:
        args = ["--storage", f"sqlite:{tmp_path / 'app.db'}"]
    async with serve_process(str(project), *args, stderr=subprocess.DEVNULL) as (process, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.post("/go")).status_code == 202

        async def reached() -> bool:
            return attempts_in(attempts) >= 1

        await until(reached)  # the first attempt has incremented, and hangs
        process.send_signal(signal.SIGKILL)
        await process.wait()
    async with serve_process(str(project), *args, stderr=subprocess.DEVNULL) as (process, base):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            async def finished() -> bool:
                return (await client.get("/counter")).json().get("done") is True

            await until(finished)
            assert (await client.get("/counter")).json() == {"id": "c", "n": 1, "done": True}
        assert attempts_in(attempts) == 3
