"""Embedded durable storage on the standard library's sqlite3.

Why it is built this way:

- The event loop must never wait on the disk, so every call runs in a worker
  thread (``trio.to_thread.run_sync``). One ``CapacityLimiter(1)`` admits one
  call at a time, which serialises all use of the single connection: no two
  threads ever touch it at once, even though Trio may run successive calls on
  different pooled threads (hence ``check_same_thread=False``).
- A group's batch is one ``BEGIN IMMEDIATE`` transaction: the compare-and-set
  check, the item writes, the group's epoch/offset/timestamp, the new history
  and its trimming all land together or not at all.
- WAL mode with ``synchronous=NORMAL`` makes a commit an append to the log
  without an fsync: a power cut may lose the last commits, never corrupt the
  file. Pass ``synchronous="FULL"`` to fsync every commit.
- Values are stored as JSON text (orjson), and encoded in the worker thread
  before the transaction starts, so a value JSON cannot represent raises
  ``TypeError`` without holding the write lock or changing anything.
- Commits of different groups that arrive while one is being written are
  merged: the next worker call writes them all in one transaction, each
  group inside its own savepoint. A group whose batch fails (a conflict, a
  constraint) rolls back to its savepoint alone and gets its error; the
  others commit. On one connection a transaction costs far more than its
  rows, so 1,000 groups each committing one op no longer pay one
  transaction each (see docs/performance.md, Streams).
- Queued messages are one row each, in ``queue_pending`` or ``queue_dead``;
  a ``seq`` column keeps the order an id was first stored in (a replace
  keeps it), and moving a message to the dead letters is one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import attrs
import orjson
import trio

from runtime.errors import StorageError
from runtime.storage.base import (
    GroupCommit,
    GroupState,
    HistoryPolicy,
    QueuedMessage,
    Storage,
    StoredEvent,
    check_expected,
    new_epoch,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStorage"]

T = TypeVar("T")

SYNCHRONOUS_MODES = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

# _MIGRATIONS[n] upgrades a file from schema version n to n + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE groups (
            stream TEXT NOT NULL, grp TEXT NOT NULL,
            epoch TEXT NOT NULL, "offset" INTEGER NOT NULL, timestamp INTEGER NOT NULL,
            PRIMARY KEY (stream, grp)) WITHOUT ROWID""",
        # seq orders a group's items by insertion: a new item takes max(seq) + 1,
        # an update keeps its seq, a delete followed by a create takes a new one.
        """CREATE TABLE items (
            stream TEXT NOT NULL, grp TEXT NOT NULL, item_id TEXT NOT NULL,
            seq INTEGER NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (stream, grp, item_id)) WITHOUT ROWID""",
        "CREATE INDEX items_by_seq ON items (stream, grp, seq)",
        """CREATE TABLE history (
            stream TEXT NOT NULL, grp TEXT NOT NULL, "offset" INTEGER NOT NULL,
            timestamp INTEGER NOT NULL, item_id TEXT NOT NULL, type TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (stream, grp, "offset")) WITHOUT ROWID""",
        """CREATE TABLE state (
            scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (scope, key)) WITHOUT ROWID""",
    ),
    # 1 -> 2: durable queues. Rowid tables (not WITHOUT ROWID): a message's data
    # can be large. seq orders each table by first insertion, as items' does.
    (
        """CREATE TABLE queue_pending (
            id TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL,
            topic TEXT NOT NULL, step TEXT NOT NULL, data TEXT NOT NULL, trace_id TEXT,
            attempts INTEGER NOT NULL, due_ms INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL,
            last_error TEXT)""",
        "CREATE INDEX queue_pending_by_seq ON queue_pending (seq)",
        """CREATE TABLE queue_dead (
            id TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL,
            topic TEXT NOT NULL, step TEXT NOT NULL, data TEXT NOT NULL, trace_id TEXT,
            attempts INTEGER NOT NULL, due_ms INTEGER NOT NULL, enqueued_ms INTEGER NOT NULL,
            last_error TEXT)""",
        "CREATE INDEX queue_dead_by_seq ON queue_dead (seq)",
        "CREATE INDEX queue_dead_by_topic ON queue_dead (topic, seq)",
    ),
    # 2 -> 3: item expiries (TTL) and idempotency records, written with a group's batch.
    (
        """CREATE TABLE expiries (
            stream TEXT NOT NULL, grp TEXT NOT NULL, item_id TEXT NOT NULL, at INTEGER NOT NULL,
            PRIMARY KEY (stream, grp, item_id)) WITHOUT ROWID""",
        "CREATE INDEX expiries_by_time ON expiries (stream, at)",
        # seq orders a group's records by first storing, for the count bound.
        """CREATE TABLE idempotency (
            stream TEXT NOT NULL, grp TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL,
            expires_at INTEGER NOT NULL, result TEXT NOT NULL,
            PRIMARY KEY (stream, grp, key)) WITHOUT ROWID""",
        "CREATE INDEX idempotency_by_seq ON idempotency (stream, grp, seq)",
        "CREATE INDEX idempotency_by_expiry ON idempotency (stream, grp, expires_at)",
    ),
)
#: The version a file has once opened, kept in ``PRAGMA user_version``.
SCHEMA_VERSION = len(_MIGRATIONS)

