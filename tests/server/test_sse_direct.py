"""The direct SSE path's own failure modes, through a real server on a loopback port.

Every request is read by the front door (front_door.py); SSE subscriptions
are served on the raw socket (sse.py), on a connection's first request
or any later one.
"""

from __future__ import annotations

import socket

import trio

from runtime import App, Stream

from .conftest import TODO_STREAM, SSEReader, client, keep_writing, running, serve_process


def make_app() -> App:
    return App(streams=[Stream("feed")])


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def connect(url: str) -> trio.socket.SocketType:
    sock = trio.socket.socket()
    await sock.connect(address(url))
    return sock


async def read_until(sock: trio.socket.SocketType, marker: bytes, limit: float = 10) -> bytes:
    data = b""
    with trio.fail_after(limit):
        while marker not in data:
            chunk = await sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


async def read_to_end(sock: trio.socket.SocketType, limit: float = 10) -> bytes:
    data = b""
    with trio.fail_after(limit):
        while chunk := await sock.recv(65536):
            data += chunk
    return data


async def settled(server) -> None:
    with trio.fail_after(10):
        while server.metrics.connections["sse"] or server.open_outboxes:
            await trio.sleep(0.01)


async def healthy(url: str) -> None:
    async with client(url) as c:
        assert (await c.get("/health")).json() == {"status": "ok"}


async def test_garbage_request_heads_get_a_400_and_the_server_carries_on():
    async with running(make_app()) as (url, server):
        for garbage in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"NOT HTTP AT ALL\r\n\r\n",
                        b"GET /streams/feed/g HTTP/1.1\r\nbad header line\r\n\r\n"):
            sock = await connect(url)
            await sock.send(garbage)
            answer = await read_to_end(sock)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
            sock.close()
        await healthy(url)
        assert server.metrics.connections["sse"] == 0


async def test_a_huge_header_block_is_refused_with_bounded_reading():
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        head = b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 200_000 + b"\r\n\r\n"
        try:
            await sock.send(head)  # the server may close before reading it all
        except OSError:
            pass
        answer = await read_to_end(sock)
        assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
        sock.close()
        await healthy(url)
        assert server.metrics.connections["sse"] == 0 and not server.open_outboxes


async def test_clients_that_leave_mid_head_leave_nothing_behind():
    async with running(make_app()) as (url, server):
        for n in range(50):
            sock = await connect(url)
            await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\nAccept: text/ev"[: 10 + n])
            if n % 2:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()
        await healthy(url)
        await settled(server)
        stats = await server.app.engine.group_stats("feed", "g")
        assert stats["subscribers"] == 0


