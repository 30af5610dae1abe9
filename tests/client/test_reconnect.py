"""Reconnection: resume inside the history window, a flagged snapshot outside it, slow consumers, backoff."""

from __future__ import annotations

import socket

import pytest
import trio

from runtime import App, HistoryPolicy, SQLiteStorage, Stream, StreamConfig
from runtime.client import ConnectError, StreamClient, SubscriptionRefused, Unauthorized
from tests.server.conftest import running_ws

from .conftest import serving_gracefully
from .test_client import take, until

#: the server's connection cleanup can wait this long on a stopped engine when it is cancelled
QUICK = {"shutdown_timeout": 0.5}

allowed = {"inbox": True}
valid_tokens = {"ann"}


def authenticate(request):
    from runtime import Unauthorized as Refuse

    if request.token not in valid_tokens:
        raise Refuse("token revoked")
    return {"user": request.token}


def app_on(db, max_events: int = 100, **options) -> App:
    todos = StreamConfig(name="todos", history=HistoryPolicy(max_events=max_events),
                         can_access=lambda sub, auth: allowed.get(sub.group_id, True))
    return App(streams=[Stream(todos)], storage=SQLiteStorage(db), **options)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def client(url: str, **options) -> StreamClient:
    return StreamClient(url, **{"backoff_initial": 0.02, "backoff_max": 0.1, **options})


async def test_a_restart_inside_the_history_window_replays_every_missed_change(tmp_path):
    db, port = tmp_path / "streams.db", free_port()
    states: list = []
    errors: list = []
    async with client(f"ws://127.0.0.1:{port}") as c:
        c.on_connection_change(lambda state, error: (states.append(state), errors.append(error)))
        first = app_on(db)
        async with serving_gracefully(first, stream_port=port):  # close code 1001
            todos = first.stream("todos")
            await todos.set("inbox", "a", {"n": 0})
            await todos.set("inbox", "b", {"n": 0})
            group = await c.subscribe_group("todos", "inbox")
            item = await c.subscribe_item("todos", "inbox", "a")
            changes, item_changes = group.changes(), item.changes()
            await todos.set("inbox", "c", {"n": 0})
            assert (await take(changes, 1))[0].offset == 3
            before = group.last_position
        await until(lambda: not c.connected)

        # the server is down; the group moves on without the client
        async with app_on(db) as away:
            todos = away.stream("todos")
            await todos.update("inbox", "a", [{"type": "set", "path": "n", "value": 1}])
            await todos.set("inbox", "d", {"n": 0})
            await todos.delete("inbox", "b")
            await todos.update("inbox", "a", [{"type": "set", "path": "n", "value": 2}])
            expected = await todos.list("inbox")

        second = app_on(db)
        async with running_ws(second, stream_port=port, **QUICK):  # cancelled: an abrupt end
            got = await take(changes, 5)
            assert [(ch.kind, ch.item_id) for ch in got] == [
                ("update", "a"), ("create", "d"), ("delete", "b"), ("update", "a"), ("resumed", None)]
            assert [ch.offset for ch in got[:4]] == [4, 5, 6, 7] and got[4].replayed == 4
            assert all(ch.epoch == before.epoch for ch in got) and not any(ch.resynced for ch in got)
            assert group.get_state() == expected
            item_got = await take(item_changes, 3)
            assert [(ch.kind, ch.data) for ch in item_got] == [
                ("update", {"id": "a", "n": 1}), ("update", {"id": "a", "n": 2}), ("resumed", None)]
            assert item.get_state() == {"id": "a", "n": 2}
            assert group.resyncs == item.resyncs == 0 and not group.gap_covered_by_sync
            assert group.last_position.offset == item.last_position.offset == 7

            await second.stream("todos").set("inbox", "e", {"n": 0})  # and live again
            assert (await take(changes, 1))[0].item_id == "e"
            assert changes.pending == 0 and item_changes.pending == 0
        assert c.connections == 2
        assert states.count("connected") == 2 and "disconnected" in states[states.index("connected"):]
        assert "code 1001" in str(errors[states.index("connected") + 1])


async def test_a_gap_outside_the_history_window_is_covered_by_a_flagged_sync(tmp_path):
    db, port = tmp_path / "streams.db", free_port()
    async with client(f"ws://127.0.0.1:{port}") as c:
        first = app_on(db, max_events=3)
        async with running_ws(first, stream_port=port, **QUICK):
            await first.stream("todos").set("inbox", "a", {"n": 0})
            group = await c.subscribe_group("todos", "inbox")
            item = await c.subscribe_item("todos", "inbox", "a")
            resyncs: list = []
            group.on_resync(resyncs.append)
            changes = group.changes()
        await until(lambda: not c.connected)
        async with app_on(db, max_events=3) as away:
            for i in range(10):
                await away.stream("todos").set("inbox", f"k{i}", {"n": i})
            expected = await away.stream("todos").list("inbox")
        async with running_ws(app_on(db, max_events=3), stream_port=port, **QUICK):
            change = (await take(changes, 1))[0]
            assert change.kind == "sync" and change.resynced and change.data == expected
            assert change.offset == 11 and group.last_position.offset == 11
            assert resyncs == [change] and group.resyncs == 1 and group.gap_covered_by_sync
            await until(lambda: item.resyncs == 1)  # its since is outside the history too
            assert item.get_state() == {"id": "a", "n": 0} and item.gap_covered_by_sync


