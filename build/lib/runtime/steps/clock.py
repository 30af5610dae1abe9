"""The runtime's wall clock, driven by Trio's clock.

Cron ticks and queue due times are wall-clock things, but tests run on
Trio's MockClock. `RuntimeClock` anchors a wall time to a Trio time once
and then advances with Trio's clock: in production that is the monotonic
clock (drift from the wall clock is a matter of seconds per month, and a
restart re-anchors); under MockClock, virtual time moves cron and retries.
"""

from __future__ import annotations

import time

import trio

__all__ = ["RuntimeClock"]


class RuntimeClock:
    def __init__(self, start_wall: float | None = None) -> None:
        self._start_wall = start_wall
        self._anchor: tuple[float, float] | None = None

    def _anchored(self) -> tuple[float, float]:
        if self._anchor is None:
            wall = self._start_wall if self._start_wall is not None else time.time()
            self._anchor = (wall, trio.current_time())
        return self._anchor

    def now(self) -> float:
        """Seconds since the epoch."""
        wall, trio_start = self._anchored()
        return wall + (trio.current_time() - trio_start)

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def trio_time_at(self, wall: float) -> float:
        """The Trio time at which the wall clock will read ``wall``."""
        wall_start, trio_start = self._anchored()
        return trio_start + (wall - wall_start)
