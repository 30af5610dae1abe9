"""Two engines on one Redis behave as one: what several server processes rely on.

Each engine has its own `RedisStorage` (its own connections and origin), as
a separate process would; they share a key prefix. Waiting for another
engine's publication is waiting for real I/O, so these tests poll with a
deadline (`eventually`) instead of sleeping a fixed time.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
import trio

from runtime import RedisStorage, StorageError, Stream, StreamEngine
from tests.redis_support import HOST, delete_prefix, ensure_redis, free_port, start_redis_server, unique_prefix

from .conftest import Probe

counter = Stream("counter")
INCREMENT = [{"type": "increment", "path": "n", "by": 1}]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.005)


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


@asynccontextmanager
async def engines(url: str, count: int = 2, **options) -> AsyncIterator[list[tuple[StreamEngine, Stream]]]:
    """``count`` engines on one Redis, each with its own storage, and a `counter` handle bound to each."""
    async with trio.open_nursery() as nursery:
        running: list[tuple[StreamEngine, Stream]] = []
        stop = trio.Event()

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            storage = RedisStorage(url)
            storage.check_interval = 0.05
            async with StreamEngine([counter], storage=storage, **options) as engine:
                task_status.started((engine, Stream("counter").bind(engine)))
                await stop.wait()

        for _ in range(count):
            running.append(await nursery.start(run))
        try:
            yield running
        finally:
            stop.set()


async def test_increments_from_two_engines_end_exact(redis_url):
    async with engines(redis_url) as [(engine_a, a), (_, b)]:

        async def hammer(handle: Stream) -> None:
            for _ in range(40):
                await handle.update("hot", "x", INCREMENT)

        async with trio.open_nursery() as nursery:
            for k in range(50):
                nursery.start_soon(hammer, a if k % 2 else b)
        assert (await a.get("hot", "x"))["n"] == 2000
        assert (await b.get("hot", "x"))["n"] == 2000
        stats = await engine_a.group_stats("counter", "hot")
        assert stats["offset"] == 2000  # one offset per change, none lost or doubled


async def test_increments_spread_over_many_groups_from_two_engines_end_exact(redis_url):
    # Many groups commit at once: their script calls share pipelines (and races).
    async with engines(redis_url) as [(_, a), (_, b)]:

        async def hammer(handle: Stream, k: int) -> None:
            for i in range(10):
                await handle.update(f"g{(k + i) % 50}", "x", INCREMENT)

        async with trio.open_nursery() as nursery:
            for k in range(100):
                nursery.start_soon(hammer, a if k % 2 else b, k)
        values = [(await (a if k % 2 else b).get(f"g{k}", "x"))["n"] for k in range(50)]
        assert values == [20] * 50


async def test_update_many_from_two_engines_is_exact_and_all_or_nothing(redis_url):
    async with engines(redis_url) as [(_, a), (_, b)]:

        async def hammer(handle: Stream) -> None:
            for _ in range(20):
                await handle.update_many("g", [("x", INCREMENT), ("y", INCREMENT), ("x", INCREMENT)])

        async with trio.open_nursery() as nursery:
            for k in range(20):
                nursery.start_soon(hammer, a if k % 2 else b)
        assert [(item["id"], item["n"]) for item in await a.list("g")] == [("x", 800), ("y", 400)]
        with pytest.raises(Exception, match="entry 1"):
            await b.update_many("g", [("x", INCREMENT), ("y", [{"type": "increment", "path": "n", "by": "1"}])])
        assert [(item["id"], item["n"]) for item in await a.list("g")] == [("x", 800), ("y", 400)]


async def test_a_subscriber_on_one_engine_sees_the_others_writes_in_offset_order(redis_url):
    async with engines(redis_url) as [(engine_a, _), (_, b)]:
        await b.set("g", "seed", {"n": 0})
        probe = Probe()
        joined = await engine_a.join(probe, "counter", "g", subscription_id=1)
        for i in range(200):
            await b.set("g", f"i{i % 9}", {"n": i})
        await eventually(lambda: len(probe.events) == 201)
        sync, *events = probe.events
        assert sync.type == "sync" and sync.offset == joined.offset == 1
        assert [e.offset for e in events] == list(range(2, 202))
        timestamps = [e.timestamp for e in probe.events]
        assert all(x < y for x, y in zip(timestamps, timestamps[1:]))
        state = {item["id"]: item for item in sync.data}
        for event in events:
            state[event.item_id] = event.data
        assert state == {item["id"]: item for item in await b.list("g")}
        assert engine_a.metrics.events_followed == 200


async def test_a_read_sees_every_write_the_other_engine_acknowledged(redis_url):
    async with engines(redis_url) as [(_, a), (_, b)]:
        await a.get("g", "x")  # both groups active, so the reader has a copy that could be stale
        for i in range(1, 30):
            writer, reader = (a, b) if i % 2 else (b, a)
            await writer.update("g", "x", INCREMENT)
            assert (await reader.get("g", "x"))["n"] == i
            assert [item["n"] for item in await reader.list("g")] == [i]


async def test_resume_on_the_other_engine_replays_from_the_shared_history(redis_url):
    async with engines(redis_url) as [(engine_a, a), (engine_b, _)]:
        for i in range(10):
            await a.set("g", f"i{i % 3}", {"n": i})
        first = Probe()
        joined = await engine_a.join(first, "counter", "g", subscription_id=1)
        probe = Probe()
        resumed = await engine_b.join(probe, "counter", "g", subscription_id=1, since=(joined.epoch, 6))
        assert resumed.resumed and resumed.replayed == 4
        assert probe.types() == ["update"] * 4 + ["resumed"]
        assert probe.offsets()[:4] == [7, 8, 9, 10]
        await a.set("g", "i0", {"n": 100})  # written on A, followed on B
        await eventually(lambda: probe.offsets()[-1] == 11)


async def test_sends_and_joins_keep_timestamps_increasing_across_engines(redis_url):
    frozen = lambda: 1_000  # noqa: E731 - both engines' clocks stand still: only the +1 rule orders
    async with engines(redis_url, clock=frozen) as [(engine_a, a), (engine_b, b)]:
        probe = Probe()
        await engine_a.join(probe, "counter", "g", subscription_id=1)
        await b.send({"group_id": "g"}, {"type": "ping", "data": {"k": 1}})
        await b.set("g", "x", {"n": 1})
        await a.set("g", "x", {"n": 2})
        late = Probe()
        await engine_b.join(late, "counter", "g", subscription_id=2)
        await b.send({"group_id": "g", "id": "x"}, {"type": "ping", "data": {"k": 2}})
        await eventually(lambda: len(probe.events) == 5 and len(late.events) == 2)
        assert probe.types() == ["sync", "event", "create", "update", "event"]
        assert [e.offset for e in probe.events] == [0, None, 1, 2, None]
        assert late.types() == ["sync", "event"] and late.events[1].timestamp == probe.events[-1].timestamp
        distinct = probe.events + late.events[:1]  # B's sync is stamped on the same timeline as A's events
        assert len({e.timestamp for e in distinct}) == len(distinct)
        for events in (probe.events, late.events):
            stamps = [e.timestamp for e in events]
            assert all(x < y for x, y in zip(stamps, stamps[1:]))


async def test_stream_triggers_fire_once_in_the_engine_that_made_the_change(redis_url):
    async with engines(redis_url) as [(engine_a, _), (engine_b, b)]:
        seen: dict[str, list[int]] = {"a": [], "b": []}

        async def on_a(event):
            seen["a"].append(event.offset)

        async def on_b(event):
            seen["b"].append(event.offset)

        engine_a.on_change("counter", on_a)
        engine_b.on_change("counter", on_b)
        probe = Probe()
        await engine_a.join(probe, "counter", "g", subscription_id=1)  # A follows the group
        for _ in range(5):
            await b.update("g", "x", INCREMENT)
        await eventually(lambda: len(seen["b"]) == 5 and len(probe.events) == 6)
        await trio.testing.wait_all_tasks_blocked()
        assert seen == {"a": [], "b": [1, 2, 3, 4, 5]}


class LossyRedisStorage(RedisStorage):
    """Loses the published batch holding offset 3, as a dropped pub/sub message would."""

    async def follow(self, deliver, lost, *, task_status=trio.TASK_STATUS_IGNORED):
        def lossy(batch):
            if not any(event.offset == 3 for event in batch.events):
                deliver(batch)

        await super().follow(lossy, lost, task_status=task_status)


async def test_a_lost_publication_is_caught_up_from_the_history_not_delivered_as_a_hole(redis_url):
    async with StreamEngine([counter], storage=LossyRedisStorage(redis_url)) as follower:
        async with engines(redis_url, count=1) as [(_, writer)]:
            probe = Probe()
            await follower.join(probe, "counter", "g", subscription_id=1)
            for i in range(1, 6):
                await writer.set("g", "x", {"n": i})
            await eventually(lambda: len(probe.events) == 6)
        assert probe.offsets() == [0, 1, 2, 3, 4, 5]
        assert [event.data["n"] for event in probe.events[1:]] == [1, 2, 3, 4, 5]


# -- a private Redis that the tests may flush, stop and restart -----------------------------


@pytest.fixture
def private_redis() -> Iterator[tuple[str, Callable[[], None], Callable[[], None]]]:
    ensure_redis()  # fails under CI when redis-server is missing, as the others do
    port = free_port()
    start_redis_server(port)

    def stop() -> None:
        subprocess.run(["redis-cli", "-h", HOST, "-p", str(port), "shutdown", "nosave"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)

    def start() -> None:
        start_redis_server(port)

    try:
        yield f"redis://{HOST}:{port}/0?timeout=1", stop, start
    finally:
        stop()


async def test_redis_losing_its_data_changes_the_epoch_and_resyncs(private_redis):
    url, _, _ = private_redis
    async with engines(url) as [(engine_a, a), (_, b)]:
        await b.set("g", "x", {"n": 1})
        probe = Probe()
        joined = await engine_a.join(probe, "counter", "g", subscription_id=1)
        port = url.split(":")[2].split("/")[0]
        subprocess.run(["redis-cli", "-h", HOST, "-p", port, "flushall"], check=True, stdout=subprocess.DEVNULL)
        await eventually(lambda: probe.events[-1].type == "sync" and probe.events[-1].epoch != joined.epoch)
        resync = probe.events[-1]
        assert (resync.offset, resync.data) == (0, [])
        await b.set("g", "y", {"n": 2})
        await eventually(lambda: probe.events[-1].type == "create")
        assert (probe.events[-1].epoch, probe.events[-1].offset) == (resync.epoch, 1)
        assert (await a.get("g", "y")) == {"id": "y", "n": 2}


async def test_redis_down_fails_fast_then_everything_recovers(private_redis):
    url, stop, start = private_redis
    async with engines(url, count=1) as [(engine, handle)]:
        await handle.set("g", "x", {"n": 1})
        probe = Probe()
        await engine.join(probe, "counter", "g", subscription_id=1)
        stop()
        with trio.fail_after(5):  # a clear error, not a hang (the URL's timeout is 1 s)
            with pytest.raises(StorageError, match="Redis at"):
                await handle.set("g", "x", {"n": 2})
        start()
        await eventually(lambda: probe.events[-1].type == "sync" and probe.events[-1].offset == 0)
        await handle.set("g", "x", {"n": 3})  # Redis came back empty: a new epoch from here
        assert probe.events[-1].type == "create" and probe.events[-1].offset == 1
        stats = await engine.group_stats("counter", "g")
        assert (stats["subscribers"], stats["items"], stats["offset"]) == (1, 1, 1)  # the subscription stayed
