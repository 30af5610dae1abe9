"""The outbox's hand-over between the flusher and a connection's writer, and the single parked waiter (no sockets)."""

from __future__ import annotations

import trio

from runtime.server.outbox import Outbox
from runtime.server.waiter import Waiter
from runtime.streams.events import Turn


def test_outbox_marks_the_flusher_once_and_hands_back_in_order():
    marked = []
    outbox = Outbox(1000, lambda event: event, on_ready=lambda: marked.append(1))
    outbox.push_raw(b"a")
    outbox.push_raw(b"b")
    assert marked == [1] and outbox.flushing and outbox.ready
    data = outbox.take()
    outbox.ready = False
    assert data == b"ab"
    outbox.hand_back(b"b")  # the socket took "a" only
    assert not outbox.flushing
    outbox.push_raw(b"c")
    assert marked == [1]  # the writer's now: the flusher is not told
    assert outbox.size == 1  # unsent bytes are outside the bound, as bytes in flight were
    assert not outbox.resume_flushing()  # not drained yet
    assert outbox.take() == b"bc"
    assert outbox.resume_flushing() and outbox.flushing
    outbox.push_raw(b"d")
    assert marked == [1, 1]


def test_outbox_overflow_keeps_control_frames_and_the_unsent_part():
    outbox = Outbox(10, lambda event: event, on_ready=lambda: None)
    outbox.hand_back(b"partial")
    outbox.push_raw(b"P")
    assert outbox.deliver(b"12345")
    assert not outbox.deliver(b"123456")  # over the bound: the backlog goes, control frames stay
    assert outbox.needs_resync
    assert outbox.take() == b"partialP"


async def test_waiter_parks_one_task_and_cancellation_unparks_it(autojump_clock):
    waiter = Waiter()
    woken = []
    async with trio.open_nursery() as nursery:
        async def parked() -> None:
            await waiter.park()
            woken.append(trio.current_time())

        nursery.start_soon(parked)
        await trio.sleep(1)
        assert waiter.parked
        waiter.wake()
        waiter.wake()  # no one parked: nothing happens
        await trio.sleep(1)
        assert woken == [1.0] and not waiter.parked
        with trio.move_on_after(5):
            await waiter.park()
        assert not waiter.parked and trio.current_time() == 7.0


def test_deliver_many_is_deliver_for_each_and_tells_the_flusher_once():
    marked = []
    outbox = Outbox(10, lambda event: event, on_ready=lambda: marked.append(1))
    assert outbox.deliver_many([b"123", b"456"]) == 0
    assert marked == [1] and outbox.size == 6
    # "9ab" crosses the bound: the backlog goes, "78" with it, so the whole turn counts as dropped
    assert outbox.deliver_many([b"78", b"9ab", b"c"]) == 3
    assert outbox.overflowed and outbox.needs_resync and outbox.size == 0
    assert outbox.deliver_many([b"d"]) == 1  # dropping until the writer resyncs
    outbox.begin_resync()
    assert outbox.deliver_many([b"e"]) == 0 and outbox.take() == b"e"


def test_a_turn_is_encoded_once_for_every_outbox_with_that_encoder():
    calls = []

    def encode(event):
        calls.append(event)
        return event.upper()

    outboxes = [Outbox(100, encode) for _ in range(50)]
    turn = Turn([b"ab", b"cd", b"ef"])
    for outbox in outboxes:
        assert outbox.deliver_many(turn) == 0
    assert calls == [b"ab", b"cd", b"ef"]  # three encodings for fifty outboxes
    assert {outbox.take() for outbox in outboxes} == {b"ABCDEF"}
    other = Outbox(100, lambda event: event + b";")  # another encoder: its own block
    other.deliver_many(turn)
    assert other.take() == b"ab;cd;ef;"
