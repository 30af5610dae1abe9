"""Idempotent mutations: a repeated ``idempotency_key`` returns the first call's result and changes nothing."""

from __future__ import annotations

import pytest
import trio

from runtime import IdempotencyError, RedisStorage, Stream, StreamConfig, StreamEngine
from runtime.streams.idempotency import keyed_calls

from .conftest import Probe

counter = Stream("counter")
INCREMENT = [{"type": "increment", "path": "n"}]


async def test_each_kind_of_call_repeated_with_its_key_returns_the_first_result(backend):
    async with StreamEngine([counter], storage=backend()) as engine:
        probe = Probe()
        await engine.join(probe, "counter", "g", subscription_id=1)
        first = await counter.set("g", "a", {"n": 1}, idempotency_key="k-set")
        await counter.set("g", "a", {"n": 5})
        again = await counter.set("g", "a", {"n": 1}, idempotency_key="k-set")
        assert again == first and again.new_value == {"id": "a", "n": 1} and again.old_value is None
        assert await counter.get("g", "a") == {"id": "a", "n": 5}

        bumped = await counter.update("g", "a", INCREMENT, idempotency_key="k-up")
        assert (await counter.update("g", "a", INCREMENT, idempotency_key="k-up")) == bumped
        many = await counter.update_many("g", [("a", INCREMENT), ("b", INCREMENT)], idempotency_key="k-many")
        assert list(await counter.update_many("g", [("a", INCREMENT), ("b", INCREMENT)],
                                              idempotency_key="k-many")) == list(many)
        gone = await counter.delete("g", "b", idempotency_key="k-del")
        assert gone.old_value == {"id": "b", "n": 1}
        await counter.set("g", "b", {"n": 9})
        assert (await counter.delete("g", "b", idempotency_key="k-del")).old_value == {"id": "b", "n": 1}
        assert await counter.get("g", "b") == {"id": "b", "n": 9}  # the repeat deleted nothing
        assert await counter.get("g", "a") == {"id": "a", "n": 7}
        # a different call under a used key is refused, and changes nothing
        with pytest.raises(IdempotencyError, match="k-up"):
            await counter.update("g", "b", INCREMENT, idempotency_key="k-up")
        with pytest.raises(IdempotencyError):
            await counter.delete("g", "a", idempotency_key="k-set")
        # keys are per group
        await counter.update("h", "a", INCREMENT, idempotency_key="k-up")
        assert await counter.get("h", "a") == {"id": "a", "n": 1}
        # events: one per applied change, none for the repeats
        assert probe.offsets()[1:] == list(range(1, 8))
    if backend.kind != "memory":  # the records are stored: a new process still knows the keys
        async with StreamEngine([counter], storage=backend()):
            assert (await counter.update("g", "a", INCREMENT, idempotency_key="k-up")) == bumped
            assert await counter.get("g", "a") == {"id": "a", "n": 7}


async def test_a_failed_keyed_call_records_nothing_and_can_be_retried(backend):
    async with StreamEngine([counter], storage=backend()):
        await counter.set("g", "a", {"n": "text"})
        with pytest.raises(ValueError):
            await counter.update("g", "a", INCREMENT, idempotency_key="k")
        await counter.set("g", "a", {"n": 1})
        assert (await counter.update("g", "a", INCREMENT, idempotency_key="k")).new_value["n"] == 2


async def test_concurrent_calls_with_one_key_apply_exactly_once(backend):
    async with StreamEngine([counter], storage=backend()):
        results = []

        async def call():
            results.append(await counter.update("g", "a", INCREMENT, idempotency_key="once"))

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(call)
        assert await counter.get("g", "a") == {"id": "a", "n": 1}
        assert all(result == results[0] for result in results) and len(results) == 50


async def test_the_window_and_the_count_bound_forget_old_keys(autojump_clock):
    from runtime import RuntimeClock

    clock = RuntimeClock(start_wall=1_700_000_000.0)
    short = Stream(StreamConfig(name="short", idempotency_window=60, idempotency_keys=3))
    async with StreamEngine([short], clock=clock.now_ms):
        await short.update("g", "a", INCREMENT, idempotency_key="k")
        await trio.sleep(59)
        await short.update("g", "a", INCREMENT, idempotency_key="k")
        assert (await short.get("g", "a"))["n"] == 1
        await trio.sleep(2)
        await short.update("g", "a", INCREMENT, idempotency_key="k")  # the window has passed
        assert (await short.get("g", "a"))["n"] == 2
        for key in ("x1", "x2", "x3"):  # at most three keys per group: "k" is forgotten
            await short.update("g", "b", INCREMENT, idempotency_key=key)
        await short.update("g", "a", INCREMENT, idempotency_key="k")
        assert (await short.get("g", "a"))["n"] == 3
    with pytest.raises(ValueError, match="idempotency_window"):
        StreamConfig(name="bad", idempotency_window=0)


async def test_calls_in_a_keyed_scope_get_their_ordinals_as_keys(backend):
    async with StreamEngine([counter], storage=backend()):
        for _attempt in range(3):  # a retried handler run: the same calls in the same order
            with keyed_calls("msg-1"):
                await counter.update("g", "a", INCREMENT)
                await counter.update("g", "a", INCREMENT)
                await counter.set("g", "b", {"n": 1}, idempotency_key="own")
                await counter.update("g", "b", INCREMENT)
        assert await counter.get("g", "a") == {"id": "a", "n": 2}
        assert await counter.get("g", "b") == {"id": "b", "n": 2}
        with keyed_calls("msg-2"):
            await counter.update("g", "a", INCREMENT)
        assert await counter.get("g", "a") == {"id": "a", "n": 3}


async def test_two_engines_on_one_redis_apply_a_key_once(redis_url):
    async with trio.open_nursery() as nursery:
        stop = trio.Event()

        async def run(task_status=trio.TASK_STATUS_IGNORED):
            async with StreamEngine([counter], storage=RedisStorage(redis_url)) as engine:
                task_status.started(counter.bind(engine))
                await stop.wait()

        handles = [await nursery.start(run) for _ in range(2)]
        results = []

        async def call(handle, key):
            results.append((key, await handle.update("g", "a", INCREMENT, idempotency_key=key)))

        async with trio.open_nursery() as calls:
            for n in range(40):  # 10 keys, each sent 4 times, from both engines at once
                calls.start_soon(call, handles[n % 2], f"k{n % 10}")
        assert (await handles[0].get("g", "a"))["n"] == 10
        assert (await handles[1].get("g", "a"))["n"] == 10
        by_key = {}
        for key, result in results:
            by_key.setdefault(key, []).append(result.new_value["n"])
        assert sorted(values[0] for values in by_key.values()) == list(range(1, 11))
        assert all(len(set(values)) == 1 for values in by_key.values())
        stop.set()
