"""Several ``python -m runtime serve`` processes on one Redis, as a user deploys them.

Each server runs ``examples/counter`` (``POST /counters/:name`` increments
``counter/counters/<name>`` atomically) in its own process, on its own
ports, with ``--storage redis://...?prefix=<this test's own>``.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest
import trio

from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

from .conftest import ROOT, SSEReader, client, serve_process

COUNTER = str(ROOT / "examples" / "counter")


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


class Server:
    def __init__(self, process: trio.Process, url: str) -> None:
        self.process = process
        self.url = url


@asynccontextmanager
async def servers(redis_url: str, count: int, project: str = COUNTER, *extra: str) -> AsyncIterator[list[Server]]:
    async with AsyncExitStack() as stack:
        started = [
            Server(*await stack.enter_async_context(
                serve_process(project, "--storage", redis_url, *extra, stderr=subprocess.DEVNULL)
            ))
            for _ in range(count)
        ]
        try:
            yield started
        finally:
            for server in started:  # a graceful stop first; serve_process kills what outlives it
                if server.process.returncode is None:
                    server.process.send_signal(signal.SIGTERM)
            with trio.move_on_after(15):
                for server in started:
                    await server.process.wait()


async def value_seen_by(server: Server, name: str) -> tuple[int, str]:
    """The counter's value and position, from a fresh SSE sync on ``server``."""
    async with client(server.url) as http, http.stream("GET", f"/streams/counter/counters/{name}") as response:
        sync = await SSEReader(response).next_event()
    assert sync["event"] == "sync"
    return (sync["data"]["event"]["data"] or {}).get("value", 0), sync["id"]


async def test_concurrent_increments_on_three_processes_end_exact(redis_url):
    async with servers(redis_url, 3) as running:
        async def hammer(server: Server) -> None:
            async with client(server.url) as http:
                for _ in range(40):
                    assert (await http.post("/counters/hits")).status_code == 200

        async with trio.open_nursery() as nursery:
            for k in range(12):
                nursery.start_soon(hammer, running[k % 3])
        for server in running:
            value, position = await value_seen_by(server, "hits")
            assert value == 480 and position.endswith(":480")


async def test_a_subscriber_sees_another_processes_writes_in_order_and_resumes_on_a_third(redis_url):
    async with servers(redis_url, 3) as [first, second, third]:
        async with client(first.url) as http_first, client(second.url) as http_second:
            await http_second.post("/counters/a")
            async with http_first.stream("GET", "/streams/counter/counters") as response:
                reader = SSEReader(response)
                sync = await reader.next_event()
                epoch, offset = sync["id"].rsplit(":", 1)
                assert (sync["event"], offset) == ("sync", "1")
                for _ in range(30):
                    assert (await http_second.post("/counters/a")).status_code == 200
                received = []
                with trio.fail_after(10):
                    while len(received) < 30:
                        received.append(await reader.next_event())
        assert [event["id"] for event in received] == [f"{epoch}:{n}" for n in range(2, 32)]
        assert [event["data"]["event"]["data"]["value"] for event in received] == list(range(2, 32))
        stamps = [sync["data"]["timestamp"]] + [event["data"]["timestamp"] for event in received]
        assert all(x < y for x, y in zip(stamps, stamps[1:]))
        # resume on a third process from where the first one left the client
        async with client(third.url) as http_third:
            headers = {"Last-Event-ID": f"{epoch}:20"}
            async with http_third.stream("GET", "/streams/counter/counters", headers=headers) as response:
                reader = SSEReader(response)
                replayed = [await reader.next_event() for _ in range(12)]
        assert [event["id"] for event in replayed[:11]] == [f"{epoch}:{n}" for n in range(21, 32)]
        assert replayed[11]["event"] == "resumed"


