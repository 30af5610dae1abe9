"""Pending messages survive a restart on SQLite; dead letters from the command line."""

from __future__ import annotations

import subprocess
import sys

import trio

from runtime import App, RetryPolicy, SQLiteStorage, queue, step


def make_steps(log: list, *, fail: bool):
    worker = step(
        {"name": "Worker", "triggers": [queue("jobs")], "retry": RetryPolicy(attempts=2, backoff=0.01, jitter=0)}
    )

    @worker.handle
    async def work(data, ctx):
        if fail:
            raise RuntimeError("not today")
        log.append(data)

    return [worker]


async def test_pending_messages_survive_a_restart(tmp_path):
    path = tmp_path / "app.db"
    gate = trio.Event()
    stuck = step({"name": "Worker", "triggers": [queue("jobs")]})

    @stuck.handle
    async def wait_forever(data, ctx):
        await gate.wait()  # the app stops before any message is handled

    async with App(steps=[stuck], storage=SQLiteStorage(path)) as app:
        for i in range(3):
            await app.enqueue("jobs", {"n": i})
        await trio.sleep(0.05)
    handled: list = []
    async with App(steps=make_steps(handled, fail=False), storage=SQLiteStorage(path)) as app:
        with trio.fail_after(5):
            while len(handled) < 3:
                await trio.sleep(0.01)
        assert sorted(d["n"] for d in handled) == [0, 1, 2]
        assert await app.engine.storage.queue_pending() == []


async def test_dead_letters_listed_and_replayed_from_the_command_line(tmp_path):
    path = tmp_path / "app.db"
    async with App(steps=make_steps([], fail=True), storage=SQLiteStorage(path)) as app:
        await app.enqueue("jobs", {"n": 7})
        with trio.fail_after(5):
            while not await app.dead_letters():
                await trio.sleep(0.01)
        [dead] = await app.dead_letters()

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "runtime", "dead-letters", "--storage", f"sqlite:{path}", *args],
            capture_output=True, text=True, timeout=60,
        )

    listed = cli()
    assert listed.returncode == 0 and dead.id in listed.stdout and "RuntimeError: not today" in listed.stdout
    assert cli("replay", "nope").returncode == 1
    replayed = await trio.to_thread.run_sync(cli, "replay", dead.id)
    assert replayed.returncode == 0 and f"replayed {dead.id}" in replayed.stdout
    handled: list = []
    async with App(steps=make_steps(handled, fail=False), storage=SQLiteStorage(path)) as app:
        with trio.fail_after(5):
            while not handled:
                await trio.sleep(0.01)
        assert handled == [{"n": 7}] and await app.dead_letters() == []
