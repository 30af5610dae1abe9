"""The group actor of a storage that several processes share (Redis).

It is the same actor, with the same batching, answered after commit, in
offset order, but its items are a cache of the stored group rather than
the truth, so it does four things more:

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
from typing import Any

import attrs
import outcome
import trio

from ..errors import StorageError
from ..storage.base import Busy, ConflictError, GroupCommit, RemoteBatch, Send, SharedStorage, StoredEvent
from .events import Event, Turn
from .group import GroupActor, _Segment
from .messages import GetItem, GroupStats, Join, ListItems

__all__ = ["CatchUp", "SharedGroupActor"]

logger = logging.getLogger("runtime.streams")

#: Messages that must see every acknowledged write first.
_READS = (GetItem, ListItems, Join, GroupStats)


@attrs.frozen(slots=True)
class CatchUp:
    """Check the copy against storage: batches may have been missed, or the data lost (``reload``)."""

    reload: bool = False


class SharedGroupActor(GroupActor):
    #: Commit attempts per batch before the callers get a StorageError (the
    #: turn a losing process takes in storage makes more than a few rare).
    max_attempts = 50

    @property
    def _storage(self) -> SharedStorage:
        return self.engine.storage  # type: ignore[return-value]  # chosen for a shared storage

    async def on_stop(self) -> None:
        """Nothing to persist: storage stamped every timestamp, syncs included."""

    # -- the turn --------------------------------------------------------------------

    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        followed = [m for m in messages if type(m) is RemoteBatch or type(m) is CatchUp]
        if not followed:
            return await self._turn(messages)
        rest = [m for m in messages if not (type(m) is RemoteBatch or type(m) is CatchUp)]
        if self._loaded:
            try:
                for message in followed:
                    await self._follow(message)
            except StorageError as exc:  # the next batch or read catches up instead
                logger.warning("%s/%s: could not catch up: %s", self.stream, self.group, exc)
        answers = iter(await self._turn(rest)) if rest else iter(())
        return [outcome.Value(None) if type(m) is RemoteBatch or type(m) is CatchUp else next(answers)
                for m in messages]

    async def _turn(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        if not self._loaded:
            error = await self._ensure_loaded()
            if error is not None:
                return [outcome.Error(error)] * len(messages)
        if any(isinstance(m, _READS) for m in messages):
            try:
                await self._check(sum(type(m) is Join for m in messages))
            except StorageError as exc:
                return [outcome.Error(exc)] * len(messages)
        return await super().receive_batch(messages)

    async def _check(self, syncs: int) -> None:
        """Catch up with storage, reserving ``syncs`` timestamps for this turn's joins."""
        position = await self._storage.reserve(self.stream, self.group, count=syncs, now=self._clock())
        if position.epoch != self.epoch or position.offset < self.offset:
            await self._reload_and_resync(extra=syncs)
            return
        if position.offset > self.offset and not await self._caught_up():
            await self._reload_and_resync(extra=syncs)
            return
        self._reserved = deque(range(position.timestamp - syncs + 1, position.timestamp + 1))
        self.timestamp = max(self.timestamp, position.timestamp - syncs)

    def _bump_timestamp(self) -> int:
        reserved = getattr(self, "_reserved", None)
        if reserved:
            timestamp = reserved.popleft()
            self.timestamp = max(self.timestamp, timestamp)
            return timestamp
        return super()._bump_timestamp()  # not reached: every sync is reserved first

    # -- following other processes -------------------------------------------------------

    async def _follow(self, message: RemoteBatch | CatchUp) -> None:
        if type(message) is CatchUp:
            if message.reload:
                await self._reload_and_resync()
            else:
                await self._check(0)
            return
        batch: RemoteBatch = message  # type: ignore[assignment]  # not a CatchUp: handled above
        if batch.epoch != self.epoch:
            await self._check(0)
            return
        turn = Turn()  # the batch's events go out together, as a local turn's do
        gap = False
        for remote in batch.events:
            if remote.offset == 0:  # a send: delivered, never stored
                self.timestamp = max(self.timestamp, remote.timestamp)
                turn.append(Event(
                    stream=self.stream, group=self.group, item_id=remote.item_id, type="event",
                    data=remote.data, timestamp=remote.timestamp,
                ))
            elif remote.offset == self.offset + 1:
                assert remote.item_id is not None  # a state change names its item
                turn.append(self._apply_followed(StoredEvent(
                    remote.offset, remote.timestamp, remote.item_id, remote.type, remote.data)))
            elif remote.offset > self.offset + 1:  # a gap: something was missed
                gap = True
                break
        self._deliver_followed(turn)  # what was applied goes out before anything is awaited
        if gap and not await self._caught_up():
            await self._reload_and_resync()

    async def _caught_up(self) -> bool:
        """Apply and deliver what storage holds after this copy's offset; False when history cannot cover it."""
        events = await self._storage.events_after(self.stream, self.group, self.epoch, self.offset)
        if events is None or (events and events[0].offset != self.offset + 1):
            return False
        self._deliver_followed(Turn([self._apply_followed(stored) for stored in events]))
        return True

    def _apply_followed(self, stored: StoredEvent) -> Event:
        if stored.type == "delete":
            self.items.pop(stored.item_id, None)
        else:
            self.items[stored.item_id] = stored.data
        self.offset = stored.offset
        self.timestamp = max(self.timestamp, stored.timestamp)
        self._committed_timestamp = self.timestamp
        self.history.append(stored)
        cutoff = self.definition.history.age_cutoff(self.timestamp)
        while self.history and self.history[0].timestamp < cutoff:
            self.history.popleft()
        return Event(
            stream=self.stream, group=self.group, item_id=stored.item_id, type=stored.type, data=stored.data,
            timestamp=stored.timestamp, epoch=self.epoch, offset=stored.offset,
        )

    def _deliver_followed(self, turn: Turn) -> None:
        if turn and self.subscribers:
            self._fan_out(turn)
        self.engine.metrics.events_followed += len(turn)

    async def _reload_and_resync(self, *, extra: int = 0) -> None:
        """Storage moved on in a way this copy cannot follow: reload, and a fresh sync for everyone.

        Reserves a timestamp per subscription, plus ``extra`` for the
        turn's joins, which take the last ones.
        """
        logger.info("%s/%s: reloading from storage and resyncing subscribers", self.stream, self.group)
        await self._load()
        count = len(self.subscribers) + extra
        position = await self._storage.reserve(self.stream, self.group, count=count, now=self._clock())
        self._reserved = deque(range(position.timestamp - count + 1, position.timestamp + 1))
        self._resync_all()

    async def _reload_after_conflict(self) -> None:
        await self._reload_and_resync()

    # -- committing -------------------------------------------------------------------------

    def _mutate(self, message: Any, segment: _Segment, index: int) -> outcome.Outcome | None:
        segment.messages.append((index, message))
        return super()._mutate(message, segment, index)

    def _emit(self, message: Any, segment: _Segment) -> None:
        super()._emit(message, segment)
        event = segment.events[-1]
        assert isinstance(event, Event)  # what _emit just appended
        segment.sends.append(Send(segment.offset, message.item_id, event.data, event.timestamp))

    async def _commit(self, segment: _Segment, results: list[Any]) -> None:
        for _ in range(self.max_attempts):
            if not segment.writes and not segment.sends:
                break
            commit = GroupCommit(
                epoch=self.epoch, offset=segment.offset, timestamp=segment.timestamp,
                writes=segment.writes, events=segment.stored, expected_offset=self.offset,
            )
            try:
                shift = await self._storage.commit(
                    self.stream, self.group, commit, self.definition.history, segment.sends
                )
            except Busy as busy:  # another process lost races and commits first
                await trio.sleep(busy.retry_after)
                continue
            except ConflictError as conflict:
                try:
                    await self._after_conflict(conflict)
                except StorageError as exc:
                    self._fail(segment, results, exc)
                    return
                segment = self._again(segment, results)
                continue
            except Exception as exc:  # noqa: BLE001 - the batch fails; whether it landed is unknown
                self._commit_failed(segment, results, exc)
                return
            if shift:
                self._shift(segment, shift)
            break
        else:
            self._fail(segment, results, StorageError(
                f"{self.stream}/{self.group}: gave up after {self.max_attempts} conflicting commits"))
            return
        self._committed(segment, results)

    async def _after_conflict(self, conflict: ConflictError) -> None:
        """Catch up with what won the race: from the refusal itself when it says, else from storage."""
        missed = conflict.missed
        if conflict.stored_epoch == self.epoch and missed and missed[0].offset == self.offset + 1:
            self._deliver_followed(Turn([self._apply_followed(stored) for stored in missed]))
        else:
            await self._check(0)

    def _again(self, lost: _Segment, results: list[Any]) -> _Segment:
        """The same messages, applied to the state storage now holds."""
        segment = _Segment(self.offset, self.timestamp)
        for index, message in lost.messages:
            results[index] = self._mutate(message, segment, index)
        return segment

    @staticmethod
    def _shift(segment: _Segment, shift: int) -> None:
        """Move the batch's timestamps to where storage stamped them (its events are not encoded yet)."""
        events: list[Any] = []
        for pending in segment.events:
            if isinstance(pending, tuple):  # a state change, its Event not built yet
                stored, trace_id = pending
                events.append((attrs.evolve(stored, timestamp=stored.timestamp + shift), trace_id))
            else:  # a send
                pending.timestamp += shift
                events.append(pending)
        segment.events = events
        segment.stored = [pending[0] for pending in events if type(pending) is tuple]
        segment.timestamp += shift
