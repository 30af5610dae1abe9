"""tell and ask: order, replies, errors crossing ask, timeouts, withdrawal."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Actor, ActorStopped, ActorSystem, AskTimeout


class Recorder(Actor):
    def __init__(self, log: list) -> None:
        self.log = log

    async def receive(self, message):
        if message == "get":
            return list(self.log)
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
            self.log.append(message)
            return "slept"
        self.log.append(message)
        return len(self.log)


async def test_tell_is_handled_in_send_order():
    log: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(log))
        for i in range(1000):
            await ref.tell(i)
        assert await ref.ask("get") == list(range(1000))


async def test_tell_nowait_from_sync_code():
    log: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(log))
        for i in range(5):
            ref.tell_nowait(i)
        assert await ref.ask("get") == [0, 1, 2, 3, 4]


@settings(max_examples=30, deadline=None)
@given(plan=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3)), max_size=60))
def test_per_sender_order_and_no_loss(plan):
    """Any interleaving of 5 senders: each sender's messages arrive in its order, none lost."""

    async def main():
        log: list = []
        async with ActorSystem(mailbox_size=4) as system:  # small: senders really wait
            ref = system.spawn(lambda: Recorder(log))
            per_sender: dict[int, list] = {s: [] for s in range(5)}
            for sender, yields in plan:
                per_sender[sender].append(yields)

            async def send_all(sender: int) -> None:
                for seq, yields in enumerate(per_sender[sender]):
                    for _ in range(yields):
                        await trio.lowlevel.checkpoint()
                    await ref.tell((sender, seq))

            async with trio.open_nursery() as nursery:
                for sender in range(5):
                    nursery.start_soon(send_all, sender)
            got = await ref.ask("get")
        assert sorted(got) == sorted((s, i) for s in range(5) for i in range(len(per_sender[s])))
        for sender in range(5):
            seqs = [seq for s, seq in got if s == sender]
            assert seqs == sorted(seqs)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_ask_returns_the_handlers_value():
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder([]))
        assert await ref.ask("a") == 1
        assert await ref.ask("b") == 2


async def test_handler_exception_is_raised_in_the_asker():
    class Fails(Actor):
        async def receive(self, message):
            raise KeyError(message)

    async with ActorSystem() as system:
        ref = system.spawn(Fails)
        with pytest.raises(KeyError, match="nope"):
            await ref.ask("nope")


async def test_ask_timeout_raises_and_withdraws_a_queued_message(autojump_clock):
    log: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(log))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, ("sleep", 10))
            await trio.sleep(0.1)  # the slow message is being handled
            start = trio.current_time()
            with pytest.raises(AskTimeout):
                await ref.ask("queued", timeout=1)
            assert trio.current_time() - start == pytest.approx(1)
        # The slow one finished; the withdrawn one was never handled.
        assert await ref.ask("get") == [("sleep", 10)]


async def test_timed_out_ask_that_already_started_runs_to_completion(autojump_clock):
    log: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(log))
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 5), timeout=1)
        assert await ref.ask("get") == [("sleep", 5)]


async def test_default_ask_timeout_comes_from_the_system(autojump_clock):
    async with ActorSystem(ask_timeout=2) as system:
        ref = system.spawn(lambda: Recorder([]))
        start = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask(("sleep", 100))
        assert trio.current_time() - start == pytest.approx(2)
        system.cancel()


async def test_cancelling_the_asker_withdraws_the_message(autojump_clock):
    log: list = []
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder(log))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, ("sleep", 10))
            await trio.sleep(0.1)
            with trio.move_on_after(1):
                await ref.ask("never", timeout=None)
        assert await ref.ask("get") == [("sleep", 10)]


async def test_tell_to_a_stopped_actor_raises():
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder([]))
        await ref.ask("x")
    with pytest.raises(ActorStopped):
        await ref.tell("late")
    assert not ref.is_alive


async def test_ask_timeout_counts_time_waiting_for_a_full_mailbox(autojump_clock):
    gate = trio.Event()

    class Gated(Actor):
        async def receive(self, message):
            await gate.wait()

    async with ActorSystem(mailbox_size=1) as system:
        ref = system.spawn(Gated)
        await ref.tell("taken")
        await trio.sleep(1)
        await ref.tell("fills the mailbox")
        start = trio.current_time()
        with pytest.raises(AskTimeout):
            await ref.ask("waits for room", timeout=2)
        assert trio.current_time() - start == pytest.approx(2)
        gate.set()


async def test_answered_asks_leave_no_pending_deadline():
    async with ActorSystem() as system:
        ref = system.spawn(lambda: Recorder([]))
        for i in range(100):
            await ref.ask(i, timeout=10)
        assert len(system.deadlines) == 0
