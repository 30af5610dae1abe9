"""Queues and cron on Redis, shared by two apps (two processes' worth: each its own storage and origin).

Real Redis, no mocks. Redis measures idle times and BLOCK in real time, so
the waits here are real but tiny, and every wait polls with a deadline.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing

from runtime import App, RetryPolicy, cron, queue, step
from runtime.errors import StorageError
from runtime.steps.clock import RuntimeClock
from runtime.storage.redis import RedisStorage
from tests.redis_support import HOST, delete_prefix, ensure_redis, free_port, start_redis_server, unique_prefix

VISIBILITY = 0.3  # seconds before another app claims what a "crashed" one held


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


async def wait_for(predicate: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` (sync or async) until true; fail after ``timeout`` seconds."""
    with trio.move_on_after(timeout):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return
            await trio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


async def start(nursery: trio.Nursery, app: App) -> trio.CancelScope:
    """Run ``app`` until the returned scope is cancelled (a crash: nothing is acknowledged)."""

    async def run(task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            async with app:
                task_status.started(scope)
                await trio.sleep_forever()

    return await nursery.start(run)


def worker_app(url: str, log: list, name: str, *, fail: bool = False, delay: float = 0.0,
               concurrency: int = 2, attempts: int = 3, gate: trio.Event | None = None,
               started: list | None = None) -> App:
    worker = step({"name": "Worker", "triggers": [queue("jobs", concurrency=concurrency)],
                   "retry": RetryPolicy(attempts=attempts, backoff=0.01, jitter=0)})

    @worker.handle
    async def work(data: Any, ctx: Any) -> None:
        if started is not None:
            started.append((name, data))
        if gate is not None:
            await gate.wait()
        if delay:
            await trio.sleep(delay)
        if fail:
            raise RuntimeError(f"{name} says no")
        log.append((name, data["n"]))

    return App(steps=[worker], storage=RedisStorage(url), queue_visibility_timeout=VISIBILITY)


async def test_each_message_is_handled_once_and_work_spreads_over_both_apps(redis_url):
    log: list = []
    a, b = worker_app(redis_url, log, "a", delay=0.02), worker_app(redis_url, log, "b", delay=0.02)
    async with trio.open_nursery() as nursery:
        scopes = [await start(nursery, a), await start(nursery, b)]
        for n in range(30):
            await (a if n % 3 else b).enqueue("jobs", {"n": n})
        await wait_for(lambda: len(log) >= 30, what="30 messages handled")
        await trio.sleep(VISIBILITY * 1.5)  # long enough for a wrongful claim to run something twice
        counts = Counter(n for _, n in log)
        assert sorted(counts) == list(range(30)) and set(counts.values()) == {1}
        handled_by = Counter(who for who, _ in log)
        assert handled_by["a"] > 0 and handled_by["b"] > 0
        storage: RedisStorage = a.storage
        stream = f"{storage.keys.prefix}:qs:4:jobs:Worker"
        assert await storage.client.xlen(stream) == 0  # acknowledged entries are deleted
        for scope in scopes:
            scope.cancel()


async def test_a_failing_handler_is_retried_then_dead_lettered_and_visible_from_either_app(redis_url):
    tries: list = []
    a = worker_app(redis_url, [], "a", fail=True, attempts=3, started=tries)
    b = worker_app(redis_url, [], "b", fail=True, attempts=3, started=tries)
    async with trio.open_nursery() as nursery:
        scopes = [await start(nursery, a), await start(nursery, b)]
        [message_id] = await a.enqueue("jobs", {"n": 1})
        await wait_for(b.dead_letters, what="a dead letter")
        [dead] = await b.dead_letters()
        assert [m.id for m in await a.dead_letters("jobs")] == [message_id]
        assert dead.attempts == 3 and "says no" in dead.last_error
        assert len(tries) == 3
        assert a.steps.metrics.retries + b.steps.metrics.retries == 2
        assert a.steps.metrics.dead_lettered + b.steps.metrics.dead_lettered == 1
        for scope in scopes:
            scope.cancel()
    # A replay from either app goes back to the shared queue.
    log: list = []
    c = worker_app(redis_url, log, "c")
    async with trio.open_nursery() as nursery:
        scope = await start(nursery, c)
        revived = await c.replay_dead_letter(message_id)
        assert revived.attempts == 0
        await wait_for(lambda: log == [("c", 1)], what="the replayed message handled")
        assert await c.dead_letters() == []
        scope.cancel()


async def test_a_crashed_consumers_message_is_claimed_by_the_other_after_the_visibility_timeout(redis_url):
    gate = trio.Event()  # never set: the first app's handler is "stuck" until it crashes
    started: list = []
    log: list = []
    a = worker_app(redis_url, log, "a", gate=gate, started=started)
    b = worker_app(redis_url, log, "b")
    async with trio.open_nursery() as nursery:
        scope_a = await start(nursery, a)
        await a.enqueue("jobs", {"n": 7})
        await wait_for(lambda: started, what="the first app to take the message")
        scope_b = await start(nursery, b)
        await trio.sleep(VISIBILITY * 2)
        assert log == []  # a live consumer renews its lease: nobody claims a message still running
        crashed_at = trio.current_time()
        scope_a.cancel()  # a crash: the handler dies without an ack
        await wait_for(lambda: log, what="the other app to claim the message")
        assert log == [("b", 7)]
        # Idle since its last lease renewal, at most a third of the timeout before the crash.
        assert trio.current_time() - crashed_at >= VISIBILITY * 2 / 3 - 0.05
        assert await b.dead_letters() == []
        scope_b.cancel()


async def test_a_message_that_keeps_crashing_its_consumer_ends_in_the_dead_letters(redis_url):
    started: list = []
    async with trio.open_nursery() as nursery:
        # Attempts: 2. Two consumers die holding it; the third claim finds the
        # delivery count spent and dead-letters it without running it.
        for name in ("a", "b"):
            app = worker_app(redis_url, [], name, gate=trio.Event(), attempts=2, started=started)
            scope = await start(nursery, app)
            if name == "a":
                await app.enqueue("jobs", {"n": 9})
            taken = 1 if name == "a" else 2
            await wait_for(lambda taken=taken: len(started) == taken, what=f"{name} to take the message")
            scope.cancel()
        c = worker_app(redis_url, [], "c", attempts=2, started=started)
        scope = await start(nursery, c)
        await wait_for(c.dead_letters, what="the poison message dead-lettered")
        [dead] = await c.dead_letters()
        assert dead.attempts == 2 and "without an acknowledgement" in dead.last_error
        assert [who for who, _ in started] == ["a", "b"]
        scope.cancel()


async def test_concurrency_per_lane_holds_across_reads_and_claims(redis_url):
    running = 0
    peak = 0
    done: list = []
    worker = step({"name": "Worker", "triggers": [queue("jobs", concurrency=3)]})

    @worker.handle
    async def work(data: Any, ctx: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await trio.sleep(0.02)
        running -= 1
        done.append(data["n"])

    app = App(steps=[worker], storage=RedisStorage(redis_url), queue_visibility_timeout=VISIBILITY)
    async with app:
        for n in range(12):
            await app.enqueue("jobs", {"n": n})
        await wait_for(lambda: len(done) == 12, what="12 messages")
    assert peak == 3


@pytest.fixture
def real_rate_clock() -> trio.testing.MockClock:
    """Trio time at real speed (Redis needs it) that a test can also jump forward."""
    return trio.testing.MockClock(rate=1.0)


async def test_cron_fires_once_per_tick_across_apps(redis_url, real_rate_clock):
    minute = 1_800_000_000 // 60 * 60
    clock = RuntimeClock(start_wall=minute + 59.8)  # the first tick is 0.2 s away
    fired: list = []

    def cron_app(name: str) -> App:
        every_minute = step({"name": "EveryMinute", "triggers": [cron("* * * * *")]})

        @every_minute.handle
        async def tick(ctx: Any) -> None:
            fired.append((name, round(clock.now())))

        return App(steps=[every_minute], storage=RedisStorage(redis_url), clock=clock)

    a, b = cron_app("a"), cron_app("b")
    async with trio.open_nursery() as nursery:
        scopes = [await start(nursery, a), await start(nursery, b)]
        await wait_for(lambda: fired, what="the first tick")
        for ticks in (2, 3):
            real_rate_clock.jump(60)
            await wait_for(lambda ticks=ticks: len(fired) >= ticks, what=f"tick {ticks}")
        await trio.sleep(0.2)
        assert len(fired) == 3, fired
        assert [when for _, when in fired] == [minute + 60, minute + 120, minute + 180]
        storage: RedisStorage = a.storage
        claimed = await storage.client.get(f"{storage.keys.prefix}:cron:EveryMinute:{(minute + 60) * 1000}")
        assert claimed in (a.storage.origin.encode(), b.storage.origin.encode())
        for scope in scopes:
            scope.cancel()


def _shutdown(port: int) -> None:
    subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), "shutdown", "nosave"],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)


