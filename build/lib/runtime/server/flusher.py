"""One task writes every connection that has frames queued, WebSocket and SSE alike.

With a writer task per connection, each event a group fans out to N
connections cost N task wake-ups (park, reschedule, resume, `send_all`),
which is where the time and the latency went (docs/performance.md). Here a
group's deliveries only append to outboxes; the first append to an idle
outbox puts it on the flusher's list (`mark`), and the flusher — one task,
owned by the server's nursery — wakes once, lets the tasks already running
finish their turn, takes each listed outbox's frames and writes them with
one non-blocking ``write`` (`Outbox.flush`). Whatever the kernel does not
accept (the socket buffer is full: a slow or stalled reader) goes back to
that connection's own writer task (`Outbox.hand_back`), which waits until
its socket is writable; so one stalled reader never delays the others, and
the slow-consumer policy (the outbox bound, resync or close) works exactly
as it does for the writer.

Writes happen between two checkpoints of the flusher, so a connection's
bytes are never written by two tasks at once: the writer only writes while
the outbox is handed back to it (``flushing`` False).
"""

from __future__ import annotations

import logging

import trio

from .outbox import Outbox
from .waiter import Waiter

__all__ = ["Flusher", "FLUSH_YIELDS"]

logger = logging.getLogger("runtime.server")

#: Scheduler passes the flusher lets go by before it writes, so that the
#: group turns the last pass (or the first mark) woke — a closed-loop
#: producer's next commits — join this write instead of needing their own:
#: microseconds of latency when the server is idle, several events per write
#: instead of one with one producer (bench/sse.py: 4 µs of server CPU per
#: delivery instead of 12).
FLUSH_YIELDS = 8


class Flusher:
    """The server-wide writer: a list of outboxes with frames ready, written in passes."""

    def __init__(self, *, yields: int = FLUSH_YIELDS) -> None:
        self._ready: list[Outbox] = []
        self._waiter = Waiter()
        self._yields = max(1, yields)  # at least one checkpoint between passes
        #: Passes made, for tests.
        self.passes = 0
        #: True while `run` runs: connections opened before (or without) it write their own frames.
        self.running = False

    def mark(self, outbox: Outbox) -> None:
        """``outbox`` has frames queued: write them in the next pass (called once until then)."""
        self._ready.append(outbox)
        self._waiter.wake()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Forever: wait for a marked outbox, let the running turns finish, write every outbox marked so far."""
        self.running = True
        task_status.started()
        try:
            while True:
                if not self._ready:
                    await self._waiter.park()
                for _ in range(self._yields):
                    await trio.lowlevel.checkpoint()
                self._pass()
        finally:
            # stopping (the server is shutting down): a last non-blocking pass, what would block
            # goes to the connections' writers
            self.running = False
            self._pass()

    def _pass(self) -> None:
        ready, self._ready = self._ready, []
        self.passes += 1
        now = trio.current_time()
        for outbox in ready:
            try:
                outbox.flush(now)
            except Exception:  # noqa: BLE001 - one broken connection must not stop the others' writes
                logger.exception("flushing %r failed", outbox)
