"""The Stream API against every backend: results, events, errors that change nothing."""

from __future__ import annotations

import pytest

from runtime import (
    DeleteResult,
    SetResult,
    Stream,
    StreamConfig,
    StreamEngine,
    StreamNotFound,
    UpdateError,
    ValidationError,
)

from .conftest import Probe

todo = Stream(StreamConfig(name="todo", schema={"title": "string", "done": "boolean", "count": "number"}))
loose = Stream("loose")


async def test_set_get_list_delete_round_trip(backend):
    async with StreamEngine([todo], storage=backend()):
        created = await todo.set("inbox", "a", {"title": "milk"})
        assert created == SetResult(new_value={"id": "a", "title": "milk"}, old_value=None)
        assert created["new_value"]["title"] == "milk"
        updated = await todo.set("inbox", "a", {"title": "oat milk", "done": False})
        assert updated.old_value == {"id": "a", "title": "milk"}
        assert await todo.get("inbox", "a") == {"id": "a", "title": "oat milk", "done": False}
        await todo.set("inbox", "b", {"title": "bread"})
        assert [item["id"] for item in await todo.list("inbox")] == ["a", "b"]
        assert await todo.get_group("inbox") == await todo.list("inbox")
        assert await todo.list_groups() == ["inbox"]
        deleted = await todo.delete("inbox", "a")
        assert deleted == DeleteResult(old_value={"id": "a", "title": "oat milk", "done": False})
        assert await todo.get("inbox", "a") is None
        assert await todo.delete("inbox", "a") == DeleteResult(old_value=None)
        await todo.delete("inbox", "b")
        assert await todo.list_groups() == []
        assert await todo.list("nowhere") == []


async def test_id_is_injected_and_wins(backend):
    async with StreamEngine([loose], storage=backend()):
        result = await loose.set("g", "real", {"id": "fake", "x": 1})
        assert result.new_value == {"id": "real", "x": 1}
        result = await loose.update("g", "real", [{"type": "set", "path": "id", "value": "other"}])
        assert result.new_value["id"] == "real"


async def test_update_upserts_and_emits_create(backend):
    async with StreamEngine([todo], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "todo", "g", subscription_id=1)
        result = await todo.update("g", "new", [{"type": "increment", "path": "count", "by": 2}])
        assert result == SetResult(new_value={"id": "new", "count": 2}, old_value=None)
        await todo.update("g", "new", [{"op": "increment", "path": "/count", "value": 3}])
        assert probe.types() == ["sync", "create", "update"]
        assert probe.events[-1].data == {"id": "new", "count": 5}


async def test_delete_of_a_missing_item_emits_nothing(backend):
    async with StreamEngine([todo], storage=backend()) as engine:
        probe = Probe()
        joined = await engine.join(probe, "todo", "g", subscription_id=1)
        await todo.delete("g", "ghost")
        await todo.set("g", "x", {"title": "t"})
        assert probe.types() == ["sync", "create"]
        assert probe.events[-1].offset == joined.offset + 1


async def test_schema_rejection_leaves_no_trace(backend):
    async with StreamEngine([todo], storage=backend()) as engine:
        probe = Probe()
        await todo.set("g", "a", {"title": "keep", "count": 1})
        joined = await engine.join(probe, "todo", "g", subscription_id=1)
        with pytest.raises(ValidationError) as caught:
            await todo.set("g", "a", {"title": 5, "done": "yes", "count": "x"})
        assert {error["path"] for error in caught.value.errors} == {"/title", "/done", "/count"}
        with pytest.raises(ValidationError):
            await todo.update("g", "a", [{"type": "set", "path": "title", "value": 7}])
        assert await todo.get("g", "a") == {"id": "a", "title": "keep", "count": 1}
        await todo.set("g", "b", {"title": "next"})
        assert probe.types() == ["sync", "create"]
        assert probe.events[-1].offset == joined.offset + 1  # no offset was spent on the rejects


async def test_failed_op_changes_nothing_and_names_the_op(backend):
    async with StreamEngine([loose], storage=backend()):
        await loose.set("g", "a", {"count": 1, "name": "n"})
        ops = [
            {"type": "increment", "path": "count", "by": 1},
            {"op": "test", "path": "/name", "value": "other"},
        ]
        with pytest.raises(UpdateError) as caught:
            await loose.update("g", "a", ops)
        assert caught.value.index == 1
        with pytest.raises(UpdateError):
            await loose.update("g", "a", [{"type": "increment", "path": "name", "by": 1}])
        with pytest.raises(UpdateError):
            await loose.update("g", "a", [{"type": "frobnicate"}])
        assert await loose.get("g", "a") == {"id": "a", "count": 1, "name": "n"}


async def test_non_json_data_is_a_type_error_before_anything_changes(backend):
    async with StreamEngine([loose], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "loose", "g", subscription_id=1)
        for bad in ({"x": {1, 2}}, {"x": object()}, {"x": float("nan")}, {1: "non-str key"}, ["not", "a", "dict"]):
            with pytest.raises(TypeError):
                await loose.set("g", "a", bad)
        with pytest.raises(TypeError):
            await loose.update("g", "a", [{"type": "set", "path": "x", "value": b"bytes"}])
        with pytest.raises(TypeError):
            await loose.set("g", "", {"x": 1})
        assert await loose.get("g", "a") is None
        assert probe.types() == ["sync"]


