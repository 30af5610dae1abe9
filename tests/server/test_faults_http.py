"""The HTTP port from outside, with raw sockets: how connections end, and what a hostile client cannot do.

Each case is a finding of issue #13 or a behaviour the port must keep;
after each, the server still answers and leaves nothing behind.
"""

from __future__ import annotations

import os
import random
import re
import socket

import pytest
import trio

from runtime import ApiResponse, App, Stream, http, step

from . import fault_support
from .conftest import SSEReader, client, running
from .test_sse_direct import connect, read_to_end, read_until

LINGER_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER {1, 0}: close sends RST


def make_app() -> App:
    echo = step({"name": "Echo", "triggers": [http("POST", "/echo")]})

    @echo.handle
    async def echo_body(request, ctx):
        body = request.body if not isinstance(request.body, bytes) else request.body.decode()
        return ApiResponse(200, {"body": body})

    slow = step({"name": "Slow", "triggers": [http("GET", "/slow")]})

    @slow.handle
    async def slow_answer(request, ctx):
        await app.gate.wait()
        return ApiResponse(200, {"slow": True})

    empty = step({"name": "Empty", "triggers": [http("DELETE", "/echo")]})
    empty.handle(lambda request: ApiResponse(204, {"ignored": True}))  # a 204 carries no body

    app = App(steps=[echo, slow, empty], streams=[Stream("feed")])
    app.gate = trio.Event()
    return app


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settled(door, baseline: int | None = None) -> None:
    """Every connection the server had is gone (and descriptors are back to ``baseline``)."""
    with trio.fail_after(10):
        while door.open or (baseline is not None and fds() > baseline):
            await trio.sleep(0.01)


def heads(data: bytes) -> list[bytes]:
    """The status lines in what a connection received."""
    return re.findall(rb"HTTP/1\.[01] \d{3} [^\r]*", data)


async def answered(url: str) -> None:
    async with client(url) as c:
        assert (await c.get("/health")).json() == {"status": "ok"}


# -- request smuggling ---------------------------------------------------------------------------


@pytest.mark.parametrize("head", [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
])
async def test_smuggling_shapes_are_refused_and_the_connection_closed(head):
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        hidden = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        await sock.send(head + b"0\r\n\r\n" + hidden)
        data = await read_to_end(sock)  # EOF: the server closed
        assert heads(data) and heads(data)[0].split()[1] in (b"400", b"501"), data
        assert len(heads(data)) == 1 and b'"ok"' not in data  # the hidden request never ran
        assert b"connection: close" in data.lower()
        sock.close()
        await answered(url)


# -- Connection: close, announced and done ---------------------------------------------------


@pytest.mark.parametrize("request_bytes", [
    b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /health HTTP/1.0\r\n\r\n",
    b"GET /streams/ghost/g HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # a refused SSE GET
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n" + b"x" * 100_000,  # 413
])
async def test_connection_close_is_announced_and_the_socket_closed(request_bytes):
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        await sock.send(request_bytes)
        data = await read_to_end(sock)
        assert len(heads(data)) == 1 and b"\r\nconnection: close\r\n" in data.lower(), data[:300]
        sock.close()
        await settled(server.front_door)


async def test_http_10_with_keep_alive_keeps_the_connection():
    async with running(make_app()) as (url, _):
        sock = await connect(url)
        request = b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        await sock.send(request)
        first = await read_until(sock, b'"ok"}')
        assert b"connection: keep-alive" in first.lower()
        await sock.send(request)
        assert b'"ok"' in await read_until(sock, b'"ok"}')
        sock.close()


async def test_the_keep_alive_timeout_applies_between_requests(autojump_clock):
    async with running(make_app(), keep_alive_timeout=75) as (url, server):
        sock = await connect(url)
        for _ in range(2):
            await sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            await read_until(sock, b'"ok"}')
        start = trio.current_time()
        with trio.fail_after(200):
            assert await sock.recv(100) == b""  # closed by the server
        assert 75 <= trio.current_time() - start < 76
        sock.close()


async def test_refused_subscriptions_whose_clients_close_leave_no_descriptor_behind():
    async with running(make_app()) as (url, server):
        await answered(url)
        baseline = fds()
        for _ in range(60):
            sock = await connect(url)
            await sock.send(b"GET /streams/ghost/g HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_until(sock, b"}}")).startswith(b"HTTP/1.1 404")
            sock.close()
        await settled(server.front_door, baseline)


async def test_unauthorized_and_forbidden_subscriptions_then_close_leave_nothing():
    def authenticate(request):
        if request.token != "ok":
            raise PermissionError("no")
        return {"user": 1}

    app = make_app()
    app.authenticate = authenticate
    async with running(app, allowed_origins=["https://app.example"]) as (url, server):
        await answered(url)
        baseline = fds()
        for n in range(20):
            sock = await connect(url)
            extra = b"Origin: https://evil.example\r\n" if n % 2 else b""
            await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            status = (await read_until(sock, b"}}")).split(b" ")[1]
            assert status in (b"401", b"403")
            sock.close()
        await settled(server.front_door, baseline)


