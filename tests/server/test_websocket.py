"""The WebSocket stream protocol through a real listener and a raw WebSocket client."""

from __future__ import annotations

import socket

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from runtime import App, HistoryPolicy, Stream, StreamConfig, Unauthorized

from .conftest import keep_writing, running_ws

left: list = []


def can_access(subscription, auth):
    return subscription.group_id != "secret"


todos_config = Stream(StreamConfig(name="todos", can_access=can_access, history=HistoryPolicy(max_events=5),
                                   on_leave=lambda sub, ctx, auth: left.append(sub.group_id)))


def authenticate(request):
    if request.token == "bad":
        raise Unauthorized("bad token")
    return {"token": request.token}


def make_app(**options) -> App:
    return App(streams=[todos_config], authenticate=authenticate, **options)


async def receive(ws) -> dict:
    with trio.fail_after(5):
        return orjson.loads(await ws.get_message())


def join(sid, group="inbox", item=None, since=None, stream="todos"):
    data = {"streamName": stream, "groupId": group, "subscriptionId": sid}
    if item is not None:
        data["id"] = item
    if since is not None:
        data["since"] = since
    return orjson.dumps({"type": "join", "data": data}).decode()


async def test_handshake_echoes_the_authorization_subprotocol_and_refuses_before_upgrade():
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "tok"]) as ws:
            assert ws.subprotocol == "Authorization"
        with pytest.raises(ConnectionRejected) as caught:
            async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "bad"]):
                pass
        assert caught.value.status_code == 401
        assert orjson.loads(caught.value.body)["error"]["code"] == "UNAUTHORIZED"
        with pytest.raises(ConnectionRejected):
            async with open_websocket_url(listening.stream_url + "/any/path?authToken=bad"):
                pass
        with pytest.raises(ConnectionRejected):
            async with open_websocket_url(listening.stream_url, extra_headers=[(b"Authorization", b"Bearer bad")]):
                pass


async def test_join_sync_and_every_event_kind_in_order():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        await todos.set("inbox", "a", {"title": "milk"})
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("s1"))
            sync = await receive(ws)
            assert sync["type"] == "stream" and sync["streamName"] == "todos" and sync["groupId"] == "inbox"
            assert sync["id"] is None and sync["event"] == {"type": "sync", "data": [{"id": "a", "title": "milk"}]}
            epoch, offset = sync["epoch"], sync["offset"]
            await todos.set("inbox", "b", {"title": "bread"})
            await todos.update("inbox", "a", [{"type": "set", "path": "done", "value": True}])
            await todos.delete("inbox", "b")
            await todos.send({"groupId": "inbox", "id": None}, {"type": "typing", "data": {"who": "x"}})
            frames = [await receive(ws) for _ in range(4)]
            assert [f["event"]["type"] for f in frames] == ["create", "update", "delete", "event"]
            assert [f.get("offset") for f in frames] == [offset + 1, offset + 2, offset + 3, None]
            assert all(f.get("epoch") == epoch for f in frames[:3]) and "epoch" not in frames[3]
            assert frames[0]["event"]["data"] == {"id": "b", "title": "bread"}
            assert frames[2]["event"]["data"] == {"id": "b", "title": "bread"}  # delete carries the old value
            assert frames[3]["event"] == {"type": "event", "event": {"type": "typing", "data": {"who": "x"}}}
            stamps = [sync["timestamp"], *(f["timestamp"] for f in frames)]
            assert stamps == sorted(set(stamps))  # strictly increasing, sync included


async def test_overlapping_group_and_item_subscriptions_get_each_event_once():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("group"))
            await ws.send_message(join("item", item="a"))
            group_sync, item_sync = await receive(ws), await receive(ws)
            assert group_sync["id"] is None and item_sync["id"] == "a" and item_sync["event"]["data"] is None
            await todos.set("inbox", "a", {"n": 1})
            await todos.set("inbox", "b", {"n": 2})
            got = [await receive(ws), await receive(ws)]
            assert [f["id"] for f in got] == ["a", "b"]
            await ws.send_message(orjson.dumps({"type": "leave", "data": {
                "streamName": "todos", "groupId": "inbox", "subscriptionId": "group"}}).decode())
            await ws.send_message(orjson.dumps({"type": "leave", "data": {
                "streamName": "todos", "groupId": "inbox", "subscriptionId": "unknown"}}).decode())
            await todos.set("inbox", "b", {"n": 3})  # only the item subscription is left
            await todos.set("inbox", "a", {"n": 4})
            assert (await receive(ws))["event"]["data"] == {"id": "a", "n": 4}


