"""The stream port is a fault boundary per connection: a reset at any stage, garbage, a hook that
raises — each ends that one connection, is counted, and the server goes on serving everyone else.

Every case runs against a real listener on a loopback port with a raw socket; after each, a fresh
subscriber gets its sync and the next event, and the connection's task and descriptor are gone.
"""

from __future__ import annotations

import os
import socket
import struct

import httpx
import orjson
import pytest
import trio
from trio_websocket import open_websocket_url

from runtime import App, Stream, StreamConfig

from ..helpers import live_tasks
from . import fault_support
from .conftest import running_ws

UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    head = bytes(((0x80 if fin else 0) | opcode, 0x80 | len(payload))) if len(payload) < 126 else (
        struct.pack("!BBH", (0x80 if fin else 0) | opcode, 0x80 | 126, len(payload)))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def join_frame(sid: str = "s1", group: str = "g") -> bytes:
    return masked(0x1, orjson.dumps({"type": "join", "data": {"streamName": "todos", "groupId": group,
                                                               "subscriptionId": sid}}))


def make_app() -> App:
    return App(streams=[Stream(StreamConfig(name="todos"))])


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER {1, 0}), as a crashed client or a middlebox does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def open_raw(url: str) -> socket.socket:
    host, port = url.split("//")[1].split(":")
    sock = socket.socket()
    sock.setblocking(False)
    await trio.to_thread.run_sync(lambda: None)
    tsock = trio.socket.from_stdlib_socket(sock)
    await tsock.connect((host, int(port)))
    return sock


async def recv_some(sock: socket.socket, n: int = 65536) -> bytes:
    await trio.lowlevel.wait_readable(sock)
    return sock.recv(n)


async def still_serving(listening, app: App) -> None:
    """A fresh subscriber gets its sync and the next event."""
    with trio.fail_after(10):
        async with open_websocket_url(listening.stream_url) as ws:
            await ws.send_message(orjson.dumps({"type": "join", "data": {
                "streamName": "todos", "groupId": "after", "subscriptionId": "fresh"}}).decode())
            assert orjson.loads(await ws.get_message())["event"]["type"] == "sync"
            await app.stream("todos").set("after", os.urandom(6).hex(), {"n": 1})
            assert orjson.loads(await ws.get_message())["event"]["type"] == "create"


async def wait_closed(listening) -> None:
    with trio.fail_after(10):
        while listening.websocket.connections or listening.server.metrics.connections["websocket"]:
            await trio.sleep(0.01)


async def errors(listening) -> str:
    async with httpx.AsyncClient(base_url=listening.http_url, timeout=10) as client:
        return (await client.get("/metrics")).text


async def stage_after_connect(sock):
    pass


async def stage_mid_request_line(sock):
    sock.send(b"GET / HT")


async def stage_after_upgrade_request(sock):
    sock.send(UPGRADE)  # the RST lands right behind it: the reproduction of the issue


async def stage_after_101(sock):
    sock.send(UPGRADE)
    assert b" 101 " in await recv_some(sock)


async def stage_mid_frame(sock):
    await stage_after_101(sock)
    sock.send(join_frame()[:5])


async def stage_after_join(sock):
    await stage_after_101(sock)
    sock.send(join_frame())
    assert b"sync" in await recv_some(sock)


STAGES = [stage_after_connect, stage_mid_request_line, stage_after_upgrade_request, stage_after_101,
          stage_mid_frame, stage_after_join]


