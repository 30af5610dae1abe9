"""A bounded, single-consumer mailbox that is drained in batches.

Built on a deque and Trio's low-level parking primitives instead of a memory
channel: a sender that finds room appends without a task switch, and the
owning actor takes everything waiting in one wake-up. That is where the
throughput comes from (one wake-up per batch, not per message).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from typing import Any

import trio

from .errors import ActorStopped, MailboxFull

__all__ = ["Mailbox", "Overflow"]


class Overflow(enum.Enum):
    """What a sender experiences when the mailbox is full."""

    #: The sender waits (in arrival order) until the actor makes room.
    WAIT = "wait"
    #: The sender gets `MailboxFull` at once; nothing is enqueued.
    RAISE = "raise"


class Mailbox:
    """FIFO of pending messages with a hard bound.

    Per-sender order holds because each sender appends in call order and the
    single consumer takes from the front. Waiting senders are admitted in the
    order they arrived, and a new sender never overtakes a waiting one.
    """

    __slots__ = ("capacity", "overflow", "_items", "_receiver", "_senders", "_reserved", "_closed")

    def __init__(self, capacity: int = 1000, overflow: Overflow = Overflow.WAIT) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.capacity = capacity
        self.overflow = Overflow(overflow)
        self._items: deque[Any] = deque()
        self._receiver: trio.lowlevel.Task | None = None
        self._senders = trio.lowlevel.ParkingLot()
        # Slots promised to senders that were woken but have not run yet, so
        # that a newcomer cannot take the room a waiting sender was given.
        self._reserved = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def has_room(self) -> bool:
        """Whether a message would be accepted right now without waiting."""
        return not self._closed and len(self._items) + self._reserved < self.capacity and not self._senders

    def put_nowait(self, item: Any) -> None:
        """Enqueue or raise `MailboxFull` / `ActorStopped`; never waits."""
        if self._closed:
            raise ActorStopped("the actor is stopped")
        if not self.has_room():
            raise MailboxFull(f"mailbox full ({self.capacity} messages)")
        self._append(item)

    async def put(self, item: Any) -> None:
        """Enqueue, waiting for room under `Overflow.WAIT`.

        Does not yield when there is room: a producer that stays ahead of the
        actor is paced by the bound, not by a scheduler round trip per message.
        """
        if self._closed:
            raise ActorStopped("the actor is stopped")
        if self.has_room():
            self._append(item)
            return
        if self.overflow is Overflow.RAISE:
            raise MailboxFull(f"mailbox full ({self.capacity} messages)")
        await self._senders.park()
        # Woken by _release_senders with a slot reserved for us, or by close().
        if self._closed:
            raise ActorStopped("the actor stopped while the sender waited")
        self._reserved -= 1
        self._append(item)

    def _append(self, item: Any) -> None:
        self._items.append(item)
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    def requeue_front(self, items: Iterable[Any]) -> None:
        """Put back messages taken but not handled, ahead of everything else.

        May exceed the bound by at most one batch: those messages were already
        admitted once, and dropping them would break the no-loss promise.
        """
        self._items.extendleft(reversed(list(items)))

    async def get_batch(self, max_items: int) -> list[Any]:
        """Wait for at least one message, then take up to ``max_items``.

        Returns an empty list only when the mailbox is closed and empty. Always
        checkpoints, so an actor that is never idle still lets others run.
        """
        items = self._items
        if items:
            await trio.lowlevel.checkpoint()
        elif not self._closed:
            self._receiver = trio.lowlevel.current_task()

            def abort(_: Any) -> trio.lowlevel.Abort:
                self._receiver = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        if len(items) <= max_items:
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(max_items)]
        self._release_senders()
        return batch

    def _release_senders(self) -> None:
        if not self._senders:
            return
        free = self.capacity - len(self._items) - self._reserved
        if free > 0:
            woken = self._senders.unpark(count=free)
            self._reserved += len(woken)

    def close(self) -> None:
        """Refuse new messages; waiting senders get `ActorStopped`.

        Messages already enqueued stay, so the actor can drain them.
        """
        if self._closed:
            return
        self._closed = True
        self._senders.unpark_all()
        receiver = self._receiver
        if receiver is not None:
            self._receiver = None
            trio.lowlevel.reschedule(receiver)

    def take_all(self) -> list[Any]:
        """Remove and return everything pending (used when an actor dies)."""
        batch = list(self._items)
        self._items.clear()
        return batch
