"""Who listens to a group: the subscriber protocol and the group's index of them.

A subscriber is anything with a non-blocking ``deliver`` and ``deliver_many``:
a WebSocket or SSE connection's outbox, a test probe. The group actor calls
them inline, so they must never await or block; a subscriber that cannot
keep up drops its own backlog and re-joins for a fresh sync (the
slow-consumer policy lives in the transport, never in the group). One that
raises is removed from that group alone (group.py, ``fan_out``).

Subclassing `Subscriber` is optional (it is a Protocol) but gives
``deliver_many`` for free: ``deliver`` for each event.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Protocol

from .events import Event

__all__ = ["Subscriber", "SubscriberIndex"]


class Subscriber(Protocol):
    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        """Queue ``event``; return False if it was dropped (buffer full).

        ``initial`` marks the frames of a join (sync, replay, resumed marker):
        they are sent whole, whatever the buffer's bound.
        """
        ...

    def deliver_many(self, events: list[Event]) -> int:
        """Queue a group turn's events (two or more, in order); return how many were dropped.

        One call per turn and subscriber: a thousand subscribers of a
        sixty-event turn are a thousand calls, not sixty thousand. The
        events are a `Turn`, which can encode them once for every receiver.
        """
        dropped = 0
        for event in events:
            dropped += not self.deliver(event)
        return dropped


class SubscriberIndex:
    """Subscriptions of one group, indexed for fan-out.

    A subscriber (a connection) may hold several subscriptions to one group —
    the group itself and some items — and still gets each event once.
    """

    __slots__ = ("_subscriptions", "_whole_group", "_by_item")

    def __init__(self) -> None:
        self._subscriptions: dict[Subscriber, dict[Hashable, str | None]] = {}
        self._whole_group: dict[Subscriber, int] = {}
        self._by_item: dict[str, dict[Subscriber, int]] = {}

    def __len__(self) -> int:
        return sum(len(subs) for subs in self._subscriptions.values())

    def __bool__(self) -> bool:
        return bool(self._subscriptions)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def add(self, subscriber: Subscriber, subscription_id: Hashable, item_id: str | None) -> None:
        """Register; a subscription id already in use by this subscriber is replaced."""
        self.remove(subscriber, subscription_id)
        self._subscriptions.setdefault(subscriber, {})[subscription_id] = item_id
        counts = self._whole_group if item_id is None else self._by_item.setdefault(item_id, {})
        counts[subscriber] = counts.get(subscriber, 0) + 1

    def remove(self, subscriber: Subscriber, subscription_id: Hashable) -> bool:
        """Unregister one subscription; unknown ids are a no-op (returns False)."""
        subscriptions = self._subscriptions.get(subscriber)
        if subscriptions is None or subscription_id not in subscriptions:
            return False
        item_id = subscriptions.pop(subscription_id)
        if not subscriptions:
            del self._subscriptions[subscriber]
        if item_id is None:
            self._decrement(self._whole_group, subscriber)
        else:
            counts = self._by_item[item_id]
            self._decrement(counts, subscriber)
            if not counts:
                del self._by_item[item_id]
        return True

    def remove_all(self, subscriber: Subscriber) -> list[tuple[Hashable, str | None]]:
        """Unregister every subscription of ``subscriber``; returns what was removed."""
        removed = list(self._subscriptions.get(subscriber, {}).items())
        for subscription_id, _ in removed:
            self.remove(subscriber, subscription_id)
        return removed

    @staticmethod
    def _decrement(counts: dict[Subscriber, int], subscriber: Subscriber) -> None:
        left = counts[subscriber] - 1
        if left:
            counts[subscriber] = left
        else:
            del counts[subscriber]

    def targets(self, item_id: str | None) -> Iterator[Subscriber]:
        """Each subscriber interested in an event on ``item_id``, once."""
        whole_group = self._whole_group
        yield from whole_group
        if item_id is not None:
            item_subscribers = self._by_item.get(item_id)
            if item_subscribers:
                for subscriber in item_subscribers:
                    if subscriber not in whole_group:
                        yield subscriber

    @property
    def whole_group(self) -> dict[Subscriber, int]:
        """The subscribers of the whole group (a live view: do not change the index while iterating)."""
        return self._whole_group

    @property
    def has_item_subscribers(self) -> bool:
        return bool(self._by_item)

    def item_only_targets(self, item_id: str) -> list[Subscriber]:
        """Subscribers of ``item_id`` that do not also hold the whole group."""
        item_subscribers = self._by_item.get(item_id)
        if not item_subscribers:
            return []
        whole_group = self._whole_group
        return [subscriber for subscriber in item_subscribers if subscriber not in whole_group]

    def all_subscribers(self) -> list[Subscriber]:
        return list(self._subscriptions)

    def subscriptions_of(self, subscriber: Subscriber) -> dict[Hashable, str | None]:
        return dict(self._subscriptions.get(subscriber, {}))
