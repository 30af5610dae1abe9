"""The behaviour every storage backend must share, run once per backend.

To add a backend, add a factory to ``BACKENDS``; every test here then runs
against it too. ``GroupWriter`` plays the group actor's part (stamping
offsets and timestamps, building batches), so the tests read as what a
group does rather than as hand-built commits.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import StorageError
from runtime.storage import (
    ConflictError,
    GroupCommit,
    HistoryPolicy,
    MemoryStorage,
    QueuedMessage,
    SQLiteStorage,
    Storage,
    StoredEvent,
)
from runtime.storage.redis import RedisStorage
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

BACKENDS: dict[str, Callable[[Path, str], Storage]] = {
    "memory": lambda tmp_path, redis_url: MemoryStorage(),
    "sqlite": lambda tmp_path, redis_url: SQLiteStorage(tmp_path / "storage.sqlite3"),
    "redis": lambda tmp_path, redis_url: RedisStorage(redis_url),
}

DURABLE = {"memory": False, "sqlite": True, "redis": True}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def redis_url(backend: str) -> Iterator[str]:
    """A Redis URL with a key prefix of this test's own (only for the redis backend)."""
    if backend != "redis":
        yield ""
        return
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


@pytest.fixture
async def storage(backend: str, tmp_path: Path, redis_url: str) -> AsyncIterator[Storage]:
    async with BACKENDS[backend](tmp_path, redis_url) as opened:
        yield opened


def item(item_id: str, **fields: Any) -> dict:
    return {"id": item_id, **fields}


@attrs.define
class GroupWriter:
    """Stands in for a group actor: tracks the committed cursor and builds the next batch."""

    storage: Storage
    stream: str
    group: str
    epoch: str
    offset: int
    timestamp: int
    items: dict[str, dict]  # the expected items, with dict semantics as the model of order

    @classmethod
    async def load(cls, storage: Storage, stream: str = "todo", group: str = "g1") -> GroupWriter:
        state = await storage.load_group(stream, group)
        return cls(storage, stream, group, state.epoch, state.offset, state.timestamp, dict(state.items))

    def build(self, *writes: tuple[str, dict | None], at: int | None = None) -> GroupCommit:
        """A batch of ``writes``; its first change is stamped ``at`` (or 1 ms after the last)."""
        items = dict(self.items)
        offset, timestamp = self.offset, self.timestamp
        events = []
        for item_id, value in writes:
            old = items.pop(item_id, None) if value is None else items.get(item_id)
            if value is None and old is None:
                continue  # deleting a missing item changes nothing, so no event
            if value is not None:
                items[item_id] = value
            kind = "delete" if value is None else "update" if old is not None else "create"
            offset += 1
            timestamp = max(timestamp + 1, at or 0)
            events.append(StoredEvent(offset, timestamp, item_id, kind, old if value is None else value))
        return GroupCommit(
            epoch=self.epoch,
            offset=offset,
            timestamp=timestamp,
            writes=list(writes),
            events=events,
            expected_offset=self.offset,
        )

    async def commit(
        self,
        *writes: tuple[str, dict | None],
        at: int | None = None,
        policy: HistoryPolicy = HistoryPolicy(),
    ) -> GroupCommit:
        batch = self.build(*writes, at=at)
        await self.storage.commit(self.stream, self.group, batch, policy)
        self.offset, self.timestamp = batch.offset, batch.timestamp
        for item_id, value in batch.writes:
            if value is None:
                self.items.pop(item_id, None)
            else:
                self.items[item_id] = value
        return batch


def ordered(items: dict[str, dict]) -> list[tuple[str, dict]]:
    """Dict equality ignores order; the order of items is part of the contract."""
    return list(items.items())


# -- groups ----------------------------------------------------------------


async def test_durable_flag_says_whether_a_restart_keeps_data(storage: Storage, backend: str) -> None:
    assert storage.durable is DURABLE[backend]


async def test_unknown_group_loads_fresh(storage: Storage) -> None:
    state = await storage.load_group("todo", "nobody-wrote-here")

    assert re.fullmatch(r"[A-Za-z0-9_-]{6,16}", state.epoch)
    assert (state.offset, state.timestamp, state.items, state.history) == (0, 0, {}, [])


