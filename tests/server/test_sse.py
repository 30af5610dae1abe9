"""SSE subscriptions through a real server: sync, events, resume, auth, slow readers, cleanup."""

from __future__ import annotations

import socket

import trio

from runtime import App, HistoryPolicy, Stream, StreamConfig, Unauthorized

from .conftest import SSEReader, client, running

refusals: list = []


def can_access(subscription, auth):
    return subscription.group_id != "secret" or (auth or {}).get("user") == "admin"


def on_join(subscription, ctx, auth):
    if subscription.id == "forbidden-item":
        return {"unauthorized": True}
    return None


left: list = []


def on_leave(subscription, ctx, auth):
    left.append((subscription.group_id, subscription.id))


todos_config = Stream(StreamConfig(name="todos", can_access=can_access, on_join=on_join, on_leave=on_leave,
                            history=HistoryPolicy(max_events=5)))


def authenticate(request):
    if request.token == "bad":
        raise Unauthorized("bad token")
    return {"user": request.token} if request.token else None


def make_app(**options) -> App:
    app = App(streams=[todos_config], authenticate=authenticate, **options)
    global todos
    todos = app.stream("todos")  # the tests' own task is not one of the app's
    return app


todos = todos_config


async def test_sync_then_events_in_order_with_ids():
    app = make_app()
    async with running(app) as (url, _):
        await todos.set("inbox", "a", {"title": "milk"})
        async with client(url) as c, c.stream("GET", "/streams/todos/inbox") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = SSEReader(response)
            sync = await reader.next_event()
            assert reader.retry == 2000
            assert sync["event"] == "sync" and sync["data"]["event"]["data"] == [{"id": "a", "title": "milk"}]
            epoch = sync["data"]["epoch"]
            assert sync["id"] == f"{epoch}:1"
            await todos.set("inbox", "b", {"title": "bread"})
            await todos.update("inbox", "a", [{"type": "set", "path": "done", "value": True}])
            await todos.delete("inbox", "b")
            await todos.send({"groupId": "inbox"}, {"type": "typing", "data": {"who": "x"}})
            got = [await reader.next_event() for _ in range(4)]
            assert [e["event"] for e in got] == ["create", "update", "delete", "event"]
            assert [e.get("id") for e in got] == [f"{epoch}:2", f"{epoch}:3", f"{epoch}:4", None]
            assert got[3]["data"]["event"] == {"type": "event", "event": {"type": "typing", "data": {"who": "x"}}}


async def test_item_subscription_gets_only_that_item():
    async with running(make_app()) as (url, _):
        async with client(url) as c, c.stream("GET", "/streams/todos/inbox/a") as response:
            reader = SSEReader(response)
            sync = await reader.next_event()
            assert sync["data"]["id"] == "a" and sync["data"]["event"]["data"] is None
            await todos.set("inbox", "b", {"title": "other"})
            await todos.set("inbox", "a", {"title": "mine"})
            event = await reader.next_event()
            assert event["event"] == "create" and event["data"]["id"] == "a"


async def test_resume_by_last_event_id_and_query_inside_and_outside_history():
    async with running(make_app()) as (url, _):
        for i in range(8):
            await todos.set("inbox", "a", {"n": i})
        stats = await app_stats(url)
        epoch = stats["epoch"]
        async with client(url) as c:
            async with c.stream("GET", "/streams/todos/inbox", headers={"Last-Event-ID": f"{epoch}:6"}) as response:
                reader = SSEReader(response)
                replayed = [await reader.next_event() for _ in range(3)]
                assert [e["id"] for e in replayed[:2]] == [f"{epoch}:7", f"{epoch}:8"]
                assert replayed[2]["event"] == "resumed" and replayed[2]["data"]["event"]["replayed"] == 2
            async with c.stream("GET", "/streams/todos/inbox", params={"lastEventId": f"{epoch}:1"}) as response:
                reader = SSEReader(response)  # offset 2 left the 5-event history: a fresh sync
                assert (await reader.next_event())["event"] == "sync"
            async with c.stream("GET", "/streams/todos/inbox", headers={"Last-Event-ID": "garbage"}) as response:
                assert (await SSEReader(response).next_event())["event"] == "sync"
            # an EventSource opened with ?lastEventId= keeps that URL when it reconnects and sends
            # its newer position as the header: the header wins
            async with c.stream("GET", "/streams/todos/inbox", params={"lastEventId": f"{epoch}:1"},
                                headers={"Last-Event-ID": f"{epoch}:7"}) as response:
                reader = SSEReader(response)
                assert [(await reader.next_event())["id"], (await reader.next_event())["event"]] == [
                    f"{epoch}:8", "resumed"]