_SELECT_GROUP = 'SELECT epoch, "offset", timestamp FROM groups WHERE stream = ? AND grp = ?'
_UPSERT_GROUP = """
    INSERT INTO groups (stream, grp, epoch, "offset", timestamp) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (stream, grp) DO UPDATE
    SET epoch = excluded.epoch, "offset" = excluded."offset", timestamp = excluded.timestamp"""

_SELECT_ITEMS = "SELECT item_id, value FROM items WHERE stream = ? AND grp = ? ORDER BY seq"
_MAX_ITEM_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM items WHERE stream = ? AND grp = ?"
_DELETE_ITEM = "DELETE FROM items WHERE stream = ? AND grp = ? AND item_id = ?"
_UPSERT_ITEM = """
    INSERT INTO items (stream, grp, item_id, seq, value) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (stream, grp, item_id) DO UPDATE SET value = excluded.value"""
_SELECT_GROUPS_WITH_ITEMS = """
    SELECT grp FROM groups
    WHERE stream = ? AND EXISTS (
        SELECT 1 FROM items WHERE items.stream = groups.stream AND items.grp = groups.grp)
    ORDER BY grp"""

_SELECT_HISTORY = (
    'SELECT "offset", timestamp, item_id, type, data FROM history'
    ' WHERE stream = ? AND grp = ? ORDER BY "offset"'
)
_INSERT_EVENT = """
    INSERT INTO history (stream, grp, "offset", timestamp, item_id, type, data)
    VALUES (?, ?, ?, ?, ?, ?, ?)"""
_OLDEST_EVENT = """
    SELECT "offset", timestamp FROM history WHERE stream = ? AND grp = ?
    ORDER BY "offset" LIMIT 1"""
_DELETE_EVENTS_STAMPED_BEFORE = "DELETE FROM history WHERE stream = ? AND grp = ? AND timestamp < ?"
_DELETE_EVENTS_BELOW_OFFSET = 'DELETE FROM history WHERE stream = ? AND grp = ? AND "offset" < ?'

_DELETE_EXPIRY = "DELETE FROM expiries WHERE stream = ? AND grp = ? AND item_id = ?"
_UPSERT_EXPIRY = """
    INSERT INTO expiries (stream, grp, item_id, at) VALUES (?, ?, ?, ?)
    ON CONFLICT (stream, grp, item_id) DO UPDATE SET at = excluded.at"""
_DUE_GROUPS = "SELECT DISTINCT grp FROM expiries WHERE stream = ? AND at <= ? LIMIT ?"
_EXPIRED_ITEMS = "SELECT item_id FROM expiries WHERE stream = ? AND grp = ? AND at <= ? ORDER BY at, item_id"
_SELECT_EXPIRING = "SELECT item_id FROM expiries WHERE stream = ? AND grp = ?"
_NEXT_EXPIRY = "SELECT MIN(at) FROM expiries WHERE stream = ?"

_MAX_RECORD_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM idempotency WHERE stream = ? AND grp = ?"
_INSERT_RECORD = """
    INSERT INTO idempotency (stream, grp, key, seq, expires_at, result) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (stream, grp, key) DO NOTHING"""
