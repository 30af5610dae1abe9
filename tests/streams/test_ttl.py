"""Item TTL: ``set(..., ttl=)`` and the ``expire`` op delete an item at its expiry, with an ordinary delete event.

Memory and SQLite run in virtual time: the engine's clock is a
`RuntimeClock` on Trio's MockClock, so the sweeper's sleep and the expiry
times move together. SQLite works in a worker thread, and an autojumping
clock jumps while a task waits on one, so its tests give the clock a
threshold of real idleness before it jumps (the thread is done by then).
Redis runs in real time with short TTLs, waiting on the delete event with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

import pytest
import trio

from runtime import MemoryStorage, RedisStorage, RuntimeClock, SQLiteStorage, Stream, StreamEngine

from .conftest import Probe

sessions = Stream("sessions")
START = 1_700_000_000.0


@pytest.fixture(params=["memory", "sqlite"])
def virtual(request, tmp_path, mock_clock):
    """A storage factory (the same place each call) whose tests run in virtual time."""
    mock_clock.autojump_threshold = 0 if request.param == "memory" else 0.2
    path = tmp_path / "ttl.db"

    def make():
        return MemoryStorage() if request.param == "memory" else SQLiteStorage(path)

    make.kind = request.param
    return make


def engine_on(storage, clock: RuntimeClock, **options) -> StreamEngine:
    # No ask timeout or passivation timer: virtual time may jump while a thread works.
    return StreamEngine([sessions], storage=storage, clock=clock.now_ms, ask_timeout=None, idle_timeout=None,
                        **options)


class Watcher(Probe):
    """A probe that wakes whoever waits for its next event (no polling: virtual time must not creep)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = trio.Event()

    def deliver(self, event, *, initial: bool = False) -> bool:
        taken = super().deliver(event, initial=initial)
        self.arrived.set()
        return taken

    async def until(self, check) -> None:
        while not check():
            self.arrived = trio.Event()
            await self.arrived.wait()


async def joined(engine: StreamEngine, group: str = "g") -> Watcher:
    probe = Watcher()
    await engine.join(probe, "sessions", group, subscription_id=1)
    return probe


def deletes(probe: Probe) -> list:
    return [event for event in probe.events if event.type == "delete"]


async def until_deleted(probe: Watcher, count: int = 1) -> None:
    await probe.until(lambda: len(deletes(probe)) >= count)


async def test_an_item_is_deleted_at_its_ttl_with_one_ordinary_delete_event(virtual, mock_clock):
    clock = RuntimeClock(start_wall=START)
    async with engine_on(virtual(), clock) as engine:
        fired = []

        async def on_change(event):
            fired.append((event.type, event.item_id, event.offset))

        engine.on_change("sessions", on_change)
        probe = await joined(engine)
        start = trio.current_time()
        await sessions.set("g", "s1", {"user": "ann"}, ttl=30)
        await sessions.set("g", "s2", {"user": "bob"})
        await trio.sleep_until(start + 29.9)
        assert deletes(probe) == [] and await sessions.get("g", "s1") is not None
        await until_deleted(probe)
        assert 30 <= trio.current_time() - start < 30.2
        [event] = deletes(probe)
        assert (event.item_id, event.offset, event.data) == ("s1", 3, {"id": "s1", "user": "ann"})
        assert await sessions.get("g", "s1") is None
        assert await sessions.list("g") == [{"id": "s2", "user": "bob"}]
        await trio.sleep(100)
        assert len(deletes(probe)) == 1
        assert ("delete", "s1", 3) in fired and len([f for f in fired if f[0] == "delete"]) == 1
        stats = await engine.group_stats("sessions", "g")
        assert (stats["offset"], stats["items"]) == (3, 1)
        assert await engine.storage.expiry_next("sessions") is None


async def test_a_set_without_ttl_clears_it_an_update_keeps_it_and_the_expire_op_changes_it(virtual, mock_clock):
    clock = RuntimeClock(start_wall=START)
    async with engine_on(virtual(), clock) as engine:
        probe = await joined(engine)
        start = trio.current_time()
        await sessions.set("g", "cleared", {"n": 1}, ttl=10)
        await sessions.set("g", "cleared", {"n": 2})  # no ttl: the TTL goes
        await sessions.set("g", "kept", {"n": 1}, ttl=10)
        await sessions.update("g", "kept", [{"type": "increment", "path": "n"}])  # keeps its TTL
        await sessions.set("g", "later", {"n": 1}, ttl=10)
        await sessions.update("g", "later", [{"type": "increment", "path": "n"}, {"type": "expire", "seconds": 50}])
        await sessions.set("g", "persisted", {"n": 1}, ttl=10)
        await sessions.update("g", "persisted", [{"type": "expire", "seconds": None}])
        await sessions.update("g", "fresh", [{"type": "expire", "seconds": 20}])  # upserts, with a TTL
        await until_deleted(probe)
        assert [e.item_id for e in deletes(probe)] == ["kept"] and trio.current_time() - start < 10.2
        await until_deleted(probe, 2)
        assert deletes(probe)[1].item_id == "fresh" and 20 <= trio.current_time() - start < 20.2
        await until_deleted(probe, 3)
        assert deletes(probe)[2].item_id == "later" and 50 <= trio.current_time() - start < 50.2
        await trio.sleep(100)
        assert sorted(item["id"] for item in await sessions.list("g")) == ["cleared", "persisted"]


