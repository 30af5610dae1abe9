"""Virtual actors, passivation, bounded mailboxes, batches, stop and cancel."""

from __future__ import annotations

import outcome
import pytest
import trio

from actors import Actor, ActorStopped, ActorSystem, MailboxFull, Overflow

from ..helpers import live_tasks


class Store(Actor):
    """A virtual actor whose durable state lives outside it (as a group's does)."""

    def __init__(self, key, backing: dict, events: list, stop_delay: float = 0.0) -> None:
        self.key_ = key
        self.backing = backing
        self.events = events
        self.stop_delay = stop_delay
        self.watchers = 0

    async def on_start(self):
        self.events.append(("start", self.key_))
        self.value = self.backing.get(self.key_, 0)

    async def on_stop(self):
        self.events.append(("stop", self.key_))
        await trio.sleep(self.stop_delay)
        self.backing[self.key_] = self.value

    def can_passivate(self) -> bool:
        return self.watchers == 0

    async def receive(self, message):
        if message == "watch":
            self.watchers += 1
        elif message == "unwatch":
            self.watchers -= 1
        elif message == "get":
            return self.value
        else:
            self.value += message
        return self.value


async def test_virtual_actor_is_activated_by_its_first_message():
    events: list = []
    async with ActorSystem() as system:
        kind = system.virtual("store", lambda key: Store(key, {}, events))
        ref = kind.ref("a")
        assert "a" not in kind and events == []
        assert await ref.ask(5) == 5
        assert "a" in kind and kind.activations == 1
        assert await kind.ref("a").ask("get") == 5  # same activation
        assert await kind.ref("b").ask("get") == 0
        assert sorted(kind.active_keys()) == ["a", "b"]


async def test_idle_actor_passivates_and_reactivates_with_nothing_lost(autojump_clock):
    backing: dict = {}
    events: list = []
    async with ActorSystem() as system:
        kind = system.virtual("store", lambda key: Store(key, backing, events), idle_timeout=10)
        ref = kind.ref("a")
        await ref.ask(3)
        await trio.sleep(9)
        assert "a" in kind  # not idle long enough yet
        await ref.ask(4)
        await trio.sleep(9)
        assert "a" in kind  # the timer restarted with the last message
        await trio.sleep(2)
        assert "a" not in kind and backing == {"a": 7}
        assert await ref.ask("get") == 7  # same ref, new activation
        assert kind.activations == 2
    assert events == [("start", "a"), ("stop", "a"), ("start", "a"), ("stop", "a")]


async def test_messages_sent_while_passivating_reach_the_next_activation(autojump_clock):
    backing: dict = {}
    events: list = []
    async with ActorSystem() as system:
        kind = system.virtual("store", lambda key: Store(key, backing, events, stop_delay=3), idle_timeout=10)
        ref = kind.ref("a")
        await ref.ask(1)
        await trio.sleep(11)  # passivation started at t=10; on_stop takes 3 s
        assert events[-1] == ("stop", "a") and "a" in kind
        await ref.tell(10)
        await ref.tell(100)
        assert await ref.ask("get") == 111
        assert kind.activations == 1  # the same cell carried on with a new instance
    assert events[:3] == [("start", "a"), ("stop", "a"), ("start", "a")]


async def test_actor_that_refuses_passivation_stays_active(autojump_clock):
    events: list = []
    async with ActorSystem() as system:
        kind = system.virtual("store", lambda key: Store(key, {}, events), idle_timeout=10)
        ref = kind.ref("a")
        await ref.ask("watch")
        await trio.sleep(100)
        assert "a" in kind
        await ref.ask("unwatch")
        await trio.sleep(11)
        assert "a" not in kind


async def test_full_mailbox_makes_senders_wait(autojump_clock):
    gate = trio.Event()
    handled: list = []

    class Gated(Actor):
        max_batch = 1

        async def receive(self, message):
            await gate.wait()
            handled.append(message)

    async with ActorSystem(mailbox_size=2) as system:
        ref = system.spawn(Gated)
        sent: list = []

        async def sender():
            for i in range(6):
                await ref.tell(i)
                sent.append(i)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender)
            await trio.sleep(1)
            # one message taken by the actor, two in the mailbox, the sender waits
            assert sent == [0, 1, 2] and len(ref._target().mailbox) == 2
            with pytest.raises(MailboxFull):
                ref.tell_nowait("x")
            gate.set()
        await ref.ask("sync")
    assert handled == [0, 1, 2, 3, 4, 5, "sync"]