async def test_bad_input_gets_error_frames_and_the_connection_stays_open():
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url) as ws:
            for bad in ["", "not json", "[1,2]", '{"type":"dance"}', '{"type":"join"}',
                        '{"type":"join","data":{"streamName":"todos"}}']:
                await ws.send_message(bad)
                frame = await receive(ws)
                assert frame["type"] == "error" and frame["error"]["code"] == "BAD_FRAME", bad
            await ws.send_message(join("bad-since", group="g", since="x"))  # a token that does not parse:
            assert (await receive(ws))["event"]["type"] == "sync"  # a fresh sync, as the protocol says
            await ws.send_message(join("s", stream="ghost"))
            missing = await receive(ws)
            assert missing["event"]["event"]["data"]["code"] == "STREAM_NOT_FOUND"
            await ws.send_message(join("s", group="secret"))
            refused, error = await receive(ws), await receive(ws)
            assert refused["event"] == {"type": "unauthorized"}
            assert error["event"]["event"]["data"]["code"] == "STREAM_ACCESS_DENIED"
            await ws.send_message(join("s").encode())  # binary frames are parsed as UTF-8 JSON
            assert (await receive(ws))["event"]["type"] == "sync"
            await ws.send_message("x" * (64 * 1024 + 1))
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.reason.code == 1009


async def test_the_client_frame_limit_counts_utf8_bytes():
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message("é" * (32 * 1024))  # 32K characters, exactly 64 KiB of UTF-8: allowed
            assert (await receive(ws))["error"]["code"] == "BAD_FRAME"  # (not JSON) and still open
            await ws.send_message("é" * (32 * 1024 + 1))  # one character more: 2 bytes over
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.reason.code == 1009


async def test_resume_with_since_inside_and_outside_the_history():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        for i in range(8):
            await todos.set("inbox", "a", {"n": i})
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("probe"))
            epoch = (await receive(ws))["epoch"]
            await ws.send_message(join("r1", since=f"{epoch}:6"))
            frames = [await receive(ws) for _ in range(3)]
            assert [f["offset"] for f in frames[:2]] == [7, 8]
            assert frames[2]["event"] == {"type": "resumed", "replayed": 2}
            await ws.send_message(join("r2", since=f"{epoch}:1"))
            assert (await receive(ws))["event"]["type"] == "sync"


async def test_a_slow_consumer_is_resynced_or_closed_and_never_blocks_the_group():
    for policy in ("resync", "close"):
        app = make_app(storage="memory")
        todos = app.stream("todos")
        async with running_ws(app, outbox_limit=64 * 1024, slow_consumer=policy) as listening:
            host, port = listening.stream_url.removeprefix("ws://").split(":")
            async with open_websocket_url(listening.stream_url) as stalled, \
                    open_websocket_url(listening.stream_url) as healthy:
                await stalled.send_message(join("s", group="big"))
                await healthy.send_message(join("s", group="big"))
                assert (await receive(healthy))["event"]["type"] == "sync"
                payload = "x" * 8192
                for i in range(400):
                    await todos.set("big", f"k{i % 20}", {"blob": payload, "i": i})
                    assert (await receive(healthy))["event"]["data"]["i"] == i
                metrics = listening.server.metrics
                assert metrics.slow_consumer_drops >= 1
                if policy == "close":
                    assert metrics.slow_consumer_closes >= 1
                else:
                    with trio.fail_after(10):
                        while True:  # after what was in flight, a fresh sync arrives
                            frame = await receive(stalled)
                            if frame["event"]["type"] == "sync" and frame["offset"] > 0:
                                break
                    assert metrics.resyncs >= 1


