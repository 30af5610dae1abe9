"""Trigger declarations: what makes a step run.

`http`, `queue`, `stream` and `cron` build frozen trigger objects; a step
may have several. `parse_trigger` also accepts the dict forms Motia step
files use (``{"type": "http", "method": "POST", "path": "/todos"}``), so
a ported file keeps working whichever style it was written in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs

__all__ = [
    "Condition", "HttpTrigger", "QueueTrigger", "StreamTrigger", "CronTrigger", "Trigger",
    "api", "http", "queue", "stream", "cron", "parse_trigger", "HTTP_METHODS",
]

#: ``(input, ctx) -> bool``, sync or async. Only a false result skips the step.
Condition = Callable[..., Any]

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_PATH_SEGMENT = re.compile(r"^(?::[A-Za-z_][A-Za-z0-9_]*|[^:/]*)$")


def _check_path(path: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"an http path must start with '/': {path!r}")
    for segment in path.strip("/").split("/"):
        if not _PATH_SEGMENT.match(segment):
            raise ValueError(f"bad path segment {segment!r} in {path!r} (use :name for parameters)")
    return path


@attrs.frozen
class HttpTrigger:
    method: str = attrs.field(converter=lambda m: str(m).upper())
    path: str = attrs.field(converter=_check_path)
    body_schema: Mapping[str, Any] | None = None
    condition: Condition | None = attrs.field(default=None, eq=False)
    type: str = attrs.field(default="http", init=False)

    def __attrs_post_init__(self) -> None:
        if self.method not in HTTP_METHODS:
            raise ValueError(f"unknown HTTP method {self.method!r}")

    def describe(self) -> dict[str, Any]:
        return {"type": "http", "method": self.method, "path": self.path}


@attrs.frozen
class QueueTrigger:
    topic: str
    input: Mapping[str, Any] | None = None
    condition: Condition | None = attrs.field(default=None, eq=False)
    concurrency: int | None = None
    type: str = attrs.field(default="queue", init=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.topic, str) or not self.topic:
            raise ValueError("a queue trigger needs a non-empty topic")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("queue concurrency must be at least 1")

    def describe(self) -> dict[str, Any]:
        return {"type": "queue", "topic": self.topic}


@attrs.frozen
class StreamTrigger:
    stream_name: str
    group_id: str | None = None
    item_id: str | None = None
    condition: Condition | None = attrs.field(default=None, eq=False)
    type: str = attrs.field(default="stream", init=False)

    def describe(self) -> dict[str, Any]:
        return {"type": "stream", "stream": self.stream_name, "group_id": self.group_id, "item_id": self.item_id}


@attrs.frozen
class CronTrigger:
    expression: str
    condition: Condition | None = attrs.field(default=None, eq=False)
    type: str = attrs.field(default="cron", init=False)

    def describe(self) -> dict[str, Any]:
        return {"type": "cron", "expression": self.expression}


Trigger = HttpTrigger | QueueTrigger | StreamTrigger | CronTrigger


def http(
    method: str, path: str, *, body_schema: Mapping[str, Any] | None = None, condition: Condition | None = None
) -> HttpTrigger:
    """Run on ``method path``; ``:name`` segments become ``request.path_params``."""
    return HttpTrigger(method, path, body_schema=body_schema, condition=condition)


#: Motia's SDK calls the HTTP trigger ``api``.
api = http


def queue(
    topic: str,
    *,
    input: Mapping[str, Any] | None = None,
    condition: Condition | None = None,
    concurrency: int | None = None,
) -> QueueTrigger:
    """Run for each message enqueued on ``topic`` (at-least-once, with retries)."""
    return QueueTrigger(topic, input=input, condition=condition, concurrency=concurrency)


def stream(
    stream_name: str, *, group_id: str | None = None, item_id: str | None = None, condition: Condition | None = None
) -> StreamTrigger:
    """Run after each committed change of ``stream_name`` (optionally one group or item)."""
    return StreamTrigger(stream_name, group_id=group_id, item_id=item_id, condition=condition)


def cron(expression: str, *, condition: Condition | None = None) -> CronTrigger:
    """Run at each tick of a standard 5-field cron expression."""
    return CronTrigger(expression, condition=condition)


def parse_trigger(value: Any) -> Trigger:
    """A trigger object, or Motia's dict form of one."""
    if isinstance(value, (HttpTrigger, QueueTrigger, StreamTrigger, CronTrigger)):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"a trigger must be http(...), queue(...), stream(...), cron(...) or a dict, not {value!r}")
    kind = value.get("type")
    condition = value.get("condition")
    if kind in ("http", "api"):
        return http(
            value.get("method", "GET"), value["path"],
            body_schema=value.get("body_schema", value.get("bodySchema")), condition=condition,
        )
    if kind in ("queue", "event"):
        return queue(
            value["topic"], input=value.get("input"), condition=condition, concurrency=value.get("concurrency")
        )
    if kind == "stream":
        return stream(
            value.get("stream_name", value.get("streamName")),
            group_id=value.get("group_id", value.get("groupId")),
            item_id=value.get("item_id", value.get("itemId")),
            condition=condition,
        )
    if kind == "cron":
        return cron(value.get("expression", value.get("cron")), condition=condition)
    raise ValueError(f"unknown trigger type {kind!r} (http, queue, stream or cron)")
