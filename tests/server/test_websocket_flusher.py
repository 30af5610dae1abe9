"""The server-wide flusher: one task writes every connection; a socket that would block goes to its own writer."""

from __future__ import annotations

import socket
from typing import Any

import orjson
import trio
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from runtime import App, Stream
from runtime.server.flusher import FLUSH_YIELDS

from .conftest import running_ws


def join(sid: str, group: str) -> str:
    return orjson.dumps({"type": "join", "data": {"streamName": "s", "groupId": group, "subscriptionId": sid}}).decode()


async def receive(ws) -> dict:
    with trio.fail_after(5):
        return orjson.loads(await ws.get_message())


async def open_stalled(listening, group: str) -> tuple[trio.SocketStream, Any]:
    """A client that upgrades, joins and then never reads (with a tiny receive buffer, the server's
    socket blocks), and its server-side connection once the join is registered."""
    host, port = listening.stream_url.removeprefix("ws://").split(":")
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await sock.connect((host, int(port)))
    stream = trio.SocketStream(sock)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host=host, target="/")))
    accepted = False
    while not accepted:
        ws.receive_data(await stream.receive_some(65536))
        accepted = any(isinstance(event, AcceptConnection) for event in ws.events())
    await stream.send_all(ws.send(TextMessage(data=join("stalled", group))))
    port = stream.socket.getsockname()[1]
    with trio.fail_after(5):
        while True:
            for connection in listening.websocket.connections:
                if connection.stream.socket.getpeername()[1] == port and "stalled" in connection.subscriptions.table:
                    return stream, connection
            await trio.sleep(0)


async def test_a_stalled_reader_does_not_delay_the_other_connections():
    app = App(streams=[Stream("s")])
    s = app.stream("s")
    async with running_ws(app) as listening, open_websocket_url(listening.stream_url) as healthy:
        await healthy.send_message(join("h", "g"))
        assert (await receive(healthy))["event"]["type"] == "sync"
        stalled_client, stalled = await open_stalled(listening, "g")
        payload = "x" * 16384
        i = 0
        # publish until the stalled socket would block and the flusher hands it to its writer
        while stalled.outbox.flushing:
            await s.set("g", "k", {"i": i, "blob": payload})
            assert (await receive(healthy))["event"]["data"]["i"] == i  # in lockstep, never held up
            i += 1
            assert i < 2000, "the stalled socket never blocked"
        passes = listening.websocket.flusher.passes
        for _ in range(20):
            await s.set("g", "k", {"i": i, "blob": payload})
            assert (await receive(healthy))["event"]["data"]["i"] == i
            i += 1
        assert not stalled.outbox.flushing  # still its own writer's: waiting for its socket
        assert listening.websocket.flusher.passes >= passes + 20  # the others went on through the flusher
        healthy_connection = next(c for c in listening.websocket.connections if c is not stalled)
        assert healthy_connection.outbox.flushing
        await stalled_client.aclose()


async def test_a_reader_that_stalls_then_drains_gets_every_event_in_order_and_returns_to_the_flusher():
    app = App(streams=[Stream("s")])
    s = app.stream("s")
    async with running_ws(app) as listening:
        client, connection = await open_stalled(listening, "g")
        payload = "y" * 16384
        sent = 0
        while connection.outbox.flushing or sent < 40:  # well past the point where the socket blocked
            await s.set("g", "k", {"i": sent, "blob": payload})
            sent += 1
            assert sent < 2000, "the socket never blocked"
        seen: list[int] = []
        buffered = b""
        with trio.fail_after(10):
            while len(seen) < sent:
                buffered += await client.receive_some(1 << 20)
                while True:  # unmasked server text frames: FIN+opcode, length, payload
                    if len(buffered) < 2:
                        break
                    length, offset = buffered[1] & 0x7F, 2
                    if length == 126:
                        length, offset = int.from_bytes(buffered[2:4], "big"), 4
                    elif length == 127:
                        length, offset = int.from_bytes(buffered[2:10], "big"), 10
                    if len(buffered) < offset + length:
                        break
                    frame = orjson.loads(buffered[offset:offset + length])
                    buffered = buffered[offset + length:]
                    if frame["event"]["type"] != "sync":
                        seen.append(frame["event"]["data"]["i"])
        assert seen == list(range(sent))  # nothing lost, repeated or reordered across the hand-overs
        with trio.fail_after(5):
            while not connection.outbox.flushing:  # drained: the flusher writes it again
                await trio.sleep(0.01)
        await s.set("g", "k", {"i": sent})
        await client.aclose()


class _Counter(trio.abc.Instrument):
    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] = self.steps.get(task.name, 0) + 1


async def test_a_fan_out_wakes_no_connection_writer():
    app = App(streams=[Stream("s")])
    s = app.stream("s")
    async with running_ws(app) as listening:
        clients = []
        async with trio.open_nursery() as nursery:
            async def connect() -> None:
                ws = await trio_websocket_connect(nursery, listening.stream_url)
                await ws.send_message(join(f"c{len(clients)}", "fan"))
                assert (await receive(ws))["event"]["type"] == "sync"
                clients.append(ws)

            for _ in range(20):
                await connect()
            counter = _Counter()
            trio.lowlevel.add_instrument(counter)
            try:
                for i in range(10):
                    await s.set("fan", "k", {"i": i})
                    for ws in clients:
                        assert (await receive(ws))["event"]["data"]["i"] == i
            finally:
                trio.lowlevel.remove_instrument(counter)
            writer_steps = sum(n for name, n in counter.steps.items() if name.endswith("Connection._writer"))
            assert writer_steps == 0
            # a pass per event at most: its waits for the running turns (FLUSH_YIELDS) and the wake,
            # not a step per connection (20 connections x 10 events)
            flusher_steps = sum(n for name, n in counter.steps.items() if name.endswith("Flusher.run"))
            assert flusher_steps <= 10 * (FLUSH_YIELDS + 2)
            for ws in clients:
                await ws.aclose()
            nursery.cancel_scope.cancel()


async def trio_websocket_connect(nursery: trio.Nursery, url: str):
    from trio_websocket import connect_websocket_url

    return await connect_websocket_url(nursery, url)


def test_gc_freeze_freezes_start_up_objects_in_its_own_process():
    import subprocess
    import sys

    code = """
import gc, trio
from runtime import App, Stream
from runtime.server import ServerSettings
async def main():
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: App(streams=[Stream("s")]).serve(
            ServerSettings(port=0, stream_port=0, gc_freeze=True), task_status=task_status))
        print(gc.get_freeze_count())
        nursery.cancel_scope.cancel()
trio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout.strip()) > 10_000
