"""A subscriber is a fault boundary inside its group's turn (issue #13).

A subscriber that raises is removed from its group alone: the call whose
commit it was delivering still succeeds, the group actor does not restart,
and every other subscriber — of the whole group or of one item — gets every
event. Run on every backend: memory and SQLite use the local group, Redis the
shared one (its own commit and its following of another process).
"""

from __future__ import annotations

import trio

from runtime import Stream, StreamConfig, StreamEngine

from .conftest import Probe

counter = Stream(StreamConfig(name="counter"))

INCREMENT = [{"type": "increment", "path": "n", "by": 1}]


class Raising(Probe):
    """Raises on the ``fail_at``-th event it is handed after its join (deliver and deliver_many)."""

    def __init__(self, fail_at: int = 1, *, many: bool = False) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.seen = 0
        if many:
            self.deliver_many = self._deliver_many

    def deliver(self, event, *, initial: bool = False) -> bool:
        if not initial:
            self.seen += 1
            if self.seen >= self.fail_at:
                raise ValueError("a bug in a subscriber")
        return super().deliver(event, initial=initial)

    def _deliver_many(self, events) -> int:
        for event in events:
            self.deliver(event)
        return 0


def changes(probe: Probe) -> list:
    return [event.offset for event in probe.events if event.type != "sync"]


async def join_all(engine, group: str, *subscribers_and_items) -> None:
    for subscriber, item_id in subscribers_and_items:
        await engine.join(subscriber, "counter", group, subscription_id=1, item_id=item_id)


async def test_a_subscriber_that_raises_on_a_one_event_turn_is_removed_alone(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        before, broken, after, item = Probe(), Raising(), Probe(), Probe()
        # Whole-group subscribers on both sides of the broken one (the index is a dict in join order).
        await join_all(engine, "g", (before, None), (broken, None), (after, None), (item, "a"))

        result = await counter.set("g", "a", {"n": 1})  # the turn that meets the raise: answered
        assert result.new_value == {"id": "a", "n": 1}
        for i in range(2, 5):
            await counter.set("g", "a", {"n": i})

        assert changes(before) == changes(after) == changes(item) == [1, 2, 3, 4]
        assert changes(broken) == []
        assert engine.metrics.subscriber_errors == 1  # logged and counted once, then gone
        stats = await engine.group_stats("counter", "g")
        assert stats["subscribers"] == 3 and stats["offset"] == 4  # the actor kept its state: no restart
        assert (await counter.get("g", "a")) == {"id": "a", "n": 4}


async def test_a_subscriber_that_raises_in_a_turn_of_many_events_is_removed_alone(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        batch = Raising(fail_at=2, many=True)  # raises half-way through one deliver_many
        single, broken_item, item = Probe(), Raising(fail_at=1), Probe()
        await join_all(engine, "g", (batch, None), (single, None), (broken_item, "b"), (item, "b"))

        results = await counter.update_many("g", [("a", INCREMENT), ("b", INCREMENT), ("b", INCREMENT)])
        assert [r.new_value["n"] for r in results] == [1, 1, 2]  # one turn, three events: answered

        async def write(i):
            await counter.update("g", "ab"[i % 2], INCREMENT)

        async with trio.open_nursery() as nursery:  # many more turns, several events each
            for i in range(40):
                nursery.start_soon(write, i)

        assert changes(single) == list(range(1, 44))
        assert changes(item) == [e.offset for e in single.events if e.item_id == "b"]
        assert batch.seen == 2 and broken_item.seen == 1  # each was handed nothing after it raised
        assert engine.metrics.subscriber_errors == 2
        assert (await engine.group_stats("counter", "g"))["subscribers"] == 2


async def test_a_subscriber_that_raises_on_its_own_join_gets_the_error_and_is_not_registered(backend):
    class RaisingOnJoin(Probe):
        def deliver(self, event, *, initial: bool = False) -> bool:
            raise ValueError("broken from the start")

    async with StreamEngine([counter], storage=backend()) as engine:
        good = Probe()
        await join_all(engine, "g", (good, None))
        try:
            await engine.join(RaisingOnJoin(), "counter", "g", subscription_id=1)
        except ValueError as exc:
            assert "broken from the start" in str(exc)
        else:
            raise AssertionError("the join of a raising subscriber succeeded")
        await counter.set("g", "a", {"n": 1})
        assert changes(good) == [1]
        assert (await engine.group_stats("counter", "g"))["subscribers"] == 1


async def test_a_subscriber_that_raises_on_followed_batches_is_removed_alone(tmp_path):
    """The shared group's other path: batches another process committed, delivered here."""
    from runtime import RedisStorage
    from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

    prefix = unique_prefix()
    url = f"{ensure_redis()}?prefix={prefix}"
    try:
        async with StreamEngine([counter], storage=RedisStorage(url)) as follower:
            async with StreamEngine([counter], storage=RedisStorage(url)) as writer:
                good, broken, many = Probe(), Raising(), Raising(fail_at=2, many=True)
                await join_all(follower, "g", (good, None), (broken, None), (many, None))
                writing = counter.bind(writer)
                await writing.update_many("g", [("a", INCREMENT), ("b", INCREMENT)])  # one batch of two
                for _ in range(3):
                    await writing.update("g", "a", INCREMENT)
                with trio.fail_after(10):  # waiting for another engine's publication: real I/O
                    while len(changes(good)) < 5:
                        await trio.sleep(0.005)
                assert changes(good) == [1, 2, 3, 4, 5]
                assert follower.metrics.subscriber_errors == 2
                assert (await follower.group_stats("counter", "g"))["subscribers"] == 1
    finally:
        delete_prefix(prefix)
