"""Times the cyclic garbage collector's pauses in a bench/fanout.py server (runtime and baselines alike).

`install()` registers a ``gc.callbacks`` hook; `read()` returns the counters
so far and restarts the "longest pause" window, so that the driver, reading
before and after a row, gets the row's pauses and its longest one. The
collector itself is left exactly as the server configures it.
"""

from __future__ import annotations

import gc
import time
from typing import Any

_stats: dict[str, Any] = {"count": 0, "full": 0, "total_s": 0.0, "max_s": 0.0}
_started = 0.0


def _on_gc(phase: str, info: dict[str, int]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
        return
    pause = time.perf_counter() - _started
    _stats["count"] += 1
    _stats["full"] += info["generation"] == 2
    _stats["total_s"] += pause
    _stats["max_s"] = max(_stats["max_s"], pause)


def install() -> None:
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def read() -> dict[str, Any]:
    stats = dict(_stats)
    _stats["max_s"] = 0.0
    return stats
