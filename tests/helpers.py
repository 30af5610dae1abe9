"""Helpers shared by the test-suite."""

from __future__ import annotations

from typing import Any

import orjson
import trio

from runtime import Subscriber


def live_tasks() -> set[trio.lowlevel.Task]:
    """Every task currently alive in this Trio run (walks the task tree)."""
    found: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None or task in found:
            continue
        found.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return found


class Probe(Subscriber):
    """A subscriber that records what it is given, as a connection would send it (a client's stand-in).

    ``accept=False`` drops every live event (a full buffer); join frames
    (``initial``) are always taken, as an outbox takes them.
    """

    def __init__(self, accept: bool = True) -> None:
        self.events: list[Any] = []
        self.times: list[float] = []  # when each event arrived (Trio clock)
        self.accept = accept

    def deliver(self, event: Any, *, initial: bool = False) -> bool:
        if not self.accept and not initial:
            return False
        self.events.append(event)
        self.times.append(trio.current_time())
        return True

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def offsets(self) -> list[Any]:
        return [event.offset for event in self.events]

    def envelopes(self) -> list[dict[str, Any]]:
        """The wire frames, decoded: what a WebSocket or SSE client parses."""
        return [orjson.loads(event.json) for event in self.events]