@pytest.mark.parametrize("path", [b"/health", b"/streams/feed/g", b"/streams/ghost/g"])
async def test_a_non_ascii_trace_id_gets_an_answer_with_a_fresh_one(path):
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        await sock.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Trace-Id: h\xc3\xa9llo\xff\r\n\r\n")
        head = await read_until(sock, b"\r\n\r\n")
        assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 404")), head
        trace = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-trace-id:")]
        assert len(trace) == 1 and trace[0].split(b":", 1)[1].strip().isascii()
        assert b"h\xc3" not in head
        sock.close()
        await settled(server.front_door)


@pytest.mark.parametrize("header", [b"X-Trace-Id: a\r\n b", b"X-Trace-Id: a\rb", b"X-Trace-Id: a\x00b"])
async def test_a_trace_id_with_cr_lf_or_nul_is_refused_cleanly(header):
    async with running(make_app()) as (url, server):
        sock = await connect(url)
        await sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n")
        data = await read_to_end(sock)
        assert data.startswith(b"HTTP/1.1 400") and b"connection: close" in data.lower()
        sock.close()
        await answered(url)


async def test_a_request_whose_body_arrives_after_its_head_does_not_leave_the_next_one_unanswered():
    async with running(make_app()) as (url, _):
        for path in (b"/streams/ghost/g", b"/echo"):
            sock = await connect(url)
            await sock.send(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                            b"Content-Length: 5\r\n\r\n")
            await trio.testing.wait_all_tasks_blocked()
            await sock.send(b"hel")
            await trio.testing.wait_all_tasks_blocked()
            await sock.send(b"lo" + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            data = await read_until(sock, b'"ok"}')
            assert len(heads(data)) == 2 and heads(data)[1] == b"HTTP/1.1 200 OK", data
            sock.close()
        sock = await connect(url)  # the same for a GET to the SSE prefix that carries a chunked body
        await sock.send(b"GET /streams/ghost/g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        await sock.send(b"3\r\nabc\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(sock, b'"ok"}')
        assert len(heads(data)) == 2 and heads(data)[1] == b"HTTP/1.1 200 OK", data
        sock.close()


async def test_a_client_that_half_closes_after_its_request_always_gets_its_answer():
    async with running(make_app()) as (url, server):
        for _ in range(30):
            sock = await connect(url)
            await sock.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)  # as nc -N does
            data = await read_to_end(sock)
            assert data.startswith(b"HTTP/1.1 200") and data.endswith(b'{"status":"ok"}'), data
            sock.close()
        await settled(server.front_door)


# -- keep-alive, pipelining, framing ---------------------------------------------------------


async def test_pipelined_requests_are_answered_in_order():
    async with running(make_app()) as (url, _):
        sock = await connect(url)
        await sock.send(b"".join(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(b'"%d"' % n), b'"%d"' % n) for n in range(20)))
        data = await read_until(sock, b'{"body":"19"}')
        bodies = [int(part.split(b'"')[0]) for part in data.split(b'{"body":"')[1:]]
        assert bodies == list(range(20))
        sock.close()