async def test_kill_9_under_load_loses_no_acknowledged_update_and_the_others_keep_serving(redis_url):
    async with servers(redis_url, 3) as running:
        victim = running[2]
        acknowledged = 0
        unknown = 0  # requests to the victim that got no answer: they may or may not have landed

        async def hammer(server: Server, count: int) -> None:
            nonlocal acknowledged, unknown
            async with client(server.url, timeout=5) as http:
                for _ in range(count):
                    try:
                        response = await http.post("/counters/load")
                    except httpx.ConnectError:
                        continue  # refused: never reached a server
                    except httpx.TransportError:
                        unknown += 1  # sent, unanswered: landed or not
                        continue
                    assert response.status_code == 200
                    acknowledged += 1

        async def kill_after(delay_requests: int) -> None:
            async with client(victim.url) as http:
                for _ in range(delay_requests):
                    await http.post("/counters/warmup")
            victim.process.kill()  # SIGKILL: no shutdown, no flush

        async with trio.open_nursery() as nursery:
            for k in range(9):
                nursery.start_soon(hammer, running[k % 3], 60)
            nursery.start_soon(kill_after, 20)
        await victim.process.wait()
        assert victim.process.returncode == -signal.SIGKILL
        assert acknowledged < 540  # the kill landed mid-load
        values = [(await value_seen_by(server, "load"))[0] for server in running[:2]]
        assert values[0] == values[1] and acknowledged <= values[0] <= acknowledged + unknown
        for server in running[:2]:  # the survivors keep serving
            async with client(server.url) as http:
                assert (await http.post("/counters/load")).status_code == 200
        assert (await value_seen_by(running[0], "load"))[0] == values[0] + 2


JOBS_STEP = """
import os

import trio

from runtime import ApiResponse, http, queue, step

submit = step({"name": "Submit", "triggers": [http("POST", "/jobs/:n")]})


@submit.handle
async def submit_job(request, ctx):
    await ctx.enqueue({"topic": "work", "data": {"n": request.path_params["n"]}})
    return ApiResponse(202, {})


work = step({"name": "Work", "triggers": [queue("work", concurrency=2)]})


@work.handle
async def do_work(data, ctx):
    # a key per process: a run taken over writes its own pid (queue calls are otherwise keyed by message)
    await ctx.streams.jobs.set("started", data["n"], {"pid": os.getpid()}, idempotency_key=f"{os.getpid()}:{data['n']}")
    await trio.sleep(0.3)
    await ctx.streams.jobs.update("done", data["n"], [{"type": "increment", "path": "count", "by": 1}])
"""


async def group_seen_by(server: Server, group: str, http: httpx.AsyncClient | None = None) -> list[dict]:
    """The group's items from a fresh SSE sync. Pass ``http`` when polling: a new client per look costs
    ~300 ms on the loaded machine (its SSL context), long enough to miss a 0.3 s job entirely."""
    if http is None:
        async with client(server.url) as own:
            return await group_seen_by(server, group, own)
    async with http.stream("GET", f"/streams/jobs/{group}") as response:
        sync = await SSEReader(response).next_event()
    return sync["data"]["event"]["data"]


async def test_queued_work_survives_kill_9_of_the_process_running_it(redis_url, tmp_path):
    (tmp_path / "jobs_stream.py").write_text('from runtime import StreamConfig\nconfig = StreamConfig(name="jobs")\n')
    (tmp_path / "jobs_step.py").write_text(JOBS_STEP)
    async with servers(redis_url, 2, str(tmp_path), "--queue-visibility-timeout", "1") as [first, second]:
        async with client(first.url) as http:
            for n in range(12):
                assert (await http.post(f"/jobs/j{n}")).status_code == 202
        victim_pid = second.process.pid
        with trio.fail_after(20):  # until the second process is running a job (each takes 0.3 s)
            async with client(first.url) as poll:
                while True:
                    finished = {item["id"] for item in await group_seen_by(first, "done", poll)}
                    running = {item["id"] for item in await group_seen_by(first, "started", poll)
                               if item["pid"] == victim_pid and item["id"] not in finished}
                    if running:
                        break
                    await trio.sleep(0.02)
        second.process.kill()  # mid-handler: its messages were taken, not acknowledged
        await second.process.wait()
        with trio.fail_after(30):  # the first process takes the dead one's messages over
            while len(done := await group_seen_by(first, "done")) < 12:
                await trio.sleep(0.1)
        assert sorted(item["id"] for item in done) == sorted(f"j{n}" for n in range(12))
        assert all(item["count"] >= 1 for item in done)  # at least once
        rerun = {item["id"]: item["pid"] for item in await group_seen_by(first, "started")}
        assert any(rerun[job] == first.process.pid for job in running)  # taken over, run again
