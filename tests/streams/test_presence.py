"""Presence: identities with counts per group, their events, and their sharing on Redis.

Every test runs on memory, SQLite and Redis (`backend`); the two-engine
tests share one Redis as two processes would. A real kill -9 of a server
process is in tests/server/test_presence_processes.py.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
import trio

from runtime import PresenceEntry, RedisStorage, Stream, StreamConfig, StreamEngine
from runtime.storage.redis.presence import OriginEntry, PresenceRecords
from runtime.streams.presence import check_client_data, default_identity, resolve_identity
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

from .conftest import Probe

room = Stream("room")


def presence_frames(probe: Probe) -> list[tuple[str, object]]:
    events = [frame["event"] for frame in probe.envelopes()]
    return [(event["type"], event["data"]) for event in events if event["type"].startswith("presence")]


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.005)


async def settle(engine: StreamEngine, probe: Probe, count: int) -> None:
    """On Redis a change comes back through a read; on memory it is already there."""
    await eventually(lambda: len(presence_frames(probe)) >= count)


async def test_tabs_of_one_identity_are_one_entry_with_a_count(backend):
    async with StreamEngine([room], storage=backend()) as engine:
        watcher, tab1, tab2, other = Probe(), Probe(), Probe(), Probe()
        presence = engine.presence
        await presence.join(watcher, "room", "g", "w", ("watcher", {}), listen=True)
        assert presence_frames(watcher) == [("presence", [{"key": "watcher", "count": 1, "data": {}}])]
        await presence.join(tab1, "room", "g", "s", ("u1", {"tab": 1}), listen=False)
        await presence.join(tab2, "room", "g", "s", ("u1", {"tab": 2}), listen=False)
        await presence.join(other, "room", "g", "s", ("u2", {}), listen=False)
        await settle(engine, watcher, 4)
        assert await room.presence("g") == [
            PresenceEntry("u1", 2, {"tab": 2}), PresenceEntry("u2", 1, {}), PresenceEntry("watcher", 1, {}),
        ]
        await presence.leave(tab2, "room", "g", "s")
        await presence.leave(tab1, "room", "g", "s")
        await settle(engine, watcher, 6)
        assert presence_frames(watcher)[1:] == [
            ("presence_join", {"key": "u1", "count": 1, "data": {"tab": 1}}),
            ("presence_join", {"key": "u1", "count": 2, "data": {"tab": 2}}),
            ("presence_join", {"key": "u2", "count": 1, "data": {}}),
            ("presence_join", {"key": "u1", "count": 1, "data": {"tab": 1}}),
            ("presence_leave", {"key": "u1", "count": 0}),
        ]
        assert [e.key for e in await room.presence("g")] == ["u2", "watcher"]
        # a subscriber that asked for nothing hears nothing; a leave of something unknown is a no-op
        assert presence_frames(tab1) == []
        await presence.leave(tab1, "room", "g", "never-joined")


async def test_presence_events_carry_no_position_and_the_join_envelope(backend):
    async with StreamEngine([room], storage=backend()) as engine:
        watcher = Probe()
        await engine.presence.join(watcher, "room", "g", "w", None, listen=True)
        await engine.presence.join(Probe(), "room", "g", "s", ("u1", {}), listen=False)
        await settle(engine, watcher, 2)
        for frame in watcher.envelopes():
            assert frame["type"] == "stream" and frame["streamName"] == "room" and frame["groupId"] == "g"
            assert frame["id"] is None and "epoch" not in frame and "offset" not in frame
        assert [event.position for event in watcher.events] == [None, None]
        # an uncounted subscription (identity None) is not in the list
        assert [e.key for e in await room.presence("g")] == ["u1"]


async def test_groups_are_separate_and_forgotten_when_empty(backend):
    async with StreamEngine([room], storage=backend()) as engine:
        a, b = Probe(), Probe()
        await engine.presence.join(a, "room", "g1", "s", ("u1", {}), listen=True)
        await engine.presence.join(b, "room", "g2", "s", ("u2", {}), listen=True)
        assert [e.key for e in await room.presence("g1")] == ["u1"]
        assert [e.key for e in await room.presence("g2")] == ["u2"]
        await engine.presence.leave(a, "room", "g1", "s")
        await engine.presence.leave(b, "room", "g2", "s")
        assert await room.presence("g1") == [] and len(engine.presence) == 0


async def test_a_listener_that_raises_is_removed_alone(backend):
    class Broken(Probe):
        def deliver(self, event, *, initial=False):
            if not initial:
                raise RuntimeError("broken subscriber")
            return super().deliver(event, initial=initial)

    async with StreamEngine([room], storage=backend()) as engine:
        broken, good = Broken(), Probe()
        await engine.presence.join(broken, "room", "g", "b", ("b", {}), listen=True)
        await engine.presence.join(good, "room", "g", "g", ("g", {}), listen=True)
        await engine.presence.join(Probe(), "room", "g", "x", ("x", {}), listen=False)
        await settle(engine, good, 2)
        assert presence_frames(good)[-1] == ("presence_join", {"key": "x", "count": 1, "data": {}})
        # still counted (its subscription lives on), no longer told
        assert [e.key for e in await room.presence("g")] == ["b", "g", "x"]


async def test_resend_gives_a_resynced_listener_the_whole_list(backend):
    async with StreamEngine([room], storage=backend()) as engine:
        slow = Probe(accept=False)  # drops every live event, as a full outbox does
        await engine.presence.join(slow, "room", "g", "w", ("w", {}), listen=True)
        await engine.presence.join(Probe(), "room", "g", "s", ("u1", {}), listen=False)
        assert [t for t, _ in presence_frames(slow)] == ["presence"]
        if backend.kind == "redis":
            await eventually(lambda: len(engine.presence._groups[("room", "g")].view) == 2)
        engine.presence.resend(slow, "room", "g", "w")
        assert presence_frames(slow)[-1][1] == [
            {"key": "u1", "count": 1, "data": {}}, {"key": "w", "count": 1, "data": {}}]


async def test_rejoining_a_subscription_id_replaces_its_identity(backend):
    async with StreamEngine([room], storage=backend()) as engine:
        sub = Probe()
        await engine.presence.join(sub, "room", "g", "s", ("u1", {}), listen=False)
        await engine.presence.join(sub, "room", "g", "s", ("u2", {"v": 2}), listen=False)
        assert await room.presence("g") == [PresenceEntry("u2", 1, {"v": 2})]


# -- identity -----------------------------------------------------------------------------


@attrs.frozen
class Claims:
    sub: str


async def test_identity_defaults_hooks_and_client_data():
    assert default_identity({"user": "ann"}) == "ann"
    assert default_identity({"userId": 7}) == "7"
    assert default_identity(Claims("bob")) == "bob"
    assert default_identity({"user": True}) is None and default_identity(None) is None

    async def fallback(hook, ctx, data=None):
        return await resolve_identity(hook, ctx, object(), connection_id="conn-1", client_data=data)

    assert await fallback(None, None) == ("conn-1", {})
    assert await fallback(None, {"sub": "s1"}, {"cursor": 3}) == ("s1", {"cursor": 3})
    assert await fallback(lambda ctx, sub: "team-a", None, {"x": 1}) == ("team-a", {"x": 1})
    assert await fallback(lambda ctx, sub: ("u", {"role": "admin"}), None, {"x": 1}) == ("u", {"role": "admin"})
    assert await fallback(lambda ctx, sub: None, {"user": "ann"}) is None

    async def async_hook(ctx, sub):
        return ctx["name"]

    assert await fallback(async_hook, {"name": "carl"}) == ("carl", {})
    with pytest.raises(TypeError):
        await fallback(lambda ctx, sub: 42, None)
    assert check_client_data(None) is None and check_client_data({"a": 1}) == {"a": 1}
    with pytest.raises(ValueError):
        check_client_data(["not", "an", "object"])
    with pytest.raises(ValueError):
        check_client_data({"big": "x" * 1100})


def test_stream_config_takes_a_presence_hook():
    def hook(ctx, sub):
        return "x"

    assert StreamConfig(name="room", presence=hook).presence is hook
    assert StreamConfig.from_dict({"name": "room", "presence": hook}).presence is hook


# -- Redis: shared by every process ----------------------------------------------------------


@pytest.fixture
def redis_url():
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


async def test_two_engines_on_redis_share_one_presence(redis_url):
    async with StreamEngine([room], storage=RedisStorage(redis_url)) as one, \
            StreamEngine([room], storage=RedisStorage(redis_url)) as two:
        watcher = Probe()
        await two.presence.join(watcher, "room", "g", "w", None, listen=True)
        tab1, tab2 = Probe(), Probe()
        await one.presence.join(tab1, "room", "g", "s", ("u1", {"tab": 1}), listen=False)
        await two.presence.join(tab2, "room", "g", "s", ("u1", {"tab": 2}), listen=False)
        await eventually(lambda: ("presence_join", {"key": "u1", "count": 2, "data": {"tab": 2}})
                         in presence_frames(watcher))
        assert await room.bind(one).presence("g") == [PresenceEntry("u1", 2, {"tab": 2})]
        await one.presence.leave(tab1, "room", "g", "s")
        await two.presence.leave(tab2, "room", "g", "s")
        await eventually(lambda: presence_frames(watcher)[-1] == ("presence_leave", {"key": "u1", "count": 0}))
        assert await room.bind(two).presence("g") == []


async def test_a_process_that_stops_heartbeating_is_reaped_with_leave_events(redis_url):
    """A dead process (its records written, then silence) drops out at its deadline, and a survivor
    reaps it and sends presence_leave. Short ttl and interval: this waits on real Redis time."""
    async with RedisStorage(redis_url) as dead_storage:
        dead = PresenceRecords(dead_storage)
        dead.ttl = 0.3
        await dead.put("room", "g", {"ghost": OriginEntry(1, {}, 0)}, last=False)
        storage = RedisStorage(redis_url)
        records = storage.presence_records()
        records.ttl, records.interval = 5.0, 0.05
        async with StreamEngine([room], storage=storage) as engine:
            watcher = Probe()
            await engine.presence.join(watcher, "room", "g", "w", ("w", {}), listen=True)
            assert presence_frames(watcher)[0][1] in (
                [{"key": "ghost", "count": 1, "data": {}}, {"key": "w", "count": 1, "data": {}}],
                [{"key": "w", "count": 1, "data": {}}],  # (a slow machine: the ghost had already lapsed)
            )
            if len(presence_frames(watcher)[0][1]) == 2:
                await eventually(lambda: ("presence_leave", {"key": "ghost", "count": 0}) in presence_frames(watcher))
            # reaped: its field is gone from Redis, not just ignored
            with trio.fail_after(10):
                while list(await dead_storage.client.hkeys(dead.hash_key("room", "g"))) != [
                        f"{storage.origin}\nw".encode()]:
                    await trio.sleep(0.01)


async def test_a_reaped_process_that_comes_back_writes_its_entries_again(redis_url):
    storage = RedisStorage(redis_url)
    records = storage.presence_records()
    records.interval = 0.05
    async with StreamEngine([room], storage=storage) as engine:
        await engine.presence.join(Probe(), "room", "g", "s", ("u1", {}), listen=False)
        # another process reaps us (as if we had paused past our deadline)
        await storage.client.zadd(records.procs_key, {storage.origin: 0})
        await records.reap(storage.origin)
        assert await room.bind(engine).presence("g") == []
        await eventually(lambda: engine.presence._groups[("room", "g")].unsure == set())

        async def present() -> bool:
            return [e.key for e in await room.bind(engine).presence("g")] == ["u1"]

        with trio.fail_after(10):
            while not await present():
                await trio.sleep(0.01)


async def test_a_clean_exit_withdraws_at_once(redis_url):
    async with StreamEngine([room], storage=RedisStorage(redis_url)) as survivor:
        watcher = Probe()
        await survivor.presence.join(watcher, "room", "g", "w", None, listen=True)
        async with StreamEngine([room], storage=RedisStorage(redis_url)) as leaving:
            await leaving.presence.join(Probe(), "room", "g", "s", ("u1", {}), listen=False)
            await eventually(lambda: ("presence_join", {"key": "u1", "count": 1, "data": {}})
                             in presence_frames(watcher))
        # its subscription never left: the engine's exit withdrew it
        await eventually(lambda: presence_frames(watcher)[-1] == ("presence_leave", {"key": "u1", "count": 0}),
                         timeout=3)
