"""The client's pure parts: frames, routing, backoff and Motia's merge rules, without sockets."""

from __future__ import annotations

import random

import orjson
import pytest

from runtime.client.merge import GroupState, ItemState, ReplayBuffer, is_duplicate, sort_items
from runtime.client.protocol import (
    ErrorFrame,
    MalformedFrame,
    Position,
    StreamFrame,
    backoff_delay,
    frame_rooms,
    join_message,
    leave_message,
    parse_frame,
)


def envelope(kind="create", item_id="a", data=None, timestamp=10, epoch="e", offset=1, **event):
    body = {"type": "stream", "timestamp": timestamp, "streamName": "todos", "groupId": "inbox", "id": item_id}
    if epoch is not None:
        body["epoch"], body["offset"] = epoch, offset
    body["event"] = {"type": kind, **({"data": data} if data is not None or kind != "event" else {}), **event}
    return orjson.dumps(body)


def frame(kind="create", item_id="a", data=None, timestamp=10, epoch="e", offset=1) -> StreamFrame:
    return StreamFrame("todos", "inbox", item_id, timestamp, kind, data, None, epoch, offset)


def test_parse_every_frame_kind():
    sync = parse_frame(envelope("sync", None, [{"id": "a"}], offset=4))
    assert isinstance(sync, StreamFrame) and sync.type == "sync" and sync.item_id is None
    assert sync.data == [{"id": "a"}] and sync.position == Position("e", 4) and not sync.is_state
    create = parse_frame(envelope("create", "b", {"id": "b"}, offset=5).decode())  # text or bytes
    assert create.is_state and create.room == ("todos", "inbox", "b")
    custom = parse_frame(envelope("event", "a", epoch=None, event={"type": "typing", "data": {"who": "x"}}))
    assert custom.type == "event" and custom.event_type == "typing" and custom.data == {"who": "x"}
    assert custom.position is None and custom.refusal_code is None
    resumed = parse_frame(envelope("resumed", None, replayed=3, offset=9))
    assert resumed.type == "resumed" and resumed.replayed == 3 and resumed.position == Position("e", 9)
    denied = parse_frame(envelope("event", None, epoch=None, event={
        "type": "error", "data": {"code": "STREAM_ACCESS_DENIED", "message": "no"}}))
    assert denied.refusal_code == "STREAM_ACCESS_DENIED"
    assert parse_frame(envelope("unauthorized", None, epoch=None)).type == "unauthorized"
    assert parse_frame(b'{"type":"error","error":{"code":"BAD_FRAME","message":"x"}}') == ErrorFrame("BAD_FRAME", "x")


@pytest.mark.parametrize("raw", [b"", b"nope", b"[1]", b'{"type":"what"}', b'{"type":"stream","streamName":"s"}',
                                 b'{"type":"error"}', b'{"type":"stream","streamName":"s","groupId":"g","event":{}}'])
def test_unreadable_frames_are_named_not_raised(raw):
    assert isinstance(parse_frame(raw), MalformedFrame)


def test_join_and_leave_frames():
    assert orjson.loads(join_message("todos", "inbox", "s1")) == {
        "type": "join", "data": {"streamName": "todos", "groupId": "inbox", "subscriptionId": "s1"}}
    joined = orjson.loads(join_message("todos", "inbox", "s2", "a", Position("k3:f", 41)))
    assert joined["data"] == {"streamName": "todos", "groupId": "inbox", "id": "a", "subscriptionId": "s2",
                              "since": "k3:f:41"}
    assert Position.parse("k3:f:41") == Position("k3:f", 41)
    with pytest.raises(ValueError):
        Position.parse("nope")
    assert orjson.loads(leave_message("todos", "inbox", "s2", "a"))["type"] == "leave"


def test_routing_follows_motia_item_frames_reach_the_group_too():
    assert frame_rooms(frame("update", "a")) == [("todos", "inbox", "a"), ("todos", "inbox", None)]
    assert frame_rooms(frame("event", None)) == [("todos", "inbox", None)]
    # a join's answer belongs to its own room only
    assert frame_rooms(frame("sync", "a")) == [("todos", "inbox", "a")]
    assert frame_rooms(frame("resumed", "a")) == [("todos", "inbox", "a")]


