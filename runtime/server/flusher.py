"""One task writes every WebSocket connection that has frames queued.

With a writer task per connection, each event a group fans out to N
connections cost N task wake-ups (park, reschedule, resume, `send_all`),
which is where the time and the latency went (docs/performance.md). Here a
group's deliveries only append to outboxes; the first append to an idle
outbox puts it on the flusher's list (`mark`), and the flusher — one task,
owned by the `WebSocketServer`'s nursery — wakes once, takes each listed
outbox's frames and writes them with one non-blocking ``send``. Whatever
the kernel does not accept (the socket buffer is full: a slow or stalled
reader) goes back to that connection's own writer task
(`Outbox.hand_back`), which waits until its socket is writable; so one
stalled reader never delays the others, and the slow-consumer policy (the
outbox bound, resync or close) works exactly as it does for the writer.

Writes happen between two checkpoints of the flusher, so a connection's
bytes are never written by two tasks at once: the writer only writes while
the outbox is handed back to it (``flushing`` False).
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

import trio

from .waiter import Waiter

__all__ = ["Flusher", "Flushable", "write_nonblocking"]

logger = logging.getLogger("runtime.server")


class Flushable(Protocol):
    def flush(self) -> None:
        """Write what is queued without waiting (the flusher's pass)."""


def write_nonblocking(sock: trio.socket.SocketType, data: bytes) -> int:
    """Write ``data`` to a (non-blocking) Trio socket without waiting; how many bytes the kernel took.

    Trio keeps its sockets in non-blocking mode, so a plain write returns at
    once: all, part, or nothing of ``data`` (BlockingIOError). Other errors
    (the peer reset) are left to the connection's writer, whose `send_all`
    meets them too and ends the connection as usual: nothing is written here.
    """
    fd = sock.fileno()
    if fd < 0:
        return 0  # closed: the connection is ending
    try:
        return os.write(fd, data)
    except OSError:  # BlockingIOError, InterruptedError, or the peer went away
        return 0


class Flusher:
    """The server-wide writer: a list of connections with frames ready, written in passes."""

    def __init__(self) -> None:
        self._ready: list[Flushable] = []
        self._waiter = Waiter()
        #: Passes made, for tests.
        self.passes = 0
        #: True while `run` runs: connections opened before (or without) it write their own frames.
        self.running = False

    def mark(self, connection: Flushable) -> None:
        """``connection`` has frames queued: write them in the next pass (called once until then)."""
        self._ready.append(connection)
        self._waiter.wake()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forever: wait for a marked connection, then write every connection marked so far."""
        self.running = True
        task_status.started()
        try:
            await self._run()
        finally:
            # stopping (the server is shutting down): a last non-blocking pass, what would block
            # goes to the connections' writers
            self.running = False
            self._pass()

    async def _run(self) -> None:
        while True:
            if self._ready:
                await trio.lowlevel.checkpoint()  # marked while writing: let the others run first
            else:
                await self._waiter.park()
            self._pass()

    def _pass(self) -> None:
        ready, self._ready = self._ready, []
        self.passes += 1
        for connection in ready:
            try:
                connection.flush()
            except Exception:  # noqa: BLE001 - one broken connection must not stop the others' writes
                logger.exception("flushing %r failed", connection)
