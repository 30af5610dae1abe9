"""The testing harness itself, and the examples' flows tested with it (deterministically)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from runtime import RetryPolicy, Stream, http, queue, step
from runtime.testing import open_test_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_subscription_expectations_and_expect_nothing(autojump_clock):
    async with open_test_app(streams=[Stream("chat")]) as app:
        sub = await app.subscribe("chat", "room")
        await sub.expect("sync", data=[])
        await app.stream("chat").set("room", "m1", {"text": "hi"})
        await sub.expect("create", id="m1", data={"id": "m1", "text": "hi"})
        await sub.expect_nothing(timeout=30)  # thirty virtual seconds, no real time
        await app.stream("chat").delete("room", "m1")
        with pytest.raises(AssertionError, match="type 'delete' != 'update'"):
            await sub.expect("update")
        with pytest.raises(AssertionError, match="none arrived"):
            await sub.expect("create", timeout=1)


async def test_http_enqueue_retries_and_dead_letters_in_virtual_time(autojump_clock):
    attempts = []
    create = step({"name": "Create", "triggers": [http("POST", "/jobs")]})
    work = step({"name": "Work", "triggers": [queue("jobs")], "retry": RetryPolicy(attempts=3, backoff=10, jitter=0)})

    @create.handle
    async def create_job(request, ctx):
        await ctx.enqueue({"topic": "jobs", "data": request.body})
        return {"status": 202, "body": {"queued": True}}

    @work.handle
    async def do_work(data, ctx):
        attempts.append(trio.current_time())
        raise RuntimeError("flaky")

    async with open_test_app(steps=[create, work]) as app:
        response = await app.http.post("/jobs", json={"n": 1})
        assert response.status == 202 and response.json() == {"queued": True} and response.trace_id
        await app.settle()
        assert len(attempts) == 1
        await trio.sleep(100)  # virtual: the retries at +10 s and +30 s happen
        assert len(await app.dead_letters("jobs")) == 1 and len(attempts) == 3


@pytest.mark.runtime_project(EXAMPLES / "todo")
async def test_todo_flow_with_the_fixture(runtime_app):
    sub = await runtime_app.subscribe("todo", "inbox")
    await sub.expect("sync", data=[])
    created = await runtime_app.http.post("/todo", json={"title": "milk"})
    assert created.status == 201
    todo_id = created.json()["id"]
    await sub.expect("create", id=todo_id)
    done = await runtime_app.http.post(f"/todo/{todo_id}/complete")
    assert done.status == 200 and done.json()["completed"] is True
    await sub.expect("update", id=todo_id)
    await runtime_app.settle()  # the completion trigger and its queue step ran
    assert (await runtime_app.http.get("/todo/stats")).json() == {"completed": 1}
    assert (await runtime_app.http.delete(f"/todo/{todo_id}")).status == 200
    await sub.expect("delete", id=todo_id)
    await sub.expect_nothing()


def _progress_run() -> list:
    """One run of the progress example's flow, recorded as (virtual time, stage, state)."""

    async def main():
        seen = []
        async with open_test_app(EXAMPLES / "progress") as app:
            started = await app.http.post("/jobs", json={})
            job = started.json()["jobId"]
            sub = await app.subscribe("progress", job)
            while True:
                event = await sub.next(timeout=60)
                if event.type in ("create", "update"):
                    seen.append((round(trio.current_time(), 6), event.data.get("stage"), event.data.get("state")))
                    if event.data.get("state") == "done":
                        break
        return seen

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_same_test_run_50_times_gives_the_same_result():
    first = _progress_run()
    assert first[-1][2] == "done"
    for _ in range(49):
        assert _progress_run() == first


def _retry_times(start_wall: float | None = None) -> list[float]:
    """When a failing queue step's attempts ran, in virtual seconds after the first (jitter 0)."""

    async def main() -> list[float]:
        attempts: list[float] = []
        flaky = step({"name": "Flaky", "triggers": [queue("jobs")],
                      "retry": RetryPolicy(attempts=3, backoff=10, jitter=0)})

        @flaky.handle
        async def work(data, ctx):
            attempts.append(trio.current_time())
            raise RuntimeError("down")

        async with open_test_app(steps=[flaky], start_wall=start_wall) as app:
            await app.enqueue("jobs", {"n": 1})
            await trio.sleep(100)
        return [round(t - attempts[0], 9) for t in attempts]

    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_the_wall_clock_starts_at_a_whole_second_so_retries_land_the_same_every_run():
    # from time.time(), due times in whole milliseconds left [0, 9.999, 29.999] in about half the runs
    runs = {tuple(_retry_times()) for _ in range(20)}
    assert runs == {(0.0, 10.0, 30.0)}


async def test_the_default_wall_clock_is_fixed_and_in_seconds(autojump_clock):
    from runtime.testing.harness import DEFAULT_START_WALL

    async with open_test_app() as app:
        assert app.steps.clock.now() == DEFAULT_START_WALL
        await trio.sleep(1.5)
        assert app.steps.clock.now() == DEFAULT_START_WALL + 1.5
    async with open_test_app(start_wall=1_800_000_000) as app:
        assert app.steps.clock.now_ms() == 1_800_000_000_000