async def test_redis_down_enqueue_fails_fast_and_consumption_resumes_when_it_is_back():
    ensure_redis()  # redis-server must be there to start a private one
    port = free_port()
    start_redis_server(port)
    try:
        log: list = []
        app = worker_app(f"redis://{HOST}:{port}/0?prefix={unique_prefix()}&timeout=1", log, "a")
        async with trio.open_nursery() as nursery:
            scope = await start(nursery, app)
            await app.enqueue("jobs", {"n": 1})
            await wait_for(lambda: log == [("a", 1)], what="the first message")
            await trio.to_thread.run_sync(_shutdown, port)
            began = time.monotonic()
            with pytest.raises(StorageError, match="enqueueing"):
                await app.enqueue("jobs", {"n": 2})
            assert time.monotonic() - began < 2.5
            await trio.to_thread.run_sync(start_redis_server, port)

            async def enqueued() -> bool:
                try:
                    await app.enqueue("jobs", {"n": 3})
                except StorageError:
                    return False
                return True

            await wait_for(enqueued, timeout=10, what="enqueue to work again")
            await wait_for(lambda: ("a", 3) in log, timeout=15, what="consumption to resume")
            scope.cancel()
    finally:
        _shutdown(port)


async def test_a_delayed_retry_survives_the_crash_of_the_process_that_scheduled_it(redis_url):
    tries: list = []
    log: list = []
    worker = step({"name": "Worker", "triggers": [queue("jobs")],
                   "retry": RetryPolicy(attempts=3, backoff=0.4, jitter=0)})

    @worker.handle
    async def fail(data: Any, ctx: Any) -> None:
        tries.append(data["n"])
        raise RuntimeError("later")

    a = App(steps=[worker], storage=RedisStorage(redis_url), queue_visibility_timeout=VISIBILITY)
    async with trio.open_nursery() as nursery:
        scope_a = await start(nursery, a)
        await a.enqueue("jobs", {"n": 5})
        await wait_for(lambda: a.steps.metrics.retries == 1, what="the first failure")
        scope_a.cancel()  # dies with the retry scheduled 0.4 s ahead, in Redis only
        failed_at = trio.current_time()
        b = worker_app(redis_url, log, "b")
        scope_b = await start(nursery, b)
        await wait_for(lambda: log, what="the retry, run by the other app")
        assert log == [("b", 5)] and tries == [5]
        assert trio.current_time() - failed_at >= 0.3  # not before it was due
        scope_b.cancel()


async def test_a_dead_letter_replayed_from_the_command_line_runs_in_a_running_app(redis_url):
    log: list = []
    async with trio.open_nursery() as nursery:
        failing = worker_app(redis_url, [], "a", fail=True, attempts=1)
        scope = await start(nursery, failing)
        [message_id] = await failing.enqueue("jobs", {"n": 4})
        await wait_for(failing.dead_letters, what="a dead letter")
        scope.cancel()
        working = worker_app(redis_url, log, "b")
        scope = await start(nursery, working)
        replayed = await trio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, "-m", "runtime", "dead-letters", "--storage", redis_url, "replay", message_id],
            capture_output=True, text=True, timeout=60))
        assert replayed.returncode == 0, replayed.stderr
        await wait_for(lambda: log, timeout=10, what="the replayed message to run")
        assert log == [("b", 4)] and await working.dead_letters() == []
        assert await working.storage.queue_pending() == []
        scope.cancel()
