"""Pings for every WebSocket connection, from one task.

A task per connection that sleeps 25 s, pings, and waits 20 s for the pong
is ~30 objects and a timer per idle connection, and every one of them is
scanned by each full garbage collection (with thousands of connections, the
longest pauses the server had). Here the server keeps one heap of due
times: a connection's next ping, PING_INTERVAL after it opened or after its
last answered ping; and the deadline of the ping it was sent, PONG_TIMEOUT
later. One task sleeps until the earliest and does what is due. Entries
hold connections weakly, so a closed connection is not kept alive by its
pending entries (under churn that would be up to PING_INTERVAL of them).

With ``pong_timeout=None`` it is a keep-alive instead (SSE's ``: ping``
comments): no answer is expected, and a ping is only sent to a connection
that has written nothing for ``ping_interval`` (`Pingable.last_write`), so
one task replaces a timer per SSE connection.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import weakref
from typing import Protocol

import trio

__all__ = ["Heartbeat", "PING_INTERVAL", "PONG_TIMEOUT"]

logger = logging.getLogger("runtime.server")

#: The defaults (ServerSettings.ws_ping_interval, ws_pong_timeout).
PING_INTERVAL = 25.0
PONG_TIMEOUT = 20.0

_PING = 0  # the kind of a due entry: send a ping (or, > 0, the deadline of ping number n)


class Pingable(Protocol):
    #: Pings sent so far, and the number of the last one a pong answered.
    pings_sent: int
    pings_answered: int

    @property
    def open(self) -> bool: ...

    @property
    def last_write(self) -> float:
        """When the connection last wrote (Trio clock); read only by a keep-alive heartbeat."""

    def ping(self) -> None:
        """Queue a ping frame."""

    def timed_out(self) -> None:
        """No pong in time: close."""


class Heartbeat:
    """The due pings and pong deadlines of every connection, served by one task (`run`)."""

    def __init__(self, *, ping_interval: float = PING_INTERVAL, pong_timeout: float | None = PONG_TIMEOUT) -> None:
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        #: (when, tie-break, kind, connection): a heap
        self._due: list[tuple[float, int, int, weakref.ref[Pingable]]] = []
        self._order = itertools.count()
        self._sleep: trio.CancelScope | None = None

    def watch(self, connection: Pingable) -> None:
        """A new connection: its first ping is due ``ping_interval`` from now."""
        self._at(trio.current_time() + self.ping_interval, _PING, connection)

    def answered(self, connection: Pingable) -> None:
        """A pong came: if it answers the ping in flight, the next one is due ``ping_interval`` from now.
        (Unasked pongs change nothing, so a client cannot make the server ping faster.)"""
        if connection.pings_answered < connection.pings_sent:
            connection.pings_answered = connection.pings_sent
            self._at(trio.current_time() + self.ping_interval, _PING, connection)

    def _at(self, when: float, kind: int, connection: Pingable) -> None:
        heapq.heappush(self._due, (when, next(self._order), kind, weakref.ref(connection)))
        if self._sleep is not None and when < self._sleep.deadline:
            self._sleep.deadline = when

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        due = self._due
        while True:
            with trio.CancelScope(deadline=due[0][0] if due else math.inf) as self._sleep:
                await trio.sleep_forever()
            self._sleep = None
            now = trio.current_time()
            while due and due[0][0] <= now:
                _, _, kind, ref = heapq.heappop(due)
                connection = ref()
                if connection is None or not connection.open:
                    continue  # gone: its entries just drain away
                try:
                    self._due_now(connection, kind, now)
                except Exception:  # noqa: BLE001 - one broken connection must not stop the others' pings
                    logger.exception("heartbeat of %r failed", connection)

    def _due_now(self, connection: Pingable, kind: int, now: float) -> None:
        if kind == _PING:
            if self.pong_timeout is None:  # keep-alive: only a quiet connection is pinged
                quiet_until = connection.last_write + self.ping_interval
                if quiet_until > now:
                    self._at(quiet_until, _PING, connection)
                    return
                connection.ping()
                self._at(now + self.ping_interval, _PING, connection)
                return
            connection.pings_sent += 1
            connection.ping()
            self._at(now + self.pong_timeout, connection.pings_sent, connection)
        elif connection.pings_answered < kind:
            logger.info("websocket client did not answer a ping within %g s; closing", self.pong_timeout)
            connection.timed_out()