async def test_commit_then_load_round_trips(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    first = await writer.commit(("a", item("a", n=1)), ("b", item("b", n=2)), at=1_000)
    second = await writer.commit(("a", item("a", n=3)))

    state = await storage.load_group("todo", "g1")

    assert state.epoch == writer.epoch
    assert (state.offset, state.timestamp) == (3, 1_002)
    assert ordered(state.items) == [("a", item("a", n=3)), ("b", item("b", n=2))]
    assert state.history == first.events + second.events
    assert [(e.offset, e.timestamp, e.type) for e in state.history] == [
        (1, 1_000, "create"),
        (2, 1_001, "create"),
        (3, 1_002, "update"),
    ]


async def test_first_commit_fixes_the_epoch_load_proposed(storage: Storage) -> None:
    # Until then each load may propose another epoch; none of them is stored.
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")))

    for _ in range(2):
        assert (await storage.load_group("todo", "g1")).epoch == writer.epoch


async def test_update_keeps_place_and_recreate_goes_last(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")), ("b", item("b")), ("c", item("c")))
    await writer.commit(("b", item("b", v=2)))
    assert list((await storage.load_group("todo", "g1")).items) == ["a", "b", "c"]

    await writer.commit(("b", None))
    await writer.commit(("b", item("b", v=3)))

    state = await storage.load_group("todo", "g1")
    assert ordered(state.items) == [("a", item("a")), ("c", item("c")), ("b", item("b", v=3))]


async def test_delete_removes_item_and_records_old_value(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a", title="keep")), ("b", item("b", title="drop")))
    await writer.commit(("b", None))

    state = await storage.load_group("todo", "g1")
    assert ordered(state.items) == [("a", item("a", title="keep"))]
    assert state.history[-1] == StoredEvent(3, state.timestamp, "b", "delete", item("b", title="drop"))


async def test_deleting_a_missing_item_is_a_no_op_write(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")))
    await writer.commit(("ghost", None))

    assert ordered((await storage.load_group("todo", "g1")).items) == [("a", item("a"))]


async def test_later_writes_of_one_id_in_a_batch_win(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("x", item("x", n=0)), ("y", item("y")))
    await writer.commit(
        ("x", item("x", n=1)),
        ("x", item("x", n=2)),  # update: x keeps its place
        ("new", item("new", n=1)),
        ("new", None),  # created and deleted in one batch: never visible
        ("y", None),
        ("y", item("y", back=True)),  # deleted then re-created: goes last
        ("z", item("z")),
    )

    state = await storage.load_group("todo", "g1")
    assert ordered(state.items) == [
        ("x", item("x", n=2)),
        ("y", item("y", back=True)),
        ("z", item("z")),
    ]
    assert ordered(state.items) == ordered(writer.items)
    assert state.offset == writer.offset == 9


# -- compare-and-set -------------------------------------------------------


async def test_conflict_error_is_a_storage_error() -> None:
    assert issubclass(ConflictError, StorageError)


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param({"expected_offset": 1}, id="behind"),
        pytest.param({"expected_offset": 3}, id="ahead"),
        pytest.param({"epoch": "other-epoch"}, id="other-epoch"),
    ],
)
async def test_stale_batch_conflicts_and_changes_nothing(
    storage: Storage, stale: dict[str, Any]
) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")), ("b", item("b")))
    before = await storage.load_group("todo", "g1")

    batch = attrs.evolve(writer.build(("a", None), ("c", item("c"))), **stale)
    with pytest.raises(ConflictError) as caught:
        await storage.commit("todo", "g1", batch, HistoryPolicy())

    assert await storage.load_group("todo", "g1") == before
    assert (caught.value.stored_epoch, caught.value.stored_offset) == (writer.epoch, 2)
    assert "'todo'/'g1'" in str(caught.value)


async def test_unknown_group_accepts_only_a_batch_computed_from_offset_zero(
    storage: Storage,
) -> None:
    writer = await GroupWriter.load(storage)
    batch = attrs.evolve(writer.build(("a", item("a"))), expected_offset=5)

    with pytest.raises(ConflictError):
        await storage.commit("todo", "g1", batch, HistoryPolicy())

    assert await storage.list_groups("todo") == []
    assert (await storage.load_group("todo", "g1")).offset == 0


# -- history -----------------------------------------------------------------


async def test_history_keeps_the_newest_max_events(storage: Storage) -> None:
    policy = HistoryPolicy(max_events=3)
    writer = await GroupWriter.load(storage)
    for n in range(5):
        await writer.commit((f"i{n}", item(f"i{n}")), policy=policy)
    assert [e.offset for e in (await storage.load_group("todo", "g1")).history] == [3, 4, 5]

    await writer.commit(*[(f"j{n}", item(f"j{n}")) for n in range(7)], policy=policy)
    assert [e.offset for e in (await storage.load_group("todo", "g1")).history] == [10, 11, 12]


async def test_history_drops_events_older_than_max_age(storage: Storage) -> None:
    policy = HistoryPolicy(max_age_ms=1_000)
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")), at=10_000, policy=policy)
    await writer.commit(("b", item("b")), at=10_500, policy=policy)
    await writer.commit(("c", item("c")), at=11_000, policy=policy)  # a is exactly max_age old: kept

    history = (await storage.load_group("todo", "g1")).history
    assert [e.timestamp for e in history] == [10_000, 10_500, 11_000]

    await writer.commit(("d", item("d")), at=11_600, policy=policy)  # cutoff 10_600

    history = (await storage.load_group("todo", "g1")).history
    assert [e.timestamp for e in history] == [11_000, 11_600]


async def test_history_follows_a_policy_that_changes(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(*[(f"i{n}", item(f"i{n}")) for n in range(4)], policy=HistoryPolicy(max_events=2))
    await writer.commit(("x", item("x")), policy=HistoryPolicy(max_events=5))
    assert [e.offset for e in (await storage.load_group("todo", "g1")).history] == [3, 4, 5]

    await writer.commit(("y", item("y")), policy=HistoryPolicy(max_events=1))
    assert [e.offset for e in (await storage.load_group("todo", "g1")).history] == [6]

    await writer.commit(("z", item("z")), policy=HistoryPolicy(max_events=0))
    assert (await storage.load_group("todo", "g1")).history == []


# -- listing groups ----------------------------------------------------------


async def test_list_groups_names_groups_holding_items(storage: Storage) -> None:
    for group in ["zeta", "alpha", "mid"]:
        writer = await GroupWriter.load(storage, "todo", group)
        await writer.commit(("a", item("a")), ("b", item("b")))
    other_stream = await GroupWriter.load(storage, "chat", "room")
    await other_stream.commit(("m", item("m")))
    assert await storage.list_groups("todo") == ["alpha", "mid", "zeta"]

    emptied = await GroupWriter.load(storage, "todo", "mid")
    await emptied.commit(("a", None))
    assert await storage.list_groups("todo") == ["alpha", "mid", "zeta"]
    await emptied.commit(("b", None))

    assert await storage.list_groups("todo") == ["alpha", "zeta"]
    assert await storage.list_groups("chat") == ["room"]
    assert await storage.list_groups("nothing-here") == []
    # an emptied group keeps its epoch, offset and history for resume
    state = await storage.load_group("todo", "mid")
    assert (state.epoch, state.offset, len(state.history)) == (emptied.epoch, 4, 4)


async def test_same_group_id_in_two_streams_is_two_groups(storage: Storage) -> None:
    todo = await GroupWriter.load(storage, "todo", "shared")
    chat = await GroupWriter.load(storage, "chat", "shared")
    await todo.commit(("a", item("a", in_="todo")))
    await chat.commit(("a", item("a", in_="chat")), ("b", item("b")))

    todo_state = await storage.load_group("todo", "shared")
    chat_state = await storage.load_group("chat", "shared")
    assert ordered(todo_state.items) == [("a", item("a", in_="todo"))]
    assert (todo_state.offset, chat_state.offset) == (1, 2)


# -- isolation from callers ----------------------------------------------------


async def test_changing_a_loaded_state_does_not_change_storage(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await writer.commit(("a", item("a")), ("b", item("b")))
    loaded = await storage.load_group("todo", "g1")

    loaded.items.pop("a")
    loaded.items["evil"] = item("evil")
    loaded.history.clear()
    loaded.offset = 99

    again = await storage.load_group("todo", "g1")
    assert (list(again.items), len(again.history), again.offset) == (["a", "b"], 2, 2)


async def test_changing_a_state_value_after_set_or_get_does_not_change_storage(
    storage: Storage,
) -> None:
    value = {"tags": ["a"], "nested": {"n": 1}}
    await storage.state_set("scope", "k", value)
    value["tags"].append("b")

    got = await storage.state_get("scope", "k")
    got["nested"]["n"] = 2
    listed = await storage.state_list("scope")
    listed["k"]["tags"].clear()

    assert await storage.state_get("scope", "k") == {"tags": ["a"], "nested": {"n": 1}}


# -- key-value state -------------------------------------------------------------


async def test_state_get_set_delete(storage: Storage) -> None:
    assert await storage.state_get("orders", "missing") is None

    await storage.state_set("orders", "o1", {"total": 10})
    await storage.state_set("orders", "o1", {"total": 12})
    assert await storage.state_get("orders", "o1") == {"total": 12}

    await storage.state_delete("orders", "o1")
    await storage.state_delete("orders", "o1")  # already gone: no error
    await storage.state_delete("never", "existed")
    assert await storage.state_get("orders", "o1") is None


async def test_state_list_is_in_key_order_and_clear_empties_one_scope(storage: Storage) -> None:
    for key in ["b", "a", "c", "B", "é"]:
        await storage.state_set("s1", key, key.upper())
    await storage.state_set("s2", "a", "other scope")

    assert list((await storage.state_list("s1")).items()) == [
        ("B", "B"),
        ("a", "A"),
        ("b", "B"),
        ("c", "C"),
        ("é", "É"),
    ]
    assert await storage.state_list("empty") == {}

    await storage.state_clear("s1")
    await storage.state_clear("s1")

    assert await storage.state_list("s1") == {}
    assert await storage.state_get("s2", "a") == "other scope"


async def test_state_rejects_a_non_json_value_and_keeps_the_old_one(storage: Storage) -> None:
    await storage.state_set("s", "k", 1)
    with pytest.raises(TypeError):
        await storage.state_set("s", "k", {"when": object()})
    assert await storage.state_get("s", "k") == 1


JSON_VALUES = [
    pytest.param(None, id="null"),
    pytest.param(True, id="bool"),
    pytest.param(-(2**53), id="int"),
    pytest.param(0.1, id="float"),
    pytest.param("snow ☃, 雪, 🎉, quote \" backslash \\ nul \x00", id="unicode-str"),
    pytest.param([], id="empty-list"),
    pytest.param({}, id="empty-dict"),
    pytest.param(
        {"ünïcode-kéy": [1, 2.5, None, {"deep": [[["🐍"]]]}], "emoji": "👩‍💻", "t": False},
        id="nested",
    ),
]


@pytest.mark.parametrize("value", JSON_VALUES)
async def test_json_values_round_trip(storage: Storage, value: Any) -> None:
    await storage.state_set("json", "value", value)
    assert await storage.state_get("json", "value") == value
    assert await storage.state_list("json") == {"value": value}

    writer = await GroupWriter.load(storage, "json", "ğroüp ✓")
    stored = item("ïtem 🎉", value=value)
    await writer.commit(("ïtem 🎉", stored))
    state = await storage.load_group("json", "ğroüp ✓")
    assert state.items == {"ïtem 🎉": stored}
    assert state.history[0].data == stored
    assert await storage.list_groups("json") == ["ğroüp ✓"]


# -- queues ----------------------------------------------------------------------------


def message(message_id: str, topic: str = "orders", step: str = "ship", **fields: Any) -> QueuedMessage:
    """A pending copy as the queue runner makes one; ``fields`` override the defaults."""
    defaults: dict[str, Any] = {
        "data": {"order": message_id},
        "trace_id": f"trace-{message_id}",
        "enqueued_ms": 1_000,
        "due_ms": 1_000,
    }
    return QueuedMessage(id=message_id, topic=topic, step=step, **{**defaults, **fields})


def ids(messages: list[QueuedMessage]) -> list[str]:
    return [m.id for m in messages]


async def test_queue_pending_is_in_enqueue_order(storage: Storage) -> None:
    assert await storage.queue_pending() == []
    # enqueued_ms deliberately disagrees: the order is the order of the puts
    puts = [message("m1", enqueued_ms=3), message("m2", enqueued_ms=1), message("m3", enqueued_ms=2)]
    for put in puts:
        await storage.queue_put(put)

    assert await storage.queue_pending() == puts


async def test_queue_put_of_a_pending_id_replaces_it_in_place(storage: Storage) -> None:
    for message_id in ["m1", "m2", "m3"]:
        await storage.queue_put(message(message_id))

    retry = message("m1", attempts=1, due_ms=5_000, last_error="ValueError: boom")
    await storage.queue_put(retry)

    assert await storage.queue_pending() == [retry, message("m2"), message("m3")]


async def test_queue_ack_removes_one_and_unknown_ids_are_a_no_op(storage: Storage) -> None:
    for message_id in ["m1", "m2", "m3"]:
        await storage.queue_put(message(message_id))

    await storage.queue_ack("m2")
    await storage.queue_ack("m2")  # already acked
    await storage.queue_ack("never-queued")
    assert ids(await storage.queue_pending()) == ["m1", "m3"]

    await storage.queue_put(message("m2"))  # acked, then put again: a new entry, so last
    assert ids(await storage.queue_pending()) == ["m1", "m3", "m2"]


async def test_queue_dead_moves_a_pending_message_to_the_dead_letters(storage: Storage) -> None:
    for message_id in ["m1", "m2"]:
        await storage.queue_put(message(message_id))

    failed = message("m1", attempts=3, last_error="RuntimeError: gave up")
    await storage.queue_dead(failed)

    assert ids(await storage.queue_pending()) == ["m2"]
    assert await storage.dead_letters() == [failed]

    await storage.queue_ack("m1")  # acking an id that is dead touches no dead letter
    assert await storage.dead_letters() == [failed]


async def test_queue_dead_of_a_message_that_is_not_pending_stores_it(storage: Storage) -> None:
    await storage.queue_put(message("m1"))
    await storage.queue_dead(message("gone", last_error="no step takes it"))

    assert ids(await storage.queue_pending()) == ["m1"]
    assert ids(await storage.dead_letters()) == ["gone"]


async def test_queue_dead_of_a_dead_id_replaces_it_in_place(storage: Storage) -> None:
    for message_id in ["d1", "d2"]:
        await storage.queue_dead(message(message_id, last_error="first"))

    again = message("d1", attempts=7, last_error="second")
    await storage.queue_dead(again)

    assert await storage.dead_letters() == [again, message("d2", last_error="first")]


async def test_dead_letters_are_oldest_first_and_filter_by_topic(storage: Storage) -> None:
    deaths = [
        message("a1", topic="a", enqueued_ms=9),
        message("b1", topic="b", enqueued_ms=1),
        message("a2", topic="a", enqueued_ms=5),
        message("b2", topic="b", enqueued_ms=2),
    ]
    for dead in deaths:
        await storage.queue_put(dead)
    for dead in deaths:
        await storage.queue_dead(dead)

    assert await storage.dead_letters() == deaths
    assert await storage.dead_letters(None) == deaths
    assert ids(await storage.dead_letters("a")) == ["a1", "a2"]
    assert ids(await storage.dead_letters(topic="b")) == ["b1", "b2"]
    assert await storage.dead_letters("nobody-publishes-this") == []
    assert await storage.queue_pending() == []


async def test_dead_letter_take_removes_and_returns_one(storage: Storage) -> None:
    assert await storage.dead_letter_take("never-dead") is None
    for message_id in ["d1", "d2", "d3"]:
        await storage.queue_dead(message(message_id, attempts=3, last_error="boom"))

    taken = await storage.dead_letter_take("d2")

    assert taken == message("d2", attempts=3, last_error="boom")
    assert ids(await storage.dead_letters()) == ["d1", "d3"]
    assert await storage.dead_letter_take("d2") is None
    assert await storage.queue_pending() == []  # taking does not requeue; the caller does


async def test_a_replayed_dead_letter_is_pending_again_and_goes_last(storage: Storage) -> None:
    for message_id in ["m1", "m2", "m3"]:
        await storage.queue_put(message(message_id))
    await storage.queue_dead(message("m1", attempts=3, last_error="boom"))

    taken = await storage.dead_letter_take("m1")
    assert taken is not None
    revived = attrs.evolve(taken, attempts=0, last_error=None)
    await storage.queue_put(revived)

    assert await storage.queue_pending() == [message("m2"), message("m3"), revived]
    assert await storage.dead_letters() == []

    await storage.queue_dead(attrs.evolve(revived, attempts=3, last_error="again"))
    await storage.queue_dead(message("other"))
    assert ids(await storage.dead_letters()) == ["m1", "other"]


async def test_queued_message_keeps_every_field(storage: Storage) -> None:
    full = QueuedMessage(
        id="0123456789abcdef0123456789abcdef",
        topic="topic ✓",
        step="step 🎉",
        data={"n": 1},
        trace_id=None,
        attempts=2**40,
        due_ms=1_700_000_000_123,
        enqueued_ms=1_699_999_999_000,
        last_error="ValueError: ünïcode\nand a second line",
    )
    bare = QueuedMessage(id="bare", topic="t", step="s", data=None, trace_id="tr")

    await storage.queue_put(full)
    await storage.queue_put(bare)
    assert await storage.queue_pending() == [full, bare]

    await storage.queue_dead(full)
    await storage.queue_dead(bare)
    assert await storage.dead_letters() == [full, bare]
    assert await storage.dead_letter_take(full.id) == full


@pytest.mark.parametrize("value", JSON_VALUES)
async def test_queued_data_json_values_round_trip(storage: Storage, value: Any) -> None:
    await storage.queue_put(message("m", data=value))
    [pending] = await storage.queue_pending()
    assert pending.data == value

    await storage.queue_dead(message("m", data=value))
    assert [dead.data for dead in await storage.dead_letters("orders")] == [value]
    taken = await storage.dead_letter_take("m")
    assert taken is not None and taken.data == value


async def test_queue_rejects_non_json_data_and_stores_nothing(storage: Storage) -> None:
    with pytest.raises(TypeError):
        await storage.queue_put(message("new", data={"when": object()}))
    assert await storage.queue_pending() == []

    await storage.queue_put(message("m1"))
    with pytest.raises(TypeError):
        await storage.queue_put(message("m1", data={1, 2}, attempts=1))  # a replace
    with pytest.raises(TypeError):
        await storage.queue_dead(message("m1", data=object(), attempts=3))
    assert await storage.queue_pending() == [message("m1")]  # neither replaced nor removed
    assert await storage.dead_letters() == []

    await storage.queue_dead(message("m1"))
    with pytest.raises(TypeError):
        await storage.queue_dead(message("m1", data=b"bytes", attempts=9))  # a dead replace
    assert await storage.dead_letters() == [message("m1")]


async def test_changing_queued_data_after_put_or_read_does_not_change_storage(
    storage: Storage,
) -> None:
    data = {"tags": ["a"], "nested": {"n": 1}}
    await storage.queue_put(message("m", data=data))
    data["tags"].append("b")

    [pending] = await storage.queue_pending()
    pending.data["nested"]["n"] = 2
    assert (await storage.queue_pending())[0].data == {"tags": ["a"], "nested": {"n": 1}}

    dead_data = {"list": [1]}
    await storage.queue_dead(message("m", data=dead_data))
    dead_data["list"].append(2)
    (await storage.dead_letters())[0].data["list"].clear()
    taken = await storage.dead_letter_take("m")
    assert taken is not None and taken.data == {"list": [1]}


async def test_queues_need_an_open_storage(backend: str, tmp_path: Path, redis_url: str) -> None:
    storage = BACKENDS[backend](tmp_path, redis_url)
    with pytest.raises(StorageError, match="not open"):
        await storage.queue_put(message("m"))
    async with storage:
        await storage.queue_put(message("m"))
    for call in (storage.queue_pending(), storage.dead_letters(), storage.queue_ack("m")):
        with pytest.raises(StorageError, match="not open"):
            await call


_queue_examples = itertools.count()

_queue_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "ack", "dead", "take"]),
        st.sampled_from(["m1", "m2", "m3", "m4"]),
        st.integers(0, 3),
    ),
    max_size=20,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_queue_ops)
