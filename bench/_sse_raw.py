"""A reference for bench/sse.py: the same broadcaster as _sse_baseline.py on raw Trio sockets, no framework.

    .venv/bin/python bench/_sse_raw.py [--port P]

Hand-written HTTP/1.1: ``GET /sse`` answers a chunked ``text/event-stream``
and writes one chunk per event with one ``send_all`` (one event per write,
as the quart-trio baseline); ``POST /publish`` (``Content-Length`` body
``{"n": N, "size": S}``) broadcasts N events ``{"t", "seq", "pad"}`` through
one memory channel per client and answers ``{"clients": k}``; every other
request gets 404. Each non-SSE response closes its connection. It is not a
server anyone should run: it measures what one write per event costs on
Trio's sockets alone, without ASGI, Quart, hypercorn or h11, so the
benchmark can tell the cost of the HTTP stack from the cost of the runtime.
Prints ``LISTENING <url>``; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import functools
import time

import orjson
import trio
from _common import raise_fd_limit, wait_for_stop_signal

CHANNEL_BUFFER = 100_000
clients: set[trio.MemorySendChannel] = set()


async def read_request(stream: trio.SocketStream) -> tuple[bytes, bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    request_line, *headers = head.split(b"\r\n")
    method, target, _ = request_line.split(b" ", 2)
    length = 0
    for header in headers:
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        body += chunk
    return method, target, body


async def respond(stream: trio.SocketStream, status: str, body: bytes) -> None:
    await stream.send_all(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                          f"\r\nConnection: close\r\n\r\n".encode() + body)


async def handle(stream: trio.SocketStream) -> None:
    try:
        request = await read_request(stream)
        if request is None:
            return
        method, target, body = request
        if (method, target) == (b"GET", b"/sse"):
            send, receive = trio.open_memory_channel(CHANNEL_BUFFER)
            clients.add(send)

            async def until_closed(cancel_scope: trio.CancelScope) -> None:
                while await stream.receive_some(65536):  # the client leaving is seen by reading
                    pass
                cancel_scope.cancel()

            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(until_closed, nursery.cancel_scope)
                    await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                          b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          b"6\r\n: ok\n\n\r\n")
                    async for data in receive:
                        await stream.send_all(b"%x\r\n%s\r\n" % (len(data), data))
            finally:
                clients.discard(send)
        elif (method, target) == (b"POST", b"/publish"):
            spec = orjson.loads(body)
            pad = "x" * spec["size"]
            targets = list(clients)
            for seq in range(1, spec["n"] + 1):
                data = b"data: " + orjson.dumps({"t": time.time_ns(), "seq": seq, "pad": pad}) + b"\n\n"
                for send in targets:
                    await send.send(data)
            await respond(stream, "200 OK", orjson.dumps({"clients": len(targets)}))
        else:
            await respond(stream, "404 Not Found", b"{}")
    except (trio.BrokenResourceError, ConnectionError):
        pass
    finally:
        await stream.aclose()


async def main(port: int) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, port, host="127.0.0.1"))
        host, bound = listeners[0].socket.getsockname()[:2]
        print(f"LISTENING http://{host}:{bound}", flush=True)
        await wait_for_stop_signal()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_fd_limit()
    trio.run(main, args.port)