_DELETE_RECORDS_EXPIRED = "DELETE FROM idempotency WHERE stream = ? AND grp = ? AND expires_at <= ?"
_DELETE_RECORDS_BELOW_SEQ = "DELETE FROM idempotency WHERE stream = ? AND grp = ? AND seq <= ?"
_SELECT_RECORD = "SELECT result FROM idempotency WHERE stream = ? AND grp = ? AND key = ? AND expires_at > ?"

_STATE_GET = "SELECT value FROM state WHERE scope = ? AND key = ?"
_STATE_SET = """
    INSERT INTO state (scope, key, value) VALUES (?, ?, ?)
    ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value"""
_STATE_DELETE = "DELETE FROM state WHERE scope = ? AND key = ?"
_STATE_LIST = "SELECT key, value FROM state WHERE scope = ? ORDER BY key"
_STATE_CLEAR = "DELETE FROM state WHERE scope = ?"

# Both queue tables have the same columns; {table} is one of the two names, never input.
_MESSAGE_COLUMNS = "id, topic, step, data, trace_id, attempts, due_ms, enqueued_ms, last_error"
_UPSERT_MESSAGE = """
    INSERT INTO {table} (seq, id, topic, step, data, trace_id, attempts, due_ms, enqueued_ms,
                         last_error)
    VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        topic = excluded.topic, step = excluded.step, data = excluded.data,
        trace_id = excluded.trace_id, attempts = excluded.attempts, due_ms = excluded.due_ms,
        enqueued_ms = excluded.enqueued_ms, last_error = excluded.last_error"""
_UPSERT_PENDING = _UPSERT_MESSAGE.format(table="queue_pending")
_UPSERT_DEAD = _UPSERT_MESSAGE.format(table="queue_dead")
_DELETE_PENDING = "DELETE FROM queue_pending WHERE id = ?"
_SELECT_PENDING = f"SELECT {_MESSAGE_COLUMNS} FROM queue_pending ORDER BY seq"
_SELECT_DEAD = f"SELECT {_MESSAGE_COLUMNS} FROM queue_dead ORDER BY seq"
_SELECT_DEAD_OF_TOPIC = f"SELECT {_MESSAGE_COLUMNS} FROM queue_dead WHERE topic = ? ORDER BY seq"
_SELECT_ONE_DEAD = f"SELECT {_MESSAGE_COLUMNS} FROM queue_dead WHERE id = ?"
_DELETE_DEAD = "DELETE FROM queue_dead WHERE id = ?"