async def app_stats(url):
    # the group's epoch as a client learns it: from a sync
    async with client(url) as c, c.stream("GET", "/streams/todos/inbox") as response:
        sync = await SSEReader(response).next_event()
        return {"epoch": sync["data"]["epoch"], "offset": sync["data"]["offset"]}


async def test_auth_refusals_come_before_any_data():
    async with running(make_app()) as (url, _):
        async with client(url) as c:
            bad = await c.get("/streams/todos/inbox", headers={"Authorization": "Bearer bad"})
            assert bad.status_code == 401 and bad.json()["error"]["code"] == "UNAUTHORIZED"
            bad_query = await c.get("/streams/todos/inbox", params={"authToken": "bad"})
            assert bad_query.status_code == 401
            denied = await c.get("/streams/todos/secret", params={"authToken": "guest"})
            assert denied.status_code == 403 and denied.json()["error"]["code"] == "STREAM_ACCESS_DENIED"
            refused = await c.get("/streams/todos/inbox/forbidden-item")
            assert refused.status_code == 403
            missing = await c.get("/streams/ghost/inbox")
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "STREAM_NOT_FOUND"
            async with c.stream("GET", "/streams/todos/secret", params={"authToken": "admin"}) as response:
                assert response.status_code == 200
                assert (await SSEReader(response).next_event())["event"] == "sync"


async def test_a_stalled_reader_is_resynced_and_others_are_unaffected():
    app = make_app()
    async with running(app, outbox_limit=64 * 1024) as (url, server):
        host, port = url.removeprefix("http://").split(":")
        stalled = trio.socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stalled.connect((host, int(port)))
        await stalled.send(f"GET /streams/todos/big HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        async with client(url) as c, c.stream("GET", "/streams/todos/big") as response:
            healthy = SSEReader(response)
            assert (await healthy.next_event())["event"] == "sync"
            payload = "x" * 8192
            for i in range(600):  # ~5 MB: far more than the stalled socket's buffers
                await todos.set("big", f"k{i % 50}", {"blob": payload, "i": i})
                event = await healthy.next_event()
                assert event["data"]["event"]["data"]["i"] == i  # the healthy reader misses nothing
            assert server.metrics.slow_consumer_drops >= 1
            # The stalled reader now reads: after whatever was in flight it gets a fresh sync.
            received = b""
            with trio.fail_after(10):
                while b"event: sync" not in received.split(b"HTTP/1.1 200", 1)[-1].split(b"event: sync", 1)[-1] + b"":
                    chunk = await stalled.recv(1 << 20)
                    assert chunk
                    received += chunk
                    if received.count(b"event: sync") >= 2:
                        break
            assert received.count(b"event: sync") >= 2 and server.metrics.resyncs >= 1
        stalled.close()


async def test_100_abrupt_disconnects_leave_nothing_behind():
    left.clear()
    app = make_app()
    async with running(app) as (url, server):
        host, port = url.removeprefix("http://").split(":")
        for _ in range(100):
            sock = trio.socket.socket()
            await sock.connect((host, int(port)))
            await sock.send(f"GET /streams/todos/room HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            data = b""
            while b"event: sync" not in data:
                data += await sock.recv(65536)
            # abort: RST instead of a polite FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        await todos.set("room", "x", {"n": 1})  # a write after they left finds no one
        with trio.fail_after(10):
            while server.metrics.connections["sse"] or len(left) < 100:
                await trio.sleep(0.01)
        stats = await app.engine.group_stats("todos", "room")
        assert stats["subscribers"] == 0 and stats["subscriptions"] == 0
        assert server.metrics.subscriptions["sse"] == 0 and not server.open_outboxes
        assert len(left) == 100 and set(left) == {("room", None)}
