"""Counters for ``GET /metrics``, rendered in Prometheus' text format (pure function)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import attrs
import trio

if TYPE_CHECKING:
    from ..app import App

__all__ = ["ServerMetrics", "render_metrics"]


@attrs.define
class ServerMetrics:
    connections: Counter = attrs.field(factory=Counter)  # open, by transport
    subscriptions: Counter = attrs.field(factory=Counter)  # open, by transport
    deliveries: int = 0
    resyncs: int = 0
    slow_consumer_drops: int = 0
    slow_consumer_closes: int = 0
    http_requests: Counter = attrs.field(factory=Counter)  # by status code
    #: Connections an exception ended (the per-connection fault boundary), by (listener, stage).
    connection_errors: Counter = attrs.field(factory=Counter)
    #: Episodes of descriptor exhaustion (accept failed with EMFILE/ENFILE/...), by listener (listeners.py).
    accept_exhausted: Counter = attrs.field(factory=Counter)
    #: ``serve --workers``: this worker's id, a ``worker`` label on every sample (each worker answers its own).
    worker: int = 0


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inside = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inside}}} {value}"
    return f"{name} {value}"


def _with_label(line: str, label: str) -> str:
    sample, value = line.rsplit(" ", 1)
    if sample.endswith("}"):
        return f"{sample[:-1]},{label}}} {value}"
    return f"{sample}{{{label}}} {value}"


def live_tasks() -> int:
    """Trio tasks alive in this process (the task tree, walked from the root): a connection, a
    stream or a handler that leaks a task shows here. A few ms with 10,000 tasks, once a scrape."""
    count = 0
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        count += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return count


def render_metrics(app: App, metrics: ServerMetrics) -> str:
    engine, steps = app.engine, app.steps
    families: list[tuple[str, str, str, list[str]]] = [
        ("runtime_connections", "gauge", "Open client connections by transport.",
         [_line("runtime_connections", metrics.connections[t], {"transport": t}) for t in ("sse", "websocket")]),
        ("runtime_subscriptions", "gauge", "Open stream subscriptions by transport.",
         [_line("runtime_subscriptions", metrics.subscriptions[t], {"transport": t}) for t in ("sse", "websocket")]),
        ("runtime_events_published_total", "counter", "Stream events published by group actors.",
         [_line("runtime_events_published_total", engine.metrics.events_published)]),
        ("runtime_events_followed_total", "counter",
         "Stream events other processes made, delivered here (shared storage).",
         [_line("runtime_events_followed_total", engine.metrics.events_followed)]),
        ("runtime_deliveries_total", "counter", "Frames queued to subscribers.",
         [_line("runtime_deliveries_total", metrics.deliveries)]),
        ("runtime_resyncs_total", "counter", "Fresh syncs sent to subscribers that fell behind.",
         [_line("runtime_resyncs_total", metrics.resyncs)]),
        ("runtime_slow_consumer_drops_total", "counter", "Backlogs dropped because a subscriber fell behind.",
         [_line("runtime_slow_consumer_drops_total", metrics.slow_consumer_drops)]),
        ("runtime_slow_consumer_closes_total", "counter", "Connections closed because they fell behind.",
         [_line("runtime_slow_consumer_closes_total", metrics.slow_consumer_closes)]),
        ("runtime_subscriber_errors_total", "counter",
         "Subscribers that raised during a group's delivery; each was removed from its group alone.",
         [_line("runtime_subscriber_errors_total", engine.metrics.subscriber_errors)]),
        ("runtime_mailbox_depth", "gauge", "Messages waiting in group actor mailboxes.",
         [_line("runtime_mailbox_depth", engine.mailbox_depth())]),
        ("runtime_active_groups", "gauge", "Stream groups active in memory.",
         [_line("runtime_active_groups", engine.active_groups)]),
        ("runtime_handler_errors_total", "counter", "Step handler invocations that raised.",
         [_line("runtime_handler_errors_total", steps.metrics.handler_errors + engine.triggers.errors)]),
        ("runtime_trigger_events_dropped_total", "counter",
         "Stream events a trigger never saw: its queue for the group was full (trigger_queue_size).",
         [_line("runtime_trigger_events_dropped_total", engine.triggers.dropped)]),
        ("runtime_queue_retries_total", "counter", "Queue deliveries retried.",
         [_line("runtime_queue_retries_total", steps.metrics.retries)]),
        ("runtime_queue_dead_letters_total", "counter", "Queue messages moved to the dead-letter list.",
         [_line("runtime_queue_dead_letters_total", steps.metrics.dead_lettered)]),
        ("runtime_http_requests_total", "counter", "HTTP requests answered, by status.",
         [_line("runtime_http_requests_total", n, {"status": str(s)})
          for s, n in sorted(metrics.http_requests.items())]),
        ("runtime_connection_errors_total", "counter",
         "Connections ended by an exception (a reset, a protocol error, a bug), by listener and stage.",
         [_line("runtime_connection_errors_total", n, {"listener": listener, "stage": stage})
          for (listener, stage), n in sorted(metrics.connection_errors.items())]),
        ("runtime_tasks", "gauge", "Trio tasks alive in the process (a leak grows it).",
         [_line("runtime_tasks", live_tasks())]),
        ("runtime_accept_exhausted_total", "counter",
         "Times a listener ran out of descriptors (accept failed with EMFILE/ENFILE) and paused accepting.",
         [_line("runtime_accept_exhausted_total", metrics.accept_exhausted[listener], {"listener": listener})
          for listener in ("http", "stream")]),
    ]
    if metrics.worker:
        label = f'worker="{metrics.worker}"'
        families = [(name, kind, help_text, [_with_label(line, label) for line in lines])
                    for name, kind, help_text, lines in families]
    out: list[str] = []
    for name, kind, help_text, lines in families:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(lines)
    return "\n".join(out) + "\n"
