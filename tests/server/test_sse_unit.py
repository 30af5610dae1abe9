"""SSE pieces without sockets: the wire format, resume tokens, heartbeats in virtual time."""

from __future__ import annotations

import pytest
import trio

from runtime import App, Stream
from runtime.server.outbox import Outbox
from runtime.server.sse_wire import sse_block
from runtime.streams.events import Event, parse_position


def test_sse_block_has_id_only_for_state_and_sync():
    state = Event(stream="s", group="g", item_id="a", type="create", data={"id": "a"}, timestamp=1, epoch="e", offset=3)
    custom = Event(stream="s", group="g", item_id=None, type="event", data={"type": "t", "data": 1}, timestamp=2)
    assert sse_block(state).startswith(b"id: e:3\nevent: create\ndata: {")
    assert sse_block(custom).startswith(b"event: event\ndata: {")
    assert sse_block(state) is sse_block(state)  # encoded once, shared by every subscriber
    assert sse_block(state).endswith(b"\n\n") and sse_block(state).count(b"\n") == 4


@pytest.mark.parametrize("value, expected", [
    ("k3f9:41", ("k3f9", 41)), ("a:b:7", ("a:b", 7)), ("", None), (None, None), ("nocolon", None),
    (":5", None), ("e:-1", None), ("e:x", None),
])
def test_a_last_event_id_parses_as_a_position(value, expected):
    assert parse_position(value) == expected


def test_outbox_drops_its_backlog_but_never_join_answers_or_control_frames():
    def event(n, type_="update"):
        return Event(
            stream="s", group="g", item_id="a", type=type_, data={"n": "x" * 100}, timestamp=n, epoch="e", offset=n
        )

    outbox = Outbox(1000, sse_block)
    assert outbox.deliver(event(1, "sync"), initial=True)
    outbox.push_raw(b": control\n\n")
    assert all(outbox.deliver(event(n)) for n in range(2, 4))
    assert not any(outbox.deliver(event(n)) for n in range(4, 10))
    assert outbox.overflowed and outbox.needs_resync
    kept = outbox.take()
    assert b"event: sync" in kept and b": control" in kept and b"event: update" not in kept
    # a join answered before the writer resyncs does not end the dropping: no hidden gap
    assert outbox.deliver(event(11, "sync"), initial=True)
    assert not outbox.deliver(event(12)) and outbox.needs_resync
    outbox.begin_resync()
    assert outbox.deliver(event(13)) and not outbox.needs_resync


async def test_heartbeats_every_15_seconds_in_virtual_time(autojump_clock):
    from .conftest import running
    from .test_sse_direct import connect, read_until

    app = App(streams=[Stream("hb")])
    async with running(app) as (url, _):
        sock = await connect(url)
        await sock.send(b"GET /streams/hb/g HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(sock, b"event: sync")
        start = trio.current_time()
        await read_until(sock, b": ping", limit=60)
        assert trio.current_time() - start == pytest.approx(15, abs=0.5)
        await app.stream("hb").set("g", "a", {"n": 1})
        assert b"event: create" in await read_until(sock, b"event: create")
        sock.close()
        with trio.fail_after(5):
            while (await app.engine.group_stats("hb", "g"))["subscribers"]:
                await trio.sleep(0.01)
