"""Random sequences of stream calls against a plain sequential model.

Hypothesis draws a list of steps (set, update with ops of both dialects —
many of them failing —, delete, get, list, list_groups, concurrent batches
that a group commits together, a delete and re-create in one commit, idle
time long enough to passivate groups, restarts); one ``trio.run`` per
example applies each step to a real `StreamEngine` and to `Model`, a
dict-of-dicts written from the spec with its own implementation of the
update ops (it never calls ``runtime.streams.ops``), and compares the
results after each step, then every group both through the API and as
storage holds it (items in order, offset, epoch, history).

A `Probe` subscribes to one group at the start (and resumes after each
restart); at the end its sync plus its create/update/delete events must
rebuild that group exactly, with contiguous offsets within each epoch and
strictly increasing timestamps, and be the very changes the model made.

Runs on memory (virtual time: idle passivation costs nothing) and on SQLite
(a fresh file per example, real time: see docs/storage.md on thread-backed
storage under an autojumping clock).
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import orjson
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import MemoryStorage, RedisStorage, SQLiteStorage, Stream, StreamEngine, UpdateError
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

from .conftest import Probe

STREAM = "things"
things = Stream(STREAM)

GROUPS = ["g0", "g1", "g2"]
ITEMS = ["i0", "i1", "i2", "i3"]
PROBED = "g0"  # the group the probe follows

MEMORY_IDLE = 60.0  # virtual seconds
SQLITE_IDLE = 0.02  # real seconds


def canon(value: Any) -> bytes:
    """Strict equality: ``True`` is not ``1``, ``1.0`` is not ``1``; key order
    inside an object is ignored, list order (item order) is not."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# --------------------------------------------------------------------------
# The reference model: the spec's semantics, written independently.

MISSING: Any = object()


class OpFailed(Exception):
    pass


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _pointer(path: str) -> list[str]:
    """The generated pointers never need ``~`` escapes."""
    if path == "":
        return []
    if not path.startswith("/"):
        raise OpFailed("not a JSON Pointer")
    return path[1:].split("/")