async def test_chunked_bodies_expect_continue_and_head():
    async with running(make_app()) as (url, _):
        sock = await connect(url)
        await sock.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n")
        assert b'{"body":"abcde"}' in await read_until(sock, b"}")
        await sock.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                        b"Expect: 100-continue\r\n\r\n")
        assert await read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        await sock.send(b"ok")
        assert b'{"body":"ok"}' in await read_until(sock, b"}")
        await sock.send(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(sock, b'"ok"}')
        first, second = data.split(b"HTTP/1.1 200 OK")[1:]
        assert b"content-length: 15" in first.lower() and first.endswith(b"\r\n\r\n")  # no body after HEAD
        assert second.endswith(b'{"status":"ok"}')
        sock.close()


async def test_a_204_with_a_body_from_its_handler_sends_none_and_the_next_request_is_framed():
    async with running(make_app()) as (url, _):
        sock = await connect(url)
        await sock.send(b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until(sock, b'"ok"}')
        first, second = data.split(b"HTTP/1.1 200 OK")
        assert first.startswith(b"HTTP/1.1 204") and first.endswith(b"\r\n\r\n") and b"ignored" not in first
        assert b"content-length" not in first.lower()
        sock.close()


async def test_no_response_claims_to_be_another_server():
    async with running(make_app()) as (url, _):
        async with client(url) as c:
            for response in (await c.get("/health"), await c.post("/echo", json=1), await c.get("/nowhere")):
                assert "server" not in response.headers


# -- hostile clients -------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [b"GET /hea", b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"])
async def test_a_reset_mid_head_or_mid_body_ends_that_connection_only(stage):
    async with running(make_app()) as (url, server):
        async with client(url) as c:
            assert (await c.get("/health")).status_code == 200
            for _ in range(10):
                sock = await connect(url)
                await sock.send(stage)
                await trio.testing.wait_all_tasks_blocked()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                sock.close()
            assert (await c.get("/health")).status_code == 200  # the same keep-alive connection
        await settled(server.front_door)


async def test_slow_header_clients_do_not_delay_a_normal_client():
    async with running(make_app()) as (url, server):
        slow = [await connect(url) for _ in range(200)]
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n"
        async with client(url) as c:
            for i in range(5):  # a byte per round from each slow client, a full request from the normal one
                for sock in slow:
                    await sock.send(head[i:i + 1])
                with trio.fail_after(5):
                    assert (await c.get("/health")).status_code == 200
        for sock in slow:
            sock.close()
        await settled(server.front_door)


@pytest.mark.parametrize("garbage", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(64)),  # a TLS ClientHello's start
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 preface
    bytes(random.Random(7).randrange(256) for _ in range(4096)),
    b"\x00" * 64,
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n",  # a 100 KB request line
])
async def test_non_http_bytes_get_an_error_or_a_close_and_the_server_serves(garbage):
    app = make_app()
    async with running(app) as (url, server):
        await sse_subscriber_gets_sync_and_next(url, app)
        await settled(server.front_door)
        baseline = fault_support.here()
        sock = await connect(url)
        try:
            await sock.send(garbage)
        except OSError:
            pass
        data = await read_to_end(sock)
        assert data == b"" or data.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), data[:100]
        sock.close()
        await answered(url)
        await sse_subscriber_gets_sync_and_next(url, app)
        await settled(server.front_door)
        await fault_support.back_to(baseline, fault_support.measure_here)


# -- shutdown --------------------------------------------------------------------------------


async def test_draining_closes_idle_connections_at_once_and_answers_a_request_in_flight_with_close():
    app = make_app()
    async with running(app) as (url, server):
        idle = await connect(url)
        await idle.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(idle, b'"ok"}')
        busy = await connect(url)
        await busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        server.front_door.drain()
        with trio.fail_after(2):
            assert await read_to_end(idle) == b""
        app.gate.set()
        data = await read_to_end(busy)
        assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower()
        assert data.endswith(b'{"slow":true}')
        idle.close()
        busy.close()



# -- a reset at every stage, then the server serves and its footprint is back ----------------------


async def sse_subscriber_gets_sync_and_next(url: str, app: App, group: str = "after") -> None:
    """A fresh SSE subscriber gets its sync and the next event."""
    with trio.fail_after(10):
        async with client(url) as c, c.stream("GET", f"/streams/feed/{group}") as response:
            reader = SSEReader(response)
            assert (await reader.next_event())["event"] == "sync"
            await app.stream("feed").set(group, os.urandom(6).hex(), {"n": 1})
            assert (await reader.next_event())["event"] == "create"


async def stage_after_connect(sock):
    pass


async def stage_mid_request_line(sock):
    await sock.send(b"GET /hea")


async def stage_mid_sse_head(sock):
    await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\nAccept: text/ev")


async def stage_during_sse_stream(sock):
    await sock.send(b"GET /streams/feed/g HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_until(sock, b"event: sync")


async def stage_during_post_body(sock):
    await sock.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")


async def stage_while_its_handler_runs(sock):
    await sock.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")


HTTP_STAGES = [stage_after_connect, stage_mid_request_line, stage_mid_sse_head, stage_during_sse_stream,
               stage_during_post_body, stage_while_its_handler_runs]


@pytest.mark.parametrize("stage", HTTP_STAGES, ids=lambda f: f.__name__.removeprefix("stage_"))
async def test_a_reset_at_any_stage_leaves_the_server_serving_and_nothing_behind(stage):
    app = make_app()
    async with running(app) as (url, server):
        await sse_subscriber_gets_sync_and_next(url, app, "g")  # the groups' actors are part of the baseline
        await sse_subscriber_gets_sync_and_next(url, app)
        await settled(server.front_door)
        baseline = fault_support.here()
        async with client(url) as bystander:  # a keep-alive connection, open throughout
            assert (await bystander.get("/health")).status_code == 200
            for _ in range(5):
                sock = await connect(url)
                await stage(sock)
                await trio.testing.wait_all_tasks_blocked()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                sock.close()
            app.gate.set()  # a handler that was answering a reset client finishes; its answer goes nowhere
            assert (await bystander.get("/health")).status_code == 200
        await sse_subscriber_gets_sync_and_next(url, app)
        await settled(server.front_door)
        await fault_support.back_to(baseline, fault_support.measure_here)
        assert server.metrics.connections["sse"] == 0 and not server.open_outboxes
