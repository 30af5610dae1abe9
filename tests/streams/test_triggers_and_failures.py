"""Stream triggers after commit, in order, never blocking; storage failures change nothing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runtime import MemoryStorage, StorageError, Stream, StreamEngine
from runtime.storage.base import ConflictError

from .conftest import Probe

todo = Stream("todo")


async def test_triggers_see_each_groups_events_in_offset_order(autojump_clock):
    seen: dict[str, list[int]] = {}

    async def slow_listener(event):
        await trio.sleep(0.01)  # slower than the writers: events queue up
        seen.setdefault(event.group, []).append(event.offset)

    async with StreamEngine([todo]) as engine:
        engine.on_change("todo", slow_listener)

        async def writer(group):
            for i in range(50):
                await todo.set(group, f"i{i % 5}", {"n": i})

        async with trio.open_nursery() as nursery:
            for group in ("a", "b", "c"):
                nursery.start_soon(writer, group)
    # leaving the engine let the queued trigger events finish
    assert seen == {group: list(range(1, 51)) for group in ("a", "b", "c")}


async def test_a_trigger_never_blocks_the_mutation(autojump_clock):
    release = trio.Event()
    calls: list = []

    async def stuck_listener(event):
        calls.append(event.type)
        await release.wait()

    async with StreamEngine([todo]) as engine:
        engine.on_change("todo", stuck_listener)
        start = trio.current_time()
        for i in range(10):
            await todo.set("g", "a", {"n": i})
        assert trio.current_time() == start  # no virtual time passed: nothing waited
        assert calls == ["create"]  # the listener is still on the first event
        assert engine.triggers.pending == 10
        release.set()


async def test_a_full_trigger_queue_drops_counts_and_keeps_the_order_of_what_it_keeps():
    release = trio.Event()
    seen: list = []

    async def stuck_listener(event):
        seen.append(event.offset)
        await release.wait()

    async with StreamEngine([todo], trigger_queue_size=3) as engine:
        engine.on_change("todo", stuck_listener)
        for i in range(10):
            await todo.set("g", "a", {"n": i})
        await trio.testing.wait_all_tasks_blocked()
        assert engine.triggers.dropped == 7  # 3 queued (the first being handled), the rest dropped
        release.set()
        with trio.fail_after(1):
            while len(seen) < 3:
                await trio.sleep(0)
        assert seen == [1, 2, 3]


async def test_trigger_filters_and_failures_affect_nothing_else():
    got: list = []

    async def failing(event):
        raise RuntimeError("listener bug")

    async def only_item_b(event):
        got.append((event.group, event.item_id, event.type, event.data))

    async with StreamEngine([todo]) as engine:
        engine.on_change("todo", failing)
        engine.on_change("todo", only_item_b, group_id="g", item_id="b")
        await todo.set("g", "a", {"n": 1})
        await todo.set("g", "b", {"n": 2})
        await todo.set("other", "b", {"n": 3})
        await todo.delete("g", "b")
        await todo.send({"groupId": "g", "id": "b"}, {"type": "ping", "data": 1})
        assert await todo.get("g", "a") == {"id": "a", "n": 1}
    assert got == [
        ("g", "b", "create", {"id": "b", "n": 2}),
        ("g", "b", "delete", {"id": "b", "n": 2}),
        ("g", "b", "event", {"type": "ping", "data": 1}),
    ]
    assert engine.triggers.errors == 5


class FlakyStorage(MemoryStorage):
    """Memory storage whose commits can be made to fail or to conflict."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = 0
        self.conflict_next = 0

    async def commit(self, stream, group, commit, policy):
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("disk on fire")
        if self.conflict_next:
            self.conflict_next -= 1
            raise ConflictError(stream, group, stored_epoch=commit.epoch, stored_offset=99, commit=commit)
        await super().commit(stream, group, commit, policy)


async def test_a_failed_commit_fails_the_batch_and_changes_nothing():
    storage = FlakyStorage()
    async with StreamEngine([todo], storage=storage) as engine:
        probe = Probe()
        await todo.set("g", "a", {"n": 1})
        joined = await engine.join(probe, "todo", "g", subscription_id=1)
        storage.fail_next = 1
        with pytest.raises(StorageError, match="disk on fire"):
            await todo.update("g", "a", [{"type": "increment", "path": "n", "by": 1}])
        assert await todo.get("g", "a") == {"id": "a", "n": 1}
        assert probe.types() == ["sync"]
        result = await todo.update("g", "a", [{"type": "increment", "path": "n", "by": 1}])
        assert result.new_value["n"] == 2
        assert probe.events[-1].offset == joined.offset + 1  # the failed attempt spent no offset


async def test_a_conflict_reloads_the_group_and_resyncs_subscribers():
    storage = FlakyStorage()
    async with StreamEngine([todo], storage=storage) as engine:
        probe = Probe()
        await todo.set("g", "a", {"n": 1})
        await engine.join(probe, "todo", "g", subscription_id=1)
        storage.conflict_next = 1
        with pytest.raises(ConflictError):
            await todo.set("g", "a", {"n": 2})
        assert probe.types() == ["sync", "sync"]  # a fresh sync, never a hole
        await todo.set("g", "a", {"n": 3})
        assert probe.types()[-1] == "update" and (await todo.get("g", "a"))["n"] == 3


async def test_a_group_that_cannot_load_fails_calls_at_once_then_recovers(autojump_clock):
    class Unreliable(MemoryStorage):
        down = True

        async def load_group(self, stream, group):
            if self.down:
                raise OSError("storage unreachable")
            return await super().load_group(stream, group)

    storage = Unreliable()
    async with StreamEngine([todo], storage=storage):
        start = trio.current_time()
        for _ in range(3):
            with pytest.raises(StorageError, match="storage unreachable"):
                await todo.set("g", "a", {"n": 1})
        assert trio.current_time() == start  # failed at once, no restart backoff
        storage.down = False
        assert (await todo.set("g", "a", {"n": 2})).new_value == {"id": "a", "n": 2}