def _lookup(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _rfc_equal(a: Any, b: Any) -> bool:
    """RFC 6902 ``test`` equality: numbers by value, booleans only with booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_rfc_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_rfc_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _amount(op: dict, field: str, other: str) -> Any:
    if field not in op and other in op:
        raise OpFailed("amount under the other dialect's key")
    amount = op.get(field, 1)
    if not _is_number(amount) or not math.isfinite(amount):
        raise OpFailed("bad amount")
    return amount


def _add_number(parent: dict, key: str, amount: Any) -> None:
    current = parent.get(key, 0)
    if not _is_number(current):
        raise OpFailed("not a number")
    parent[key] = current + amount


def _motia_parent(doc: dict, path: str) -> tuple[dict, str]:
    """Motia: a literal top-level key, or a pointer whose missing objects are created."""
    if not path.startswith("/"):
        return doc, path
    parts = _pointer(path)
    node = doc
    for part in parts[:-1]:
        if part not in node:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise OpFailed("cannot reach through a non-object")
    return node, parts[-1]


def _patch_parent(doc: dict, parts: list[str]) -> tuple[dict, str]:
    """JSON Patch: the parent must exist (and, in generated data, be an object)."""
    parent = _lookup(doc, parts[:-1])
    if not isinstance(parent, dict):
        raise OpFailed("parent does not exist")
    return parent, parts[-1]


def _motia(doc: dict, op: dict) -> dict:
    kind = op["type"]
    if kind == "merge":
        if "value" not in op or not isinstance(op["value"], dict):
            raise OpFailed("merge needs an object")
        value = copy.deepcopy(op["value"])
        path = op.get("path")
        if path is None or path == "":
            doc.update(value)
            return doc
        parent, key = _motia_parent(doc, path)
        current = parent.get(key, {})
        if not isinstance(current, dict):
            raise OpFailed("merge into a non-object")
        parent[key] = {**current, **value}
        return doc
    if kind not in ("set", "increment", "decrement", "remove"):
        raise OpFailed("unknown type")
    if not isinstance(op.get("path"), str):
        raise OpFailed("no path")
    path = op["path"]
    if kind == "set":
        if "value" not in op:
            raise OpFailed("no value")
        value = copy.deepcopy(op["value"])
        if path == "":
            if not isinstance(value, dict):
                raise OpFailed("whole item must be an object")
            return value
        parent, key = _motia_parent(doc, path)
        parent[key] = value
        return doc
    if path == "":
        raise OpFailed("needs a field")
    if kind == "remove":
        if not path.startswith("/"):
            doc.pop(path, None)
        else:
            parts = _pointer(path)
            if _lookup(doc, parts) is not MISSING:
                del _lookup(doc, parts[:-1])[parts[-1]]
        return doc
    amount = _amount(op, "by", "value")
    parent, key = _motia_parent(doc, path)
    _add_number(parent, key, amount if kind == "increment" else -amount)
    return doc


def _patch(doc: dict, op: dict) -> dict:
    kind = op["op"]
    if kind not in ("add", "replace", "remove", "increment", "decrement", "test"):
        raise OpFailed("unknown op")
    if not isinstance(op.get("path"), str):
        raise OpFailed("no path")
    parts = _pointer(op["path"])
    if kind in ("add", "replace"):
        if "value" not in op:
            raise OpFailed("no value")
        value = copy.deepcopy(op["value"])
        if not parts:
            if not isinstance(value, dict):
                raise OpFailed("whole item must be an object")
            return value
        parent, key = _patch_parent(doc, parts)
        if kind == "replace" and key not in parent:
            raise OpFailed("replace of a missing member")
        parent[key] = value
        return doc
    if kind == "test":
        found = _lookup(doc, parts)
        if found is MISSING or "value" not in op or not _rfc_equal(found, op["value"]):
            raise OpFailed("test failed")
        return doc
    if not parts:
        raise OpFailed("needs a field")
    if kind == "remove":
        parent, key = _patch_parent(doc, parts)
        if key not in parent:
            raise OpFailed("remove of a missing member")
        del parent[key]
        return doc
    amount = _amount(op, "value", "by")
    parent, key = _patch_parent(doc, parts)
    _add_number(parent, key, amount if kind == "increment" else -amount)
    return doc


def model_apply(item_id: str, old: dict | None, ops: Any) -> dict:
    """The new item, or raise ``OpFailed`` with ``.index`` set."""
    if not isinstance(ops, list):
        error = OpFailed("ops must be a list")
        error.index = None
        raise error
    doc = {} if old is None else copy.deepcopy(old)
    for index, op in enumerate(ops):
        try:
            if not isinstance(op, dict) or ("type" in op) == ("op" in op):
                raise OpFailed("malformed op")
            doc = _motia(doc, op) if "type" in op else _patch(doc, op)
        except OpFailed as error:
            error.index = index
            raise
    doc["id"] = item_id
    return doc


class Model:
    """Groups as ordered dicts, an offset and a history per group, the probed group's changes."""

    def __init__(self) -> None:
        self.reset()
        self.changes: list[tuple[str, str, bytes]] = []  # the probed group's, across epochs

    def reset(self) -> None:
        """Storage lost (a memory restart): everything is gone, offsets start again."""
        self.groups: dict[str, dict[str, dict]] = {g: {} for g in GROUPS}
        self.offsets = {g: 0 for g in GROUPS}
        self.history: dict[str, list[tuple[int, str, str, bytes]]] = {g: [] for g in GROUPS}
        self.epochs: dict[str, str] = {}  # as first stored; kept across passivation and durable restarts

    def _emit(self, group: str, type_: str, item_id: str, data: dict) -> None:
        self.offsets[group] += 1
        self.history[group].append((self.offsets[group], type_, item_id, canon(data)))
        if group == PROBED:
            self.changes.append((type_, item_id, canon(data)))

    def _write(self, group: str, item_id: str, new: dict) -> tuple[dict, dict | None]:
        items = self.groups[group]
        old = items.get(item_id)
        items[item_id] = new  # an existing id keeps its place, a new one goes last
        self._emit(group, "create" if old is None else "update", item_id, new)
        return new, old

    def apply(self, step: tuple) -> Any:
        kind = step[0]
        if kind == "set":
            _, group, item_id, data = step
            new = {"id": item_id, **copy.deepcopy(data)}
            new["id"] = item_id
            return ("ok", self._write(group, item_id, new))
        if kind == "update":
            _, group, item_id, ops = step
            try:
                new = model_apply(item_id, self.groups[group].get(item_id), ops)
            except OpFailed as error:
                return ("error", error.index)
            return ("ok", self._write(group, item_id, new))
        if kind == "delete":
            _, group, item_id = step
            old = self.groups[group].pop(item_id, None)
            if old is not None:
                self._emit(group, "delete", item_id, old)
            return ("ok", old)
        if kind == "get":
            return ("ok", self.groups[step[1]].get(step[2]))
        if kind == "list":
            return ("ok", list(self.groups[step[1]].values()))
        if kind == "list_groups":
            return ("ok", sorted(g for g, items in self.groups.items() if items))
        raise AssertionError(step)


# --------------------------------------------------------------------------
# The engine side


async def call(step: tuple) -> Any:
    """The same step through the public API, in the model's result shape."""
    kind = step[0]
    if kind == "set":
        result = await things.set(step[1], step[2], step[3])
        return ("ok", (result.new_value, result.old_value))
    if kind == "update":
        try:
            result = await things.update(step[1], step[2], step[3])
        except UpdateError as error:
            return ("error", error.index)
        return ("ok", (result.new_value, result.old_value))
    if kind == "delete":
        return ("ok", (await things.delete(step[1], step[2])).old_value)
    if kind == "get":
        return ("ok", await things.get(step[1], step[2]))
    if kind == "list":
        return ("ok", await things.list(step[1]))
    if kind == "list_groups":
        return ("ok", await things.list_groups())
    raise AssertionError(step)


def check(actual: Any, expected: Any, step: Any) -> None:
    assert canon(actual) == canon(expected), f"{step}: engine {actual!r} != model {expected!r}"


async def run_batch(steps: list[tuple], model: Model) -> None:
    """Mutations and reads started concurrently, so a group commits several at once.

    Trio may start the tasks in either order, so each task notes its step
    just before calling: the call enqueues its message without a checkpoint
    in between (an ask finds room in the mailbox), so the notes are in
    mailbox order, which is the order the model must apply them in.
    """
    order: list[int] = []
    results: list[Any] = [None] * len(steps)

    async def one(index: int) -> None:
        order.append(index)
        results[index] = await call(steps[index])

    async with trio.open_nursery() as nursery:
        for index in range(len(steps)):
            nursery.start_soon(one, index)
    assert sorted(order) == list(range(len(steps)))
    for index in order:
        check(results[index], model.apply(steps[index]), ("batch", steps[index]))


def replay(probe: Probe) -> tuple[list[dict], str, int, list[tuple[str, str, bytes]]]:
    """Rebuild the probed group from what the probe got, checking order as it goes.

    Each join (first, and after each restart) delivers one ``sync`` or one
    ``resumed`` marker, then live events. Timestamps: every frame is later
    than the last state change of its epoch, and within one run (from a
    join on) every frame is later than the one before. A join frame after a
    restart is *not* checked against the previous run's join frame: storage
    keeps the timestamp of the last commit only, so the timestamp a sync or
    marker bumped is not remembered across a restart (reported, not a
    state-change guarantee).
    """
    assert probe.events and probe.events[0].type == "sync", probe.types()
    state: dict[str, dict] = {}
    epoch: str | None = None
    offset = 0
    last_change = -1  # timestamp of the last state change of this epoch
    last_frame = -1  # timestamp of the previous frame of this run
    changes = []
    for event in probe.events:
        assert event.group == PROBED
        if event.type in ("sync", "resumed"):  # a join
            if event.type == "sync":
                assert event.item_id is None
                state = {item["id"]: item for item in event.data}
                if event.epoch != epoch:
                    last_change = -1
                epoch, offset = event.epoch, event.offset
            else:
                assert (event.epoch, event.offset, event.replayed) == (epoch, offset, 0), event
            assert event.timestamp > last_change, "a join frame must be later than the last change"
        else:
            assert event.type in ("create", "update", "delete"), event
            assert event.epoch == epoch, event
            assert event.offset == offset + 1, f"offset gap: {offset} then {event.offset}"
            offset = event.offset
            if event.type == "delete":
                assert state.pop(event.item_id) == event.data
            else:
                assert (event.item_id in state) == (event.type == "update"), event
                state[event.item_id] = event.data
            changes.append((event.type, event.item_id, canon(event.data)))
            assert event.timestamp > max(last_frame, last_change), "timestamps must strictly increase"
            last_change = event.timestamp
        last_frame = event.timestamp
    assert epoch is not None
    return list(state.values()), epoch, offset, changes


async def check_groups(engine: StreamEngine, model: Model, step: Any) -> None:
    """Every group as the API shows it, and as storage holds it: items in
    order, offset, and the history (well inside the default policy's bounds)."""
    for group in GROUPS:
        expected = list(model.groups[group].values())
        check(await things.list(group), expected, ("after", step, group))
        stored = await engine.storage.load_group(STREAM, group)
        check(list(stored.items.values()), expected, ("stored after", step, group))
        assert list(stored.items) == [item["id"] for item in expected]
        assert stored.offset == model.offsets[group], ("stored offset after", step, group)
        history = [(e.offset, e.type, e.item_id, canon(e.data)) for e in stored.history]
        assert history == model.history[group], ("stored history after", step, group)
        if stored.offset:
            assert model.epochs.setdefault(group, stored.epoch) == stored.epoch, ("epoch changed", step, group)


def open_kind(kind: str, place: Any) -> Any:
    if kind == "memory":
        return MemoryStorage()
    return SQLiteStorage(place) if kind == "sqlite" else RedisStorage(place)


async def run_example(kind: str, steps: list[tuple], path: Any) -> None:
    model = Model()
    probe = Probe()
    storage: Any = open_kind(kind, path)
    idle = MEMORY_IDLE if kind == "memory" else SQLITE_IDLE
    position = 0
    first = True
    lost = False
    while True:
        async with StreamEngine([things], storage=storage, idle_timeout=idle) as engine:
            if first:
                joined = await engine.join(probe, STREAM, PROBED, subscription_id=1)
                assert (joined.offset, joined.resumed) == (0, False)
            else:
                _, epoch, offset, _ = replay(probe)
                joined = await engine.join(probe, STREAM, PROBED, subscription_id=1, since=(epoch, offset))
                if joined.resumed:  # durable storage (or the same memory): nothing was missed
                    assert not lost and (joined.epoch, joined.offset, joined.replayed) == (epoch, offset, 0)
                else:  # lost storage, or a group that never committed (its epoch was never stored)
                    assert lost or model.offsets[PROBED] == 0, joined
                    assert joined.epoch != epoch and joined.offset == 0
            first = False
            restart = None
            while position < len(steps):
                step = steps[position]
                position += 1
                if step[0] == "restart":
                    restart = step
                    break
                if step[0] == "idle":  # long enough for unsubscribed groups to passivate
                    await trio.sleep(idle * 3)
                elif step[0] == "batch":
                    await run_batch(step[1], model)
                elif step[0] == "recreate":
                    _, group, first_id, second_id, data = step
                    for sub in (("set", group, first_id, data), ("set", group, second_id, data)):
                        check(await call(sub), model.apply(sub), sub)
                    await run_batch([("delete", group, first_id), ("set", group, first_id, data)], model)
                else:
                    check(await call(step), model.apply(step), step)
                await check_groups(engine, model, step)
            if restart is None:
                check(await things.list_groups(), model.apply(("list_groups",))[1], "final list_groups")
                items, _, offset, changes = replay(probe)
                check(items, list(model.groups[PROBED].values()), "probe replay")
                assert offset == model.offsets[PROBED]
                assert changes == model.changes
                return
        lost = kind == "memory" and restart[1]
        if lost:  # a new process: memory storage starts empty
            storage = MemoryStorage()
            model.reset()
        elif kind != "memory":  # a new process opens the same file, or the same Redis
            storage = open_kind(kind, path)


# --------------------------------------------------------------------------
# Strategies

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from([0.5, -1.5, 2.0]), st.sampled_from(["x", ""])
)
objects = st.dictionaries(st.sampled_from(["x", "y"]), scalars, max_size=2)
values = st.one_of(scalars, objects)
numbers = st.one_of(st.integers(-2, 3), st.sampled_from([0, 1]), st.just(0.5), values)  # mostly numbers
nested = st.one_of(objects, objects, values)  # mostly objects
# "n" tends to hold a number and "o" an object, so increments and nested paths often apply
item_data = st.fixed_dictionaries(
    {}, optional={"a": values, "b": values, "n": numbers, "o": nested, "id": st.one_of(values, st.sampled_from(ITEMS))}
)
amounts = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.5]), st.sampled_from(["1", True, None]))
good_amounts = st.one_of(st.integers(-3, 3), st.just(0.5))

