"""How a group actor's batches reach storage: the `Committer` protocol and `LocalCommitter`.

A group actor (group.py) owns the turn: it applies mutations to a
`Segment`, answers, applies and publishes what landed. Its committer owns
what differs between a storage this process alone writes and one several
processes share (`SharedCommitter`, shared_committer.py): how a segment is
committed (and what happens when it loses a compare-and-set), what a turn
does before its messages run, where a sync frame's timestamp comes from,
and what is persisted when the actor stops. The actor picks one by the
storage's type, in ``__init__``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import outcome

from ..storage.base import ConflictError, GroupCommit, Storage
from .segment import Segment

if TYPE_CHECKING:
    from .group import GroupActor

__all__ = ["Committer", "LocalCommitter"]

logger = logging.getLogger("runtime.streams")


class Committer(Protocol):
    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        """A turn: run ``messages`` through the group's `GroupActor.turn` (and anything the storage needs around it)."""
        ...

    async def commit(self, segment: Segment, results: list[Any]) -> Segment | None:
        """Persist ``segment``; return the segment that landed (it may have been applied again), or
        None when it failed, its callers' ``results`` then already set to the error."""
        ...

    def sync_timestamp(self) -> int:
        """The timestamp of a sync or resume frame: later than anything the group stamped."""
        ...

    async def on_stop(self) -> None:
        """What must be persisted when the actor stops (graceful stop or passivation)."""
        ...


class LocalCommitter:
    """A storage this process alone writes (memory, SQLite): the actor's copy is the truth."""

    __slots__ = ("group", "storage")

    def __init__(self, group: GroupActor, storage: Storage) -> None:
        self.group = group
        self.storage = storage

    async def receive_batch(self, messages: Sequence[Any]) -> list[outcome.Outcome[Any]]:
        return await self.group.turn(messages)

    async def commit(self, segment: Segment, results: list[Any]) -> Segment | None:
        if not segment.writes and not segment.expiries and not segment.records:
            return segment  # sends only: nothing to store
        group = self.group
        commit = group.group_commit(segment)
        try:
            await self.storage.commit(group.stream, group.group, commit, group.definition.history)
        except ConflictError as exc:
            # Storage moved on without us: reload and give every subscriber a fresh sync.
            logger.warning("%s/%s: %s; reloading the group", group.stream, group.group, exc)
            group.fail(segment, results, exc)
            await group.load()
            group.resync_all()
            return None
        except Exception as exc:  # noqa: BLE001 - the batch fails, the actor carries on
            group.commit_failed(segment, results, exc)
            return None
        return segment

    def sync_timestamp(self) -> int:
        return self.group.bump_timestamp()

    async def on_stop(self) -> None:
        """Persist a timestamp that syncs or ephemeral events moved past the last commit.

        Without it a restart could stamp a sync with a timestamp a client has
        already seen (the clients drop such frames). A crash can still lose
        it; a graceful stop or a passivation does not.
        """
        group = self.group
        if group.timestamp <= group.committed_timestamp:
            return
        commit = GroupCommit(epoch=group.epoch, offset=group.offset, timestamp=group.timestamp,
                             writes=[], events=[], expected_offset=group.offset)
        try:
            await self.storage.commit(group.stream, group.group, commit, group.definition.history)
        except Exception as exc:  # noqa: BLE001 - best effort on the way out
            logger.warning("%s/%s: could not persist the last timestamp: %r", group.stream, group.group, exc)