async def test_full_mailbox_with_raise_policy_refuses_at_once(autojump_clock):
    gate = trio.Event()

    class Gated(Actor):
        async def receive(self, message):
            await gate.wait()

    async with ActorSystem(mailbox_size=3, overflow=Overflow.RAISE) as system:
        ref = system.spawn(Gated)
        await ref.tell(0)
        await trio.sleep(1)  # taken by the actor
        for i in range(3):
            await ref.tell(i)
        with pytest.raises(MailboxFull):
            await ref.tell("one too many")
        gate.set()


async def test_batch_actor_receives_many_messages_per_turn():
    sizes: list = []

    class Batcher(Actor):
        max_batch = 64

        def __init__(self):
            self.total = 0

        async def receive_batch(self, messages):
            sizes.append(len(messages))
            results = []
            for message in messages:
                if message < 0:
                    results.append(outcome.Error(ValueError(message)))
                else:
                    self.total += message
                    results.append(outcome.Value(self.total))
            return results

    async with ActorSystem() as system:
        ref = system.spawn(Batcher)
        for _ in range(200):
            await ref.tell(1)
        assert await ref.ask(0) == 200
        with pytest.raises(ValueError):  # an Error outcome answers only its asker
            await ref.ask(-1)
        assert await ref.ask(1) == 201
    assert max(sizes) == 64 and sum(sizes) == 203


async def test_leaving_the_block_drains_mailboxes_before_stopping():
    handled: list = []

    class Slow(Actor):
        async def receive(self, message):
            await trio.sleep(0)
            handled.append(message)

        async def on_stop(self):
            handled.append("stopped")

    async with ActorSystem() as system:
        ref = system.spawn(Slow)
        for i in range(50):
            await ref.tell(i)
    assert handled == list(range(50)) + ["stopped"]


async def test_graceful_stop_has_a_bound(autojump_clock):
    class Stuck(Actor):
        async def receive(self, message):
            await trio.sleep_forever()

    start = trio.current_time()
    async with ActorSystem(stop_timeout=3) as system:
        ref = system.spawn(Stuck)
        await ref.tell("x")
    assert trio.current_time() - start == pytest.approx(3, abs=0.01)


async def test_cancelling_the_system_leaves_nothing_running(autojump_clock):
    before = live_tasks()
    stopped: list = []
    answers: list = []

    class Busy(Actor):
        async def on_start(self):
            self.nursery.start_soon(trio.sleep_forever)

        async def on_stop(self):
            stopped.append(self.key)

        async def receive(self, message):
            await trio.sleep_forever()

    async def ask(ref, message):
        try:
            await ref.ask(message, timeout=None)
        except ActorStopped:
            answers.append("stopped")

    async with trio.open_nursery() as askers:
        async with ActorSystem() as system:
            kind = system.virtual("busy", lambda key: Busy())
            refs = [kind.ref(i) for i in range(20)] + [system.spawn(Busy) for _ in range(5)]
            for ref in refs:
                askers.start_soon(ask, ref, "first")
                askers.start_soon(ask, ref, "queued")
            await trio.sleep(5)
            system.cancel()
            await trio.sleep_forever()
    assert live_tasks() == before
    assert len(stopped) == 25
    # every asker was answered: the first of each actor was interrupted, the queued one refused
    assert answers == ["stopped"] * 50
    with pytest.raises(ActorStopped):
        await refs[0].tell("late")


async def test_system_is_usable_inside_a_callers_nursery(autojump_clock):
    """Embedding: the system runs next to the program's own tasks."""
    results: list = []

    class Echo(Actor):
        async def receive(self, message):
            return message * 2

    async def worker(system_ready, task_status=trio.TASK_STATUS_IGNORED):
        async with ActorSystem() as system:
            task_status.started(system)
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        system = await nursery.start(worker, None)
        ref = system.spawn(Echo)
        results.append(await ref.ask(21))
        nursery.cancel_scope.cancel()
    assert results == [42]
