"""`ExpirySweeper`: deletes items whose TTL has passed, through their group actors.

Storage keeps each item's expiry beside it (written with the group's
batch) and an index of the groups that have one, so the sweeper only asks:
"which groups of this stream have an item due now?" (``expiry_due``), and
sends each of those groups an `ExpireDue`. The group reads which of its
items are due in the same turn and deletes them with ordinary ``delete``
events (offset, history, triggers, subscribers), so an expiry is a change
like any other and happens once: the delete and the expiry's removal are
one commit, on a restart the sweeper finds what fell due while nothing ran,
and two processes on one Redis race like any two writers (the loser's
compare-and-set fails, it catches up, the item is gone: no second event).

Time: expiries are the engine's clock (ms since the epoch); the sweeper
sleeps on Trio's clock for the difference, so under Trio's MockClock with
an engine clock driven by it (`RuntimeClock.now_ms`) TTLs run in virtual
time. A commit that sets a sooner expiry wakes it (``wake``). On a shared
storage other processes set expiries it hears nothing of, so it also looks
every ``poll_interval`` seconds. An item is deleted as soon as the sweeper
gets to it after its expiry, usually within milliseconds; until then a read
still returns it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import trio

from ..storage.base import Storage

__all__ = ["ExpirySweeper"]

logger = logging.getLogger("runtime.streams")


class ExpirySweeper:
    #: Groups read per ``expiry_due`` call, and calls per stream per sweep (a bound, not a target).
    batch = 100
    max_rounds = 10
    #: After a sweep that left something due (a failed group, an item changed in the same batch):
    #: seconds before the next, so a group that keeps failing is not asked in a hot loop.
    retry_interval = 0.1

    def __init__(
        self,
        storage: Storage,
        clock: Callable[[], int],
        streams: Callable[[], list[str]],
        expire: Callable[[str, str], Awaitable[object]],
        *,
        poll_interval: float | None = None,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._streams = streams
        self._expire = expire
        self._poll_interval = poll_interval
        self._target = math.inf  # ms: the soonest expiry known
        self._woken = trio.Event()
        #: Sweeps done and groups asked to expire: for tests and metrics.
        self.sweeps = 0
        self.groups_expired = 0

    def wake(self, stream: str, at: int) -> None:
        """A commit set an expiry at ``at`` (ms); sleep less if it is sooner than what the sweeper waits for."""
        if at < self._target:
            self._target = at
            self._woken.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._woken = trio.Event()
            self._target = math.inf  # a wake while sweeping lowers it
            try:
                soonest = await self._sweep()
            except Exception as exc:  # noqa: BLE001 - storage down: expiry waits and tries again
                logger.warning("expiry sweep failed: %r; trying again in %s s", exc, self.retry_interval)
                soonest = self._clock() + math.ceil(self.retry_interval * 1000)
            if soonest <= self._clock():
                soonest = self._clock() + math.ceil(self.retry_interval * 1000)
            self._target = min(self._target, soonest)
            await self._sleep()

    async def _sleep(self) -> None:
        """Until the target, a sooner wake, or (shared storage) the next poll."""
        while True:
            delay = (self._target - self._clock()) / 1000
            if delay <= 0:
                return
            polled = self._poll_interval is not None and delay >= self._poll_interval
            if polled:
                assert self._poll_interval is not None
                delay = self._poll_interval
            with trio.move_on_after(delay):
                await self._woken.wait()
                self._woken = trio.Event()
                continue
            if polled:
                return

    async def _sweep(self) -> float:
        """Expire everything due now; return the soonest expiry left (ms; inf for none)."""
        self.sweeps += 1
        storage = self._storage
        soonest: float = math.inf
        for stream in self._streams():
            now = self._clock()
            for _ in range(self.max_rounds):
                due = await storage.expiry_due(stream, now, self.batch)
                for group in due:
                    await self._expire_group(stream, group)
                if len(due) < self.batch:
                    break
            at = await storage.expiry_next(stream)
            if at is not None:
                soonest = min(soonest, at)
        return soonest

    async def _expire_group(self, stream: str, group: str) -> None:
        try:
            await self._expire(stream, group)
        except Exception as exc:  # noqa: BLE001 - one group's failure leaves the others' expiry alone
            logger.warning("%s/%s: could not expire due items: %r", stream, group, exc)
            return
        self.groups_expired += 1
