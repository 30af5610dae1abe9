"""`Stream`: the handle step files declare at module level.

A handle holds a name (and maybe a config), never state: every call goes to
the engine bound to the running task, and from there to the group's actor.
Arguments are checked and data is copied in the caller's task, before
anything is sent, so bad input changes nothing and costs the actor nothing;
results are copied back, so a caller can never alter what the group holds.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any

from .config import DeleteResult, SetResult, SetResults, StreamConfig
from .engine import StreamEngine, current_engine
from .idempotency import call_key
from .messages import DeleteItem, GetItem, ListItems, SendEvent, SetItem, UpdateItem, UpdateMany
from .ops import check_json, check_name, check_ttl, is_json_value, item_copy, json_copy, name_entry
from .presence import PresenceEntry
from .tracing import current_trace_id

__all__ = ["Stream"]


class Stream:
    """``Stream("todo")`` or ``Stream(StreamConfig(name="todo", schema=...))``.

    Every method is async and acts on the running app's stream of that name.

    The mutations (``set``, ``update``, ``update_many``, ``delete``) take an
    ``idempotency_key``: a repeat of a keyed call within the stream's window
    (``StreamConfig.idempotency_window``, 24 h by default) returns the first
    call's result and changes nothing, in every process sharing the storage.
    Keys are per group. A queue handler's calls get keys of their own (see
    runtime/streams/idempotency.py and docs/steps.md).
    """

    __slots__ = ("name", "config", "_engine")

    def __init__(self, config: str | StreamConfig | Mapping[str, Any], *, engine: StreamEngine | None = None) -> None:
        if isinstance(config, str):
            self.name, self.config = config, None
        elif isinstance(config, StreamConfig):
            self.name, self.config = config.name, config
        elif isinstance(config, Mapping):
            parsed = StreamConfig.from_dict(config)
            self.name, self.config = parsed.name, parsed
        else:
            raise TypeError("Stream() takes a name, a StreamConfig or a dict of its fields")
        self._engine = engine

    def __repr__(self) -> str:
        return f"Stream({self.name!r})"

    def bind(self, engine: StreamEngine) -> Stream:
        """A handle tied to ``engine`` rather than to the running task's."""
        return Stream(self.config or self.name, engine=engine)

    def _ref(self, group_id: str) -> Any:
        engine = self._engine or current_engine()
        return engine.group_ref(self.name, check_name(group_id, "group_id"))

    async def get(self, group_id: str, item_id: str) -> dict[str, Any] | None:
        """The item, or None."""
        item = await self._ref(group_id).ask(GetItem(check_name(item_id, "item_id")))
        return None if item is None else json_copy(item)

    async def set(
        self, group_id: str, item_id: str, data: Mapping[str, Any], *, ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> SetResult:
        """Replace (or create) the item; emits ``create`` or ``update``.

        ``ttl`` (seconds) deletes the item that long from now, with an
        ordinary ``delete`` event; a ``set`` without one clears the TTL the
        item had (an ``update`` keeps it; its ``expire`` op changes it).
        """
        ref = self._ref(group_id)
        check_name(item_id, "item_id")
        if not isinstance(data, Mapping):
            raise TypeError(f"item data must be a JSON object (a dict), not {type(data).__name__}")
        check_json(data)
        ttl = check_ttl(ttl)
        key = call_key(idempotency_key)
        result = await ref.ask(SetItem(item_id, json_copy(dict(data)), current_trace_id(), ttl, key))
        return _copy_set_result(result)

    async def update(
        self, group_id: str, item_id: str, ops: list[Any], *, idempotency_key: str | None = None
    ) -> SetResult:
        """Apply ``ops`` atomically (all or none); upserts from ``{}``.

        The item's TTL stays as it was unless an ``{"type": "expire",
        "seconds": N}`` op sets it (``null`` clears it).
        """
        ref = self._ref(group_id)
        check_name(item_id, "item_id")
        check_json(ops, "ops")
        key = call_key(idempotency_key)
        # apply_ops copies every value it takes from the ops: no copy of the list here
        result = await ref.ask(UpdateItem(item_id, ops, current_trace_id(), key))
        return _copy_set_result(result)

    async def update_many(
        self, group_id: str, entries: Iterable[tuple[str, list[Any]]], *, idempotency_key: str | None = None
    ) -> SetResults:
        """Apply several updates to one group in one call, all or none.

        ``entries`` is a sequence of ``(item_id, ops)``; an item may appear
        more than once. The entries apply in order, each on the state the
        previous ones left, and each is an ordinary change: its own offset
        (consecutive, no other caller's change in between), timestamp and
        ``create``/``update`` event, in entry order. Returns `SetResults`,
        a sequence of one `SetResult` per entry, each copied when first read.

        All or nothing for the whole call: if any entry fails (a bad op,
        a schema, a non-JSON value) nothing is applied, nothing is emitted,
        no offset is spent, and the error says which entry (``exc.entry``,
        ``exc.item_id``, and a message prefix). A failed commit fails the
        whole call with `StorageError`.

        Why it exists: every call parks and resumes the calling task once,
        which costs more than applying an increment; one call carrying many
        updates pays that once (see docs/performance.md, Streams).
        """
        ref = self._ref(group_id)
        key = call_key(idempotency_key)
        checked: list[tuple[str, list[Any]]] = []
        append = checked.append
        for pair in entries:
            # the common case in one test; anything else takes the checks that say what is wrong
            if type(pair) is tuple and len(pair) == 2:
                item_id, ops = pair
                if type(item_id) is str and item_id and is_json_value(ops):
                    append(pair)
                    continue
            append(_checked_entry(len(checked), pair))
        if not checked:
            return SetResults([])
        return SetResults(await ref.ask(UpdateMany(checked, current_trace_id(), key)))

    async def delete(self, group_id: str, item_id: str, *, idempotency_key: str | None = None) -> DeleteResult:
        """Remove the item (and its TTL); emits ``delete`` only if it existed."""
        ref = self._ref(group_id)
        check_name(item_id, "item_id")
        result = await ref.ask(DeleteItem(item_id, current_trace_id(), call_key(idempotency_key)))
        old = result.old_value
        return result if old is None else DeleteResult(old_value=json_copy(old))

    async def list(self, group_id: str) -> list[dict[str, Any]]:
        """The group's items in insertion order."""
        items = await self._ref(group_id).ask(ListItems())
        return json_copy(items) if items else []

    get_group = list

    async def list_groups(self) -> builtins.list[str]:
        """Ids of the groups that hold items, sorted."""
        engine = self._engine or current_engine()
        engine.definition(self.name)
        return await engine.storage.list_groups(self.name)

    async def presence(self, group_id: str) -> builtins.list[PresenceEntry]:
        """Who is subscribed to the group now: one `PresenceEntry` (key, count, data) per identity,
        sorted by key; every process's subscribers on Redis (docs/presence.md)."""
        engine = self._engine or current_engine()
        engine.definition(self.name)
        return await engine.presence.entries(self.name, check_name(group_id, "group_id"))

    async def send(self, channel: Mapping[str, Any], event: Mapping[str, Any]) -> None:
        """Emit an ephemeral event to the group's (or one item's) subscribers; nothing is stored.

        ``channel`` is ``{"group_id": g, "id": item_or_None}`` (Motia's
        ``groupId`` is accepted); ``event`` is ``{"type": T, "data": D}``.
        """
        group_id = channel.get("group_id", channel.get("groupId"))
        item_id = channel.get("id", channel.get("item_id"))
        if item_id is not None:
            check_name(item_id, "id")
        if not isinstance(event, Mapping) or not isinstance(event.get("type"), str) or not event["type"]:
            raise TypeError('an event needs a non-empty string "type"')
        data = event.get("data")
        check_json(data, "event data")
        await self._ref(group_id).ask(SendEvent(item_id, event["type"], json_copy(data), current_trace_id()))


def _checked_entry(entry: int, pair: Any) -> tuple[str, list[Any]]:
    """An ``update_many`` entry as ``(item_id, ops)``, or the TypeError naming it."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"update_many entry {entry} must be an (item_id, ops) pair, not {type(pair).__name__}")
    item_id, ops = pair
    try:
        check_name(item_id, "item_id")
        check_json(ops, "ops")
    except TypeError as exc:
        name_entry(exc, entry, item_id)
        raise
    return item_id, ops


def _copy_set_result(result: SetResult) -> SetResult:
    """The caller's own copy: the group keeps sharing its items copy-on-write."""
    old = result.old_value
    return SetResult(new_value=item_copy(result.new_value), old_value=None if old is None else item_copy(old))
