"""Idempotency keys of stream calls: checking an explicit one, and the automatic ones of a keyed scope.

A queue handler is retried when it fails, so every stream mutation it made
before failing would apply again. The step runner runs each delivery in a
`keyed_calls` scope named after the message: every mutation made in the
scope (in the task that runs the handler) without a key of its own gets
``<scope>:<n>``, its ordinal in the run, so the retried run's calls carry
the same keys and the group answers them with their first results instead
of applying them again. That holds while the handler makes its calls in
the same order each time; a call it makes in a task of its own (a
nursery it opens) takes the next ordinal whenever it gets there.

It lives in streams, below steps, as the trace id does (tracing.py), so
streams need not know about queues.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["MAX_KEY_LENGTH", "call_key", "check_key", "keyed_calls"]

#: Longest key accepted (a record's key is stored with each group's records).
MAX_KEY_LENGTH = 256


class _Scope:
    __slots__ = ("prefix", "count")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("idempotency_scope", default=None)


@contextmanager
def keyed_calls(prefix: str) -> Iterator[None]:
    """Give the mutations made in this block keys ``<prefix>:0``, ``<prefix>:1``, ... (see the module)."""
    token = _scope.set(_Scope(prefix))
    try:
        yield
    finally:
        _scope.reset(token)


def check_key(key: Any) -> str | None:
    """``key`` as given (None, or a string of 1 to `MAX_KEY_LENGTH` characters), else TypeError/ValueError."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise TypeError(f"idempotency_key must be a string or None, not {type(key).__name__}")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key must be 1 to {MAX_KEY_LENGTH} characters, got {len(key)}")
    return key


def call_key(explicit: Any) -> str | None:
    """The key of one mutation call: its own (checked), else its ordinal in the keyed scope, else None.

    A call with a key of its own still takes an ordinal, so the calls after
    it keep their keys whichever calls pass one.
    """
    key = check_key(explicit)
    scope = _scope.get()
    if scope is None:
        return key
    ordinal = scope.count
    scope.count = ordinal + 1
    return key if key is not None else f"{scope.prefix}:{ordinal}"
