"""WebSocket heartbeats in virtual time, over an in-memory stream (no sockets, no real waiting)."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

import orjson
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage

from runtime import App, Stream
from runtime.server.heartbeat import PING_INTERVAL, PONG_TIMEOUT
from runtime.server.metrics import ServerMetrics
from runtime.server.settings import ServerSettings
from runtime.server.websocket import Connection, WebSocketServer


async def _connect(nursery, server, pair=trio.testing.memory_stream_pair):
    client_stream, server_stream = pair()
    nursery.start_soon(Connection(server, server_stream).run)
    client = WSConnection(ConnectionType.CLIENT)
    await client_stream.send_all(client.send(Request(host="test", target="/")))
    return client_stream, client


@asynccontextmanager
async def connected():
    """A server-side `Connection` over an in-memory stream, the client's handshake sent."""
    app = App(streams=[Stream("s")])
    async with app, trio.open_nursery() as nursery:
        server = WebSocketServer(app, ServerSettings(), ServerMetrics())
        await nursery.start(server.heartbeat.run)  # as `serve` does: one task pings every connection
        client_stream, client = await _connect(nursery, server)
        yield nursery, server, client_stream, client


async def _client_events(stream, ws: WSConnection):
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        ws.receive_data(data)
        for event in ws.events():
            yield event


async def test_pings_every_25_s_and_closes_1001_after_20_s_without_a_pong(autojump_clock):
    async with connected() as (nursery, server, client_stream, client):
        start = trio.current_time()
        seen = []
        async for event in _client_events(client_stream, client):
            if isinstance(event, AcceptConnection):
                seen.append(("accepted", 0))
            elif isinstance(event, Ping):
                seen.append(("ping", round(trio.current_time() - start, 3)))  # never answered
            elif isinstance(event, CloseConnection):
                seen.append(("close", round(trio.current_time() - start, 3), event.code))
                break
        assert seen == [("accepted", 0), ("ping", PING_INTERVAL), ("close", PING_INTERVAL + PONG_TIMEOUT, 1001)]
        with trio.fail_after(1):
            while server.connections:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()


async def test_answered_pings_keep_the_connection(autojump_clock):
    async with connected() as (nursery, server, client_stream, client):
        pings = 0
        async for event in _client_events(client_stream, client):
            if isinstance(event, Ping):
                pings += 1
                await client_stream.send_all(client.send(event.response()))
                if pings == 4:
                    break
            assert not isinstance(event, CloseConnection)
        assert trio.current_time() >= 4 * PING_INTERVAL and len(server.connections) == 1
        nursery.cancel_scope.cancel()


async def test_one_heartbeat_task_keeps_the_answering_connection_and_closes_the_silent_one(autojump_clock):
    async with connected() as (nursery, server, silent_stream, silent):
        await trio.sleep(10)  # the second connection opens later: its pings keep their own schedule
        start = trio.current_time()
        answering_stream, answering = await _connect(nursery, server)
        pings = []

        async def answer() -> None:
            async for event in _client_events(answering_stream, answering):
                if isinstance(event, Ping):
                    pings.append(round(trio.current_time() - start, 3))
                    await trio.sleep(3)  # a slow but timely answer: the next ping is 25 s after it
                    await answering_stream.send_all(answering.send(event.response()))
                assert not isinstance(event, CloseConnection)

        nursery.start_soon(answer)
        closed_at = None
        async for event in _client_events(silent_stream, silent):
            if isinstance(event, CloseConnection):
                closed_at = trio.current_time()
                break
        assert closed_at == start - 10 + PING_INTERVAL + PONG_TIMEOUT and event.code == 1001
        with trio.fail_after(200):
            while len(pings) < 4:
                await trio.sleep(1)
        assert pings == [PING_INTERVAL + k * (3 + PING_INTERVAL) for k in range(4)] and len(server.connections) == 1
        nursery.cancel_scope.cancel()


async def test_unasked_pongs_do_not_make_the_server_ping_sooner(autojump_clock):
    async with connected() as (nursery, server, client_stream, client):
        start = trio.current_time()
        events = _client_events(client_stream, client)
        async for event in events:
            if isinstance(event, AcceptConnection):
                break
        for _ in range(50):
            await client_stream.send_all(client.send(Pong(b"unasked")))
            await trio.sleep(0.1)
        pings = []
        async for event in events:
            if isinstance(event, Ping):
                pings.append(round(trio.current_time() - start, 3))  # not answered
            elif isinstance(event, CloseConnection):
                break
        assert pings == [PING_INTERVAL]  # one ping, then the close: the unasked pongs answered nothing
        assert round(trio.current_time() - start, 3) == PING_INTERVAL + PONG_TIMEOUT
        nursery.cancel_scope.cancel()