@pytest.mark.parametrize("stage", STAGES, ids=lambda f: f.__name__.removeprefix("stage_"))
async def test_a_reset_at_any_stage_ends_that_connection_only(stage):
    app = make_app()
    async with running_ws(app) as listening:
        async with open_websocket_url(listening.stream_url) as bystander:  # another client, open throughout
            await bystander.send_message(orjson.dumps({"type": "join", "data": {
                "streamName": "todos", "groupId": "g", "subscriptionId": "b"}}).decode())
            assert orjson.loads(await bystander.get_message())["event"]["type"] == "sync"
            await still_serving(listening, app)  # its group's actor is part of the baseline
            tasks = len(live_tasks())
            fds = len(os.listdir("/proc/self/fd"))
            for _ in range(3):
                sock = await open_raw(listening.stream_url)
                await stage(sock)
                reset(sock)
            with trio.fail_after(10):
                while len(listening.websocket.connections) > 1:
                    await trio.sleep(0.01)
            await still_serving(listening, app)
            await app.stream("todos").set("g", "x", {"n": 1})
            assert orjson.loads(await bystander.get_message())["event"]["type"] == "create"
            with trio.move_on_after(5):
                while len(live_tasks()) > tasks or len(os.listdir("/proc/self/fd")) > fds:
                    await trio.sleep(0.01)
            assert (len(live_tasks()), len(os.listdir("/proc/self/fd"))) <= (tasks, fds), (
                tasks, fds, sorted(t.name for t in live_tasks()))
            assert listening.server.metrics.subscriptions["websocket"] == 1  # the bystander's


async def test_the_reset_is_counted_with_its_listener_and_stage():
    app = make_app()
    async with running_ws(app) as listening:
        sock = await open_raw(listening.stream_url)
        await stage_after_join(sock)
        reset(sock)
        await wait_closed(listening)
        text = await errors(listening)
        assert 'runtime_connection_errors_total{listener="stream",stage="frames"} 1' in text
        assert listening.server.metrics.subscriptions["websocket"] == 0  # it left its group


GARBAGE = {
    "tls_client_hello": bytes.fromhex("16030100a5010000a10303") + os.urandom(64),
    "http2_preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "random": os.urandom(4096),
    "nul": b"\0" * 1024,
    "long_line": b"GET /" + b"a" * 100_000,
}


@pytest.mark.parametrize("name", GARBAGE)
async def test_non_http_bytes_end_that_connection_only(name):
    app = make_app()
    # bytes that never end a request line are ended by the handshake timeout (10 s by default)
    async with running_ws(app, ws_handshake_timeout=1) as listening:
        await still_serving(listening, app)
        baseline = fault_support.here()
        sock = await open_raw(listening.stream_url)
        try:
            sock.send(GARBAGE[name])
        except BlockingIOError:
            pass
        with trio.fail_after(10):  # the server closes it (an answer first, or not)
            while True:
                try:
                    if not await recv_some(sock):
                        break
                except ConnectionResetError:
                    break
        sock.close()
        await still_serving(listening, app)
        await fault_support.back_to(baseline, fault_support.measure_here)


ABUSE = {
    "unmasked": bytes((0x81, 2)) + b"{}",
    "reserved_bits": bytes((0xF1,)) + masked(0x1, b"{}")[1:],
    "fragmented_ping": masked(0x9, b"x", fin=False),
    "oversize_ping": masked(0x9, b"x" * 200),
    "continuation_without_start": masked(0x0, b"{}"),
    "invalid_utf8": masked(0x1, b"\xff\xfe"),
    "bad_close_code": masked(0x8, struct.pack("!H", 999)),
    "fragments_past_the_limit": b"".join([masked(0x1, b"x" * 60_000, fin=False),
                                          *(masked(0x0, b"x" * 60_000, fin=False) for _ in range(2))]),
}


@pytest.mark.parametrize("name", ABUSE)
async def test_websocket_protocol_abuse_closes_that_connection_only(name):
    app = make_app()
    async with running_ws(app) as listening:
        await still_serving(listening, app)
        baseline = fault_support.here()
        sock = await open_raw(listening.stream_url)
        await stage_after_101(sock)
        await trio.to_thread.run_sync(lambda: (sock.setblocking(True), sock.sendall(ABUSE[name]),
                                               sock.setblocking(False)))
        received = b""
        with trio.fail_after(10):
            while True:
                try:
                    data = await recv_some(sock)
                except ConnectionResetError:
                    break
                if not data:
                    break
                received += data
        assert received[:1] == b"\x88"  # a close frame, then the server closed the socket
        sock.close()
        await wait_closed(listening)
        await still_serving(listening, app)
        await fault_support.back_to(baseline, fault_support.measure_here)


