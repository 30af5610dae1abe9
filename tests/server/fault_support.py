"""What every fault case checks after it: the server's footprint is back to where it was.

A footprint is the process's Trio tasks, open descriptors and resident memory: a fault that
leaks a task, a socket or a buffer per connection shows in one of them. Tasks and descriptors
must come back exactly (after a bounded wait: a connection's cleanup takes a few scheduler
rounds); memory within `RSS_SLACK`, since CPython keeps freed arenas and the allocator keeps
pages (measured: +0-3 MiB after a few hundred connections come and go).
"""

from __future__ import annotations

import os

import attrs
import httpx
import trio

from runtime.server.metrics import live_tasks

#: How much resident memory may grow over a fault case and still count as "back".
RSS_SLACK = 16 * 1024 * 1024


@attrs.frozen
class Footprint:
    tasks: int
    fds: int
    rss: int

    def within(self, baseline: Footprint) -> bool:
        return self.tasks <= baseline.tasks and self.fds <= baseline.fds and self.rss <= baseline.rss + RSS_SLACK


def _rss(pid: int | str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def here() -> Footprint:
    """This process's footprint (a server run in the test's own Trio run)."""
    return Footprint(live_tasks(), len(os.listdir("/proc/self/fd")), _rss("self"))


async def of_process(pid: int, http_url: str) -> Footprint:
    """A server subprocess's footprint: tasks from its /metrics, the rest from /proc (the scrape's
    own connection is closed before the descriptors are counted)."""
    async with httpx.AsyncClient(base_url=http_url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    tasks = next(int(float(line.split()[-1])) for line in text.splitlines() if line.startswith("runtime_tasks"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return Footprint(tasks, fds, _rss(pid))


async def back_to(baseline: Footprint, measure, limit: float = 10) -> Footprint:
    """Wait (bounded) until ``await measure()`` is within ``baseline``; assert it is."""
    now = await measure()
    with trio.move_on_after(limit):
        while not now.within(baseline):
            await trio.sleep(0.02)
            now = await measure()
    assert now.within(baseline), (baseline, now)
    return now


async def measure_here() -> Footprint:
    return here()
