"""The storage interface every backend implements, and the records it moves.

Storage is deliberately dumb. Each stream group is owned by one actor that
applies mutations in memory, stamps offsets and timestamps, and hands storage
a finished batch (a ``GroupCommit``) to persist in one transaction. Storage
never interprets items or update ops; it only has to load a group on
activation, apply a batch atomically, and refuse a batch computed from a state
it no longer holds (compare-and-set on epoch and offset), which is what lets a
shared backend such as Redis detect a second writer for the same group.

Two small indexes ride along with a group's batch, in the same transaction,
so they can never disagree with the items: each item's expiry time (item
TTL: the group actor deletes an item once it is due, with an ordinary
delete event, and a sweeper finds the due groups with ``expiry_due``), and
the group's idempotency records (the first result of each keyed call, kept
for a window and bounded in count, read with ``idempotency_get``). Storage
keeps both; the group decides what they mean.

Queues are just as dumb on this side: the step runner keeps the schedule
(due times, retries, concurrency) in memory and uses storage only to persist
each pending message and each dead letter, so a durable backend can hand the
pending ones back after a restart.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import attrs
import trio

from runtime.errors import StorageError

__all__ = [
    "Busy",
    "ConflictError",
    "GroupCommit",
    "GroupPosition",
    "RemoteBatch",
    "RemoteEvent",
    "Send",
    "SharedStorage",
    "GroupState",
    "HistoryPolicy",
    "IdempotencyRecord",
    "QueuedMessage",
    "Storage",
    "StoredEvent",
    "check_expected",
    "new_epoch",
]


@attrs.frozen(slots=True)
class StoredEvent:
    """One committed state change, kept in the group's history so clients can resume."""

    offset: int  # the group's offset after this change (1, 2, 3, ...)
    timestamp: int  # ms since epoch, strictly increasing per group
    item_id: str
    type: str  # "create" | "update" | "delete"
    data: Any  # the new value (create/update) or the old value (delete); a JSON dict


@attrs.define(slots=True)
class GroupState:
    """Everything a group actor needs to resume where the last commit left off."""

    epoch: str  # names this incarnation of the offset count
    offset: int  # offset of the last committed change (0 for a new group)
    timestamp: int  # last stamped timestamp in ms (0 for a new group)
    items: dict[str, dict]  # id -> item, in insertion order
    history: list[StoredEvent]  # oldest first, already trimmed by the policy
    #: Ids of the items that have an expiry, or None when the backend does not say: a shared one,
    #: whose other processes change expiries (the group then clears one on every plain ``set``).
    expiring: list[str] | None = None


@attrs.frozen(slots=True)
class IdempotencyRecord:
    """The first result of a call made with an idempotency key, kept so a repeat can return it.

    ``result`` is a JSON value the group built and alone reads back.
    """

    key: str
    result: Any
    expires_at: int  # ms since the epoch; after it the key may be used afresh


@attrs.frozen(slots=True)
class GroupCommit:
    """One batch of a group's changes; a backend applies all of it or none of it.

    Besides the writes and their events, a batch may change item expiries
    (``expiries``: item id -> ms, or None to clear one; a deleted item's
    expiry goes with it) and store idempotency records (``records``; a key
    already stored keeps its first record). The backend then drops records
    past their ``expires_at`` and keeps at most ``max_records`` per group,
    the newest.
    """

    epoch: str
    offset: int  # offset after the batch
    timestamp: int  # last timestamp after the batch
    writes: list[tuple[str, dict | None]]  # in order; None deletes; later writes of an id win
    events: list[StoredEvent]  # appended to the history, oldest first
    expected_offset: int  # the offset the batch was computed from (compare-and-set)
    expiries: dict[str, int | None] = attrs.Factory(dict)  # applied after the writes
    records: list[IdempotencyRecord] = attrs.Factory(list)
    max_records: int = 10_000


@attrs.frozen(slots=True)
class HistoryPolicy:
    """How much history a group keeps for resume; both limits apply.

    Both limits are measured from the group's position after a commit (its
    offset and timestamp), so a backend trims with two range comparisons
    instead of counting rows. Every change takes the next offset, so keeping
    the newest ``max_events`` offsets keeps the newest ``max_events`` events.
    """

    max_events: int = 1000
    max_age_ms: int = 5 * 60 * 1000  # events older than (newest timestamp - max_age_ms) are dropped

    def first_kept_offset(self, newest_offset: int) -> int:
        """Events at lower offsets are dropped."""
        return newest_offset - self.max_events + 1

    def age_cutoff(self, newest_timestamp: int) -> int:
        """Events stamped before this are dropped."""
        return newest_timestamp - self.max_age_ms


@attrs.frozen(slots=True)
class QueuedMessage:
    """One copy of a queued message, for one subscribed step; pending or dead-lettered."""

    id: str  # unique message id (the runner makes a uuid4 hex)
    topic: str
    step: str  # the step this copy is for (one copy per subscribed step)
    data: Any  # a JSON value
    trace_id: str | None
    attempts: int = 0  # attempts already made
    due_ms: int = 0  # wall-clock ms before which it must not run
    enqueued_ms: int = 0
    last_error: str | None = None


