"""`listeners.Listener` alone, on a real loopback socket: the one fault boundary both ports use.

A handler that raises (a bug, not the network) ends that connection only: logged once at ERROR
with its traceback, the listener's name, the client's address, the stage and a trace id; counted
by (listener, stage); the socket closed; the next connection served. A reset is logged at INFO.
`stop` refuses new connections at once while a connection in progress goes on.
"""

from __future__ import annotations

import errno
import logging

import trio

from runtime.server.listeners import Accepted, Listener
from runtime.server.metrics import ServerMetrics


async def _connect(port: int) -> trio.socket.SocketType:
    sock = trio.socket.socket()
    await sock.connect(("127.0.0.1", port))
    return sock


async def _read_to_end(sock: trio.socket.SocketType) -> bytes:
    data = b""
    with trio.fail_after(10):
        while chunk := await sock.recv(4096):
            data += chunk
    return data


async def test_a_handler_that_raises_ends_its_connection_only_logged_once_and_counted(caplog):
    caplog.set_level(logging.INFO, logger="runtime.server")
    metrics = ServerMetrics()
    calls = 0

    async def handler(accepted: Accepted) -> None:
        nonlocal calls
        calls += 1
        accepted.stage = "working"
        accepted.trace_id = f"trace-{calls}"
        if calls == 1:
            raise RuntimeError("a bug in a handler")
        if calls == 2:
            raise trio.BrokenResourceError("the network's doing")
        await accepted.stream.send_all(b"served")

    listener = Listener("test", handler, metrics, first_stage="start")
    _, port = await listener.open(0, "127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.serve, nursery)
        first = await _connect(port)
        peer = first.getsockname()
        assert await _read_to_end(first) == b""  # closed, nothing sent
        second = await _connect(port)
        assert await _read_to_end(second) == b""
        third = await _connect(port)
        assert await _read_to_end(third) == b"served"  # the listener goes on
        listener.stop()
        late = trio.socket.socket()
        try:
            await late.connect(("127.0.0.1", port))
        except OSError as exc:
            assert exc.errno == errno.ECONNREFUSED
        else:
            raise AssertionError("a connection after stop() was accepted")
        for sock in (first, second, third, late):
            sock.close()
    assert metrics.connection_errors == {("test", "working"): 2}
    records = [r for r in caplog.records if r.name == "runtime.server" and "connection from" in r.getMessage()]
    assert len(records) == 2  # once each
    bug, network = records
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
    assert f"{peer[0]}:{peer[1]}" in bug.getMessage() and "working" in bug.getMessage()
    assert bug.trace_id == "trace-1" and bug.fields == {"listener": "test", "peer": f"{peer[0]}:{peer[1]}",
                                                         "stage": "working"}
    assert network.levelno == logging.INFO and network.exc_info is None and network.trace_id == "trace-2"


async def test_a_connection_in_progress_goes_on_after_stop():
    release = trio.Event()

    async def handler(accepted: Accepted) -> None:
        await release.wait()
        await accepted.stream.send_all(b"finished")

    listener = Listener("test", handler, ServerMetrics(), first_stage="start")
    _, port = await listener.open(0, "127.0.0.1")
    async with trio.open_nursery() as nursery:
        await nursery.start(listener.serve, nursery)
        busy = await _connect(port)
        await trio.testing.wait_all_tasks_blocked()
        listener.stop()
        release.set()
        assert await _read_to_end(busy) == b"finished"
        busy.close()
