"""WebSocket heartbeats in virtual time, over an in-memory stream (no sockets, no real waiting)."""

from __future__ import annotations

from contextlib import asynccontextmanager

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request

from runtime import App, Stream
from runtime.server.metrics import ServerMetrics
from runtime.server.settings import ServerSettings
from runtime.server.websocket import PING_INTERVAL, PONG_TIMEOUT, Connection, WebSocketServer


@asynccontextmanager
async def connected():
    """A server-side `Connection` over an in-memory stream, the client's handshake sent."""
    app = App(streams=[Stream("s")])
    async with app, trio.open_nursery() as nursery:
        server = WebSocketServer(app, ServerSettings(), ServerMetrics())
        client_stream, server_stream = trio.testing.memory_stream_pair()
        nursery.start_soon(Connection(server, server_stream).run)
        client = WSConnection(ConnectionType.CLIENT)
        await client_stream.send_all(client.send(Request(host="test", target="/")))
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
