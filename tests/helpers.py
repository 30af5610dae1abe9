"""Helpers shared by the test-suite."""

from __future__ import annotations

import trio


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