async def test_a_slow_consumer_resync_reaches_the_consumer_as_a_resynced_sync():
    app = App(streams=[Stream(StreamConfig(name="todos"))])
    todos = app.stream("todos")
    async with running_ws(app, outbox_limit=64 * 1024) as listening:
        async with client(listening.stream_url, message_queue_size=1) as c:
            sub = await c.subscribe_group("todos", "big")
            # this consumer makes the connection wait: the server sees a slow consumer
            stalled = sub.changes(buffer=1, overflow="block")
            payload = "x" * 8192
            for i in range(400):
                await todos.set("big", f"k{i % 20}", {"blob": payload, "i": i})
            assert listening.server.metrics.slow_consumer_drops >= 1
            expected = await todos.list("big")
            with trio.fail_after(10):
                async for change in stalled:
                    if change.resynced:
                        break
            assert change.kind == "sync" and change.offset > 0
            assert sub.resyncs >= 1 and listening.server.metrics.resyncs >= 1
            await until(lambda: sub.get_state() == expected)
            await stalled.aclose()


async def test_a_refused_rejoin_and_a_revoked_token_surface_after_a_reconnect(tmp_path):
    db, port = tmp_path / "streams.db", free_port()
    allowed["inbox"] = True
    valid_tokens.add("ann")
    errors: list = []
    try:
        async with client(f"ws://127.0.0.1:{port}", token="ann", on_error=errors.append) as c:
            async with running_ws(app_on(db, authenticate=authenticate), stream_port=port, **QUICK):
                inbox = await c.subscribe_group("todos", "inbox")
                other = await c.subscribe_group("todos", "other")
                sub_errors: list = []
                inbox.on_error(sub_errors.append)
                changes = inbox.changes()
            await until(lambda: not c.connected)
            allowed["inbox"] = False
            async with running_ws(app_on(db, authenticate=authenticate), stream_port=port, **QUICK):
                with trio.fail_after(5):
                    with pytest.raises(SubscriptionRefused) as refused:
                        await changes.__anext__()
                assert refused.value.code == "STREAM_ACCESS_DENIED"
                assert inbox.closed and inbox.error is refused.value and sub_errors == [refused.value]
                assert errors == [refused.value]
                # its re-join on the new connection answered (last_position is set since the first
                # connection: waiting on it alone let that answer land in other_changes below)
                await until(lambda: c.connections == 2 and not other._awaiting)
                assert not other.closed
                other_changes = other.changes()
            await until(lambda: not c.connected)
            valid_tokens.discard("ann")
            async with running_ws(app_on(db, authenticate=authenticate), stream_port=port, **QUICK):
                with trio.fail_after(5):
                    with pytest.raises(Unauthorized):
                        await other_changes.__anext__()
                assert c.state == "failed" and isinstance(errors[-1], Unauthorized) and other.closed
    finally:
        allowed["inbox"] = True
        valid_tokens.add("ann")


async def test_backoff_is_exponential_with_a_cap_on_the_trio_clock(mock_clock):
    # virtual time jumps once everything has waited 10 ms of real time (a refused
    # connection attempt takes far less, so it is never mistaken for a timeout)
    mock_clock.autojump_threshold = 0.01
    port = free_port()  # nothing listens: every attempt is refused at once
    attempts: list = []
    async with StreamClient(f"ws://127.0.0.1:{port}", backoff_initial=0.5, backoff_max=4, backoff_jitter=0) as c:
        c.on_connection_change(lambda state, error: attempts.append(trio.current_time())
                               if state == "connecting" else None)
        with pytest.raises(ConnectError):
            await c.wait_connected()
        await trio.sleep(20)
    start = attempts[0]
    gaps = [round(b - a, 3) for a, b in zip(attempts, attempts[1:])]
    assert gaps[:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0] and attempts[0] - start == 0


async def test_a_dropped_connection_resumes_and_a_replay_too_big_to_buffer_becomes_a_snapshot():
    app = App(streams=[Stream(StreamConfig(name="todos", history=HistoryPolicy(max_events=100)))])
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        # a large first backoff leaves time to write while the client is away
        async with client(listening.stream_url, backoff_initial=0.3, backoff_jitter=0, replay_buffer=2) as c:
            small = await c.subscribe_item("todos", "inbox", "a")  # replays one change: fits
            big = await c.subscribe_group("todos", "inbox")  # replays four: does not fit
            small_changes, big_changes = small.changes(), big.changes()
            listening.websocket.close_all(1001)  # the server drops the connection, and stays up
            await until(lambda: not c.connected)
            await todos.set("inbox", "a", {"n": 1})
            for key in "bcd":
                await todos.set("inbox", key, {"n": 1})
            got = await take(small_changes, 2)
            assert [(ch.kind, ch.resynced) for ch in got] == [("create", False), ("resumed", False)]
            change = (await take(big_changes, 1))[0]
            assert change.kind == "sync" and change.resynced and len(change.data) == 4
            assert big.resyncs == 1 and small.resyncs == 0 and c.connections == 2


async def test_a_server_that_stops_answering_pings_is_left_and_reconnected(mock_clock):
    from functools import partial

    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    mock_clock.autojump_threshold = 0.01
    accepted: list = []

    async def silent(stream):
        """Accepts the handshake, then never reads again: pings go unanswered."""
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            ws.receive_data(await stream.receive_some(65536))
            if any(isinstance(event, Request) for event in ws.events()):
                await stream.send_all(ws.send(AcceptConnection()))
                accepted.append(trio.current_time())
                await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        ended: list = []
        async with StreamClient(f"ws://127.0.0.1:{port}", ping_interval=1, ping_timeout=1, backoff_initial=0.5,
                                backoff_jitter=0, close_timeout=0.5) as c:
            c.on_connection_change(lambda state, error: ended.append(error) if state == "disconnected" else None)
            with trio.fail_after(30):
                while len(accepted) < 2:
                    await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert "no pong within 1s" in str(ended[0])
    # ping after 1 s, no pong by 2 s, close handshake given up at 2.5 s, backoff 0.5 s
    assert 2.9 <= accepted[1] - accepted[0] <= 3.1