async def test_any_queue_operations_give_dict_semantics(
    backend: str, tmp_path: Path, redis_url: str, ops: list[tuple[str, str, int]]
) -> None:
    # A fresh storage per example (queues are global to a storage, unlike groups).
    example = next(_queue_examples)
    async with BACKENDS[backend](tmp_path / f"example-{example}", redis_url and f"{redis_url}-{example}") as storage:
        pending: dict[str, QueuedMessage] = {}
        dead: dict[str, QueuedMessage] = {}
        for op, message_id, n in ops:
            copy = message(message_id, topic=f"t{n % 2}", attempts=n, data={"n": n})
            if op == "put":
                await storage.queue_put(copy)
                pending[message_id] = copy
            elif op == "ack":
                await storage.queue_ack(message_id)
                pending.pop(message_id, None)
            elif op == "dead":
                await storage.queue_dead(copy)
                pending.pop(message_id, None)
                dead[message_id] = copy
            else:
                assert await storage.dead_letter_take(message_id) == dead.pop(message_id, None)
            assert await storage.queue_pending() == list(pending.values())
            assert await storage.dead_letters() == list(dead.values())
            assert await storage.dead_letters("t1") == [m for m in dead.values() if m.topic == "t1"]


# -- lifecycle ---------------------------------------------------------------------


