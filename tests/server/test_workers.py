"""``python -m runtime serve --workers N``: real processes sharing the ports through SO_REUSEPORT.

The parent prints ``worker K started (pid P)`` for each worker it starts,
and each worker its own ``listening on`` line, so the tests wait on real
output from real processes, never on a clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
import trio

from tests.redis_support import delete_prefix, ensure_redis, free_port, unique_prefix

from .conftest import ROOT, SSEReader, client

COUNTER = str(ROOT / "examples" / "counter")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="--workers shares ports with SO_REUSEPORT (Linux)")


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


class Parent:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""
        self.lines: list[str] = []

    async def line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some(4096)
            assert chunk, f"the parent's output ended; lines so far: {self.lines}"
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        self.lines.append(raw.decode())
        return self.lines[-1]

    async def wait_for(self, count: int, text: str) -> list[str]:
        """The next ``count`` lines containing ``text`` (other lines are kept in ``lines``)."""
        found = []
        with trio.fail_after(30):
            while len(found) < count:
                line = await self.line()
                if text in line:
                    found.append(line)
        return found


@asynccontextmanager
async def parent(*args: str) -> AsyncIterator[tuple[Parent, str]]:
    port = free_port()
    command = [sys.executable, "-m", "runtime", "serve", COUNTER, "--port", str(port), "--stream-port",
               str(free_port()), *args]
    process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
                                               env={**os.environ, "RUNTIME_LOG_FORMAT": "json"})
    try:
        yield Parent(process), f"http://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def worker_pids(lines: list[str]) -> dict[int, int]:
    pids = {}
    for line in lines:
        if line.startswith("worker ") and " started (pid " in line:
            worker = int(line.split()[1])
            pids[worker] = int(line.rsplit("pid ", 1)[1].rstrip(")"))
    return pids


async def test_workers_need_a_shared_storage_one_line_and_exit_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "serve", COUNTER, "--workers", "2", "--storage", f"sqlite:{tmp_path}/db"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "--workers 2 needs a storage the workers share" in result.stderr


async def test_two_workers_serve_requests_and_subscriptions_survive_kill_9_and_stop_on_sigterm(redis_url):
    async with parent("--workers", "2", "--storage", redis_url) as (workers, url):
        await workers.wait_for(2, "listening on")
        pids = worker_pids(workers.lines)
        assert sorted(pids) == [1, 2] and len(set(pids.values())) == 2

        async def hammer() -> None:
            for _ in range(10):  # a new connection each time: the kernel picks the worker
                async with client(url) as http:
                    assert (await http.post("/counters/hits")).status_code == 200

        async with client(url) as http, http.stream("GET", "/streams/counter/counters/hits") as response:
            reader = SSEReader(response)
            assert (await reader.next_event())["event"] == "sync"
            async with trio.open_nursery() as nursery:
                for _ in range(4):
                    nursery.start_soon(hammer)
            with trio.fail_after(10):  # whichever worker served each post, the subscriber sees all 40
                values = [(await reader.next_event())["data"]["event"]["data"]["value"] for _ in range(40)]
        assert values == list(range(1, 41))

        os.kill(pids[1], signal.SIGKILL)
        restarted = await workers.wait_for(1, "worker 1 started")
        assert worker_pids(restarted)[1] != pids[1]
        await workers.wait_for(1, "listening on")
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(hammer)
        async with client(url) as http:
            assert (await http.get("/health")).status_code == 200
        seen = set()
        for _ in range(40):  # each worker answers /metrics with its own figures, labelled
            async with client(url) as http:
                text = (await http.get("/metrics")).text
            seen |= {line.split('worker="', 1)[1].split('"')[0] for line in text.splitlines()
                     if line.startswith("runtime_active_groups")}
            if seen == {"1", "2"}:
                break
        assert seen == {"1", "2"}  # and the kernel spread new connections over both

        workers.process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await workers.process.wait() == 0
    for pid in worker_pids(workers.lines).values():  # every worker is gone with the parent
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
