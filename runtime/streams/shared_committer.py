"""`SharedCommitter`: the group actor's committer for a storage several processes share (Redis).

It is the same actor, with the same batching, answered after commit, in
offset order, but its items are a cache of the stored group rather than
the truth, so its committer does four things more:

- **Follows** the other processes' commits (`RemoteBatch`, from the
  storage's feed): applies them to its items and history, and delivers
  them to its own subscribers in offset order. A batch that does not
  start where this copy ends is a gap: the copy catches up from the stored
  history, and when the history cannot cover it, reloads and gives every
  subscriber a fresh sync — never a hole.
- **Checks before it reads**: a turn that reads or joins first asks storage
  where the group stands (one round trip, which also reserves the sync
  timestamps) and catches up, so a read in one process sees every write
  another process has acknowledged.
- **Re-applies after losing a race**: when a commit's compare-and-set fails,
  the copy catches up and applies the same messages again to the new
  state, and commits again (a validation that now fails is answered as
  such). That is what makes an increment from two processes exact.
- **Lets storage stamp time**: storage moves a batch's timestamps past
  everything stamped before, sync frames included, so they are strictly
  increasing per group across processes.

Stream triggers fire in the process that made the change, once per
change; followed changes are delivered to subscribers only.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import outcome
import trio

from ..errors import StorageError
from ..storage.base import Busy, ConflictError, RemoteBatch, Send, SharedStorage, StoredEvent
from .events import Event, Turn
from .messages import ExpireDue, GetItem, GroupStats, Join, ListItems
from .segment import Pending, Segment

if TYPE_CHECKING:
    from .group import GroupActor

__all__ = ["CatchUp", "SharedCommitter"]

logger = logging.getLogger("runtime.streams")

#: Messages that must see every acknowledged write first.
_READS = (GetItem, ListItems, Join, GroupStats)


@attrs.frozen(slots=True)
class CatchUp:
    """Check the copy against storage: batches may have been missed, or the data lost (``reload``)."""

    reload: bool = False


def _followed(message: Any) -> bool:
    return type(message) is RemoteBatch or type(message) is CatchUp


class SharedCommitter:
    #: Commit attempts per batch before the callers get a StorageError (the
    #: turn a losing process takes in storage makes more than a few rare).
    max_attempts = 50

    __slots__ = ("group", "storage", "_reserved")

    def __init__(self, group: GroupActor, storage: SharedStorage) -> None:
        self.group = group
        self.storage = storage
        #: Sync timestamps storage reserved for this turn's joins (and resyncs).
        self._reserved: deque[int] = deque()

    async def on_stop(self) -> None:
        """Nothing to persist: storage stamped every timestamp, syncs included."""

    # -- the turn --------------------------------------------------------------------

    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        if not any(_followed(m) for m in messages):
            return await self._turn(messages)
        rest = [m for m in messages if not _followed(m)]
        group = self.group
        if group.loaded:
            try:
                for message in messages:
                    if _followed(message):
                        await self._follow(message)
            except StorageError as exc:  # the next batch or read catches up instead
                logger.warning("%s/%s: could not catch up: %s", group.stream, group.group, exc)
        answers = iter(await self._turn(rest)) if rest else iter(())
        return [outcome.Value(None) if _followed(m) else next(answers) for m in messages]

    async def _turn(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        group = self.group
        if not group.loaded:
            error = await group.ensure_loaded()
            if error is not None:
                return [outcome.Error(error)] * len(messages)
        if any(isinstance(m, _READS) for m in messages):
            try:
                await self._check(sum(type(m) is Join for m in messages))
            except StorageError as exc:
                return [outcome.Error(exc)] * len(messages)
        return await group.turn(messages)

    async def _check(self, syncs: int) -> None:
        """Catch up with storage, reserving ``syncs`` timestamps for this turn's joins."""
        group = self.group
        position = await self.storage.reserve(group.stream, group.group, count=syncs, now=group.clock())
        if position.epoch != group.epoch or position.offset < group.offset:
            await self._reload_and_resync(extra=syncs)
            return
        if position.offset > group.offset and not await self._caught_up():
            await self._reload_and_resync(extra=syncs)
            return
        self._reserved = deque(range(position.timestamp - syncs + 1, position.timestamp + 1))
        group.timestamp = max(group.timestamp, position.timestamp - syncs)

    def sync_timestamp(self) -> int:
        reserved = self._reserved
        if reserved:
            timestamp = reserved.popleft()
            self.group.timestamp = max(self.group.timestamp, timestamp)
            return timestamp
        return self.group.bump_timestamp()  # not reached: every sync is reserved first

    # -- following other processes -------------------------------------------------------

    async def _follow(self, message: RemoteBatch | CatchUp) -> None:
        if isinstance(message, CatchUp):
            if message.reload:
                await self._reload_and_resync()
            else:
                await self._check(0)
            return
        group = self.group
        if message.epoch != group.epoch:
            await self._check(0)
            return
        turn = Turn()  # the batch's events go out together, as a local turn's do
        gap = False
        for remote in message.events:
            if remote.offset == 0:  # a send: delivered, never stored
                group.timestamp = max(group.timestamp, remote.timestamp)
                turn.append(Event(
                    stream=group.stream, group=group.group, item_id=remote.item_id, type="event",
                    data=remote.data, timestamp=remote.timestamp,
                ))
            elif remote.offset == group.offset + 1:
                assert remote.item_id is not None  # a state change names its item
                turn.append(group.apply_followed(StoredEvent(
                    remote.offset, remote.timestamp, remote.item_id, remote.type, remote.data)))
            elif remote.offset > group.offset + 1:  # a gap: something was missed
                gap = True
                break
        self._deliver_followed(turn)  # what was applied goes out before anything is awaited
        if gap and not await self._caught_up():
            await self._reload_and_resync()

    async def _caught_up(self) -> bool:
        """Apply and deliver what storage holds after this copy's offset; False when history cannot cover it."""
        group = self.group
        events = await self.storage.events_after(group.stream, group.group, group.epoch, group.offset)
        if events is None or (events and events[0].offset != group.offset + 1):
            return False
        self._deliver_followed(Turn([group.apply_followed(stored) for stored in events]))
        return True

    def _deliver_followed(self, turn: Turn) -> None:
        group = self.group
        if turn and group.subscribers:
            group.fan_out(turn)
        group.context.metrics.events_followed += len(turn)

    async def _reload_and_resync(self, *, extra: int = 0) -> None:
        """Storage moved on in a way this copy cannot follow: reload, and a fresh sync for everyone.

        Reserves a timestamp per subscription, plus ``extra`` for the
        turn's joins, which take the last ones.
        """
        group = self.group
        logger.info("%s/%s: reloading from storage and resyncing subscribers", group.stream, group.group)
        await group.load()
        count = len(group.subscribers) + extra
        position = await self.storage.reserve(group.stream, group.group, count=count, now=group.clock())
        self._reserved = deque(range(position.timestamp - count + 1, position.timestamp + 1))
        group.resync_all()

    # -- committing -------------------------------------------------------------------------

    async def commit(self, segment: Segment, results: list[Any]) -> Segment | None:
        group = self.group
        for _ in range(self.max_attempts):
            sends = _sends(segment, group.offset)
            if not segment.writes and not sends and not segment.expiries and not segment.records:
                break
            commit = group.group_commit(segment)
            try:
                shift = await self.storage.commit(group.stream, group.group, commit, group.definition.history, sends)
            except Busy as busy:  # another process lost races and commits first
                await trio.sleep(busy.retry_after)
                continue
            except ConflictError as conflict:
                try:
                    await self._after_conflict(conflict)
                except StorageError as exc:
                    group.fail(segment, results, exc)
                    return None
                try:
                    segment = await self._again(segment, results)
                except StorageError as exc:
                    group.fail(segment, results, exc)
                    return None
                continue
            except Exception as exc:  # noqa: BLE001 - the batch fails; whether it landed is unknown
                group.commit_failed(segment, results, exc)
                return None
            if shift:
                _shift(segment, shift)
            break
        else:
            group.fail(segment, results, StorageError(
                f"{group.stream}/{group.group}: gave up after {self.max_attempts} conflicting commits"))
            return None
        return segment

    async def _after_conflict(self, conflict: ConflictError) -> None:
        """Catch up with what won the race: from the refusal itself when it says, else from storage."""
        group = self.group
        missed = conflict.missed
        if conflict.stored_epoch == group.epoch and missed and missed[0].offset == group.offset + 1:
            self._deliver_followed(Turn([group.apply_followed(stored) for stored in missed]))
        else:
            await self._check(0)

    async def _again(self, lost: Segment, results: list[Any]) -> Segment:
        """The same messages, applied to the state storage now holds.

        What they read besides the items is read again first: a key another
        process recorded meanwhile makes a repeat of its call, and an item
        another process changed is no longer due to expire.
        """
        group = self.group
        messages = [message for _, message in lost.messages]
        await group.read_ahead(messages, due=any(type(message) is ExpireDue for message in messages))
        segment = Segment(group.offset, group.timestamp)
        for index, message in lost.messages:
            results[index] = group.mutate(message, segment, index)
        return segment


def _sends(segment: Segment, offset: int) -> list[Send]:
    """The segment's custom events, each placed after the state change before it (``offset``: the group's)."""
    sends = []
    for pending in segment.events:
        if type(pending) is tuple:
            offset = pending[0].offset
        else:
            assert isinstance(pending, Event)
            sends.append(Send(offset, pending.item_id, pending.data, pending.timestamp))
    return sends


def _shift(segment: Segment, shift: int) -> None:
    """Move the batch's timestamps to where storage stamped them (its events are not encoded yet)."""
    events: list[Pending] = []
    for pending in segment.events:
        if isinstance(pending, tuple):  # a state change, its Event not built yet
            stored, trace_id = pending
            events.append((attrs.evolve(stored, timestamp=stored.timestamp + shift), trace_id))
        else:  # a send
            pending.timestamp += shift
            events.append(pending)
    segment.events = events
    segment.stored = [pending[0] for pending in events if isinstance(pending, tuple)]
    segment.timestamp += shift