def _encode(value: Any) -> str:
    return orjson.dumps(value).decode()


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
    """Commit on success, roll back on any error (including a failed COMMIT)."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _plan_item_writes(
    writes: list[tuple[str, dict | None]],
) -> tuple[set[str], list[tuple[str, dict]]]:
    """Reduce a batch's writes to the rows to delete, then the rows to upsert.

    SQL cannot replay writes one by one cheaply, so this folds them with the
    semantics of a Python dict (what ``MemoryStorage`` does): the last write
    of an id wins, and an id deleted and written again within the batch
    re-enters at the end. Deleting every id in ``deleted`` and then
    upserting ``upserts`` in order, each new row taking the next ``seq``,
    gives the same items in the same order.
    """
    deleted: set[str] = set()
    upserts: dict[str, dict] = {}
    for item_id, value in writes:
        if value is None:
            deleted.add(item_id)
            upserts.pop(item_id, None)
        else:
            upserts[item_id] = value
    return deleted, list(upserts.items())


def _load_group(conn: sqlite3.Connection, stream: str, group: str) -> GroupState:
    key = (stream, group)
    with _transaction(conn, "BEGIN"):  # one consistent snapshot of the three tables
        meta = conn.execute(_SELECT_GROUP, key).fetchone()
        if meta is None:
            return GroupState(epoch=new_epoch(), offset=0, timestamp=0, items={}, history=[], expiring=[])
        items = {item_id: orjson.loads(value) for item_id, value in conn.execute(_SELECT_ITEMS, key)}
        history = [
            StoredEvent(offset, timestamp, item_id, type_, orjson.loads(data))
            for offset, timestamp, item_id, type_, data in conn.execute(_SELECT_HISTORY, key)
        ]
        expiring = [item_id for (item_id,) in conn.execute(_SELECT_EXPIRING, key)]
    epoch, offset, timestamp = meta
    return GroupState(epoch=epoch, offset=offset, timestamp=timestamp, items=items, history=history,
                      expiring=expiring)


@attrs.define(slots=True, eq=False)
class _PendingCommit:
    """One group's ``commit()`` waiting to be written, possibly with others'."""

    stream: str
    group: str
    commit: GroupCommit
    policy: HistoryPolicy
    wake: trio.Event = attrs.Factory(trio.Event)
    finished: bool = False
    error: BaseException | None = None


_Prepared = tuple[set[str], list[tuple[str, str]], list[tuple[Any, ...]], list[tuple[str, int, str]]]


def _prepare(stream: str, group: str, commit: GroupCommit) -> _Prepared:
    """Encode a batch before any transaction: a TypeError here holds no lock, changes nothing."""
    deleted, upserts = _plan_item_writes(commit.writes)
    encoded_upserts = [(item_id, _encode(value)) for item_id, value in upserts]
    event_rows = [
        (stream, group, e.offset, e.timestamp, e.item_id, e.type, _encode(e.data))
        for e in commit.events
    ]
    records = [(record.key, record.expires_at, _encode(record.result)) for record in commit.records]
    return deleted, encoded_upserts, event_rows, records


def _write(
    conn: sqlite3.Connection, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy,
    prepared: _Prepared,
) -> None:
    """One group's batch, inside a transaction (or savepoint) the caller opened."""
    deleted, encoded_upserts, event_rows, records = prepared
    key = (stream, group)
    meta = conn.execute(_SELECT_GROUP, key).fetchone()
    stored_epoch, stored_offset = (meta[0], meta[1]) if meta else (None, 0)
    check_expected(stream, group, stored_epoch, stored_offset, commit)
    if deleted:
        conn.executemany(_DELETE_ITEM, [(stream, group, item_id) for item_id in deleted])
    if encoded_upserts:
        (max_seq,) = conn.execute(_MAX_ITEM_SEQ, key).fetchone()
        conn.executemany(
            _UPSERT_ITEM,
            [
                (stream, group, item_id, max_seq + n, value)
                for n, (item_id, value) in enumerate(encoded_upserts, start=1)
            ],
        )
    conn.execute(_UPSERT_GROUP, (*key, commit.epoch, commit.offset, commit.timestamp))
    if event_rows:
        conn.executemany(_INSERT_EVENT, event_rows)
    _trim_history(conn, stream, group, commit, policy)
    if deleted or commit.expiries:
        _write_expiries(conn, stream, group, deleted, commit.expiries)
    if records:
        _write_records(conn, stream, group, records, commit)


def _write_expiries(
    conn: sqlite3.Connection, stream: str, group: str, deleted: set[str], expiries: dict[str, int | None]
) -> None:
    """A deleted item's expiry goes with it; then the batch's own changes of expiry."""
    cleared = deleted | {item_id for item_id, at in expiries.items() if at is None}
    if cleared:
        conn.executemany(_DELETE_EXPIRY, [(stream, group, item_id) for item_id in cleared])
    upserts = [(stream, group, item_id, at) for item_id, at in expiries.items() if at is not None]
    if upserts:
        conn.executemany(_UPSERT_EXPIRY, upserts)


def _write_records(
    conn: sqlite3.Connection, stream: str, group: str, records: list[tuple[str, int, str]], commit: GroupCommit
) -> None:
    """Store the batch's records (a known key keeps its first), then drop the expired and the oldest."""
    key = (stream, group)
    (max_seq,) = conn.execute(_MAX_RECORD_SEQ, key).fetchone()
    conn.executemany(
        _INSERT_RECORD,
        [(stream, group, name, max_seq + n, expires_at, result)
         for n, (name, expires_at, result) in enumerate(records, start=1)],
    )
    conn.execute(_DELETE_RECORDS_EXPIRED, (*key, commit.timestamp))
    (max_seq,) = conn.execute(_MAX_RECORD_SEQ, key).fetchone()
    if max_seq > commit.max_records:
        conn.execute(_DELETE_RECORDS_BELOW_SEQ, (*key, max_seq - commit.max_records))


