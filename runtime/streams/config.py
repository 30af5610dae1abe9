"""`StreamConfig` and the results of stream calls.

The config is plain data plus its compiled schema: the schema is compiled
when the `StreamConfig` is made, so a bad schema fails in the module that
declares it (the loader reports that file and line, and the stream's name,
with every other problem of the project). The engine combines the compiled
validator and the history policy into a `StreamDefinition`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

import attrs

from ..storage.base import HistoryPolicy
from .ops import item_copy
from .schema import Validator, compile_schema

__all__ = ["StreamConfig", "StreamDefinition", "SetResult", "SetResults", "DeleteResult"]


@attrs.frozen
class StreamConfig:
    """How a stream is declared (api.md, "Streams").

    ``schema`` is JSON Schema or Motia's shorthand; ``history`` bounds what a
    group keeps for resume (count and age). The hooks guard subscriptions and
    are wired by the transports. ``idempotency_window`` (seconds) is how long
    a call's ``idempotency_key`` is remembered, ``idempotency_keys`` how many
    keys a group remembers at most (the newest); see docs/streams.md.
    """

    name: str
    description: str | None = None
    schema: Mapping[str, Any] | None = None
    on_join: Callable[..., Any] | None = None
    on_leave: Callable[..., Any] | None = None
    can_access: Callable[..., Any] | None = None
    history: HistoryPolicy | None = None
    #: ``presence(auth_context, subscription) -> identity | (identity, data) | None`` (docs/presence.md).
    presence: Callable[..., Any] | None = None
    idempotency_window: float = 24 * 3600.0
    idempotency_keys: int = 10_000
    validator: Validator = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a stream needs a non-empty string name")
        window, keys = self.idempotency_window, self.idempotency_keys
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window < float("inf"):
            raise ValueError(f"stream {self.name!r}: idempotency_window must be a positive number of seconds")
        if isinstance(keys, bool) or not isinstance(keys, int) or keys < 1:
            raise ValueError(f"stream {self.name!r}: idempotency_keys must be a positive int")
        try:
            validator = compile_schema(dict(self.schema) if isinstance(self.schema, Mapping) else self.schema)
        except ValueError as exc:
            raise ValueError(f"stream {self.name!r}: invalid schema: {exc}") from None
        object.__setattr__(self, "validator", validator)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> StreamConfig:
        """Accept a plain dict of the same fields, as Motia stream modules export.

        ``base_config`` / ``baseConfig`` (Motia's storage settings) are
        accepted and ignored: storage is chosen for the whole app here.
        Unknown keys are an error, so a typo does not silently drop a hook.
        """
        fields = dict(config)
        fields.pop("base_config", None)
        fields.pop("baseConfig", None)
        for camel, snake in (("onJoin", "on_join"), ("onLeave", "on_leave"), ("canAccess", "can_access")):
            if camel in fields:
                fields[snake] = fields.pop(camel)
        known = {field.name for field in attrs.fields(cls) if field.init}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown stream config field(s) {unknown}; known: {sorted(known)}")
        return cls(**fields)


@attrs.frozen
class StreamDefinition:
    """A declared stream as the engine uses it: config plus what was compiled from it."""

    config: StreamConfig
    validator: Validator
    history: HistoryPolicy

    @property
    def name(self) -> str:
        return self.config.name

    @classmethod
    def compile(cls, config: StreamConfig, default_history: HistoryPolicy) -> StreamDefinition:
        return cls(config=config, validator=config.validator, history=config.history or default_history)


class _Subscriptable:
    """Results also answer ``result["new_value"]``, as Motia's dict results do."""

    def __getitem__(self, key: str) -> Any:
        if key in attrs.fields_dict(type(self)):  # type: ignore[arg-type]  # the subclasses are attrs classes
            return getattr(self, key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


@attrs.frozen
class SetResult(_Subscriptable):
    """What ``set`` and ``update`` return: the item after, and before (``None`` if created)."""

    new_value: dict[str, Any]
    old_value: dict[str, Any] | None


@attrs.frozen
class DeleteResult(_Subscriptable):
    """What ``delete`` returns: the removed item, or ``None`` if there was none."""

    old_value: dict[str, Any] | None


class SetResults(Sequence[SetResult]):
    """What ``update_many`` returns: one `SetResult` per entry, in entry order.

    A read-only sequence (index, slice, iterate, ``len``, compare with a
    list). Each result is copied from the group's items the first time it is
    read, not when the call returns: a bulk writer that never looks at its
    results does not pay for copying them (about half the cost of a batched
    increment). The deferred copy is the same copy: stored items are never
    changed in place (copy-on-write), so what you read later is what the
    call produced, and what you get is yours to mutate. Holding the object
    keeps those item versions alive.
    """

    __slots__ = ("_pairs", "_copied")

    def __init__(self, pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
        self._pairs = pairs
        self._copied: list[SetResult | None] = [None] * len(pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    @overload
    def __getitem__(self, index: int) -> SetResult: ...
    @overload
    def __getitem__(self, index: slice) -> list[SetResult]: ...

    def __getitem__(self, index: int | slice) -> SetResult | list[SetResult]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._pairs)))]
        result = self._copied[index]
        if result is None:
            new, old = self._pairs[index]
            result = self._copied[index] = SetResult(
                new_value=item_copy(new), old_value=None if old is None else item_copy(old)
            )
        return result

    def __iter__(self) -> Iterator[SetResult]:
        for index in range(len(self._pairs)):
            yield self[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (SetResults, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a list, so unhashable like one

    def __repr__(self) -> str:
        return f"SetResults({list(self)!r})"