# Ops that usually apply (a few still fail on the data they meet, e.g. an
# increment of a field that a set made a string).
likely_ops = st.one_of(
    st.fixed_dictionaries({"type": st.just("set"), "path": st.sampled_from(["a", "b", "/o/x"]), "value": values}),
    st.fixed_dictionaries({"type": st.just("set"), "path": st.just("n"), "value": numbers}),
    st.fixed_dictionaries({"type": st.just("merge"), "value": item_data}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["increment", "decrement"]), "path": st.sampled_from(["n", "/o/y"])},
        optional={"by": good_amounts},
    ),
    st.fixed_dictionaries({"type": st.just("remove"), "path": st.sampled_from(["a", "b", "o", "/o/x"])}),
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace"]), "path": st.just("/a"), "value": values}),
    st.fixed_dictionaries({"op": st.sampled_from(["add", "replace"]), "path": st.just("/n"), "value": numbers}),
    st.fixed_dictionaries({"op": st.just("add"), "path": st.just("/o"), "value": objects}),
    # RFC 6902 equality: 1 == 1.0, but true is not 1
    *[st.fixed_dictionaries(
        {"op": st.just("test"), "path": st.just("/n"), "value": st.sampled_from([0, 1, 1.0, True, False])}
    )] * 2,
    st.fixed_dictionaries(
        {"op": st.sampled_from(["increment", "decrement"]), "path": st.just("/n")}, optional={"value": good_amounts}
    ),
)
# Anything of the generated shapes: whole-item paths, missing parents,
# non-numbers, amounts under the wrong key, missing values, failing tests...
motia_ops = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("set"), "path": st.sampled_from(["a", "b", "n", "o", "id", "/o", "/o/x", ""]),
         "value": st.one_of(values, item_data)}
    ),
    st.fixed_dictionaries(
        {"type": st.just("merge"), "value": st.one_of(item_data, objects, scalars)},
        optional={"path": st.sampled_from(["", "o", "/o", "/o/x"])},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["increment", "decrement"]),
         "path": st.sampled_from(["n", "a", "o", "/o/x", "", "id"])},
        optional={"by": amounts, "value": amounts},
    ),
    st.fixed_dictionaries(
        {"type": st.just("remove"), "path": st.sampled_from(["a", "n", "o", "/o", "/o/x", "", "id", "zz"])}
    ),
)
PATCH_PATHS = ["/a", "/b", "/n", "/o", "/o/x", "/id", "", "a"]
patch_ops = st.one_of(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace"]), "path": st.sampled_from(PATCH_PATHS),
         "value": st.one_of(values, item_data)}
    ),
    st.fixed_dictionaries({"op": st.just("remove"), "path": st.sampled_from(PATCH_PATHS)}),
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["increment", "decrement"]),
            "path": st.sampled_from(["/n", "/a", "/o", "/o/x", "", "n"]),
        },
        optional={"value": amounts, "by": amounts},
    ),
    st.fixed_dictionaries(
        {"op": st.just("test"), "path": st.sampled_from(PATCH_PATHS)}, optional={"value": values}
    ),
    st.fixed_dictionaries({"op": st.just("test"), "path": st.just("/id"), "value": st.sampled_from(ITEMS)}),
)
bad_ops = st.sampled_from(
    [
        {"type": "bogus", "path": "a"},
        {"op": "bogus", "path": "/a"},
        {"path": "a", "value": 1},
        {"type": "set", "op": "add", "path": "/a", "value": 1},
        {"type": "set", "value": 1},
        {"op": "add", "value": 1},
        {"op": "add", "path": 5, "value": 1},
        {"type": "set", "path": "a"},
        "not an op",
        7,
    ]
)
any_op = st.one_of(motia_ops, motia_ops, patch_ops, patch_ops, bad_ops)
ops_lists = st.one_of(
    st.lists(likely_ops, min_size=1, max_size=4),
    st.lists(st.one_of(*[likely_ops] * 6, any_op), min_size=1, max_size=4),
    st.lists(any_op, max_size=3),
    # set then test in one update: RFC 6902 equality (1 == 1.0, true is not 1; true is not a number either)
    st.tuples(
        st.fixed_dictionaries(
            {"type": st.just("set"), "path": st.just("n"), "value": st.sampled_from([0, 1, 1.0, True])}
        ),
        st.fixed_dictionaries(
            {"op": st.sampled_from(["test", "increment"]), "path": st.just("/n"),
             "value": st.sampled_from([0, 1, 1.0, True, False])}
        ),
    ).map(list),
)