def _expiry_due(conn: sqlite3.Connection, stream: str, now: int, limit: int) -> list[str]:
    return [grp for (grp,) in conn.execute(_DUE_GROUPS, (stream, now, limit))]


def _expired_items(conn: sqlite3.Connection, stream: str, group: str, now: int) -> list[str]:
    return [item_id for (item_id,) in conn.execute(_EXPIRED_ITEMS, (stream, group, now))]


def _expiry_next(conn: sqlite3.Connection, stream: str) -> int | None:
    (at,) = conn.execute(_NEXT_EXPIRY, (stream,)).fetchone()
    return at


def _idempotency_get(conn: sqlite3.Connection, stream: str, group: str, keys: list[str], now: int) -> dict[str, Any]:
    found = {}
    for name in keys:
        row = conn.execute(_SELECT_RECORD, (stream, group, name, now)).fetchone()
        if row is not None:
            found[name] = orjson.loads(row[0])
    return found


def _commit(
    conn: sqlite3.Connection, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy
) -> None:
    prepared = _prepare(stream, group, commit)
    with _transaction(conn):
        _write(conn, stream, group, commit, policy, prepared)


def _commit_merged(conn: sqlite3.Connection, batch: list[_PendingCommit]) -> None:
    """Several groups' batches in one transaction, a savepoint each.

    A batch that fails (encoding, conflict, constraint) records its error
    and rolls back to its savepoint: only its own writes are undone. An
    error outside the savepoints (BEGIN, COMMIT) fails the whole call.
    """
    prepared: list[tuple[_PendingCommit, _Prepared]] = []
    for pending in batch:
        try:
            prepared.append((pending, _prepare(pending.stream, pending.group, pending.commit)))
        except Exception as exc:  # noqa: BLE001 - this group's error alone
            pending.error = exc
    if not prepared:
        return
    with _transaction(conn):
        for pending, encoded in prepared:
            conn.execute("SAVEPOINT group_commit")
            try:
                _write(conn, pending.stream, pending.group, pending.commit, pending.policy, encoded)
            except Exception as exc:  # noqa: BLE001 - this group's error alone
                conn.execute("ROLLBACK TO group_commit")
                pending.error = exc
            conn.execute("RELEASE group_commit")


def _trim_history(
    conn: sqlite3.Connection, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy
) -> None:
    """Drop events past either limit, probing the oldest event first.

    The probe is one index lookup, and it is usually all there is to do.
    Timestamps grow with offsets, so if the oldest event is young enough they
    all are; the age delete, which reads the group's whole history, runs
    only when something has actually expired.
    """
    key = (stream, group)
    oldest = conn.execute(_OLDEST_EVENT, key).fetchone()
    if oldest is None:
        return
    oldest_offset, oldest_timestamp = oldest
    cutoff = policy.age_cutoff(commit.timestamp)
    if oldest_timestamp < cutoff:
        conn.execute(_DELETE_EVENTS_STAMPED_BEFORE, (*key, cutoff))
    first_kept = policy.first_kept_offset(commit.offset)
    if oldest_offset < first_kept:
        conn.execute(_DELETE_EVENTS_BELOW_OFFSET, (*key, first_kept))


def _list_groups(conn: sqlite3.Connection, stream: str) -> list[str]:
    return [grp for (grp,) in conn.execute(_SELECT_GROUPS_WITH_ITEMS, (stream,))]


def _state_get(conn: sqlite3.Connection, scope: str, key: str) -> Any | None:
    row = conn.execute(_STATE_GET, (scope, key)).fetchone()
    return None if row is None else orjson.loads(row[0])


def _state_set(conn: sqlite3.Connection, scope: str, key: str, value: Any) -> None:
    conn.execute(_STATE_SET, (scope, key, _encode(value)))


def _state_delete(conn: sqlite3.Connection, scope: str, key: str) -> None:
    conn.execute(_STATE_DELETE, (scope, key))


def _state_list(conn: sqlite3.Connection, scope: str) -> dict[str, Any]:
    return {key: orjson.loads(value) for key, value in conn.execute(_STATE_LIST, (scope,))}


