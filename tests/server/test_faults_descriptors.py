"""A connection flood to the process's descriptor limit, and back.

A real ``python -m runtime serve`` with RLIMIT_NOFILE lowered to `LIMIT`; a flood of connections
to one port takes every descriptor, so accept fails with EMFILE. Meanwhile the connections the
server has keep being served (a keep-alive HTTP connection answers, a WebSocket subscriber gets
the next event); once the flood goes, the listener accepts again: a fresh subscriber gets its sync
and the next event, and the process's tasks, descriptors and memory are back to their baseline.
"""

from __future__ import annotations

import os
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from . import fault_support
from .conftest import client, serve_project
from .test_sse_direct import read_until

#: The server's descriptor limit: its baseline is ~20 (epoll, wake-up pipes, two listening sockets,
#: stdio), so a flood of `FLOOD` connections exhausts it.
LIMIT = 96
FLOOD = 160

FEED_STREAM = 'from runtime import StreamConfig\nconfig = StreamConfig(name="feed")\n'
WRITE_STEP = '''
from runtime import ApiResponse, http, step

write = step({"name": "Write", "triggers": [http("POST", "/feed/:id")]})


@write.handle
async def write_item(request, ctx):
    await ctx.streams.feed.set("g", request.path_params["id"], {"n": 1})
    return ApiResponse(200, {"ok": True})
'''


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@asynccontextmanager
async def low_limit_server(tmp_path: Path) -> AsyncIterator[tuple[Any, str, str, Path]]:
    """(process, HTTP URL, stream URL, its stderr's file)."""
    (tmp_path / "feed_stream.py").write_text(FEED_STREAM)
    (tmp_path / "write_step.py").write_text(WRITE_STEP)
    log = tmp_path / "stderr"
    with open(log, "wb") as stderr:
        async with serve_project(str(tmp_path), "--storage", "memory", stderr=stderr,
                                 preexec_fn=_low_descriptor_limit) as (process, http_url, stream_url):
            yield process, http_url, stream_url, log


def _address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split(":")
    return host, int(port)


async def _join(ws: Any, group: str) -> None:
    await ws.send_message(orjson.dumps({"type": "join", "data": {
        "streamName": "feed", "groupId": group, "subscriptionId": "s"}}).decode())
    assert orjson.loads(await ws.get_message())["event"]["type"] == "sync"


async def _post(held: Any, item: str) -> None:
    await held.send(f"POST /feed/{item} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    assert b'{"ok":true}' in await read_until(held, b'{"ok":true}')


def _exhausted_count(metrics: str, listener: str) -> int:
    sample = f'runtime_accept_exhausted_total{{listener="{listener}"}} '
    return int(float(next(line for line in metrics.splitlines() if line.startswith(sample)).split()[-1]))


@pytest.mark.parametrize("listener", ["http", "stream"])
async def test_a_flood_to_the_descriptor_limit_pauses_accept_only_and_the_server_recovers(tmp_path, listener):
    async with low_limit_server(tmp_path) as (process, http_url, stream_url, log):
        pid = process.pid

        async def measure() -> fault_support.Footprint:
            return await fault_support.of_process(pid, http_url)

        async with open_websocket_url(stream_url) as subscriber:
            await _join(subscriber, "g")
            held = trio.socket.socket()  # a keep-alive connection, open before the flood and throughout
            await held.connect(_address(http_url))
            await _post(held, "warm")
            assert orjson.loads(await subscriber.get_message())["event"]["type"] == "create"
            baseline = await measure()

            flood = []
            target = _address(http_url if listener == "http" else stream_url)
            for _ in range(FLOOD):  # the kernel completes them all (the backlog); the server runs out
                sock = trio.socket.socket()
                await sock.connect(target)
                flood.append(sock)
            with trio.fail_after(10):
                while len(os.listdir(f"/proc/{pid}/fd")) < LIMIT:
                    await trio.sleep(0.01)

            # out of descriptors: what is open is still served
            with trio.fail_after(10):
                await held.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                await read_until(held, b'"ok"}')
                await _post(held, "during")
                assert orjson.loads(await subscriber.get_message())["event"]["type"] == "create"

            for sock in flood:
                sock.close()
            # ... and once descriptors free up, it accepts again
            with trio.fail_after(20):
                async with open_websocket_url(stream_url) as fresh:
                    await _join(fresh, "g")
                    await _post(held, "after")
                    assert orjson.loads(await fresh.get_message())["event"]["type"] == "create"
                    assert orjson.loads(await subscriber.get_message())["event"]["type"] == "create"
            await fault_support.back_to(baseline, measure, limit=15)
            async with client(http_url) as c:
                metrics = (await c.get("/metrics")).text
            episodes = _exhausted_count(metrics, listener)
            assert episodes >= 1
            text = log.read_text()
            assert text.count("accept failed with EMFILE") == episodes  # one warning per episode, not per retry
            assert text.count(f"{listener} listener: accepting again") == episodes
            held.close()