groups = st.sampled_from(GROUPS)
items = st.sampled_from(ITEMS)


def step_strategies(
    group: st.SearchStrategy[str], items: st.SearchStrategy[str] = items
) -> dict[str, st.SearchStrategy[tuple]]:
    return {
        "set": st.tuples(st.just("set"), group, items, item_data),
        "update": st.tuples(st.just("update"), group, items, ops_lists),
        "delete": st.tuples(st.just("delete"), group, items),
        "get": st.tuples(st.just("get"), group, items),
        "list": st.tuples(st.just("list"), group),
    }


def batch_of(group: st.SearchStrategy[str], items: st.SearchStrategy[str] = items) -> st.SearchStrategy[list[tuple]]:
    s = step_strategies(group, items)
    return st.lists(
        st.one_of(s["set"], s["update"], s["update"], s["delete"], s["delete"], s["get"], s["list"]),
        min_size=2, max_size=8,
    )


single = step_strategies(groups)
steps = st.lists(
    st.one_of(
        single["set"], single["set"],
        single["update"], single["update"], single["update"], single["update"],
        single["delete"], single["get"], single["list"],
        st.just(("list_groups",)),
        st.tuples(st.just("update"), groups, items, st.just({"type": "set"})),  # ops not a list
        # one group's commit, on two items: deletes and re-creations within one transaction
        st.tuples(st.just("batch"), groups.flatmap(lambda g: batch_of(st.just(g), st.sampled_from(ITEMS[:2])))),
        st.tuples(st.just("batch"), batch_of(groups)),  # several groups at once
        # an item with another after it, deleted and re-created in one commit: it must move to the end
        st.builds(
            lambda g, ij, data: ("recreate", g, *ij, data),
            groups, st.permutations(ITEMS).map(lambda p: p[:2]), item_data,
        ),
        st.just(("idle",)),
        st.tuples(st.just("restart"), st.booleans()),
    ),
    min_size=10,
    max_size=50,
)