async def test_open_and_aclose_are_idempotent(backend: str, tmp_path: Path, redis_url: str) -> None:
    # Its own storage, not the fixture's: Redis's client must be opened and
    # closed by one task, and pytest-trio sets fixtures up in another.
    storage = BACKENDS[backend](tmp_path, redis_url)
    await storage.open()
    await storage.open()
    await storage.state_set("s", "k", "v")
    await storage.aclose()
    await storage.aclose()

    with pytest.raises(StorageError, match="not open"):
        await storage.state_get("s", "k")

    await storage.open()
    assert await storage.state_get("s", "k") == "v"
    await storage.aclose()


# -- any sequence of batches -----------------------------------------------------------

_group_names = itertools.count()

_writes = st.lists(
    st.tuples(st.sampled_from("abcdef"), st.one_of(st.none(), st.integers(0, 9))),
    max_size=8,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(_writes, max_size=6))
async def test_any_batches_give_dict_semantics(
    backend: str, tmp_path: Path, redis_url: str, batches: list[list[tuple[str, int | None]]]
) -> None:
    # Not the `storage` fixture: pytest-trio sets async fixtures up once, not per example.
    # Every example shares tmp_path, so each one takes a group of its own.
    async with BACKENDS[backend](tmp_path, redis_url) as storage:
        writer = await GroupWriter.load(storage, "prop", f"g{next(_group_names)}")
        for batch in batches:
            writes = [(i, None if n is None else item(i, n=n)) for i, n in batch]
            await writer.commit(*writes, policy=HistoryPolicy(max_events=10))

            state = await storage.load_group(writer.stream, writer.group)
            assert ordered(state.items) == ordered(writer.items)
            assert state.offset == writer.offset
            offsets = [e.offset for e in state.history]
            assert offsets == list(range(max(1, writer.offset - 9), writer.offset + 1))
