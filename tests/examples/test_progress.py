"""examples/progress: a 202 at once, then every stage live on the job's stream, in order."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import trio

from runtime import ApiRequest

from .conftest import Probe, settle

STAGE_SECONDS = 0.5
LABELS = ["download", "validate", "transform", "render", "upload"]

#: (state, stage, percent, label) of every state change of a job, in order.
EXPECTED = [
    ("queued", 0, 0, None),
    ("running", 0, 0, "download"),
    ("running", 1, 20, "validate"),
    ("running", 2, 40, "transform"),
    ("running", 3, 60, "render"),
    ("running", 4, 80, "upload"),
    ("done", 5, 100, None),
]


@pytest.fixture(autouse=True)
def _fast_stages(monkeypatch):
    monkeypatch.setenv("PROGRESS_STAGE_SECONDS", str(STAGE_SECONDS))


def summary(status: dict[str, Any]) -> tuple:
    return status["state"], status["stage"], status["percent"], status["label"]


def states_seen(probe: Probe) -> list[tuple]:
    """The job's status as a client sees it: the snapshot, then each change."""
    seen = []
    for frame in probe.envelopes():
        data = frame["event"]["data"]
        if frame["event"]["type"] == "sync":
            data = data[0] if isinstance(data, list) and data else (None if isinstance(data, list) else data)
        if data is not None:
            seen.append(summary(data))
    return seen


async def start_job(app) -> tuple[str, Probe]:
    response = await app.request("POST", "/jobs")
    assert response.status == 202
    job_id = response.body["jobId"]
    probe = Probe()
    await app.engine.join(probe, "progress", job_id, subscription_id="client")  # GET /streams/progress/<jobId>
    return job_id, probe


async def test_post_jobs_answers_202_at_once_and_the_stream_shows_every_stage_in_order(load_example, autojump_clock):
    async with load_example("progress") as app:
        start = trio.current_time()
        response = await app.request("POST", "/jobs")
        assert trio.current_time() == start  # nothing waited for the job
        assert response.status == 202
        job_id = response.body["jobId"]
        assert uuid.UUID(job_id).version == 4
        assert response.body == {
            "jobId": job_id, "status": f"/jobs/{job_id}", "stream": f"/streams/progress/{job_id}",
            "events": f"/jobs/{job_id}/events",
        }
        assert response.headers["Location"] == f"/jobs/{job_id}"

        probe = Probe()
        await app.engine.join(probe, "progress", job_id, subscription_id="client")
        status = await app.request("GET", f"/jobs/{job_id}")
        assert status.status == 200 and status.body["jobId"] == job_id and status.body["stages"] == 5
        assert status.body["state"] in ("queued", "running") and status.body["percent"] == 0

        await settle(app)
        finished = trio.current_time() - start
        assert finished == pytest.approx(5 * STAGE_SECONDS, abs=0.01)
        final = await app.request("GET", f"/jobs/{job_id}")
        assert final.status == 200
        assert final.body == {
            "jobId": job_id, "state": "done", "stage": 5, "stages": 5, "percent": 100, "label": None,
            "createdAt": final.body["createdAt"],
        }

    frames = probe.envelopes()
    assert frames[0]["event"]["type"] == "sync" and frames[0]["id"] is None
    assert {f["event"]["type"] for f in frames[1:]} == {"update"}
    assert all(f["streamName"] == "progress" and f["groupId"] == job_id for f in frames)
    assert all(f["id"] == "status" for f in frames[1:])
    assert [f["offset"] for f in frames[1:]] == list(range(frames[0]["offset"] + 1, frames[-1]["offset"] + 1))
    seen = states_seen(probe)
    # The snapshot may already show the job started; from there on, every change in order.
    assert seen == EXPECTED[len(EXPECTED) - len(seen):] and len(seen) >= 6
    assert seen[-1] == ("done", 5, 100, None)
    stage_times = [t - start for t, e in zip(probe.times, probe.events) if e.type == "update" and e.data["stage"] > 0]
    assert stage_times == pytest.approx([STAGE_SECONDS * n for n in range(1, 6)], abs=0.01)


async def test_jobs_run_concurrently_and_independently(load_example, autojump_clock):
    async with load_example("progress") as app:
        start = trio.current_time()
        jobs = [await start_job(app) for _ in range(4)]
        await settle(app)
        assert trio.current_time() - start == pytest.approx(5 * STAGE_SECONDS, abs=0.01)  # not 4x
        for job_id, probe in jobs:
            seen = states_seen(probe)
            assert seen == EXPECTED[len(EXPECTED) - len(seen):] and seen[-1][0] == "done"
            assert {f["groupId"] for f in probe.envelopes()} == {job_id}
        assert sorted(await app.engine.storage.list_groups("progress")) == sorted(j for j, _ in jobs)


