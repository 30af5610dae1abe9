"""The baselines of bench/fanout.py: two WebSocket broadcasters written the obvious way, a few lines each.

    .venv/bin/python bench/_fanout_baselines.py --server trio-websocket|quart [--port P]

Both publish the same events as the runtime row, ``{"t": time_ns, "seq":
1..N, "pad": "x" * S}``, JSON-encoded once per event (orjson, as the
runtime does) and sent as a text message, and both greet each subscriber
with ``ok`` once it is registered, so the load knows when every subscriber
will see the first event. Neither imports anything from the runtime.

- ``trio-websocket``: `serve_websocket` keeps a set of connections; a
  message ``{"n": N, "size": S}`` on the ``/control`` connection broadcasts
  N events, each by ``await conn.send_message(text)`` to every connection
  in turn, and answers ``{"clients": K}``.
- ``quart``: a quart-trio app on hypercorn's Trio worker; ``/ws`` registers
  a memory channel and sends what arrives on it (Quart's documented
  broadcast pattern: one queue and one task per connection); ``POST
  /publish`` with ``{"n": N, "size": S}`` puts every event into every
  channel and answers ``{"clients": K}``. Hypercorn runs with the settings
  the runtime's own HTTP listener uses (no access log, default backlog).

Prints ``LISTENING <control url> <subscribe url>`` once it accepts
connections; stops on SIGTERM/SIGINT. Both also answer the driver's request
for their collector's pauses (``{"gc": true}`` on ``/control``, ``GET /gc``),
timed by ``bench/_fanout_gc.py``.
"""

from __future__ import annotations

import argparse
import logging
import time

import _fanout_gc  # the collector's pauses, read by the driver (not part of the broadcast)
import orjson
import trio
from _common import raise_fd_limit, wait_for_stop_signal

#: Events a quart client's channel holds before `publish` waits for it:
#: more than any run of bench/fanout.py, so the broadcaster never waits there.
CHANNEL_BUFFER = 100_000


def event(seq: int, pad: str) -> str:
    return orjson.dumps({"t": time.time_ns(), "seq": seq, "pad": pad}).decode()


# -- trio-websocket ------------------------------------------------------------------------


async def trio_websocket_server(port: int) -> None:
    from trio_websocket import ConnectionClosed, serve_websocket

    connections: set = set()

    async def handler(request) -> None:
        ws = await request.accept()
        try:
            if request.path == "/control":
                while True:
                    command = orjson.loads(await ws.get_message())
                    if command.get("gc"):
                        await ws.send_message(orjson.dumps(_fanout_gc.read()).decode())
                        continue
                    targets, pad = list(connections), "x" * command["size"]
                    for seq in range(1, command["n"] + 1):
                        text = event(seq, pad)
                        for conn in targets:
                            try:
                                await conn.send_message(text)
                            except ConnectionClosed:
                                pass
                    await ws.send_message(orjson.dumps({"clients": len(targets)}).decode())
            connections.add(ws)
            await ws.send_message("ok")
            while True:
                await ws.get_message()
        except ConnectionClosed:
            pass
        finally:
            connections.discard(ws)

    await serve_and_wait(lambda task_status: serve_websocket(
        handler, "127.0.0.1", port, ssl_context=None, task_status=task_status),
        lambda server: (f"ws://127.0.0.1:{server.port}/control", f"ws://127.0.0.1:{server.port}/ws"))


# -- quart-trio on hypercorn ---------------------------------------------------------------------


async def quart_server(port: int) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve
    from quart import request, websocket
    from quart_trio import QuartTrio

    app = QuartTrio("fanout-baseline")
    clients: set[trio.MemorySendChannel] = set()

    @app.websocket("/ws")
    async def ws():
        send, receive = trio.open_memory_channel(CHANNEL_BUFFER)
        clients.add(send)
        try:
            await websocket.send("ok")
            async for text in receive:
                await websocket.send(text)
        finally:
            clients.discard(send)

    @app.post("/publish")
    async def publish():
        body = await request.get_json()
        targets, pad = list(clients), "x" * body["size"]
        for seq in range(1, body["n"] + 1):
            text = event(seq, pad)
            for send in targets:
                await send.send(text)
        return {"clients": len(targets)}

    @app.get("/gc")
    async def gc_stats():
        return _fanout_gc.read()

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("fanout-baseline.hypercorn")
    config.keep_alive_timeout = 75
    await serve_and_wait(lambda task_status: serve(app, config, task_status=task_status),
                         lambda binds: (binds[0], binds[0].replace("http://", "ws://") + "/ws"))


# -- both ------------------------------------------------------------------------------------------


async def serve_and_wait(start, urls) -> None:
    async with trio.open_nursery() as nursery:
        control, subscribe = urls(await nursery.start(start))
        print(f"LISTENING {control} {subscribe}", flush=True)
        await wait_for_stop_signal()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["trio-websocket", "quart"], required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    raise_fd_limit()
    logging.getLogger().setLevel(logging.CRITICAL + 1)
    _fanout_gc.install()
    for name in ("trio-websocket", "fanout-baseline", "hypercorn", "quart"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    trio.run(trio_websocket_server if args.server == "trio-websocket" else quart_server, args.port)