async def test_writes_during_a_resync_never_reach_the_consumer_before_its_fresh_sync():
    """A slow consumer's re-join races the group's writers: what they commit before the join's
    turn is in the fresh sync, so none of it may be sent ahead of the sync — the client would
    see an offset gap with no sync to explain it."""
    app = make_app(storage="memory")
    todos = app.stream("todos")
    async with running_ws(app, outbox_limit=32 * 1024) as listening:
        metrics = listening.server.metrics
        async with open_websocket_url(listening.stream_url) as slow, trio.open_nursery() as nursery:
            await slow.send_message(join("s", group="busy"))
            stop = trio.Event()
            for k in range(4):  # the group's mailbox always holds writes when a join arrives
                nursery.start_soon(keep_writing, todos, "busy", f"k{k}", stop)
            with trio.fail_after(10):
                while metrics.slow_consumer_drops == 0:  # the slow client has read nothing yet
                    await trio.sleep(0.01)
            last, syncs = None, 0
            with trio.fail_after(30):
                while syncs < 4 or metrics.resyncs < 2:  # the initial sync, then resyncs under writes
                    frame = await receive(slow)
                    if frame["event"]["type"] == "sync":
                        last, syncs = frame["offset"], syncs + 1
                    else:
                        assert last is not None and frame["offset"] == last + 1, (last, frame["offset"])
                        last = frame["offset"]
            stop.set()


async def test_a_join_sent_with_the_upgrade_request_is_answered():
    """A client that does not wait for the 101 (its join in the same write as the request) is
    served, not silently ignored."""
    app = make_app()
    async with running_ws(app) as listening:
        host, port = listening.stream_url.removeprefix("ws://").split(":")
        sock = trio.socket.socket()
        await sock.connect((host, int(port)))
        payload = join("early", group="g").encode()
        frame = bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload  # masked with a zero key
        await sock.send(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + frame)
        data = b""
        with trio.fail_after(5):
            while b'"sync"' not in data:
                chunk = await sock.recv(65536)
                assert chunk, data
                data += chunk
        assert data.startswith(b"HTTP/1.1 101") and b'"groupId":"g"' in data
        sock.close()


async def test_a_join_that_cannot_be_made_is_answered_in_its_own_envelope(monkeypatch):
    """Too many subscriptions, or a join that fails on the server: the custom error event names the
    join's stream, group and item, as STREAM_NOT_FOUND and STREAM_ACCESS_DENIED do, so any client
    (Motia's routes by them) knows which subscription it answers; the connection carries on."""
    app = make_app()
    async with running_ws(app, ws_max_subscriptions=1) as listening:
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("first", group="g1"))
            assert (await receive(ws))["event"]["type"] == "sync"
            await ws.send_message(join("second", group="g2", item="x"))
            frame = await receive(ws)
            assert (frame["streamName"], frame["groupId"], frame["id"]) == ("todos", "g2", "x")
            assert frame["event"]["event"]["data"]["code"] == "TOO_MANY_SUBSCRIPTIONS"

            async def failing_join(*args, **kwargs):
                raise RuntimeError("storage on fire")

            monkeypatch.setattr(app.engine, "join", failing_join)
            await ws.send_message(join("first", group="g3"))  # a re-join of an existing id: no limit
            frame = await receive(ws)
            assert (frame["streamName"], frame["groupId"]) == ("todos", "g3")
            assert frame["event"]["event"] == {"type": "error", "data": {
                "code": "JOIN_FAILED", "message": "join failed: RuntimeError"}}
            monkeypatch.undo()
            await ws.send_message(join("first", group="g1"))
            assert (await receive(ws))["event"]["type"] == "sync"


