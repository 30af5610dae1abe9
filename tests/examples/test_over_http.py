"""Both examples through the real HTTP server: the documented URLs, as a browser would use them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio

from runtime import App


@pytest.fixture(autouse=True)
def _fast_stages(monkeypatch):
    monkeypatch.setenv("PROGRESS_STAGE_SECONDS", "0.05")


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(lambda task_status: app.serve(port=0, stream_port=0, task_status=task_status))
        try:
            async with httpx.AsyncClient(base_url=listening.http_url, timeout=10) as client:
                yield client
        finally:
            nursery.cancel_scope.cancel()


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Each SSE event with data: ``{"event": ..., "id": ..., "data": <decoded JSON>}``."""
    buffer = ""
    async for text in response.aiter_text():
        buffer += text
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event: dict[str, Any] = {}
            for line in block.split("\n"):
                field, _, value = line.partition(":")
                if field in ("event", "id", "data"):
                    event[field] = value[1:] if value.startswith(" ") else value
            if "data" in event:
                event["data"] = orjson.loads(event["data"])
                yield event


async def test_progress_job_events_route_and_stream_subscription(load_example):
    app = load_example("progress")
    async with serving(app) as client:
        with trio.fail_after(10):
            created = await client.post("/jobs")
            assert created.status_code == 202
            job_id = created.json()["jobId"]
            assert created.headers["location"] == f"/jobs/{job_id}"

            async def subscription() -> list[dict[str, Any]]:
                seen = []
                async with client.stream("GET", created.json()["stream"]) as response:  # /streams/progress/<jobId>
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/event-stream")
                    async for event in sse_events(response):
                        seen.append(event)
                        body = event["data"]["event"]
                        status = body["data"][0] if body["type"] == "sync" else body["data"]
                        if status["state"] == "done":
                            return seen
                return seen

            async def own_route() -> list[dict[str, Any]]:
                async with client.stream("GET", created.json()["events"]) as response:  # /jobs/<jobId>/events
                    assert response.status_code == 200
                    assert response.headers["content-type"] == "text/event-stream"
                    return [event["data"] async for event in sse_events(response)]  # ends when the step closes

            results: dict[str, list] = {}

            async def run(name, fn):
                results[name] = await fn()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(run, "subscription", subscription)
                nursery.start_soon(run, "own", own_route)

        frames = results["subscription"]
        assert frames[0]["event"] == "sync" and all(f["event"] == "update" for f in frames[1:])
        assert all(f["data"]["groupId"] == job_id and f["data"]["streamName"] == "progress" for f in frames)
        stages = [f["data"]["event"]["data"]["stage"] for f in frames[1:]]
        assert stages == sorted(stages) and stages[-1] == 5
        assert frames[-1]["data"]["event"]["data"]["percent"] == 100

        own = results["own"]
        assert {e["jobId"] for e in own} == {job_id}
        assert [e["stage"] for e in own] == sorted(e["stage"] for e in own)
        assert own[-1]["state"] == "done" and own[-1]["percent"] == 100
        assert [e["stage"] for e in own if e["state"] == "running"][-4:] == [1, 2, 3, 4]

        assert (await client.get(f"/jobs/{job_id}")).json()["state"] == "done"
        missing = await client.get("/jobs/nope/events")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_todo_over_http_with_a_live_subscription(load_example):
    app = load_example("todo")
    async with serving(app) as client:
        with trio.fail_after(10):
            async with client.stream("GET", "/streams/todo/inbox") as live:
                events = sse_events(live)
                sync = await events.__anext__()
                assert sync["event"] == "sync" and sync["data"]["event"]["data"] == []

                created = await client.post("/todo", json={"title": "buy milk"})
                assert created.status_code == 201
                todo = created.json()
                assert (await client.post("/todo", json={"title": 1})).status_code == 400
                assert (await client.post(f"/todo/{todo['id']}/complete")).json()["completed"] is True
                assert (await client.get("/todo")).json() == [{**todo, "completed": True}]
                assert (await client.delete(f"/todo/{todo['id']}")).status_code == 200
                assert (await client.post(f"/todo/{todo['id']}/complete")).status_code == 404

                seen = [await events.__anext__() for _ in range(3)]
                await events.aclose()
            assert [e["event"] for e in seen] == ["create", "update", "delete"]
            assert [e["data"]["event"]["data"]["completed"] for e in seen] == [False, True, True]
            assert all(e["data"]["id"] == todo["id"] for e in seen)
            while (await client.get("/todo/stats")).json() != {"completed": 1}:
                await trio.sleep(0.01)
