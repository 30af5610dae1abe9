"""Messages a group actor understands. Plain frozen data, built by the caller."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import attrs

from .subscribers import Subscriber

__all__ = [
    "GetItem", "ListItems", "SetItem", "UpdateItem", "UpdateMany", "DeleteItem", "SendEvent", "ExpireDue",
    "Join", "Joined", "Leave", "GroupStats", "MUTATIONS", "KEYED",
]


@attrs.frozen(slots=True)
class GetItem:
    item_id: str


@attrs.frozen(slots=True)
class ListItems:
    pass


@attrs.frozen(slots=True)
class SetItem:
    item_id: str
    data: dict[str, Any]  # already checked to be JSON and copied by the caller
    trace_id: str | None = None
    ttl: float | None = None  # seconds; None: no expiry (a set clears the one the item had)
    idempotency_key: str | None = None


@attrs.frozen(slots=True)
class UpdateItem:
    item_id: str
    ops: list[Any]
    trace_id: str | None = None
    idempotency_key: str | None = None


@attrs.frozen(slots=True)
class UpdateMany:
    """Several updates in one message: one ask, one task switch, many ops.

    ``entries`` is a list of ``(item_id, ops)``, checked by the caller. The
    group applies them in order, all or none (see ``Stream.update_many``).
    """

    entries: list[tuple[str, list[Any]]]
    trace_id: str | None = None
    idempotency_key: str | None = None


@attrs.frozen(slots=True)
class DeleteItem:
    item_id: str
    trace_id: str | None = None
    idempotency_key: str | None = None


@attrs.frozen(slots=True)
class SendEvent:
    item_id: str | None
    type: str
    data: Any
    trace_id: str | None = None


@attrs.frozen(slots=True)
class ExpireDue:
    """Delete the group's items whose expiry is due, each with an ordinary ``delete`` event.

    The expiry sweeper (expiry.py) asks it of a group that storage says has
    one due. The group reads which items are due from storage in the same
    turn, so a TTL changed or cleared since the sweeper looked is honoured.
    Replies with the number of items it deleted.
    """


@attrs.frozen(slots=True)
class Join:
    """Snapshot (or replay) and registration in one turn of the group actor.

    ``since`` is ``(epoch, offset)`` to resume from, or None for a sync.
    """

    subscriber: Subscriber
    subscription_id: Hashable
    item_id: str | None = None
    since: tuple[str, int] | None = None


@attrs.frozen(slots=True)
class Joined:
    """The reply to a join: where the subscriber now stands."""

    epoch: str
    offset: int
    resumed: bool
    replayed: int


@attrs.frozen(slots=True)
class Leave:
    subscriber: Subscriber
    subscription_id: Hashable


@attrs.frozen(slots=True)
class GroupStats:
    """Ask for a group's figures (subscribers, offset, size): for metrics and tests."""


#: Mutations that take an ``idempotency_key``.
KEYED = (SetItem, UpdateItem, UpdateMany, DeleteItem)

#: Messages that change state (or emit): they are grouped into one commit.
MUTATIONS = (SetItem, UpdateItem, UpdateMany, DeleteItem, SendEvent, ExpireDue)