async def test_replacing_a_subscription_counts_it_once_and_tells_on_leave_about_the_old_one(monkeypatch):
    left.clear()
    app = make_app()
    async with running_ws(app) as listening:
        metrics = listening.server.metrics
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("s", group="g1"))
            assert (await receive(ws))["event"]["type"] == "sync"
            await ws.send_message(join("s", group="g2"))  # the same id elsewhere: replaces it
            assert (await receive(ws))["event"]["type"] == "sync"
            assert metrics.subscriptions["websocket"] == 1 and left == ["g1"]
            await ws.send_message(join("s", group="g2", item="x"))  # the same id, same group, an item
            assert (await receive(ws))["event"]["type"] == "sync"
            assert metrics.subscriptions["websocket"] == 1 and left == ["g1", "g2"]

            async def failing_join(*args, **kwargs):
                raise RuntimeError("storage on fire")

            monkeypatch.setattr(app.engine, "join", failing_join)
            await ws.send_message(join("t", group="g3"))  # on_join ran, the join was not made
            assert (await receive(ws))["event"]["event"]["data"]["code"] == "JOIN_FAILED"
            assert metrics.subscriptions["websocket"] == 1 and left == ["g1", "g2", "g3"]
            monkeypatch.undo()
        with trio.fail_after(5):
            while metrics.subscriptions["websocket"]:
                await trio.sleep(0.01)
        assert left == ["g1", "g2", "g3", "g2"]


async def test_authenticate_sees_the_same_request_shapes_over_websocket_and_sse():
    """Headers case-insensitive, a repeated query name as a list — on either transport."""
    seen: list = []

    def record(request):
        seen.append((request.headers["x-client"], request.headers.get("X-CLIENT"), request.query_params["a"],
                     request.token))
        return {}

    app = App(streams=[todos_config], authenticate=record)
    async with running_ws(app) as listening:
        async with open_websocket_url(f"{listening.stream_url}/?a=1&a=2&authToken=t",
                                      extra_headers=[("X-Client", "ws")]) as ws:
            await ws.send_message(join("s"))
            assert (await receive(ws))["event"]["type"] == "sync"
        async with httpx.AsyncClient(base_url=listening.http_url) as c:
            async with c.stream("GET", "/streams/todos/inbox?a=1&a=2&authToken=t",
                                headers={"X-Client": "sse"}) as response:
                assert response.status_code == 200
    assert seen == [("ws", "ws", ["1", "2"], "t"), ("sse", "sse", ["1", "2"], "t")]


async def test_an_origin_not_allowed_is_refused_with_403_before_the_upgrade():
    async with running_ws(make_app(), allowed_origins=["https://app.example"]) as listening:
        with pytest.raises(ConnectionRejected) as caught:
            async with open_websocket_url(listening.stream_url, extra_headers=[("Origin", "https://evil.example")]):
                pass
        assert caught.value.status_code == 403
        assert orjson.loads(caught.value.body)["error"]["code"] == "ORIGIN_NOT_ALLOWED"
        async with open_websocket_url(listening.stream_url, extra_headers=[("Origin", "https://app.example")]) as ws:
            await ws.send_message(join("s"))
            assert (await receive(ws))["event"]["type"] == "sync"


async def test_200_abrupt_disconnects_leave_nothing_behind():
    left.clear()
    app = make_app()
    async with running_ws(app) as listening:
        host, port = listening.stream_url.removeprefix("ws://").split(":")
        for _ in range(200):
            async with open_websocket_url(listening.stream_url) as ws:
                await ws.send_message(join("a", group="room"))
                await ws.send_message(join("b", group="room", item="x"))
                await receive(ws)
                await receive(ws)
                # abort the TCP connection under the client: no close frame, an RST
                sock = ws._stream.socket
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                await ws._stream.aclose()
        with trio.fail_after(10):
            while listening.websocket.connections or len(left) < 400:
                await trio.sleep(0.01)
        stats = await app.engine.group_stats("todos", "room")
        assert stats["subscribers"] == 0 and stats["subscriptions"] == 0
        assert listening.server.metrics.connections["websocket"] == 0
        assert listening.server.metrics.subscriptions["websocket"] == 0


async def test_shutdown_closes_every_connection_with_1001():
    app = make_app()
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        from runtime.server import ServerSettings

        listening = await nursery.start(lambda task_status: app.serve(
            ServerSettings(port=0, stream_port=0), shutdown=shutdown, task_status=task_status))
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(join("s"))
            await receive(ws)
            shutdown.set()
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.reason.code == 1001