class ConflictError(StorageError):
    """The stored group moved on since the batch was computed; nothing was written.

    The owning actor should reload the group (another writer, or a stale
    incarnation of itself, got there first) rather than retry the same batch.
    """

    code = "STORAGE_CONFLICT"

    def __init__(
        self,
        stream: str,
        group: str,
        *,
        stored_epoch: str | None,
        stored_offset: int,
        commit: GroupCommit,
    ) -> None:
        self.stream = stream
        self.group = group
        self.stored_epoch = stored_epoch
        self.stored_offset = stored_offset
        self.expected_epoch = commit.epoch
        self.expected_offset = commit.expected_offset
        #: The stored events after ``expected_offset``, when the backend can
        #: hand them back with the refusal (a shared backend), else None.
        self.missed: list[StoredEvent] | None = None
        super().__init__(
            f"conflicting commit to {stream!r}/{group!r}: storage holds epoch "
            f"{stored_epoch!r} offset {stored_offset}, the batch was computed from epoch "
            f"{commit.epoch!r} offset {commit.expected_offset}"
        )


class Busy(StorageError):
    """Another process holds the group's turn (it lost races); retry after ``retry_after`` seconds.

    Nothing was written. A shared backend raises it so that a process that
    keeps losing compare-and-set races gets to commit, instead of starving.
    """

    code = "STORAGE_BUSY"

    def __init__(self, stream: str, group: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"{stream}/{group} is another process's turn for {retry_after * 1000:.0f} ms")


def new_epoch() -> str:
    """A fresh epoch token: short, URL-safe, and never reused in practice (48 random bits)."""
    return secrets.token_urlsafe(6)


def check_expected(
    stream: str, group: str, stored_epoch: str | None, stored_offset: int, commit: GroupCommit
) -> None:
    """Raise ``ConflictError`` unless ``commit`` was computed from the stored state.

    A group that has never committed has no stored epoch and offset 0: its
    first commit (``expected_offset == 0``) establishes the epoch that
    ``load_group`` proposed. ``load_group`` does not persist that proposal,
    so reading unknown groups never writes.
    """
    epoch_matches = stored_epoch is None or stored_epoch == commit.epoch
    if stored_offset != commit.expected_offset or not epoch_matches:
        raise ConflictError(
            stream, group, stored_epoch=stored_epoch, stored_offset=stored_offset, commit=commit
        )


class Storage(abc.ABC):
    """Where group state and history, ``ctx.state`` and queued messages live between activations.

    Every method may raise ``StorageError``; a failed ``commit`` changed
    nothing. Values are JSON: a value JSON cannot represent raises
    ``TypeError`` from the durable backends. Use as ``async with storage:``
    or call ``open()`` / ``aclose()``; using a storage that is not open
    raises ``StorageError``.
    """

    #: Whether data survives a process restart (and so whether an epoch does).
    durable: bool = False
    # Whether other processes write the same groups is the type: ``isinstance(storage, SharedStorage)``.

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abc.abstractmethod
    async def open(self) -> None:
        """Make the storage usable; calling it again while open does nothing."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Flush and release resources; calling it again does nothing."""

    # -- stream groups ---------------------------------------------------

    @abc.abstractmethod
    async def load_group(self, stream: str, group: str) -> GroupState:
        """The group as last committed; an unknown group gets a fresh epoch and offset 0."""

    @abc.abstractmethod
    async def commit(
        self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy
    ) -> int | None:
        """Apply one batch atomically, then trim the group's history by ``policy``.

        Raises ``ConflictError`` (and changes nothing) when the stored epoch
        or offset is not the one the batch was computed from. A backend
        shared between processes may move the batch's timestamps forward, by
        the amount it returns, so they stay strictly increasing across every
        writer; the others store them as given and return ``None``.
        """

    @abc.abstractmethod
    async def list_groups(self, stream: str) -> list[str]:
        """Ids of the stream's groups that hold at least one item, sorted."""

    # -- item expiry and idempotency records (written by ``commit``) -------

    @abc.abstractmethod
    async def expiry_due(self, stream: str, now: int, limit: int = 100) -> list[str]:
        """Ids of up to ``limit`` groups of ``stream`` holding an item that expires at or before ``now``."""

    @abc.abstractmethod
    async def expired_items(self, stream: str, group: str, now: int) -> list[str]:
        """Ids of the group's items that expire at or before ``now``, soonest first."""

    @abc.abstractmethod
    async def expiry_next(self, stream: str) -> int | None:
        """The earliest expiry of any item of ``stream`` (ms), or None when no item has one."""

    @abc.abstractmethod
    async def idempotency_get(self, stream: str, group: str, keys: Sequence[str], now: int) -> dict[str, Any]:
        """The stored ``result`` of each of ``keys`` that has a record not yet expired at ``now``."""

    # -- key-value state (ctx.state) -------------------------------------

    @abc.abstractmethod
    async def state_get(self, scope: str, key: str) -> Any | None:
        """The value stored under ``scope``/``key``, or ``None`` when there is none."""

    @abc.abstractmethod
    async def state_set(self, scope: str, key: str, value: Any) -> None:
        """Store a JSON value, replacing any previous one."""

    @abc.abstractmethod
    async def state_delete(self, scope: str, key: str) -> None:
        """Remove one key; a missing key is not an error."""

    @abc.abstractmethod
    async def state_list(self, scope: str) -> dict[str, Any]:
        """Every key of ``scope`` with its value, in key order."""

    @abc.abstractmethod
    async def state_clear(self, scope: str) -> None:
        """Remove every key of ``scope``."""

    # -- queues ----------------------------------------------------------
    #
    # Pending messages and dead letters are two separate collections keyed
    # by message id. Both keep the order in which an id was first stored
    # there: replacing a stored id keeps its place, while an id removed and
    # stored again goes last. A message's ``data`` that JSON cannot represent
    # raises ``TypeError`` and changes nothing.

    @abc.abstractmethod
    async def queue_put(self, message: QueuedMessage) -> None:
        """Store a pending message, or replace the pending one with its id (a retry)."""

    @abc.abstractmethod
    async def queue_ack(self, message_id: str) -> None:
        """Remove a pending message; an unknown id is not an error."""

    @abc.abstractmethod
    async def queue_pending(self) -> list[QueuedMessage]:
        """Every pending message, in enqueue order (a replaced message keeps its place)."""

    @abc.abstractmethod
    async def queue_dead(self, message: QueuedMessage) -> None:
        """Move a message to the dead letters: one atomic change.

        Removes the pending message with its id (if there is one) and stores
        ``message`` as a dead letter, replacing one with the same id (which
        keeps its place).
        """

    @abc.abstractmethod
    async def dead_letters(self, topic: str | None = None) -> list[QueuedMessage]:
        """Dead letters, oldest first; only ``topic``'s when given."""

    @abc.abstractmethod
    async def dead_letter_take(self, message_id: str) -> QueuedMessage | None:
        """Remove and return one dead letter (to replay it); ``None`` when there is none."""