def test_backoff_doubles_caps_and_jitters():
    plain = [backoff_delay(n, initial=0.5, maximum=30, jitter=0) for n in range(10)]
    assert plain[:4] == [0.5, 1.0, 2.0, 4.0] and plain[-1] == 30
    rng = random.Random(7)
    spread = [backoff_delay(3, initial=0.5, maximum=30, jitter=0.2, rng=rng) for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in spread) and len(set(spread)) > 100
    assert backoff_delay(10_000, initial=0.5, maximum=30, jitter=0) == 30


def test_group_merge_rules():
    state = GroupState()
    assert state.sync([{"id": "a", "n": 1}, {"id": "b", "n": 2}], 10)
    assert state.apply("create", "c", {"id": "c", "n": 3}, 11)
    assert state.apply("update", "a", {"id": "a", "n": 9}, 12)
    assert [i["id"] for i in state.view()] == ["a", "b", "c"] and state.view()[0]["n"] == 9  # update in place
    assert state.apply("delete", "b", {"id": "b", "n": 2}, 13)
    assert state.apply("create", "b", {"id": "b", "n": 4}, 14)
    assert [i["id"] for i in state.view()] == ["a", "c", "b"]  # re-created: appended
    # not newer than that item's last change: dropped (Motia checks per item)
    assert not state.apply("update", "a", {"id": "a", "n": 0}, 12)
    assert state.apply("update", "c", {"id": "c", "n": 5}, 12)  # another item: its own clock
    # a sync older than the newest change is ignored; a forced one (our join's answer) is not
    assert not state.sync([], 5)
    assert state.sync([], 5, force=True) and state.view() == []
    view = state.view()
    state.apply("create", "z", {"id": "z"}, 20)
    assert view == [] and state.view() == [{"id": "z"}]  # views are never mutated


def test_group_update_of_an_absent_item_appends_it():
    state = GroupState()
    state.sync([], 1)
    state.apply("update", "x", {"id": "x"}, 2)
    assert state.view() == [{"id": "x"}]


def test_sort_key_as_motia():
    items = [{"id": "1", "t": "b"}, {"id": "2", "t": "a"}, {"id": "3"}, {"id": "4", "t": "c"}]
    assert [i["id"] for i in sort_items(items, "t")] == ["2", "1", "3", "4"]
    assert sort_items(items, None) is items
    state = GroupState("t")
    state.sync([item for item in items if "t" in item], 1)
    state.apply("create", "5", {"id": "5", "t": "aa"}, 2)
    state.apply("update", "1", {"id": "1", "t": "d"}, 3)
    assert [i["t"] for i in state.view()] == ["a", "aa", "c", "d"]


def test_item_merge_rules():
    state = ItemState()
    assert state.sync(None, 10) and state.view() is None
    assert state.apply("create", "a", {"id": "a"}, 11) and state.view() == {"id": "a"}
    assert not state.apply("update", "a", {"id": "a", "old": True}, 11)  # not newer: dropped
    assert not state.accept_event(11) and state.accept_event(12)  # events too, per subscription
    assert state.apply("delete", "a", {"id": "a"}, 13) and state.view() is None
    assert not state.sync({"id": "a"}, 13) and state.sync({"id": "a"}, 13, force=True)


def test_duplicates_and_the_replay_buffer():
    at = Position("e", 5)
    assert is_duplicate(at, frame(offset=5)) and not is_duplicate(at, frame(offset=6))
    assert not is_duplicate(at, frame(epoch="other", offset=1)) and not is_duplicate(None, frame())
    buffer = ReplayBuffer(limit=4)
    for offset in (7, 6, 7, 3, 8):  # overlapping replays collapse by offset
        buffer.add(frame(offset=offset))
    assert [f.offset for f in buffer.drain(Position("e", 5))] == [6, 7, 8]
    assert buffer.drain(Position("e", 0)) == []
    for offset in range(10):
        buffer.add(frame(offset=offset))
    assert buffer.overflowed
    buffer.clear()
    assert not buffer.overflowed
