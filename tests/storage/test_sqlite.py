"""What only a durable, threaded backend must prove: restarts, atomic files, a free event loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import runtime.storage.sqlite as sqlite_backend
from runtime.errors import StorageError
from runtime.storage import (
    ConflictError,
    HistoryPolicy,
    MemoryStorage,
    RedisStorage,
    SQLiteStorage,
    StoredEvent,
    open_storage,
)
from runtime.storage.sqlite import SCHEMA_VERSION
from tests.storage.test_storage_contract import GroupWriter, item, message, ordered


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "runtime.sqlite3"


def dump(path: Path) -> list[str]:
    """Every row of every table, read through a separate connection (WAL included)."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def schema(path: Path) -> list[tuple[str, str, str]]:
    """Every table and index with its SQL, read through a separate connection."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


# -- restart -----------------------------------------------------------------


async def test_restart_keeps_items_offsets_epoch_and_history(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        await writer.commit(("a", item("a")), ("b", item("b")), ("c", item("c")))
        await writer.commit(("b", None), ("b", item("b", again=True)), ("a", item("a", v=2)))
        await storage.state_set("orders", "o1", {"total": 12})
        before = await storage.load_group("todo", "g1")

    async with SQLiteStorage(db_path) as restarted:
        after = await restarted.load_group("todo", "g1")
        assert after == before
        assert ordered(after.items) == [
            ("a", item("a", v=2)),
            ("c", item("c")),
            ("b", item("b", again=True)),
        ]
        assert await restarted.list_groups("todo") == ["g1"]
        assert await restarted.state_get("orders", "o1") == {"total": 12}

        # The group carries on where it stopped: same epoch, next offset.
        writer.storage = restarted
        await writer.commit(("d", item("d")))
        assert (await restarted.load_group("todo", "g1")).offset == 7


async def test_restart_keeps_pending_messages_and_dead_letters(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        for message_id in ["m1", "m2", "m3", "m4"]:
            await storage.queue_put(message(message_id))
        retry = message("m2", attempts=1, due_ms=9_000, last_error="ValueError: once")
        await storage.queue_put(retry)
        await storage.queue_ack("m3")
        dead = message("m1", topic="orders", attempts=3, last_error="ValueError: thrice")
        await storage.queue_dead(dead)
        other_dead = message("x1", topic="other", data=["kept"])
        await storage.queue_dead(other_dead)

    async with SQLiteStorage(db_path) as restarted:
        assert await restarted.queue_pending() == [retry, message("m4")]
        assert await restarted.dead_letters() == [dead, other_dead]
        assert await restarted.dead_letters("other") == [other_dead]

        # New messages and new dead letters still go after the restored ones.
        await restarted.queue_put(message("m5"))
        await restarted.queue_dead(message("m4", last_error="after restart"))
        assert [m.id for m in await restarted.queue_pending()] == ["m2", "m5"]
        assert [m.id for m in await restarted.dead_letters()] == ["m1", "x1", "m4"]
        assert await restarted.dead_letter_take("m1") == dead

    async with SQLiteStorage(db_path) as again:
        assert [m.id for m in await again.dead_letters()] == ["x1", "m4"]


async def test_memory_restart_loses_queued_messages() -> None:
    async with MemoryStorage() as first:
        await first.queue_put(message("m1"))
        await first.queue_dead(message("d1"))
    async with MemoryStorage() as after_restart:
        assert await after_restart.queue_pending() == []
        assert await after_restart.dead_letters() == []


async def test_memory_restart_starts_a_new_epoch() -> None:
    async with MemoryStorage() as first:
        writer = await GroupWriter.load(first)
        await writer.commit(("a", item("a")))
    async with MemoryStorage() as after_restart:
        state = await after_restart.load_group("todo", "g1")
    assert (state.offset, state.items) == (0, {})
    assert state.epoch != writer.epoch


async def test_file_has_current_schema_version_and_wal(db_path: Path) -> None:
    async with SQLiteStorage(db_path):
        pass
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


async def test_version_1_file_is_migrated_to_the_current_version_keeping_its_data(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SCHEMA_VERSION == 3
    # Write a file with the version-1 code: only the first migration.
    with monkeypatch.context() as v1:
        v1.setattr(sqlite_backend, "_MIGRATIONS", sqlite_backend._MIGRATIONS[:1])
        v1.setattr(sqlite_backend, "SCHEMA_VERSION", 1)
        v1.setattr(sqlite_backend, "_write_expiries", lambda *args: None)  # version 1 had no expiries
        v1.setattr(sqlite_backend, "_SELECT_EXPIRING", "SELECT ? WHERE 0 AND ?")  # nor loaded them
        async with SQLiteStorage(db_path) as old:
            writer = await GroupWriter.load(old)
            await writer.commit(("a", item("a")), ("b", item("b")))
            await writer.commit(("a", item("a", v=2)), ("b", None), ("c", item("c")))
            await old.state_set("orders", "o1", {"total": 12})
            before = await old.load_group("todo", "g1")
    assert user_version(db_path) == 1
    assert not {"queue_pending", "queue_dead"} & {name for _, name, _ in schema(db_path)}

    async with SQLiteStorage(db_path) as upgraded:
        assert user_version(db_path) == SCHEMA_VERSION
        assert await upgraded.load_group("todo", "g1") == before
        assert ordered(before.items) == [("a", item("a", v=2)), ("c", item("c"))]
        assert await upgraded.list_groups("todo") == ["g1"]
        assert await upgraded.state_get("orders", "o1") == {"total": 12}

        await upgraded.queue_put(message("m1"))
        await upgraded.queue_dead(message("d1"))
        assert await upgraded.queue_pending() == [message("m1")]
        assert await upgraded.dead_letters() == [message("d1")]

        # The group carries on: same epoch, next offset.
        writer.storage = upgraded
        await writer.commit(("d", item("d")))
        assert (await upgraded.load_group("todo", "g1")).offset == 6

    # A migrated file has exactly the schema of a file created at the current version.
    fresh = tmp_path / "fresh.sqlite3"
    async with SQLiteStorage(fresh):
        pass
    assert schema(db_path) == schema(fresh)


async def test_file_from_a_newer_schema_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(StorageError, match="newer"):
        await SQLiteStorage(db_path).open()


async def test_sqlite_failures_surface_as_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open"):
        await SQLiteStorage(tmp_path).open()  # a directory, not a database file


def test_unknown_synchronous_mode_is_refused(db_path: Path) -> None:
    with pytest.raises(ValueError, match="NORMAL"):
        SQLiteStorage(db_path, synchronous="SOMETIMES")


# -- atomic commits --------------------------------------------------------------


async def test_conflicting_commit_leaves_the_file_unchanged(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        await writer.commit(("a", item("a")), ("b", item("b")))
        before = dump(db_path)

        stale = attrs.evolve(writer.build(("a", None), ("c", item("c"))), expected_offset=1)
        with pytest.raises(ConflictError):
            await storage.commit("todo", "g1", stale, HistoryPolicy())

        assert dump(db_path) == before


async def test_commit_failing_halfway_rolls_back_every_write(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        await writer.commit(("a", item("a")))
        before = dump(db_path)

        # The item writes succeed, then an event reuses a stored offset: the
        # history insert fails after the items table was already written.
        batch = writer.build(("a", None), ("z", item("z")))
        clash = StoredEvent(1, batch.timestamp, "z", "create", item("z"))
        with pytest.raises(StorageError, match="UNIQUE"):
            await storage.commit("todo", "g1", attrs.evolve(batch, events=[clash]), HistoryPolicy())

        assert dump(db_path) == before


async def test_loading_an_unknown_group_writes_nothing(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        before = dump(db_path)
        await storage.load_group("todo", "probe")
        assert dump(db_path) == before


async def test_value_json_cannot_hold_raises_type_error_and_writes_nothing(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        before = dump(db_path)

        with pytest.raises(TypeError):
            await writer.commit(("a", item("a", when={1, 2})))

        assert dump(db_path) == before


async def test_queue_data_json_cannot_hold_raises_type_error_and_writes_nothing(
    db_path: Path,
) -> None:
    async with SQLiteStorage(db_path) as storage:
        await storage.queue_put(message("m1"))
        await storage.queue_dead(message("d1"))
        before = dump(db_path)

        for bad in (message("m2", data={1}), message("m1", data=object(), attempts=1)):
            with pytest.raises(TypeError):
                await storage.queue_put(bad)
            with pytest.raises(TypeError):
                await storage.queue_dead(bad)
        with pytest.raises(TypeError):
            await storage.queue_dead(message("d1", data=object()))

        assert dump(db_path) == before


async def test_queue_dead_failing_halfway_keeps_the_message_pending(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        await storage.queue_put(message("m1"))
        await storage.queue_put(message("m2"))

        # The pending row is deleted first; then the dead-letter insert fails.
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute(
                "CREATE TRIGGER refuse_dead BEFORE INSERT ON queue_dead"
                " BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        finally:
            other.close()
        before = dump(db_path)

        with pytest.raises(StorageError, match="refused by test"):
            await storage.queue_dead(message("m1", attempts=3, last_error="boom"))

        assert dump(db_path) == before
        assert [m.id for m in await storage.queue_pending()] == ["m1", "m2"]
        assert await storage.dead_letters() == []


# -- the event loop stays free ---------------------------------------------------


async def test_commit_waiting_on_the_disk_lets_other_tasks_run(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        committed = trio.Event()

        async def commit() -> None:
            await writer.commit(("a", item("a")))
            committed.set()

        # Another connection holds the write lock, so the commit cannot finish
        # until this task, which can only run if the loop is free, lets it go.
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(commit)
                await trio.testing.wait_all_tasks_blocked()
                for _ in range(100):
                    await trio.sleep(0)
                assert not committed.is_set()
                blocker.execute("COMMIT")
        finally:
            blocker.close()

        assert committed.is_set()
        assert list((await storage.load_group("todo", "g1")).items) == ["a"]


async def test_large_commit_lets_other_tasks_run(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:
        writer = await GroupWriter.load(storage)
        writes = [(f"item-{n:05}", item(f"item-{n:05}", text="x" * 200)) for n in range(2_000)]
        ticks = 0

        async def count_ticks() -> None:
            # Spin only until the point is made: a spinning task competes with
            # the worker thread for the GIL and would slow the commit down.
            nonlocal ticks
            while ticks < 50:
                ticks += 1
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(count_ticks)
            await writer.commit(*writes)
            nursery.cancel_scope.cancel()

        # Blocking the loop for the whole commit would allow one tick at most.
        assert ticks > 20
        assert (await storage.load_group("todo", "g1")).offset == 2_000


# -- concurrency --------------------------------------------------------------------


async def test_fifty_tasks_commit_to_fifty_groups(db_path: Path) -> None:
    async with SQLiteStorage(db_path) as storage:

        async def work(n: int) -> None:
            writer = await GroupWriter.load(storage, "load", f"g{n:02}")
            for round_ in range(3):
                await writer.commit((f"i{round_}", item(f"i{round_}", by=n)), ("count", item("count", n=round_)))

        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(work, n)

        assert await storage.list_groups("load") == [f"g{n:02}" for n in range(50)]
        for n in range(50):
            state = await storage.load_group("load", f"g{n:02}")
            assert state.offset == 6
            assert list(state.items) == ["i0", "count", "i1", "i2"]
            assert state.items["count"] == item("count", n=2)


async def test_aclose_closes_the_file_even_when_cancelled(db_path: Path) -> None:
    storage = SQLiteStorage(db_path)
    await storage.open()
    with trio.CancelScope() as scope:
        scope.cancel()
        await storage.aclose()

    with pytest.raises(StorageError, match="not open"):
        await storage.state_get("s", "k")


# -- choosing a backend by URL ---------------------------------------------------------


@pytest.mark.parametrize("url", ["memory", "memory://", "MEMORY"])
def test_memory_urls(url: str) -> None:
    assert isinstance(open_storage(url), MemoryStorage)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:data/app.db", "data/app.db"),
        ("sqlite:/srv/app.db", "/srv/app.db"),
        ("sqlite:///srv/app.db", "/srv/app.db"),
        ("sqlite://data/app.db", "data/app.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, SQLiteStorage)
    assert storage.path == Path(path)


async def test_sqlite_url_creates_parent_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with open_storage("sqlite:.runtime/nested/app.db") as storage:
        await storage.state_set("s", "k", 1)
    assert (tmp_path / ".runtime" / "nested" / "app.db").is_file()


@pytest.mark.parametrize(
    "url", ["redis:", "postgres://db/app", "sqlite:", "memory:extra", ""]
)
def test_unsupported_url_names_what_is_supported(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(url) in message
    for supported in ("'memory'", "'sqlite:PATH'", "'sqlite:///abs/path'", "'sqlite://relative/path'",
                      "'redis://host:port/db'"):
        assert supported in message


def test_redis_url_opens_a_redis_storage() -> None:
    storage = open_storage("redis://localhost:6380/2?prefix=app1&timeout=2")
    assert isinstance(storage, RedisStorage)
    assert (storage.where, storage.keys.prefix, storage.timeout) == ("localhost:6380", "app1", 2.0)


# -- concurrent groups' commits merge into one transaction ----------------------------


async def test_concurrent_groups_commit_in_one_transaction_and_a_failing_one_rolls_back_alone(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    merged: list[int] = []
    real = sqlite_backend._commit_merged

    def counting(conn, batch):
        merged.append(len(batch))
        return real(conn, batch)

    monkeypatch.setattr(sqlite_backend, "_commit_merged", counting)
    async with SQLiteStorage(db_path) as storage:
        writers = [await GroupWriter.load(storage, "todo", f"g{n}") for n in range(8)]
        for writer in writers:
            await writer.commit(("a", item("a")))
        before = {n: await storage.load_group("todo", f"g{n}") for n in (2, 5, 6)}
        outcomes: dict[int, object] = {}

        async def commit(n: int) -> None:
            writer = writers[n]
            batch = writer.build(("a", item("a", v=2)), ("b", item("b")))
            if n == 2:  # stale: computed from an offset storage no longer holds
                batch = attrs.evolve(batch, expected_offset=0)
            if n == 5:  # fails after its item rows were written: the history insert clashes
                batch = attrs.evolve(batch, events=[StoredEvent(1, batch.timestamp, "b", "create", item("b"))])
            if n == 6:  # a value JSON cannot hold
                batch = attrs.evolve(batch, writes=[("a", item("a", when={1, 2}))])
            try:
                await storage.commit("todo", f"g{n}", batch, HistoryPolicy())
                outcomes[n] = "ok"
            except Exception as exc:  # noqa: BLE001 - recorded for the asserts
                outcomes[n] = type(exc)

        async with trio.open_nursery() as nursery:
            for n in range(8):
                nursery.start_soon(commit, n)

        assert outcomes == {0: "ok", 1: "ok", 2: ConflictError, 3: "ok", 4: "ok", 5: StorageError,
                            6: TypeError, 7: "ok"}
        assert merged and max(merged) > 1  # they really shared a transaction
    async with SQLiteStorage(db_path) as reopened:  # what reached the file
        for n in range(8):
            state = await reopened.load_group("todo", f"g{n}")
            if n in (2, 5, 6):
                assert (state.offset, state.items) == (before[n].offset, before[n].items)
                assert [e.offset for e in state.history] == [1]
            else:
                assert state.offset == 3 and state.items["a"]["v"] == 2 and "b" in state.items


async def test_a_cancelled_committer_still_commits_what_it_queued(db_path: Path) -> None:
    """Queued commits are written whatever happens to their callers (as a worker call always was)."""
    async with SQLiteStorage(db_path) as storage:
        writers = [await GroupWriter.load(storage, "todo", f"g{n}") for n in range(5)]
        async with trio.open_nursery() as nursery:
            for writer in writers:
                nursery.start_soon(writer.commit, ("a", item("a")))
            await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()
        for n in range(5):
            assert (await storage.load_group("todo", f"g{n}")).offset == 1