# -- storage shared between processes -------------------------------------------


@attrs.frozen(slots=True)
class GroupPosition:
    """Where a shared group stands now: what a read barrier compares with its own copy."""

    epoch: str
    offset: int
    timestamp: int


@attrs.frozen(slots=True)
class Send:
    """An ephemeral event to publish with a batch, right after the change at offset ``after``."""

    after: int
    item_id: str | None
    payload: Any  # {"type": T, "data": D}
    timestamp: int  # proposed, like the changes' timestamps


@attrs.frozen(slots=True)
class RemoteEvent:
    """One event another process published: a state change (``offset`` > 0) or a ``send`` (0)."""

    offset: int
    timestamp: int
    item_id: str | None
    type: str  # "create" | "update" | "delete" | "event"
    data: Any


@attrs.frozen(slots=True)
class RemoteBatch:
    """One commit (or run of sends) of a group, as another process published it, in order."""

    stream: str
    group: str
    epoch: str
    origin: str  # the publishing storage's ``origin``
    events: tuple[RemoteEvent, ...]


class SharedStorage(Storage):
    """A backend several processes write at once (Redis).

    The group actor of a shared backend is a cache of the stored group: it
    still batches and commits with compare-and-set, but it also follows the
    other processes' commits (``follow``), checks its copy before serving a
    read (``reserve``), catches up from the stored history (``events_after``)
    and re-applies a batch that lost a race instead of failing it. Every
    timestamp is stamped by storage, atomically with the change, so the
    strictly-increasing rule holds across processes, sync frames included.
    """

    #: This process's name in what it publishes, so it can skip its own echoes.
    origin: str

    @abc.abstractmethod
    async def commit(
        self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy, sends: Sequence[Send] = ()
    ) -> int:
        """``Storage.commit``, which may also publish ``sends`` in their places among the changes.

        Returns the shift applied to every timestamp of the batch (0 when
        the proposed ones were already later than anything stored). A batch
        with sends and no writes only checks the position and publishes.
        """

    @abc.abstractmethod
    async def reserve(self, stream: str, group: str, *, count: int, now: int) -> GroupPosition:
        """The group's position now, after reserving ``count`` timestamps for syncs.

        The reserved timestamps are ``position.timestamp - count + 1`` up to
        ``position.timestamp``: later than anything stamped before, earlier
        than anything stamped after. A group with no epoch yet gets a fresh
        one, recorded so that every process agrees on it. ``count`` may be 0.
        """

    @abc.abstractmethod
    async def events_after(self, stream: str, group: str, epoch: str, offset: int) -> list[StoredEvent] | None:
        """Every stored event after ``offset`` in ``epoch``, or ``None`` when history cannot cover it."""

    @abc.abstractmethod
    async def follow(
        self,
        deliver: Callable[[RemoteBatch], None],
        lost: Callable[[bool], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Hand every batch other processes publish to ``deliver``, until cancelled.

        ``lost(data_lost)`` is called when batches may have been missed (the
        connection dropped and came back: ``False``) or storage lost its
        data (a restart without persistence, a flush: ``True``); the engine
        then has every active group catch up or reload.
        """