async def test_results_are_copies(backend):
    async with StreamEngine([loose], storage=backend()):
        data = {"nested": {"n": 1}}
        result = await loose.set("g", "a", data)
        data["nested"]["n"] = 99
        result.new_value["nested"]["n"] = 98
        fetched = await loose.get("g", "a")
        fetched["nested"]["n"] = 97
        (await loose.list("g"))[0]["nested"]["n"] = 96
        assert await loose.get("g", "a") == {"id": "a", "nested": {"n": 1}}


async def test_undeclared_stream_and_no_engine():
    ghost = Stream("ghost")
    async with StreamEngine([todo]):
        with pytest.raises(StreamNotFound):
            await ghost.get("g", "a")
    with pytest.raises(RuntimeError, match="no stream engine"):
        await todo.get("g", "a")


async def test_conflicting_configs_for_one_name_are_refused():
    engine = StreamEngine([todo])
    engine.declare(Stream("todo"))  # a bare handle to the declared stream is fine
    engine.declare(StreamConfig(name="todo", schema={"title": "string", "done": "boolean", "count": "number"}))
    with pytest.raises(ValueError, match="declared twice"):
        engine.declare(StreamConfig(name="todo", description="another"))


async def test_send_reaches_group_and_item_subscribers_without_offset(backend):
    async with StreamEngine([loose], storage=backend()) as engine:
        group_probe, item_probe, other_item = Probe(), Probe(), Probe()
        await engine.join(group_probe, "loose", "room", subscription_id=1)
        await engine.join(item_probe, "loose", "room", subscription_id=1, item_id="alice")
        await engine.join(other_item, "loose", "room", subscription_id=1, item_id="bob")
        await loose.send({"groupId": "room", "id": None}, {"type": "typing", "data": {"who": "x"}})
        await loose.send({"group_id": "room", "id": "alice"}, {"type": "poke", "data": 1})
        sent = [{"type": "typing", "data": {"who": "x"}}, {"type": "poke", "data": 1}]
        assert [e.data for e in group_probe.events[1:]] == sent
        assert [e.data for e in item_probe.events[1:]] == [{"type": "poke", "data": 1}]
        assert other_item.types() == ["sync"]
        event = group_probe.events[-1]
        assert event.offset is None and event.epoch is None
        assert b'"epoch"' not in event.json and b'"offset"' not in event.json
        assert await loose.list("room") == []


async def test_overlapping_subscriptions_get_each_event_once(backend):
    async with StreamEngine([loose], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "loose", "g", subscription_id="group")
        await engine.join(probe, "loose", "g", subscription_id="item", item_id="a")
        await loose.set("g", "a", {"x": 1})
        await loose.set("g", "b", {"x": 2})
        assert probe.types() == ["sync", "sync", "create", "create"]
        await engine.leave(probe, "loose", "g", "group")
        await loose.set("g", "a", {"x": 3})
        await loose.set("g", "b", {"x": 4})
        assert [e.item_id for e in probe.events[4:]] == ["a"]


async def test_timestamps_strictly_increase_even_with_a_frozen_clock(backend):
    async with StreamEngine([loose], storage=backend(), clock=lambda: 1_000) as engine:
        probe = Probe()
        await engine.join(probe, "loose", "g", subscription_id=1)
        for i in range(20):
            await loose.set("g", str(i % 3), {"i": i})
        await loose.send({"groupId": "g"}, {"type": "ping"})
        await engine.join(probe, "loose", "g", subscription_id=2)
        stamps = [event.timestamp for event in probe.events]
        assert stamps == sorted(set(stamps)) and stamps[0] == 1_000


async def test_a_subscriber_that_refuses_never_blocks_the_group(backend):
    async with StreamEngine([loose], storage=backend()) as engine:
        slow, fast = Probe(accept=False), Probe()
        await engine.join(slow, "loose", "g", subscription_id=1)
        await engine.join(fast, "loose", "g", subscription_id=1)
        for i in range(50):
            await loose.set("g", "a", {"i": i})
        assert slow.types() == ["sync"] and len(fast.events) == 51
        assert engine.metrics.slow_consumer_drops == 50


async def test_envelope_matches_the_protocol():
    async with StreamEngine([loose], clock=lambda: 1760000000123) as engine:
        probe = Probe()
        joined = await engine.join(probe, "loose", "inbox", subscription_id=1)
        await loose.set("inbox", "b", {"title": "buy milk"})
        import orjson

        assert orjson.loads(probe.events[-1].json) == {
            "type": "stream", "timestamp": 1760000000123 + 1, "streamName": "loose", "groupId": "inbox",
            "id": "b", "epoch": joined.epoch, "offset": 1,
            "event": {"type": "create", "data": {"id": "b", "title": "buy milk"}},
        }
        assert list(orjson.loads(probe.events[-1].json)) == [
            "type", "timestamp", "streamName", "groupId", "id", "epoch", "offset", "event",
        ]
        assert probe.events[0].position == f"{joined.epoch}:0"
