"""Structured logging for steps: level, message, fields, trace id, step name.

Every record goes through the stdlib ``logging`` tree (logger ``runtime``)
with its structure in ``record.__dict__``, so any handler can use it. Two
formatters ship: readable lines for a terminal and JSON lines for machines;
`configure_logging` picks one from a flag or ``RUNTIME_LOG_FORMAT=json``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["Logger", "TextFormatter", "JsonFormatter", "configure_logging"]

_base = logging.getLogger("runtime.steps")


class Logger:
    """What ``ctx.logger`` is: a logger that carries the step name and trace id.

    ``logger.info("created", {"id": 1})`` or ``logger.info("created", id=1)``:
    fields may be a mapping (Motia's style) or keywords.
    """

    __slots__ = ("step", "trace_id", "fields", "_target")

    def __init__(
        self,
        *,
        step: str | None = None,
        trace_id: str | None = None,
        fields: Mapping[str, Any] | None = None,
        target: logging.Logger = _base,
    ) -> None:
        self.step = step
        self.trace_id = trace_id
        self.fields = dict(fields or {})
        self._target = target

    def child(self, **fields: Any) -> Logger:
        """A logger that adds ``fields`` to every record."""
        return Logger(step=self.step, trace_id=self.trace_id, fields={**self.fields, **fields}, target=self._target)

    def _log(
        self, level: int, message: str, fields: Mapping[str, Any] | None, extra: dict[str, Any], exc_info: Any
    ) -> None:
        if not self._target.isEnabledFor(level):
            return
        merged = {**self.fields, **(fields or {}), **extra}
        self._target.log(
            level,
            message,
            exc_info=exc_info,
            extra={"step": self.step, "trace_id": self.trace_id, "fields": merged},
            stacklevel=3,
        )

    def debug(self, message: str, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log(logging.DEBUG, message, fields, extra, None)

    def info(self, message: str, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log(logging.INFO, message, fields, extra, None)

    def warning(self, message: str, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log(logging.WARNING, message, fields, extra, None)

    warn = warning

    def error(
        self, message: str, fields: Mapping[str, Any] | None = None, *, exc_info: Any = None, **extra: Any
    ) -> None:
        self._log(logging.ERROR, message, fields, extra, exc_info)

    def exception(self, message: str, fields: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self._log(logging.ERROR, message, fields, extra, True)


def _structure(record: logging.LogRecord) -> dict[str, Any]:
    return {
        "time": round(record.created, 3),
        "level": record.levelname.lower(),
        "message": record.getMessage(),
        "logger": record.name,
        "step": getattr(record, "step", None),
        "trace_id": getattr(record, "trace_id", None),
        "fields": getattr(record, "fields", None) or {},
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line; tracebacks go in ``"exception"``."""

    def format(self, record: logging.LogRecord) -> str:
        body = _structure(record)
        if record.exc_info:
            body["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return orjson.dumps(body, default=repr).decode()


class TextFormatter(logging.Formatter):
    """``12:00:01 INFO  [CreateTodo] created  id=1  trace=ab12…`` for people."""

    def format(self, record: logging.LogRecord) -> str:
        body = _structure(record)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        where = f"[{body['step']}] " if body["step"] else f"[{record.name}] "
        fields = "".join(f"  {k}={v!r}" if isinstance(v, str) else f"  {k}={v}" for k, v in body["fields"].items())
        trace = f"  trace={body['trace_id']}" if body["trace_id"] else ""
        line = f"{stamp} {record.levelname:<5} {where}{body['message']}{fields}{trace}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line


def configure_logging(*, json: bool | None = None, level: int | str = logging.INFO, stream: Any = None) -> None:
    """Send the runtime's and the actors' logs to ``stream`` (stderr) in one format.

    ``json=None`` reads ``RUNTIME_LOG_FORMAT`` (``json`` or ``text``).
    """
    if json is None:
        json = os.environ.get("RUNTIME_LOG_FORMAT", "text").lower() == "json"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    for name in ("runtime", "actors"):
        target = logging.getLogger(name)
        for old in list(target.handlers):
            if getattr(old, "_runtime_handler", False):
                target.removeHandler(old)
        handler._runtime_handler = True  # type: ignore[attr-defined]  # our mark, to replace it next time
        target.addHandler(handler)
        target.setLevel(level)
        target.propagate = False
