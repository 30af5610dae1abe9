"""What a group actor may use of the engine that runs it: `GroupContext`, and the engine's counters.

A group actor gets this narrow object instead of the whole `StreamEngine`,
so what it depends on is written down in one place: the storage it
commits to, the clock that stamps its events, the counters it adds to and
the stream triggers it hands committed events to.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ..storage.base import Storage
from .events import Event

__all__ = ["EngineMetrics", "GroupContext"]


@attrs.define
class EngineMetrics:
    events_published: int = 0
    #: Changes and sends other processes made, delivered here (shared storage only).
    events_followed: int = 0
    slow_consumer_drops: int = 0
    #: Subscribers that raised while a group delivered to them: each one removed from its group alone.
    subscriber_errors: int = 0


@attrs.frozen
class GroupContext:
    """Everything a group actor takes from its engine, set once when the engine starts."""

    storage: Storage
    #: Milliseconds since the epoch, for event timestamps.
    clock: Callable[[], int]
    metrics: EngineMetrics
    #: ``has_triggers(stream)``: whether any stream trigger listens (else no `Event` is built for them).
    has_triggers: Callable[[str], bool]
    #: ``dispatch(event)``: hand a committed event to the stream triggers (never blocks).
    dispatch: Callable[[Event], None]
    #: ``expiry_set(stream, at_ms)``: a commit gave an item an expiry; the sweeper wakes if it is sooner.
    expiry_set: Callable[[str, int], None] = lambda stream, at: None