def _state_clear(conn: sqlite3.Connection, scope: str) -> None:
    conn.execute(_STATE_CLEAR, (scope,))


def _message_row(message: QueuedMessage) -> tuple[Any, ...]:
    """``_UPSERT_MESSAGE``'s parameters; encodes ``data``: call it before a transaction."""
    return (
        message.id,
        message.topic,
        message.step,
        _encode(message.data),
        message.trace_id,
        message.attempts,
        message.due_ms,
        message.enqueued_ms,
        message.last_error,
    )


def _message(row: tuple[Any, ...]) -> QueuedMessage:
    """A row in ``_MESSAGE_COLUMNS`` order."""
    id_, topic, step, data, trace_id, attempts, due_ms, enqueued_ms, last_error = row
    return QueuedMessage(
        id=id_,
        topic=topic,
        step=step,
        data=orjson.loads(data),
        trace_id=trace_id,
        attempts=attempts,
        due_ms=due_ms,
        enqueued_ms=enqueued_ms,
        last_error=last_error,
    )


def _queue_put(conn: sqlite3.Connection, message: QueuedMessage) -> None:
    conn.execute(_UPSERT_PENDING, _message_row(message))  # one statement: its own transaction


def _queue_ack(conn: sqlite3.Connection, message_id: str) -> None:
    conn.execute(_DELETE_PENDING, (message_id,))


def _queue_pending(conn: sqlite3.Connection) -> list[QueuedMessage]:
    return [_message(row) for row in conn.execute(_SELECT_PENDING)]


def _queue_dead(conn: sqlite3.Connection, message: QueuedMessage) -> None:
    row = _message_row(message)
    with _transaction(conn):
        conn.execute(_DELETE_PENDING, (message.id,))
        conn.execute(_UPSERT_DEAD, row)


def _dead_letters(conn: sqlite3.Connection, topic: str | None) -> list[QueuedMessage]:
    if topic is None:
        return [_message(row) for row in conn.execute(_SELECT_DEAD)]
    return [_message(row) for row in conn.execute(_SELECT_DEAD_OF_TOPIC, (topic,))]