async def test_a_client_that_stops_reading_is_closed_at_once_under_the_close_policy_and_others_are_unaffected():
    app = make_app()
    feed = app.stream("feed")
    async with running(app, outbox_limit=64 * 1024, slow_consumer="close") as (url, server):
        stalled = trio.socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        await stalled.connect(address(url))
        await stalled.send(b"GET /streams/feed/big HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(stalled, b"event: sync")
        async with client(url) as c, c.stream("GET", "/streams/feed/big") as response:
            reader = SSEReader(response)
            assert (await reader.next_event())["event"] == "sync"
            payload = "x" * 8192
            for i in range(300):  # ~2.5 MB: more than the stalled socket's buffers and its outbox
                await feed.set("big", f"k{i % 50}", {"blob": payload, "i": i})
                assert (await reader.next_event())["data"]["event"]["data"]["i"] == i
            with trio.fail_after(10):
                while server.metrics.connections["sse"] > 1:  # the stalled one is gone, without reading
                    await trio.sleep(0.01)
            assert server.metrics.slow_consumer_closes == 1
        stalled.close()
        await settled(server)
        assert (await app.engine.group_stats("feed", "big"))["subscribers"] == 0


async def test_a_resync_under_concurrent_writes_shows_no_gap_before_the_fresh_sync():
    """The direct path's resync: writes committed while the subscriber re-joins are in its fresh
    sync and never sent ahead of it (ids stay contiguous between syncs)."""
    app = make_app()
    feed = app.stream("feed")
    async with running(app, outbox_limit=32 * 1024) as (url, server), trio.open_nursery() as nursery:
        stop = trio.Event()
        async with client(url) as c, c.stream("GET", "/streams/feed/busy") as response:
            for k in range(4):
                nursery.start_soon(keep_writing, feed, "busy", f"k{k}", stop)
            with trio.fail_after(10):
                while server.metrics.slow_consumer_drops == 0:  # not reading: the socket and outbox fill
                    await trio.sleep(0.01)
            reader, last, syncs = SSEReader(response), None, 0
            with trio.fail_after(30):
                while syncs < 4 or server.metrics.resyncs < 2:
                    event = await reader.next_event()
                    offset = int(event["id"].rsplit(":", 1)[1])
                    if event["event"] == "sync":
                        last, syncs = offset, syncs + 1
                    else:
                        assert last is not None and offset == last + 1, (last, offset)
                        last = offset
            stop.set()


async def test_heartbeats_and_a_clean_end_at_shutdown():
    app = make_app()
    async with running(app, sse_heartbeat=0.2) as (url, server):
        sock = await connect(url)
        await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(sock, b": ping")
        assert data.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in data.lower()
        assert data.index(b"event: sync") < data.index(b": ping")
        server.close_streams()
        rest = await read_to_end(sock)
        assert rest.endswith(b"0\r\n\r\n")  # the last chunk: the body ended properly
        sock.close()
        await settled(server)


async def test_a_refused_first_request_leaves_a_keep_alive_connection():
    async with running(make_app()) as (url, _):
        sock = await connect(url)
        await sock.send(b"GET /streams/ghost/g HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(sock, b'"status":"ok"')
        assert data.startswith(b"HTTP/1.1 404") and b"STREAM_NOT_FOUND" in data
        assert data.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 200" in data
        sock.close()


async def test_sse_on_a_keep_alive_connection_is_served_directly_too():
    async with running(make_app()) as (url, server):
        async with client(url) as c:
            assert (await c.get("/health")).status_code == 200
            async with c.stream("GET", "/streams/feed/g") as response:  # the same connection, its 2nd request
                assert response.headers["content-type"] == "text/event-stream"
                assert (await SSEReader(response).next_event())["event"] == "sync"
                assert server.metrics.connections["sse"] == 1
        await settled(server)


async def test_under_http_asgi_sse_is_refused_with_a_pointer_to_the_fast_path():
    async with running(make_app(), http="asgi") as (url, server):
        async with client(url) as c:
            refused = await c.get("/streams/feed/g")
            assert refused.status_code == 501 and refused.json()["error"]["code"] == "SSE_NOT_SERVED"
        await healthy(url)


async def test_metrics_count_direct_sse_connections_and_subscriptions():
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(sock, b"event: sync")
        async with client(url) as c:
            text = (await c.get("/metrics")).text
            assert 'runtime_connections{transport="sse"} 1' in text
            assert 'runtime_subscriptions{transport="sse"} 1' in text
            assert "runtime_trigger_events_dropped_total 0" in text
            sock.close()
            await settled(server)
            text = (await c.get("/metrics")).text
            assert 'runtime_connections{transport="sse"} 0' in text
            assert 'runtime_subscriptions{transport="sse"} 0' in text


async def test_every_http_response_carries_a_trace_id():
    async with running(make_app(), cors_origins=["https://app.example"]) as (url, server):
        async with client(url) as c:
            for response in [
                await c.get("/health"), await c.get("/metrics"), await c.get("/streams/ghost/g"),
                await c.options("/anything", headers={"Origin": "https://app.example",
                                                      "Access-Control-Request-Method": "POST"}),
            ]:
                assert len(response.headers.get("X-Trace-Id", "")) >= 8, response
            assert (await c.get("/health", headers={"X-Trace-Id": "mine-1"})).headers["X-Trace-Id"] == "mine-1"
        sock = await connect(url)  # a direct SSE stream: its head too
        await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\nX-Trace-Id: mine-2\r\n\r\n")
        head = await read_until(sock, b"\r\n\r\n")
        assert b"x-trace-id: mine-2\r\n" in head.lower()
        sock.close()
        await settled(server)


async def test_sigterm_with_direct_streams_and_idle_connections_exits_0(tmp_path):
    import signal

    (tmp_path / "todo_stream.py").write_text(TODO_STREAM)
    async with serve_process(str(tmp_path)) as (process, url):
        streams = []
        for _ in range(3):
            sock = await connect(url)
            await sock.send(b"GET /streams/todo/inbox HTTP/1.1\r\nHost: x\r\n\r\n")
            await read_until(sock, b"event: sync")
            streams.append(sock)
        idle = await connect(url)  # connected, no request yet
        keep_alive = await connect(url)  # one request answered, then idle
        await keep_alive.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(keep_alive, b'"ok"')
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(2):  # the streams and the idle connection end at once
            for sock in streams:
                assert (await read_to_end(sock)).endswith(b"0\r\n\r\n")
            assert await read_to_end(idle) == b""
        with trio.fail_after(10):  # the keep-alive connection: closed at once too
            assert await read_to_end(keep_alive) == b""
            assert await process.wait() == 0


async def test_a_turn_of_several_events_reaches_a_direct_subscriber_at_once():
    # One update_many is one group turn with several events: one deliver_many
    # call per subscriber, which must wake the flusher like a single deliver.
    app = make_app()
    async with running(app) as (url, _), client(url) as http:
        feed = app.stream("feed")
        async with http.stream("GET", "/streams/feed/g") as response:
            reader = SSEReader(response)
            assert (await reader.next_event())["event"] == "sync"
            await feed.update_many("g", [(f"i{n}", [{"type": "set", "path": "n", "value": n}]) for n in range(5)])
            with trio.fail_after(5):  # well before a heartbeat (15 s) would push the bytes out
                events = [await reader.next_event() for _ in range(5)]
    assert [event["data"]["id"] for event in events] == [f"i{n}" for n in range(5)]
