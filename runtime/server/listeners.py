"""Both ports' accept loop and their one per-connection fault boundary.

A `Listener` owns one port's listening sockets (the HTTP port's, the
stream port's; `serve.py` makes one of each):

* **It accepts until `stop`**, the first step of a shutdown: the sockets
  are closed there and then, so a connection opened after SIGTERM is
  refused by the kernel instead of being accepted and then cut (which
  left WebSocket clients with syncs and a 1006 when the grace period
  ended, issue #13).
* **It keeps serving through descriptor exhaustion.** ``accept`` failing
  with EMFILE / ENFILE (or ENOBUFS / ENOMEM) pauses accepting only: the
  connections already open go on, the waiting ones stay in the kernel's
  backlog, and accept is retried after a back-off (10 ms, doubling to
  0.5 s) until descriptors free up. One warning per episode (not one per
  retry, as `trio.serve_listeners` logs) and one count in
  ``runtime_accept_exhausted_total{listener}``.
* **Each connection is a fault boundary.** Whatever escapes its handler
  (any ``OSError``, a protocol error, a bug in our code or in a hook) ends
  that connection alone: it is logged once with the peer, the stage and
  a trace id, counted in ``runtime_connection_errors_total{listener,stage}``,
  the socket is closed, and nothing reaches the listener or the server's
  nursery. The handler keeps `Accepted.stage` (and `Accepted.trace_id`
  when it has one) current for that line. A reset is the client's doing
  and logged at INFO; anything else is a bug and logged with its
  traceback at ERROR.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from ..steps.context import new_trace_id
from .bind import open_listeners

if TYPE_CHECKING:
    from .metrics import ServerMetrics

__all__ = ["Accepted", "Listener", "NETWORK_ERRORS", "EXHAUSTION_ERRNOS"]

logger = logging.getLogger("runtime.server")

#: accept(2) errors that mean "no descriptor or buffer for now", not "this socket is broken".
EXHAUSTION_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: Back-off while descriptors are exhausted: the first retry, and the longest wait between two.
FIRST_RETRY = 0.01
LONGEST_RETRY = 0.5
#: What a connection the network dropped raises: logged at INFO, a client's doing, not a bug.
NETWORK_ERRORS: tuple[type[Exception], ...] = (OSError, trio.BrokenResourceError, trio.ClosedResourceError)


class Accepted:
    """One accepted connection, as its listener's fault boundary sees it."""

    __slots__ = ("stream", "peer", "stage", "trace_id")

    def __init__(self, stream: trio.SocketStream, peer: tuple[str, int] | None, stage: str) -> None:
        self.stream = stream
        #: The client's (host, port), read at accept: after a reset getpeername() raises ENOTCONN.
        self.peer = peer
        #: Where the connection is (the ``stage`` label); the handler moves it on.
        self.stage = stage
        #: The trace id of what the connection is doing, when it has one (an HTTP request's).
        self.trace_id: str | None = None

    @staticmethod
    def peer_of(stream: trio.SocketStream) -> tuple[str, int] | None:
        try:
            host, port = stream.socket.getpeername()[:2]
        except (OSError, AttributeError):
            return None
        return host, port


Handler = Callable[[Accepted], Awaitable[None]]


class Listener:
    """One port: its sockets, its accept loop, and the fault boundary around each connection."""

    def __init__(self, name: str, handler: Handler, metrics: ServerMetrics, *, first_stage: str,
                 network_errors: tuple[type[Exception], ...] = NETWORK_ERRORS) -> None:
        self.name = name  # the ``listener`` label
        self._handler = handler
        self._metrics = metrics
        self._first_stage = first_stage
        self._network = network_errors
        self.sockets: list[trio.SocketListener] = []
        self.stopped = False
        self._exhausted = False  # in an exhaustion episode: warned once already

    async def open(self, port: int, host: str, *, backlog: int | None = None, reuse_port: bool = False,
                   ) -> tuple[str, int]:
        """Bind (``port=0``: a free one); the (host, port) bound, for the URL `serve` reports."""
        self.sockets = await open_listeners(port, host, backlog=backlog, reuse_port=reuse_port)
        host, port = self.sockets[0].socket.getsockname()[:2]
        return host, port

    async def serve(self, connections: trio.Nursery, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                    ) -> None:
        """Accept until `stop`; each connection runs in ``connections`` (which the caller bounds at shutdown)."""
        try:
            async with trio.open_nursery() as loops:
                for sock in self.sockets:
                    loops.start_soon(self._accept, sock, connections)
                task_status.started()
        finally:
            self._close()

    def stop(self) -> None:
        """Stop accepting now: the sockets close, so new connections are refused; open ones go on."""
        self.stopped = True
        self._close()

    def _close(self) -> None:
        for sock in self.sockets:
            sock.socket.close()  # an accept waiting on it gets ClosedResourceError and returns

    async def _accept(self, sock: trio.SocketListener, connections: trio.Nursery) -> None:
        delay = 0.0
        while not self.stopped:
            try:
                stream = await sock.accept()
            except trio.ClosedResourceError:
                return  # stopped
            except OSError as exc:
                if exc.errno not in EXHAUSTION_ERRNOS:
                    raise
                if not self._exhausted:
                    self._exhausted = True
                    self._metrics.accept_exhausted[self.name] += 1
                    logger.warning("%s listener: accept failed with %s (%s); serving the open connections, "
                                   "accepting again once descriptors free up", self.name,
                                   errno.errorcode.get(exc.errno or 0, exc.errno), os.strerror(exc.errno or 0))
                delay = min(max(delay * 2, FIRST_RETRY), LONGEST_RETRY)
                await trio.sleep(delay)
                continue
            if self._exhausted:
                self._exhausted = False
                logger.warning("%s listener: accepting again", self.name)
            delay = 0.0
            connections.start_soon(self._connection, stream)

    async def _connection(self, stream: trio.SocketStream) -> None:
        """The fault boundary of one connection (see the module docstring)."""
        try:
            stream.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, True)
        except OSError:
            pass  # reset already: the handler finds out
        accepted = Accepted(stream, Accepted.peer_of(stream), self._first_stage)
        try:
            await self._handler(accepted)
        except Exception as exc:  # noqa: BLE001 - the fault boundary: one connection ends, never the listener
            self._failed(accepted, exc)
        finally:
            await trio.aclose_forcefully(stream)

    def _failed(self, accepted: Accepted, exc: Exception) -> None:
        self._metrics.connection_errors[(self.name, accepted.stage)] += 1
        peer = f"{accepted.peer[0]}:{accepted.peer[1]}" if accepted.peer else "?"
        extra = {"trace_id": accepted.trace_id or new_trace_id(),
                 "fields": {"listener": self.name, "peer": peer, "stage": accepted.stage}}
        network = self._network
        if isinstance(exc, network) or (isinstance(exc, ExceptionGroup) and exc.split(network)[1] is None):
            logger.info("%s connection from %s ended at %s: %r", self.name, peer, accepted.stage, exc, extra=extra)
        else:
            logger.exception("%s connection from %s failed at %s", self.name, peer, accepted.stage, extra=extra)
