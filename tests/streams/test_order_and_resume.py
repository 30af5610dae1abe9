"""Atomicity under concurrency, snapshot/event boundary, resume, passivation, restarts."""

from __future__ import annotations

import trio

from runtime import HistoryPolicy, Stream, StreamConfig, StreamEngine

from .conftest import Probe

counter = Stream("counter")


async def test_100_tasks_of_100_increments_end_at_exactly_10000(backend):
    async with StreamEngine([counter], storage=backend()):

        async def hammer():
            for _ in range(100):
                await counter.update("hot", "n", [{"type": "increment", "path": "value", "by": 1}])

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(hammer)
        assert (await counter.get("hot", "n"))["value"] == 10_000
    async with StreamEngine([counter], storage=backend()):
        if backend.kind == "sqlite":  # and it was committed, not just held in memory
            assert (await counter.get("hot", "n"))["value"] == 10_000


async def test_join_during_1000_concurrent_writes_sees_no_gap_and_no_duplicate(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        probes: list[tuple[Probe, object]] = []
        written = [0]

        async def writer(k):
            for i in range(100):
                await counter.update("g", f"item{(k + i) % 7}", [{"type": "increment", "path": "v", "by": 1}])
                written[0] += 1

        async def joiner(j):
            # Join once the writers are this far along (not after a number of
            # checkpoints: how many writes a checkpoint lets through depends on
            # how the storage batches), so the joins land all along the stream.
            while written[0] < j * 2:
                await trio.lowlevel.checkpoint()
            probe = Probe()
            joined = await engine.join(probe, "counter", "g", subscription_id=j)
            probes.append((probe, joined))

        async with trio.open_nursery() as nursery:
            for k in range(10):
                nursery.start_soon(writer, k)
            for j in range(0, 400, 40):
                nursery.start_soon(joiner, j)
        final = {item["id"]: item for item in await counter.list("g")}
        assert sum(item["v"] for item in final.values()) == 1000
        for probe, joined in probes:
            sync, *events = probe.events
            assert sync.type == "sync" and sync.offset == joined.offset
            assert [e.offset for e in events] == list(range(joined.offset + 1, 1001))
            # the snapshot plus the events rebuild exactly the final state
            state = {item["id"]: item for item in sync.data}
            for event in events:
                state[event.item_id] = event.data
            assert state == final
        assert len({joined.offset for _, joined in probes}) > 1  # they really joined mid-stream


async def test_resume_inside_the_history_replays_then_marks(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        for i in range(10):
            await counter.set("g", f"i{i % 3}", {"n": i})
        first = Probe()
        joined = await engine.join(first, "counter", "g", subscription_id=1)
        epoch = joined.epoch
        probe = Probe()
        resumed = await engine.join(probe, "counter", "g", subscription_id=1, since=(epoch, 6))
        assert resumed.resumed and resumed.replayed == 4
        assert probe.types() == ["update"] * 4 + ["resumed"]
        assert probe.offsets()[:4] == [7, 8, 9, 10]
        assert probe.events[-1].replayed == 4
        # an item subscription replays only that item's events
        item_probe = Probe()
        await engine.join(item_probe, "counter", "g", subscription_id=2, item_id="i0", since=(epoch, 6))
        assert [e.offset for e in item_probe.events[:-1]] == [7, 10]  # n=6 and n=9 went to i0
        # up to date: nothing to replay, still a marker
        current = Probe()
        await engine.join(current, "counter", "g", subscription_id=3, since=(epoch, 10))
        assert current.types() == ["resumed"]
        # events after the resume flow normally
        await counter.set("g", "i0", {"n": 100})
        assert probe.events[-1].offset == 11


async def test_resume_outside_the_history_or_epoch_is_a_fresh_sync(backend):
    small = Stream(StreamConfig(name="small", history=HistoryPolicy(max_events=5)))
    async with StreamEngine([small], storage=backend()) as engine:
        for i in range(20):
            await small.set("g", "a", {"n": i})
        joined = await engine.join(Probe(), "small", "g", subscription_id=0)
        for since in [(joined.epoch, 10), ("other-epoch", 19), (joined.epoch, 99), (joined.epoch, -1)]:
            probe = Probe()
            result = await engine.join(probe, "small", "g", subscription_id=1, since=since)
            assert not result.resumed and probe.types() == ["sync"], since
        probe = Probe()  # the oldest kept event is 16: resuming from 15 is complete
        assert (await engine.join(probe, "small", "g", subscription_id=1, since=(joined.epoch, 15))).resumed
        assert probe.offsets()[:-1] == [16, 17, 18, 19, 20]


async def test_history_age_limit_drops_old_events(backend):
    now = [1_000_000]
    aged = Stream(StreamConfig(name="aged", history=HistoryPolicy(max_events=1000, max_age_ms=60_000)))
    async with StreamEngine([aged], storage=backend(), clock=lambda: now[0]) as engine:
        await aged.set("g", "a", {"n": 1})  # offset 1
        now[0] += 120_000
        await aged.set("g", "a", {"n": 2})  # offset 2; offset 1 is now too old to keep
        joined = await engine.join(Probe(), "aged", "g", subscription_id=0)
        probe = Probe()
        assert not (await engine.join(probe, "aged", "g", subscription_id=1, since=(joined.epoch, 0))).resumed
        probe = Probe()
        assert (await engine.join(probe, "aged", "g", subscription_id=1, since=(joined.epoch, 1))).resumed


async def test_passivation_and_reactivation_keep_offset_and_epoch(autojump_clock):
    # Memory only: SQLite works in a thread, and an autojumping clock jumps
    # while a task waits on one, which makes idle timers fire at load-dependent
    # points. SQLite passivation is covered in real time by test_stateful.py.
    async with StreamEngine([counter], idle_timeout=30) as engine:
        await counter.set("g", "a", {"n": 1})
        await counter.set("g", "a", {"n": 2})
        probe = Probe()
        before = await engine.join(probe, "counter", "g", subscription_id=1)
        await trio.sleep(100)
        assert engine.active_groups == 1  # a subscriber keeps it active
        await engine.leave(probe, "counter", "g", 1)
        await trio.sleep(31)
        assert engine.active_groups == 0
        probe = Probe()
        after = await engine.join(probe, "counter", "g", subscription_id=1, since=(before.epoch, 1))
        assert (after.epoch, after.offset) == (before.epoch, 2) and after.resumed
        assert probe.offsets()[0] == 2


async def test_sqlite_keeps_items_offsets_epoch_and_history_across_a_restart(tmp_path):
    from runtime import SQLiteStorage

    path = tmp_path / "restart.db"
    async with StreamEngine([counter], storage=SQLiteStorage(path)) as engine:
        for i in range(5):
            await counter.set("g", f"k{i}", {"n": i})
        before = await engine.join(Probe(), "counter", "g", subscription_id=1)
    async with StreamEngine([counter], storage=SQLiteStorage(path)) as engine:
        assert [item["n"] for item in await counter.list("g")] == [0, 1, 2, 3, 4]
        probe = Probe()
        after = await engine.join(probe, "counter", "g", subscription_id=1, since=(before.epoch, 3))
        assert after.resumed and after.epoch == before.epoch
        assert probe.offsets()[:-1] == [4, 5]
        await counter.set("g", "k9", {"n": 9})
        assert probe.offsets()[-1] == 6


async def test_memory_restart_starts_a_new_epoch():
    async with StreamEngine([counter]) as engine:
        await counter.set("g", "a", {"n": 1})
        before = await engine.join(Probe(), "counter", "g", subscription_id=1)
    async with StreamEngine([counter]) as engine:
        probe = Probe()
        after = await engine.join(probe, "counter", "g", subscription_id=1, since=(before.epoch, 1))
        assert after.epoch != before.epoch and not after.resumed and probe.types() == ["sync"]


class _BatchProbe(Probe):
    """A subscriber that takes a turn's events in one call, and counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def deliver_many(self, events) -> int:
        self.calls.append(len(events))
        self.events.extend(events)
        return 0


async def test_a_turn_of_many_events_is_one_deliver_many_call_and_keeps_every_order(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        batch, single, item_only = _BatchProbe(), Probe(), Probe()
        await engine.join(batch, "counter", "t", subscription_id=1)
        await engine.join(single, "counter", "t", subscription_id=1)
        await engine.join(item_only, "counter", "t", subscription_id=1, item_id="b")
        await engine.join(batch, "counter", "t", subscription_id=2, item_id="b")  # also the group: once each

        async def write(i):
            await counter.update("t", "ab"[i % 2], [{"type": "increment", "path": "v", "by": 1}])

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(write, i)
        def changes(probe):
            return [e.offset for e in probe.events if e.type != "sync"]

        assert changes(batch) == changes(single) == list(range(1, 51))
        assert changes(item_only) == [e.offset for e in single.events[1:] if e.item_id == "b"] != []
        assert len(batch.calls) < 50  # some turns carried several events, each in one call
