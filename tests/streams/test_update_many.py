"""`Stream.update_many`: many updates to one group in one call, all or none.

What a caller relies on: each entry is an ordinary change (its own offset,
timestamp and event, in entry order, with no other caller's change in
between); one failing entry means nothing at all happened and the error
says which entry; concurrent callers never lose an increment.
"""

from __future__ import annotations

import pytest
import trio

from runtime import SetResult, StorageError, Stream, StreamConfig, StreamEngine, UpdateError, ValidationError

from .conftest import Probe
from .test_triggers_and_failures import FlakyStorage

counters = Stream("counters")
typed = Stream(StreamConfig(name="typed", schema={"n": "integer"}))


def inc(by=1, path="n"):
    return [{"type": "increment", "path": path, "by": by}]


async def test_each_entry_is_a_change_with_its_own_offset_and_event(backend):
    async with StreamEngine([counters], storage=backend()) as engine:
        await counters.set("g", "a", {"n": 10})
        probe = Probe()
        joined = await engine.join(probe, "counters", "g", subscription_id=1)
        results = await counters.update_many("g", [("a", inc()), ("b", inc(5)), ("a", inc(2))])
        assert results == [
            SetResult(new_value={"id": "a", "n": 11}, old_value={"id": "a", "n": 10}),
            SetResult(new_value={"id": "b", "n": 5}, old_value=None),
            SetResult(new_value={"id": "a", "n": 13}, old_value={"id": "a", "n": 11}),
        ]
        sync, *events = probe.events
        assert [(e.type, e.item_id, e.offset) for e in events] == [
            ("update", "a", joined.offset + 1), ("create", "b", joined.offset + 2), ("update", "a", joined.offset + 3),
        ]
        assert [e.data["n"] for e in events] == [11, 5, 13]
        stamps = [e.timestamp for e in probe.events]
        assert stamps == sorted(set(stamps))  # strictly increasing
        assert await counters.list("g") == [{"id": "a", "n": 13}, {"id": "b", "n": 5}]
        assert (await engine.group_stats("counters", "g"))["offset"] == joined.offset + 3


async def test_a_failing_entry_applies_nothing_and_is_named(backend):
    async with StreamEngine([counters, typed], storage=backend()) as engine:
        await counters.set("g", "a", {"n": 1, "name": "x"})
        probe = Probe()
        joined = await engine.join(probe, "counters", "g", subscription_id=1)
        with pytest.raises(UpdateError) as caught:
            await counters.update_many("g", [("a", inc()), ("b", inc()), ("a", inc(path="name"))])
        error = caught.value
        assert (error.entry, error.item_id, error.index) == (2, "a", 0)
        assert str(error).startswith("update_many entry 2 (item 'a'): op 0: ")
        # a schema failure is named the same way
        await typed.set("g", "t", {"n": 1})
        with pytest.raises(ValidationError) as caught_schema:
            await typed.update_many("g", [("t", inc()), ("t", [{"type": "set", "path": "n", "value": "x"}])])
        assert (caught_schema.value.entry, caught_schema.value.item_id) == (1, "t")
        assert caught_schema.value.errors[0]["path"] == "/n"
        assert await typed.get("g", "t") == {"id": "t", "n": 1}
        # nothing changed, nothing was emitted, no offset was spent
        assert await counters.list("g") == [{"id": "a", "n": 1, "name": "x"}]
        assert probe.types() == ["sync"]
        assert (await engine.group_stats("counters", "g"))["offset"] == joined.offset
        await counters.update("g", "a", inc())
        assert probe.offsets()[1:] == [joined.offset + 1]


async def test_bad_arguments_are_refused_before_anything_is_sent(backend):
    async with StreamEngine([counters], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "counters", "g", subscription_id=1)
        with pytest.raises(TypeError) as caught:
            await counters.update_many("g", [("a", inc()), ("b", [{"type": "set", "path": "x", "value": {1, 2}}])])
        assert (caught.value.entry, caught.value.item_id) == (1, "b")
        assert "update_many entry 1 (item 'b')" in str(caught.value)
        with pytest.raises(TypeError) as caught:
            await counters.update_many("g", [("a", inc()), ("", inc())])
        assert caught.value.entry == 1
        with pytest.raises(TypeError, match="entry 0 must be an"):
            await counters.update_many("g", ["a"])
        assert await counters.update_many("g", []) == []
        assert await counters.list("g") == []
        assert probe.types() == ["sync"]


async def test_a_failing_call_does_not_disturb_calls_batched_with_it(backend):
    """Calls that reach the group together share a turn and a commit; one
    call's failure is rolled back alone, without leaving an offset gap."""
    async with StreamEngine([counters], storage=backend()) as engine:
        probe = Probe()
        joined = await engine.join(probe, "counters", "g", subscription_id=1)
        outcomes: dict[int, object] = {}

        async def call(k):
            try:
                if k % 3 == 1:  # fails on its last entry, after changing "a" and "b"
                    await counters.update_many("g", [("a", inc()), ("b", inc()), ("b", inc(path="id"))])
                else:
                    await counters.update_many("g", [("a", inc()), ("b", inc(10))])
                outcomes[k] = "ok"
            except UpdateError as exc:
                outcomes[k] = exc.entry

        async with trio.open_nursery() as nursery:
            for k in range(30):
                nursery.start_soon(call, k)
        good = sum(1 for k in range(30) if k % 3 != 1)
        assert outcomes == {k: (2 if k % 3 == 1 else "ok") for k in range(30)}
        assert await counters.list("g") == [{"id": "a", "n": good}, {"id": "b", "n": 10 * good}]
        assert probe.offsets()[1:] == list(range(joined.offset + 1, joined.offset + 2 * good + 1))


