"""The HTTP port's front door: SSE subscriptions served directly, everything else by hypercorn.

Every connection is accepted here and its first request head parsed with
h11 (bounded in size and time). A ``GET <prefix>/<stream>/<group>[/<item>]``
is admitted as on the ASGI route and, once admitted, streamed by
`sse_direct` on the raw socket; a refusal is answered here and the
connection then goes on in hypercorn. Any other request — and anything h11
cannot parse, and every later request of a keep-alive connection — is handed
to hypercorn with the bytes read so far replayed, so it answers exactly as
if it had accepted the connection itself (errors included).
"""

from __future__ import annotations

import logging
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import h11
import orjson
import trio
from werkzeug.datastructures import Headers

from ..steps.context import new_trace_id
from .auth import Subscription
from .flusher import Flusher
from .sse import SSE_HEADERS, cors_headers, subscription_target
from .sse_direct import DirectSSE
from .sse_session import Refusal, admit

if TYPE_CHECKING:
    from .http import HttpServer
    from .hypercorn_worker import HypercornWorker

__all__ = ["FrontDoor", "MAX_HEAD"]

logger = logging.getLogger("runtime.server")

#: A request head larger than this is hypercorn's to refuse (its h11_max_incomplete_size).
MAX_HEAD = 64 * 1024
_NETWORK_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _common_headers(trace_id: str) -> list[tuple[str, str]]:
    return [("date", formatdate(usegmt=True)), ("server", "hypercorn-h11"), ("x-trace-id", trace_id)]


def _lower(headers: Any) -> list[tuple[str, str]]:
    """Header names as hypercorn writes them."""
    return [(name.lower(), value) for name, value in headers]


class FrontDoor:
    def __init__(self, server: HttpServer, worker: HypercornWorker, *, head_timeout: float, backlog: int) -> None:
        self.server = server
        self.worker = worker
        self.flusher = Flusher()
        self._head_timeout = head_timeout
        self._backlog = backlog
        self._reading: set[trio.CancelScope] = set()  # connections still sending their first request

    async def serve(self, shutdown: trio.Event, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Accept until ``shutdown``; then SSE streams and hypercorn's requests end, each bounded."""
        settings = self.server.settings
        listeners = await trio.open_tcp_listeners(settings.port, host=settings.host, backlog=self._backlog)
        host, port = listeners[0].socket.getsockname()[:2]
        try:
            await self._serve(listeners, f"http://{host}:{port}", shutdown, task_status)
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()

    async def _serve(self, listeners: list[trio.SocketListener], url: str, shutdown: trio.Event,
                     task_status: trio.TaskStatus[list[str]]) -> None:
        settings = self.server.settings
        async with trio.open_nursery() as outer:
            await outer.start(self.worker.run)
            await outer.start(self.flusher.run)
            async with trio.open_nursery() as connections:
                accepting = trio.CancelScope()

                async def accept() -> None:
                    with accepting:
                        await trio.serve_listeners(self._handle, listeners, handler_nursery=connections)

                connections.start_soon(accept)
                task_status.started([url])
                await shutdown.wait()
                accepting.cancel()
                for listener in listeners:  # new connections are refused from now on
                    await listener.aclose()
                await self.worker.terminate()
                for scope in list(self._reading):  # idle connections close, as in hypercorn
                    scope.cancel()
                # SSE streams were closed by the server and end once written; hypercorn's
                # requests in flight finish; all within the grace period.
                connections.cancel_scope.deadline = trio.current_time() + settings.shutdown_timeout
            self.worker.stop()
            with trio.move_on_after(settings.shutdown_timeout):
                await self.worker.stopped.wait()  # the ASGI lifespan's shutdown
            outer.cancel_scope.cancel()  # the flusher

    async def _handle(self, stream: trio.SocketStream) -> None:
        """One connection, from its first byte to its end (trio closes the stream after)."""
        try:
            stream.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, True)
        except (OSError, AttributeError):
            pass
        try:
            replay = await self._first_request(stream)
            if replay is not None:
                await self.worker.serve_connection(stream, replay)
        except _NETWORK_ERRORS:
            pass  # the client went away
        except Exception:  # noqa: BLE001 - one broken connection must not stop the listener
            logger.exception("HTTP connection failed")

    async def _first_request(self, stream: trio.SocketStream) -> bytes | None:
        """Serve an SSE subscription, or say what to replay to hypercorn; None: the connection is over."""
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        received = bytearray()
        event: Any = h11.NEED_DATA
        with trio.move_on_after(self._head_timeout) as reading:
            self._reading.add(reading)
            try:
                while event is h11.NEED_DATA:
                    event = connection.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(MAX_HEAD)
                        if not data:
                            return None  # left before finishing its request
                        received += data
                        connection.receive_data(data)
            except h11.RemoteProtocolError:
                event = None  # hypercorn answers a bad request as it always has
            finally:
                self._reading.discard(reading)
        if event is h11.NEED_DATA:
            return None  # no request within the keep-alive timeout, as hypercorn would
        target = None
        if isinstance(event, h11.Request) and event.http_version == b"1.1":
            target = subscription_target(self.server.settings.sse_prefix, event.method, event.target, event.headers)
        if target is None:
            return bytes(received)
        return await self._subscription(stream, connection, event, target)

    async def _subscription(self, stream: trio.SocketStream, connection: h11.Connection, request: h11.Request,
                            target: tuple[str, list[str], dict[str, Any]]) -> bytes | None:
        server = self.server
        path, parts, query = target
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers])
        peer = stream.socket.getpeername()
        admitted = await admit(server, Subscription(*parts), headers=headers, path=path, query=query,
                               addr=tuple(peer[:2]) if peer else None)
        cors = cors_headers(server.settings, headers.get("Origin"))
        trace_id = headers.get("X-Trace-Id") or new_trace_id()  # every response carries one, as step routes do
        if isinstance(admitted, Refusal):
            await stream.send_all(self._refusal(connection, admitted, [*cors, ("X-Trace-Id", trace_id)]))
            server.metrics.http_requests[admitted.status] += 1
            # the connection goes on as any other: hypercorn serves what comes next
            while connection.next_event() not in (h11.NEED_DATA, h11.PAUSED):
                pass
            rest, _ = connection.trailing_data
            return bytes(rest)
        head = connection.send(h11.Response(status_code=200, headers=[
            *_lower(SSE_HEADERS), *_lower(cors), *_common_headers(trace_id)]))
        server.metrics.http_requests[200] += 1
        await DirectSSE(server, self.flusher, stream, admitted).run(head)
        return None

    @staticmethod
    def _refusal(connection: h11.Connection, refusal: Refusal, cors: list[tuple[str, str]]) -> bytes:
        body = orjson.dumps(refusal.body)
        headers = [("content-type", "application/json"), ("content-length", str(len(body))), *_lower(cors),
                   ("date", formatdate(usegmt=True)), ("server", "hypercorn-h11")]
        return b"".join([
            connection.send(h11.Response(status_code=refusal.status, headers=headers)) or b"",
            connection.send(h11.Data(data=body)) or b"",
            connection.send(h11.EndOfMessage()) or b"",
        ])
