"""The outbox's hand-over between the flusher and a connection's writer, and the single parked waiter (no sockets)."""

from __future__ import annotations

import socket

import trio

from runtime.server.outbox import Outbox
from runtime.server.waiter import Waiter
from runtime.streams.events import Event, Turn


def test_outbox_marks_the_flusher_once_and_hands_back_in_order():
    marked = []
    outbox = Outbox(1000, lambda event: event, on_ready=lambda outbox: marked.append(1), fd=99)  # never written
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


def test_flush_writes_everything_queued_in_one_wrapped_write_and_hands_back_what_the_socket_refuses():
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    with ours, theirs:
        marked = []
        outbox = Outbox(1 << 20, lambda event: event, on_ready=marked.append, fd=ours.fileno(),
                        wrap=lambda data: b"<" + data + b">")
        outbox.push_raw(b"a")
        outbox.deliver_many(Turn([b"b", b"c"]))
        assert marked == [outbox]
        outbox.flush(now=5.0)
        assert theirs.recv(100) == b"<abc>" and outbox.last_write == 5.0 and not outbox.ready
        # a reader that stops: the socket takes part of a write, the rest goes to the writer
        big = b"x" * 100_000
        while outbox.flushing:
            outbox.deliver(big)
            outbox.flush(now=6.0)
        assert outbox.pending and not outbox.ready
        outbox.push_raw(b"late")  # the writer's now: the flusher is not told again
        assert marked == [outbox] * len(marked) and outbox.take().endswith(b"<late>")
        outbox.detach()
        assert not outbox.resume_flushing()  # never back to the flusher once detached


def test_outbox_overflow_keeps_control_frames_and_the_unsent_part():
    outbox = Outbox(10, lambda event: event, on_ready=lambda outbox: None)
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
    outbox = Outbox(10, lambda event: event, on_ready=lambda outbox: marked.append(1))
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


def _event(group: str, type_: str, offset: int) -> Event:
    return Event(stream="s", group=group, item_id="x", type=type_, data=None, timestamp=offset, epoch="e",
                 offset=offset)


def test_after_an_overflow_each_groups_events_flow_again_from_its_fresh_sync():
    outbox = Outbox(30, lambda e: f"{e.group}:{e.type}:{e.offset};".encode())
    assert outbox.deliver(_event("a", "update", 1)) and outbox.deliver(_event("b", "update", 1))
    assert not outbox.deliver(_event("a", "update", 2))  # over the bound: the backlog goes
    assert outbox.needs_resync and outbox.take() == b""
    outbox.begin_resync([("s", "a"), ("s", "b")])  # the writer re-joins both groups
    # committed before each group's join turn: already in its sync, so never sent before it
    assert outbox.deliver(_event("a", "update", 3)) and outbox.deliver(_event("b", "update", 3))
    assert outbox.deliver(_event("a", "sync", 3), initial=True)
    assert outbox.deliver(_event("a", "update", 4))  # after a's sync: sent
    assert outbox.deliver_many(Turn([_event("b", "update", 4), _event("b", "update", 5)])) == 0  # b: still held
    assert outbox.take() == b"a:sync:3;a:update:4;"
    assert outbox.deliver(_event("b", "sync", 5), initial=True)
    assert outbox.deliver(_event("b", "update", 6))
    assert outbox.take() == b"b:sync:5;b:update:6;"
    assert not outbox.overflowed and not outbox.needs_resync


def test_a_failed_rejoin_stops_holding_that_groups_events_back():
    outbox = Outbox(1000, lambda e: f"{e.group}:{e.offset};".encode())
    outbox.begin_resync([("s", "a")])
    assert outbox.deliver(_event("a", "update", 1)) and outbox.take() == b""
    outbox.abandon_resync("s", "a")
    outbox.deliver(_event("a", "update", 2))
    assert outbox.take() == b"a:2;"