async def test_a_duplicate_delivery_never_advances_a_stage_twice(load_example, autojump_clock):
    async with load_example("progress") as app:
        job_id, probe = await start_job(app)
        await app.enqueue("job.start", {"jobId": job_id})  # at-least-once: the same job, twice at once
        await trio.sleep(STAGE_SECONDS * 2.5)
        await app.enqueue("job.start", {"jobId": job_id})  # and again mid-way
        await settle(app)
        await app.enqueue("job.start", {"jobId": job_id})  # and once it is done
        await app.enqueue("job.start", {"jobId": str(uuid.uuid4())})  # a job nobody started
        await settle(app)
        assert (await app.request("GET", f"/jobs/{job_id}")).body["stage"] == 5
        assert await app.dead_letters() == []
    seen = states_seen(probe)
    assert seen == EXPECTED[len(EXPECTED) - len(seen):] and seen[-1] == ("done", 5, 100, None)


async def test_unknown_jobs_are_404(load_example):
    async with load_example("progress") as app:
        for url in (f"/jobs/{uuid.uuid4()}", f"/jobs/{uuid.uuid4()}/events"):
            response = await app.request("GET", url)
            assert response.status == 404 and response.body["error"] == "not_found"
        assert (await app.request("GET", "/jobs")).status == 405


class StreamingResponse:
    """Motia's streaming response API, recorded: what the HTTP server will hand the step (issue 5)."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.sent_headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.closed = False
        self.writer = SimpleNamespace(stream=SimpleNamespace(write=self._write))

    def _write(self, chunk: bytes) -> None:
        assert self.code is not None and not self.closed, "written before status() or after close()"
        self.chunks.append(chunk)

    async def status(self, code: int) -> None:
        self.code = code

    async def headers(self, headers: dict[str, str]) -> None:
        self.sent_headers.update(headers)

    def close(self) -> None:
        self.closed = True

    def events(self) -> list[dict[str, Any]]:
        body = b"".join(self.chunks)
        assert body.endswith(b"\n\n")
        frames = body[:-2].split(b"\n\n")
        assert all(frame.startswith(b"data: ") and b"\n" not in frame for frame in frames)
        return [orjson.loads(frame[len(b"data: "):]) for frame in frames]


async def call_events(app, job_id: str, response: StreamingResponse):
    # app.request cannot hand a step a streaming response yet, so route the
    # request through the step runtime with one attached, as the server will.
    request = ApiRequest(method="GET", path=f"/jobs/{job_id}/events", response=response)
    return await app.steps.call_http(request)


async def test_the_events_step_streams_each_stage_then_closes(load_example, autojump_clock):
    async with load_example("progress") as app:
        job_id = (await app.request("POST", "/jobs")).body["jobId"]
        response = StreamingResponse()
        start = trio.current_time()
        assert await call_events(app, job_id, response) is None  # streamed, nothing to return
        assert trio.current_time() - start == pytest.approx(5 * STAGE_SECONDS, abs=0.01)
        assert response.code == 200 and response.closed
        assert response.sent_headers["content-type"] == "text/event-stream"
        assert response.sent_headers["cache-control"] == "no-cache"
        events = response.events()
        assert {e["jobId"] for e in events} == {job_id} and all("id" not in e for e in events)
        seen = [summary(e) for e in events]
        assert seen == EXPECTED[len(EXPECTED) - len(seen):] and len(seen) >= 6

        # A finished job: one frame, and the response is closed at once.
        late = StreamingResponse()
        assert await call_events(app, job_id, late) is None
        assert [summary(e) for e in late.events()] == [("done", 5, 100, None)] and late.closed
        assert trio.current_time() - start == pytest.approx(5 * STAGE_SECONDS, abs=0.01)


async def test_a_client_that_goes_away_cancels_the_events_step_and_leaves_nothing(load_example, autojump_clock):
    async with load_example("progress") as app:
        engine = app.engine
        left: list[tuple[str, bool]] = []
        leave = engine.leave

        async def spy_leave(subscriber, stream, group, subscription_id):
            removed = await leave(subscriber, stream, group, subscription_id)
            left.append((group, removed))
            return removed

        engine.leave = spy_leave  # the step finds this engine as the running task's
        job_id = (await app.request("POST", "/jobs")).body["jobId"]
        response = StreamingResponse()
        with trio.move_on_after(STAGE_SECONDS * 2.5):  # the client disconnects mid-job
            await call_events(app, job_id, response)
        assert response.closed and 2 <= len(response.events()) <= 4
        assert left == [(job_id, True)]  # its subscription was removed, under cancellation
        await settle(app)
        assert (await app.request("GET", f"/jobs/{job_id}")).body["state"] == "done"  # the job itself went on


def test_the_events_step_answers_501_in_process(load_example):
    """In process there is no streaming response (``request.response`` is None):
    the step says so instead of failing; tests/examples/test_over_http.py
    follows the stream through the real server."""

    async def call():
        async with load_example("progress") as app:
            job_id = (await app.request("POST", "/jobs")).body["jobId"]
            return await app.request("GET", f"/jobs/{job_id}/events")

    response = trio.run(call)
    assert response.status == 501 and response.body["error"] == "streaming_unsupported"
