"""The baseline of bench/sse.py: a minimal quart-trio SSE broadcaster, on hypercorn's Trio worker.

    .venv/bin/python bench/_sse_baseline.py [--port P]

``GET /sse`` registers a Trio memory channel for the client and streams it
as an async generator yielding one ``data: ...\\n\\n`` per event (one event per
chunk, one ASGI send and one socket write each), after a first ``: ok``
comment that tells the client it is registered. ``POST /publish`` with
``{"n": N, "size": S}`` broadcasts N events ``{"t": time_ns, "seq": 1..N,
"pad": "x" * S}``, each encoded once, by ``await send()`` into every
client's channel, and answers with the number of clients it reached.

It imports nothing from the runtime. Its hypercorn settings are those the
runtime's own server uses (no access log, 75 s keep-alive, hypercorn's
default listen backlog). Prints
``LISTENING <url>`` once it accepts connections; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import time

import orjson
import trio
from _common import raise_fd_limit, wait_for_stop_signal
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio

#: Events a client's channel holds before `publish` waits for it; larger than
#: any run of bench/sse.py, so the broadcaster never waits in the benchmark.
CHANNEL_BUFFER = 100_000

app = QuartTrio("sse-baseline")
app.config["RESPONSE_TIMEOUT"] = None  # Quart's 60 s default would cut the streams
clients: set[trio.MemorySendChannel] = set()


@app.get("/sse")
async def sse():
    send, receive = trio.open_memory_channel(CHANNEL_BUFFER)
    clients.add(send)

    async def events():
        try:
            yield b": ok\n\n"
            async for data in receive:
                yield data
        finally:
            clients.discard(send)

    return events(), 200, {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


@app.post("/publish")
async def publish():
    body = await request.get_json()
    pad = "x" * body["size"]
    targets = list(clients)
    for seq in range(1, body["n"] + 1):
        data = b"data: " + orjson.dumps({"t": time.time_ns(), "seq": seq, "pad": pad}) + b"\n\n"
        for send in targets:
            await send.send(data)
    return {"clients": len(targets)}


async def main(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("sse-baseline.hypercorn")
    config.keep_alive_timeout = 75
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(lambda task_status: serve(app, config, task_status=task_status))
        print(f"LISTENING {binds[0]}", flush=True)
        await wait_for_stop_signal()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_fd_limit()
    logging.getLogger("sse-baseline").setLevel(logging.CRITICAL + 1)
    trio.run(main, args.port)
