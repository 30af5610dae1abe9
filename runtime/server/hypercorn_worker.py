"""hypercorn's Trio worker without its listener: connections are handed to it one by one.

The front door (`front_door.py`) accepts every connection of the HTTP port
and hands hypercorn those it does not serve itself, with the bytes it has
already read replayed first. This module is the only one that uses
hypercorn's internals (``TCPServer``, ``Lifespan``, ``WorkerContext``); it
does what ``hypercorn.trio.run.worker_serve`` does around them — the ASGI
lifespan, and at shutdown ``terminated`` (idle keep-alive connections
close); the front door's nursery owns the connections and bounds requests
in flight by the grace period. The signatures differ between hypercorn 0.16 (no
lifespan state) and 0.17/0.18, the range pyproject.toml allows.
"""

from __future__ import annotations

import inspect
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.utils import wrap_app

__all__ = ["HypercornWorker", "ReplayStream"]

#: hypercorn >= 0.17 passes the lifespan state to each connection.
_HAS_STATE = "state" in inspect.signature(TCPServer.__init__).parameters


class ReplayStream(trio.abc.Stream):
    """A socket stream whose first ``receive_some`` returns bytes already read from it."""

    def __init__(self, stream: trio.SocketStream, replay: bytes) -> None:
        self.transport = stream
        self.socket = stream.socket  # hypercorn reads the peer and local addresses here
        self._replay = replay

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._replay:
            await trio.lowlevel.checkpoint()
            data, self._replay = self._replay, b""
            return data
        return await self.transport.receive_some(max_bytes)

    async def send_all(self, data: Any) -> None:
        await self.transport.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.transport.send_eof()

    async def aclose(self) -> None:
        await self.transport.aclose()


class HypercornWorker:
    """The ASGI lifespan around hypercorn connections served by the caller's tasks."""

    def __init__(self, app: Any, config: Config) -> None:
        self._app = wrap_app(app, config.wsgi_max_body_size, "asgi")
        self._config = config
        self._state: dict[str, Any] = {}
        self._context = WorkerContext(None)
        self._stop = trio.Event()
        self.stopped = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Lifespan startup; at `stop`, lifespan shutdown."""
        config = self._config
        if _HAS_STATE:
            lifespan = Lifespan(self._app, config, self._state)
        else:  # hypercorn before 0.15
            lifespan = Lifespan(self._app, config)  # type: ignore[call-arg]  # the older signature
        try:
            async with trio.open_nursery() as lifespan_nursery:
                await lifespan_nursery.start(lifespan.handle_lifespan)
                await lifespan.wait_for_startup()
                task_status.started()
                await self._stop.wait()
                await lifespan.wait_for_shutdown()
                lifespan_nursery.cancel_scope.cancel()
        finally:
            self.stopped.set()

    async def terminate(self) -> None:
        """Shutdown begins: idle keep-alive connections close, requests in flight go on."""
        await self._context.terminated.set()

    def stop(self) -> None:
        """Every connection has ended: run the lifespan shutdown."""
        self._stop.set()

    async def serve_connection(self, stream: trio.SocketStream, replay: bytes) -> None:
        """Serve ``stream`` (whose first bytes, already read, are ``replay``) as hypercorn would."""
        replayed = ReplayStream(stream, replay)
        if _HAS_STATE:
            await TCPServer(self._app, self._config, self._context, dict(self._state), replayed).run()  # type: ignore[arg-type]  # duck-typed stream
        else:
            # hypercorn before 0.15: no state argument; ReplayStream is a duck-typed SocketStream.
            await TCPServer(self._app, self._config, self._context, replayed).run()  # type: ignore[call-arg, arg-type]
