"""A real server on a free loopback port, and a small SSE reader for the tests."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from runtime import App
from runtime.server import ServerSettings

ROOT = Path(__file__).resolve().parents[2]

TODO_STREAM = 'from runtime import StreamConfig\nconfig = StreamConfig(name="todo")\n'


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtime", "serve", *args]


@asynccontextmanager
async def serve_project(*args: str, stderr: Any = subprocess.PIPE, **options: Any,
                        ) -> AsyncIterator[tuple[Any, str, str]]:
    """``python -m runtime serve ARGS --port 0 --stream-port 0`` in its own process; yields
    (process, HTTP URL, stream URL). ``options`` go to `trio.lowlevel.open_process` (``preexec_fn``...).

    Waits for its "listening on" line; kills it on the way out if it still runs.
    """
    process = await trio.lowlevel.open_process(
        serve_command(*args, "--port", "0", "--stream-port", "0"), stdout=subprocess.PIPE, stderr=stderr,
        cwd=ROOT, env={**os.environ, "RUNTIME_LOG_FORMAT": "json"}, **options,
    )
    try:
        line = b""
        with trio.fail_after(30):
            while b"\n" not in line:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, "the server exited before listening"
                line += chunk
        http_url, _, stream_url = line.decode().split("listening on ", 1)[1].split()[:3]
        yield process, http_url, stream_url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def serve_process(*args: str, stderr: int = subprocess.PIPE) -> AsyncIterator[tuple[Any, str]]:
    """`serve_project`, yielding (process, HTTP URL)."""
    async with serve_project(*args, stderr=stderr) as (process, http_url, _):
        yield process, http_url


@pytest.fixture(autouse=True)
def _quiet(caplog):
    for name in ("actors", "runtime.streams", "runtime.server", "runtime.steps"):
        caplog.set_level(logging.CRITICAL + 1, logger=name)


@asynccontextmanager
async def running(app: App, **settings: Any) -> AsyncIterator[tuple[str, Any]]:
    """Serve ``app`` on 127.0.0.1:<free ports>; yields (base URL, the HttpServer)."""
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(
            lambda task_status: app.serve(
                ServerSettings(**{"port": 0, "stream_port": 0, **settings}), task_status=task_status
            )
        )
        try:
            yield listening.http_url, listening.server
        finally:
            nursery.cancel_scope.cancel()


def client(base_url: str, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, **{"timeout": 10, **options})


class SSEReader:
    """Parses an SSE response into events: dicts with id, event, data (decoded JSON), comment."""

    def __init__(self, response: httpx.Response) -> None:
        self._chunks = response.aiter_text()
        self._buffer = ""
        self.retry: int | None = None

    async def next(self) -> dict[str, Any]:
        while "\n\n" not in self._buffer:
            self._buffer += await self._chunks.__anext__()
        block, self._buffer = self._buffer.split("\n\n", 1)
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "":
                event["comment"] = value
            elif field == "data":
                event["data"] = orjson.loads(value)
            elif field == "retry":
                self.retry = int(value)
                event["retry"] = int(value)
            else:
                event[field] = value
        return event

    async def next_event(self) -> dict[str, Any]:
        """The next stream event, skipping the retry hint and heartbeats."""
        while True:
            event = await self.next()
            if "data" in event:
                return event


@asynccontextmanager
async def running_ws(app: App, **settings: Any) -> AsyncIterator[Any]:
    """Serve ``app``; yields the `Listening` (http_url, stream_url, server, websocket)."""
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(
            lambda task_status: app.serve(
                ServerSettings(**{"port": 0, "stream_port": 0, **settings}), task_status=task_status
            )
        )
        try:
            yield listening
        finally:
            nursery.cancel_scope.cancel()


async def keep_writing(stream: Any, group: str, key: str, stop: trio.Event) -> None:
    """Set ``key`` of ``group`` (a 2 KB blob and a counter) again and again until ``stop``: several
    of these keep a group's mailbox full, so a join always queues behind writes."""
    i = 0
    while not stop.is_set():
        await stream.set(group, key, {"blob": "x" * 2048, "i": i})
        i += 1