async def test_a_connection_gone_before_its_ping_is_not_kept_alive_by_the_heartbeat(autojump_clock):
    async with connected() as (nursery, server, client_stream, client):
        async for event in _client_events(client_stream, client):
            if isinstance(event, AcceptConnection):
                break
        await client_stream.aclose()  # the network drops it; its first ping is still due at 25 s
        with trio.fail_after(1):
            while server.connections:
                await trio.sleep(0.01)
        gc.collect()
        pending = server.heartbeat._due
        assert pending and all(ref() is None for *_, ref in pending)
        await trio.sleep(PING_INTERVAL)  # due, and skipped: nothing fails
        assert not pending
        nursery.cancel_scope.cancel()


async def _accepted(events) -> None:
    async for event in events:
        if isinstance(event, AcceptConnection):
            return


async def test_a_client_that_stops_reading_is_ended_by_the_ping_timeout(autojump_clock):
    """Its close frame cannot get past what it does not read, so the timeout ends it at once."""
    app = App(streams=[Stream("s")])
    async with app, trio.open_nursery() as nursery:
        server = WebSocketServer(app, ServerSettings(), ServerMetrics())
        await nursery.start(server.heartbeat.run)
        # lockstep: the server's writes wait until the client reads, as a full socket buffer makes them
        client_stream, client = await _connect(nursery, server, trio.testing.lockstep_stream_pair)
        await _accepted(_client_events(client_stream, client))  # then it reads nothing more
        start = trio.current_time()
        with trio.fail_after(PING_INTERVAL + PONG_TIMEOUT + 1):
            while not server.connections:
                await trio.sleep(0.01)
            while server.connections:
                await trio.sleep(0.01)
        assert trio.current_time() - start >= PING_INTERVAL + PONG_TIMEOUT - 0.1
        nursery.cancel_scope.cancel()


async def test_what_a_client_causes_is_bounded_when_it_does_not_read(autojump_clock):
    """Join answers are never dropped, so a client sending joins without reading is held back
    (its reader waits for room) instead of growing the server's memory without end."""
    app = App(streams=[Stream("s")])
    big = app.stream("s")
    async with app, trio.open_nursery() as nursery:
        for i in range(20):
            await big.set("g", f"k{i}", {"blob": "x" * 5000})  # a ~100 KB sync per join
        limit = 64 * 1024
        server = WebSocketServer(app, ServerSettings(outbox_limit=limit), ServerMetrics())
        await nursery.start(server.heartbeat.run)
        client_stream, client = await _connect(nursery, server, trio.testing.lockstep_stream_pair)
        await _accepted(_client_events(client_stream, client))
        sent = []

        async def ask() -> None:
            for k in range(500):
                payload = orjson.dumps({"type": "join", "data": {
                    "streamName": "s", "groupId": "g", "subscriptionId": f"s{k}"}})
                await client_stream.send_all(client.send(TextMessage(payload.decode())))
                sent.append(k)

        nursery.start_soon(ask)
        await trio.sleep(5)
        (connection,) = server.connections
        outbox = connection.outbox
        assert len(sent) < 10  # held back by TCP (here: lockstep), not queued by the server
        assert outbox.size + len(outbox._unsent) <= limit + 200_000  # the bound, plus one sync
        nursery.cancel_scope.cancel()


async def test_ping_interval_and_pong_timeout_are_settings(autojump_clock):
    app = App(streams=[Stream("s")])
    async with app, trio.open_nursery() as nursery:
        server = WebSocketServer(app, ServerSettings(ws_ping_interval=5, ws_pong_timeout=2), ServerMetrics())
        await nursery.start(server.heartbeat.run)
        client_stream, client = await _connect(nursery, server)
        start, seen = trio.current_time(), []
        async for event in _client_events(client_stream, client):
            if isinstance(event, Ping):
                seen.append(("ping", round(trio.current_time() - start, 3)))
            elif isinstance(event, CloseConnection):
                seen.append(("close", round(trio.current_time() - start, 3)))
                break
        assert seen == [("ping", 5.0), ("close", 7.0)]
        nursery.cancel_scope.cancel()