async def test_a_hook_that_raises_in_on_leave_ends_nothing_else():
    def on_leave(sub, ctx, auth):
        raise RuntimeError("hook bug")

    app = App(streams=[Stream(StreamConfig(name="todos", on_leave=on_leave))])
    async with running_ws(app) as listening:
        sock = await open_raw(listening.stream_url)
        await stage_after_join(sock)
        reset(sock)
        await wait_closed(listening)
        await still_serving(listening, app)


async def test_a_ping_flood_is_answered_and_bounded():
    app = make_app()
    async with running_ws(app) as listening:
        sock = await open_raw(listening.stream_url)
        await stage_after_101(sock)
        flood = masked(0x9, b"p") * 5000
        await trio.to_thread.run_sync(lambda: (sock.setblocking(True), sock.sendall(flood), sock.setblocking(False)))
        got = 0
        with trio.fail_after(10):
            while got < 5000 * 3:  # every pong (3 bytes each) comes back
                got += len(await recv_some(sock))
        reset(sock)
        await wait_closed(listening)
        await still_serving(listening, app)



async def test_slow_header_clients_do_not_delay_a_normal_client_and_are_ended_by_the_handshake_timeout():
    app = make_app()
    # a 2 s handshake timeout instead of the default 10 s: the slow clients are ended by it, unwaited for
    async with running_ws(app, ws_handshake_timeout=2) as listening:
        await still_serving(listening, app)  # its group's actor is part of the baseline
        baseline = fault_support.here()
        slow = [await open_raw(listening.stream_url) for _ in range(200)]
        for i in range(5):  # a byte per round from each slow client, a whole handshake and a join from a normal one
            for sock in slow:
                try:
                    sock.send(UPGRADE[i:i + 1])
                except OSError:
                    pass  # on a loaded machine the rounds can outlast the timeout: the server ended it already
            with trio.fail_after(5):
                async with open_websocket_url(listening.stream_url) as ws:
                    await ws.send_message(orjson.dumps({"type": "join", "data": {
                        "streamName": "todos", "groupId": "g", "subscriptionId": "n"}}).decode())
                    assert orjson.loads(await ws.get_message())["event"]["type"] == "sync"
        with trio.fail_after(10):  # the server ends each, unanswered, once its handshake time is up
            for sock in slow:
                try:
                    assert await recv_some(sock) == b""
                except ConnectionResetError:
                    pass  # ended while our byte was unread: a reset instead of an EOF, unanswered all the same
        for sock in slow:
            sock.close()
        await still_serving(listening, app)
        await fault_support.back_to(baseline, fault_support.measure_here)
        assert listening.server.metrics.connections["websocket"] == 0


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # no upgrade at all
    UPGRADE.replace(b"Host: x", b"Host: \x80x"),  # wsproto decoded these with UnicodeDecodeError: a traceback
    UPGRADE.replace(b"Connection: Upgrade", b"Connection: \xffUpgrade"),
])
async def test_a_request_that_is_no_readable_upgrade_is_answered_400(request_bytes):
    app = make_app()
    async with running_ws(app) as listening:
        sock = await open_raw(listening.stream_url)
        sock.send(request_bytes)
        received = b""
        with trio.fail_after(10):
            while data := await recv_some(sock):
                received += data
        assert received.startswith(b"HTTP/1.1 400 ") and received.endswith(b"not a WebSocket upgrade request")
        sock.close()
        assert not listening.server.metrics.connection_errors  # answered: the client's mistake, not a failure
        await still_serving(listening, app)
