"""`step(...)`: a named handler and the triggers that run it.

Both of Motia's Python styles are accepted, so a step file ports by changing
its imports: ``config = {...}`` plus ``async def handler(...)``, or
``s = step({...})`` with ``@s.handle``. The older ``"type": "api" | "event"
| "cron"`` configs are converted to triggers.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .triggers import Trigger, cron, http, parse_trigger, queue

__all__ = ["RetryPolicy", "Step", "StepConfig", "step", "handler_arity"]


@attrs.frozen
class RetryPolicy:
    """Queue delivery attempts: ``attempts`` in all, then the dead-letter list.

    Attempt n+1 waits ``backoff * factor**(n-1)`` seconds (capped at
    ``max_backoff``), stretched by up to ``jitter`` (a fraction, 0.1 = ±10%)
    so that a burst of failures does not retry in lockstep.
    """

    attempts: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0
    jitter: float = 0.1

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("retry attempts must be at least 1")
        if self.backoff < 0 or self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("retry backoff must be >= 0, factor >= 1, jitter within [0, 1]")

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt, after ``failed_attempts`` failures."""
        base = min(self.max_backoff, self.backoff * self.factor ** (failed_attempts - 1))
        if self.jitter and base:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return base

    @classmethod
    def parse(cls, value: Any) -> RetryPolicy:
        if value is None:
            return cls()
        if isinstance(value, RetryPolicy):
            return value
        if isinstance(value, int):
            return cls(attempts=value)
        if isinstance(value, Mapping):
            return cls(**dict(value))
        raise TypeError(f"retry must be a RetryPolicy, a dict of its fields or a number of attempts, not {value!r}")


@attrs.frozen
class StepConfig:
    name: str
    triggers: tuple[Trigger, ...] = ()
    description: str | None = None
    enqueues: tuple[str, ...] = ()
    flows: tuple[str, ...] = ()
    timeout: float | None = None
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def parse(cls, config: Mapping[str, Any] | StepConfig) -> StepConfig:
        if isinstance(config, StepConfig):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(f"a step config is a dict, not {type(config).__name__}")
        fields = dict(config)
        name = fields.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ValueError("a step needs a non-empty string 'name'")
        triggers = [parse_trigger(t) for t in fields.pop("triggers", [])]
        triggers.extend(_legacy_triggers(fields))
        enqueues = fields.pop("enqueues", None)
        emits = fields.pop("emits", None)
        retry = fields.pop("retry", fields.pop("retries", None))
        timeout = fields.pop("timeout", None)
        infrastructure = fields.pop("infrastructure", None) or {}
        if retry is None and (infrastructure.get("queue") or {}).get("max_retries") is not None:
            retry = {"attempts": 1 + infrastructure["queue"]["max_retries"]}
        for motia_only in (
            "virtualEmits", "virtualSubscribes", "virtualEnqueues", "includeFiles",
            "virtual_emits", "virtual_subscribes", "virtual_enqueues", "include_files",
        ):
            fields.pop(motia_only, None)  # flow-diagram and bundling hints: nothing to run
        description = fields.pop("description", None)
        flows = fields.pop("flows", ())
        if fields:
            raise ValueError(f"step {name!r}: unknown config field(s) {sorted(fields)}")
        return cls(
            name=name,
            triggers=tuple(triggers),
            description=description,
            enqueues=tuple(_topics(enqueues if enqueues is not None else emits or ())),
            flows=tuple(flows),
            timeout=timeout,
            retry=RetryPolicy.parse(retry),
        )


def _topics(values: Any) -> list[str]:
    topics = []
    for value in values:
        topics.append(value["topic"] if isinstance(value, Mapping) else value)
    return topics


def _legacy_triggers(fields: dict[str, Any]) -> list[Trigger]:
    """Motia's pre-trigger configs: ``type`` api / event / cron."""
    kind = fields.pop("type", None)
    if kind is None:
        return []
    if kind == "api":
        return [http(fields.pop("method", "GET"), fields.pop("path"), body_schema=fields.pop("bodySchema", None))]
    if kind == "event":
        fields.pop("input", None)
        return [queue(topic) for topic in fields.pop("subscribes", [])]
    if kind == "cron":
        return [cron(fields.pop("cron"))]
    if kind == "noop":
        return []
    raise ValueError(f"unknown step type {kind!r}")


def handler_arity(fn: Callable[..., Any]) -> int:
    """How many arguments a handler takes: 1 (input) or 2 (input, ctx).

    Raises TypeError for anything else, so a wrong signature stops the
    loader with a clear message instead of failing at the first call.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the handler's signature: {exc}") from None
    positional = [
        p for p in signature.parameters.values()
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values())
    required_kw = [
        p.name for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if required_kw:
        raise TypeError(f"handler has required keyword-only parameter(s) {required_kw}")
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    if varargs or len(positional) >= 2:
        if len(required) > 2:
            raise TypeError(f"handler takes {len(required)} arguments; it must take (input) or (input, ctx)")
        return 2
    if len(positional) == 1:
        return 1
    raise TypeError("handler takes no arguments; it must take (input) or (input, ctx)")


class Step:
    """A step: its config and, once set, its handler."""

    def __init__(self, config: Mapping[str, Any] | StepConfig, handler: Callable[..., Any] | None = None) -> None:
        self.config = StepConfig.parse(config)
        self.handler: Callable[..., Any] | None = None
        self.arity = 2
        self.is_async = True
        self.module: str | None = None
        self.file: str | None = None
        self.line: int | None = None  # where the loader found it declared
        if handler is not None:
            self.handle(handler)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def triggers(self) -> tuple[Trigger, ...]:
        return self.config.triggers

    def __repr__(self) -> str:
        return f"<Step {self.name!r} triggers={[t.type for t in self.triggers]}>"

    def handle(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Set the handler; usable as ``@s.handle``. Returns ``fn`` unchanged."""
        self.arity = handler_arity(fn)
        call = getattr(fn, "__call__", None)  # noqa: B004 - whether an object's __call__ is async, not callability
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)
        self.handler = fn
        return fn


def step(config: Mapping[str, Any] | StepConfig, handler: Callable[..., Any] | None = None) -> Step:
    """Declare a step: ``step({"name": ..., "triggers": [...]})``, then ``.handle(fn)``."""
    return Step(config, handler)