async def test_concurrent_update_many_increments_end_exact(backend):
    """The hammer: many tasks, many calls, several items; nothing lost, nothing doubled."""
    tasks, calls, items = 40, 25, 3
    async with StreamEngine([counters], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "counters", "g", subscription_id=1)

        async def worker(k):
            for i in range(calls):
                entries = [(f"i{(k + i + j) % items}", inc()) for j in range(7)]
                results = await counters.update_many("g", entries)
                assert len(results) == 7
                # entries of one call are consecutive changes of the group
                for (item_id, _), result in zip(entries, results):
                    assert result.new_value["id"] == item_id

        async with trio.open_nursery() as nursery:
            for k in range(tasks):
                nursery.start_soon(worker, k)
            for _ in range(tasks * calls // 10):  # plain updates interleaved
                nursery.start_soon(counters.update, "g", "i0", inc())
        total = tasks * calls * 7 + tasks * calls // 10
        assert sum(item["n"] for item in await counters.list("g")) == total
        assert probe.offsets()[1:] == list(range(1, total + 1))
        assert (await engine.group_stats("counters", "g"))["offset"] == total
    if backend.kind == "sqlite":  # committed, not just in memory
        async with StreamEngine([counters], storage=backend()):
            assert sum(item["n"] for item in await counters.list("g")) == total


async def test_one_call_is_not_interleaved_with_other_callers(backend):
    async with StreamEngine([counters], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "counters", "g", subscription_id=1)

        async def batch(k):
            await counters.update_many("g", [(f"b{k}", inc()) for _ in range(5)])

        async with trio.open_nursery() as nursery:
            for k in range(20):
                nursery.start_soon(batch, k)
                nursery.start_soon(counters.update, "g", "single", inc())
        runs = [e.item_id for e in probe.events[1:] if e.item_id != "single"]
        for start in range(0, len(runs), 5):
            assert len(set(runs[start:start + 5])) == 1
        # and a call's five events are contiguous in offset order
        offsets = {}
        for e in probe.events[1:]:
            offsets.setdefault(e.item_id, []).append(e.offset)
        for item_id, seen in offsets.items():
            if item_id != "single":
                assert seen == list(range(seen[0], seen[0] + 5))


async def test_triggers_see_update_many_events_in_order(autojump_clock):
    seen: list[tuple[str, int, int]] = []

    async def listener(event):
        seen.append((event.item_id, event.offset, event.data["n"]))

    async with StreamEngine([counters]) as engine:
        engine.on_change("counters", listener)  # a trigger alone: events are still built
        await counters.update_many("g", [("a", inc()), ("b", inc()), ("a", inc())])
    assert seen == [("a", 1, 1), ("b", 2, 1), ("a", 3, 2)]


async def test_results_are_private_copies(backend):
    async with StreamEngine([counters], storage=backend()):
        tags = [{"type": "set", "path": "tags", "value": ["x"]}]
        results = await counters.update_many("g", [("a", inc()), ("a", tags)])
        results[0].new_value["n"] = 99
        results[1].old_value["n"] = 98
        results[1].new_value["tags"].append("y")
        single = await counters.update("g", "a", inc())
        single.new_value["n"] = 97
        single.old_value["tags"].append("z")
        assert await counters.get("g", "a") == {"id": "a", "n": 2, "tags": ["x"]}


async def test_results_read_later_are_what_the_call_produced(backend):
    """Results are copied when first read: later changes to the group must not show through."""
    async with StreamEngine([counters], storage=backend()):
        nested = [{"type": "set", "path": "m", "value": {"k": [1]}}]
        results = await counters.update_many("g", [("a", inc()), ("a", nested)])
        await counters.update("g", "a", [{"type": "set", "path": "/m/k/0", "value": 2}, *inc()])
        await counters.delete("g", "a")
        assert len(results) == 2
        assert results[1] == SetResult(new_value={"id": "a", "n": 1, "m": {"k": [1]}}, old_value={"id": "a", "n": 1})
        assert results[-1] is results[1]  # copied once, then yours
        assert results[0:1] == [SetResult(new_value={"id": "a", "n": 1}, old_value=None)]
        assert [r.new_value["n"] for r in results] == [1, 1]
        results[1].new_value["m"]["k"].append(3)
        assert results[1].new_value["m"]["k"] == [1, 3]
        assert await counters.get("g", "a") is None


async def test_a_failed_commit_fails_the_whole_call_and_changes_nothing():
    storage = FlakyStorage()
    async with StreamEngine([counters], storage=storage) as engine:
        await counters.set("g", "a", {"n": 1})
        probe = Probe()
        joined = await engine.join(probe, "counters", "g", subscription_id=1)
        storage.fail_next = 1
        with pytest.raises(StorageError, match="disk on fire"):
            await counters.update_many("g", [("a", inc()), ("b", inc())])
        assert await counters.list("g") == [{"id": "a", "n": 1}]
        assert probe.types() == ["sync"]
        await counters.update_many("g", [("a", inc()), ("b", inc())])
        assert probe.offsets()[1:] == [joined.offset + 1, joined.offset + 2]  # no offset was spent