def _dead_letter_take(conn: sqlite3.Connection, message_id: str) -> QueuedMessage | None:
    with _transaction(conn):
        row = conn.execute(_SELECT_ONE_DEAD, (message_id,)).fetchone()
        if row is None:
            return None
        conn.execute(_DELETE_DEAD, (message_id,))
    return _message(row)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; _transaction() says where they are.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with _transaction(conn):
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{path} has storage schema version {version}; this runtime knows up to "
                f"{SCHEMA_VERSION} (was it written by a newer version?)"
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class SQLiteStorage(Storage):
    """Durable storage in one SQLite file; epochs, offsets and history survive a restart."""

    durable = True

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "NORMAL") -> None:
        mode = synchronous.upper()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {', '.join(sorted(SYNCHRONOUS_MODES))}, "
                f"not {synchronous!r}"
            )
        self.path = Path(path)
        self.synchronous = mode
        self._conn: sqlite3.Connection | None = None
        self._limiter = trio.CapacityLimiter(1)  # the one connection, one call at a time
        self._commit_queue: list[_PendingCommit] = []
        self._committing = False  # a caller is writing the queued commits

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    async def open(self) -> None:
        await trio.to_thread.run_sync(self._open_in_worker, limiter=self._limiter)

    async def aclose(self) -> None:
        # Shielded: a cancelled shutdown must still close the file (bounded by
        # the one call that may be running ahead of us).
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._close_in_worker, limiter=self._limiter)

    async def load_group(self, stream: str, group: str) -> GroupState:
        return await self._run(_load_group, stream, group)

    async def commit(
        self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy
    ) -> None:
        """Queue the batch; the first caller while nobody writes becomes the writer.

        The writer takes everything queued, writes it in one worker call
        (merged, a savepoint per group, when there is more than one), wakes
        those callers, and hands over to the first caller that queued
        meanwhile. Waiting is shielded, as a worker call always was: a
        batch that reached the queue is written whatever happens to its
        caller, so a cancelled caller never leaves storage half-known.
        """
        pending = _PendingCommit(stream, group, commit, policy)
        self._commit_queue.append(pending)
        with trio.CancelScope(shield=True):
            if self._committing:
                await pending.wake.wait()
            else:
                self._committing = True
            if not pending.finished:  # woken (or first) to write what is queued
                await self._write_queued_commits()
        if pending.error is not None:
            raise pending.error

    async def _write_queued_commits(self) -> None:
        batch, self._commit_queue = self._commit_queue, []
        try:
            if len(batch) == 1:
                only = batch[0]
                await self._run(_commit, only.stream, only.group, only.commit, only.policy)
            else:
                await self._run(_commit_merged, batch)
        except BaseException as exc:  # noqa: BLE001 - the transaction as a whole failed
            for pending in batch:
                if pending.error is None:
                    pending.error = exc if len(batch) == 1 else self._batch_error(exc)
        for pending in batch:
            if isinstance(pending.error, (sqlite3.Error, orjson.JSONDecodeError)):
                error = StorageError(f"{self!r}: {pending.error}")
                error.__cause__ = pending.error
                pending.error = error
            pending.finished = True
            pending.wake.set()
        if self._commit_queue:
            self._commit_queue[0].wake.set()  # the next writer; _committing stays True
        else:
            self._committing = False

    def _batch_error(self, exc: BaseException) -> BaseException:
        """Each caller of a failed merged transaction gets an error of its own."""
        if isinstance(exc, (StorageError, sqlite3.Error, orjson.JSONDecodeError)):
            error = StorageError(f"{self!r}: merged commit failed: {exc}")
            error.__cause__ = exc
            return error
        return exc

    async def list_groups(self, stream: str) -> list[str]:
        return await self._run(_list_groups, stream)

    async def expiry_due(self, stream: str, now: int, limit: int = 100) -> list[str]:
        return await self._run(_expiry_due, stream, now, limit)

    async def expired_items(self, stream: str, group: str, now: int) -> list[str]:
        return await self._run(_expired_items, stream, group, now)

    async def expiry_next(self, stream: str) -> int | None:
        return await self._run(_expiry_next, stream)

    async def idempotency_get(self, stream: str, group: str, keys: Sequence[str], now: int) -> dict[str, Any]:
        return await self._run(_idempotency_get, stream, group, list(keys), now)

    async def state_get(self, scope: str, key: str) -> Any | None:
        return await self._run(_state_get, scope, key)

    async def state_set(self, scope: str, key: str, value: Any) -> None:
        await self._run(_state_set, scope, key, value)

    async def state_delete(self, scope: str, key: str) -> None:
        await self._run(_state_delete, scope, key)

    async def state_list(self, scope: str) -> dict[str, Any]:
        return await self._run(_state_list, scope)

    async def state_clear(self, scope: str) -> None:
        await self._run(_state_clear, scope)

    async def queue_put(self, message: QueuedMessage) -> None:
        await self._run(_queue_put, message)

    async def queue_ack(self, message_id: str) -> None:
        await self._run(_queue_ack, message_id)

    async def queue_pending(self) -> list[QueuedMessage]:
        return await self._run(_queue_pending)

    async def queue_dead(self, message: QueuedMessage) -> None:
        await self._run(_queue_dead, message)

    async def dead_letters(self, topic: str | None = None) -> list[QueuedMessage]:
        return await self._run(_dead_letters, topic)

    async def dead_letter_take(self, message_id: str) -> QueuedMessage | None:
        return await self._run(_dead_letter_take, message_id)

    # -- the worker side: everything below runs in the worker thread ------

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(self._call, work, args, limiter=self._limiter)

    def _call(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn = self._conn
        if conn is None:
            raise StorageError(
                f"{self!r} is not open: use `async with storage:` or `await storage.open()`"
            )
        try:
            return work(conn, *args)
        except (sqlite3.Error, orjson.JSONDecodeError) as exc:
            raise StorageError(f"{self!r}: {exc}") from exc

    def _open_in_worker(self) -> None:
        if self._conn is not None:
            return
        try:
            self._conn = _connect(self.path, self.synchronous)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open {self!r}: {exc}") from exc

    def _close_in_worker(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.close()  # the last connection to close checkpoints the WAL into the file
        except sqlite3.Error as exc:
            raise StorageError(f"closing {self!r}: {exc}") from exc