async def test_a_sooner_ttl_wakes_the_sweeper_and_a_deleted_items_ttl_goes_with_it(virtual, mock_clock):
    clock = RuntimeClock(start_wall=START)
    async with engine_on(virtual(), clock) as engine:
        probe = await joined(engine)
        start = trio.current_time()
        await sessions.set("g", "late", {}, ttl=1000)
        await sessions.set("g", "gone", {}, ttl=2)
        await sessions.delete("g", "gone")
        await sessions.set("g", "gone", {})  # a new item of the same id: no TTL left from the old one
        await sessions.set("g", "soon", {}, ttl=5)
        await until_deleted(probe)
        assert deletes(probe)[0].item_id == "gone"  # the explicit delete
        await until_deleted(probe, 2)
        assert deletes(probe)[1].item_id == "soon" and 5 <= trio.current_time() - start < 5.2
        assert await engine.storage.expiry_next("sessions") > clock.now_ms() + 900_000  # "late"'s
        await trio.sleep(100)
        assert [item["id"] for item in await sessions.list("g")] == ["late", "gone"]


async def test_bad_ttls_are_refused_and_change_nothing(virtual, mock_clock):
    from runtime import UpdateError

    async with engine_on(virtual(), RuntimeClock(start_wall=START)):
        for bad, error in ((0, ValueError), (-1, ValueError), (float("inf"), TypeError), ("5", TypeError),
                           (True, TypeError)):
            with pytest.raises(error, match="ttl"):
                await sessions.set("g", "a", {}, ttl=bad)
            if bad == float("inf"):
                continue  # not JSON: refused before the ops are read
            with pytest.raises(UpdateError, match="op 1: expire"):
                await sessions.update("g", "a", [{"type": "set", "path": "n", "value": 1},
                                                 {"type": "expire", "seconds": bad}])
        with pytest.raises(UpdateError, match="needs a 'seconds'"):
            await sessions.update("g", "a", [{"type": "expire"}])
        # update_many is all or nothing, expiries included
        with pytest.raises(UpdateError):
            await sessions.update_many("g", [("a", [{"type": "expire", "seconds": 5}]), ("b", [{"type": "nope"}])])
        assert await sessions.list("g") == []
        assert await sessions.get("g", "a") is None


async def test_an_expiry_that_fell_due_while_nothing_ran_is_applied_once_after_a_restart(mock_clock, tmp_path):
    mock_clock.autojump_threshold = 0.2
    clock = RuntimeClock(start_wall=START)
    path = tmp_path / "restart.db"
    async with engine_on(SQLiteStorage(path), clock):
        await sessions.set("g", "s1", {"n": 1}, ttl=5)
        await sessions.set("g", "s2", {"n": 2}, ttl=500)
    await trio.sleep(60)  # s1 falls due with no engine running
    async with engine_on(SQLiteStorage(path), clock) as engine:
        fired = []

        async def on_change(event):
            fired.append((event.type, event.item_id, event.offset))

        engine.on_change("sessions", on_change)
        probe = await joined(engine)
        await until_deleted(probe)
        stats = await engine.group_stats("sessions", "g")
        assert (stats["offset"], stats["items"]) == (3, 1)
        await trio.sleep(0.5)
        assert fired == [("delete", "s1", 3)]
    async with engine_on(SQLiteStorage(path), clock) as engine:
        probe = await joined(engine)
        await trio.sleep(1000)
        assert [e.item_id for e in deletes(probe)] == ["s2"] and probe.events[-1].offset == 4


# -- Redis: real time, and two engines racing for one expiry ------------------------------------------


async def test_redis_deletes_an_item_at_its_ttl(redis_url):
    async with StreamEngine([sessions], storage=RedisStorage(redis_url)) as engine:
        probe = await joined(engine)
        await sessions.set("g", "s1", {"n": 1}, ttl=0.2)
        await sessions.set("g", "s2", {"n": 1}, ttl=60)
        started = trio.current_time()
        with trio.fail_after(5):
            await until_deleted(probe)
        assert trio.current_time() - started >= 0.15  # not before (allowing for the clocks' grain)
        assert [e.item_id for e in deletes(probe)] == ["s1"]
        assert [item["id"] for item in await sessions.list("g")] == ["s2"]


async def test_two_engines_on_one_redis_delete_an_expired_item_once(redis_url):
    async with trio.open_nursery() as nursery:
        stop = trio.Event()

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            storage = RedisStorage(redis_url)
            storage.check_interval = 0.05
            async with StreamEngine([sessions], storage=storage, expiry_poll=0.02) as engine:
                task_status.started((engine, sessions.bind(engine)))
                await stop.wait()

        (first, on_first), (second, on_second) = [await nursery.start(run) for _ in range(2)]
        probes = [await joined(first), await joined(second)]
        for n in range(10):  # each engine sets half: both sweepers hear of expiries, both race
            await (on_first if n % 2 else on_second).set("g", f"s{n}", {"n": n}, ttl=0.1)
        with trio.fail_after(10):
            for probe in probes:
                await until_deleted(probe, 10)
        await on_first.set("g", "marker", {})  # everything before it has reached both probes after it
        with trio.fail_after(10):
            for probe in probes:
                await probe.until(lambda probe=probe: probe.events[-1].item_id == "marker")
        for probe in probes:
            assert sorted(e.item_id for e in deletes(probe)) == sorted(f"s{n}" for n in range(10))
            assert [e.offset for e in probe.events[1:]] == list(range(1, 22))
        assert first.expiry.groups_expired + second.expiry.groups_expired >= 1
        stop.set()