COMMON = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@settings(max_examples=100, **COMMON)
@given(steps=steps)
def test_memory_engine_matches_the_model(steps):
    trio.run(run_example, "memory", steps, None, clock=trio.testing.MockClock(autojump_threshold=0))


@settings(max_examples=25, **COMMON)
@given(steps=steps)
def test_sqlite_engine_matches_the_model(steps):
    with tempfile.TemporaryDirectory() as tmp:
        trio.run(run_example, "sqlite", steps, Path(tmp) / "streams.db")


@settings(max_examples=15, **COMMON)
@given(steps=steps)
def test_redis_engine_matches_the_model(steps):
    prefix = unique_prefix()
    try:
        trio.run(run_example, "redis", steps, f"{ensure_redis()}?prefix={prefix}")
    finally:
        delete_prefix(prefix)


def test_the_model_agrees_with_the_spec_examples():
    """A few fixed points, so the model itself is not wrong in the same way as the engine."""
    assert model_apply("x", None, [{"type": "increment", "path": "count", "by": 2}]) == {"count": 2, "id": "x"}
    assert model_apply("x", {"id": "x", "o": 1}, [{"type": "remove", "path": "/o/x"}]) == {"id": "x", "o": 1}
    assert model_apply("x", {"id": "x"}, [{"type": "set", "path": "/o/x", "value": 1}])["o"] == {"x": 1}
    assert model_apply("x", {"id": "x", "n": 1}, [{"op": "test", "path": "/n", "value": 1.0}])["n"] == 1
    for failing in (
        [{"op": "test", "path": "/n", "value": True}],
        [{"op": "add", "path": "/o/x", "value": 1}],
        [{"op": "replace", "path": "/zz", "value": 1}],
        [{"op": "remove", "path": "/zz"}],
        [{"type": "increment", "path": "id"}],
        [{"type": "increment", "path": "n", "value": 1}],
        [{"op": "increment", "path": "/n", "by": 1}],
        [{"type": "set", "path": "", "value": 3}],
        [{"type": "merge", "path": "n", "value": {}}],
    ):
        try:
            model_apply("x", {"id": "x", "n": 1}, [{"type": "set", "path": "ok", "value": 1}, *failing])
        except OpFailed as error:
            assert error.index == 1
        else:
            raise AssertionError(f"{failing} should fail")
