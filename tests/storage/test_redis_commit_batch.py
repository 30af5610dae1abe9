"""Commits of many groups sent together: one COMMIT call, one message, each group judged on its own.

A process committing to many groups at once merges the commits queued in
one scheduler pass into one multi-group script call (pipeline.py). These
tests hold it to what a call of its own per group gave: a group that lost a
race is refused alone and changes nothing, its neighbours in the same call
commit, and another process receives every committed batch, in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from runtime.storage import ConflictError, GroupCommit, HistoryPolicy, StoredEvent
from runtime.storage.base import RemoteBatch
from runtime.storage.redis import RedisStorage
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

POLICY = HistoryPolicy()


@pytest.fixture
def redis_url() -> Iterator[str]:
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


@pytest.fixture
async def storage(redis_url: str) -> AsyncIterator[RedisStorage]:
    async with RedisStorage(redis_url) as opened:
        yield opened


def one_write(epoch: str, expected: int, n: int) -> GroupCommit:
    value = {"id": "x", "n": n}
    return GroupCommit(epoch=epoch, offset=expected + 1, timestamp=1000 + n, writes=[("x", value)],
                       events=[StoredEvent(expected + 1, 1000 + n, "x", "update" if expected else "create", value)],
                       expected_offset=expected)


async def test_concurrent_commits_to_many_groups_go_as_one_call_and_each_is_judged_alone(storage, redis_url):
    groups = [f"g{k}" for k in range(50)]
    epochs = {group: (await storage.load_group("s", group)).epoch for group in groups}
    received: list[RemoteBatch] = []
    outcomes: dict[str, object] = {}
    merged: list[int] = []  # the number of commits in each COMMIT call sent
    original = storage._pipeline._commit_call

    def counting(commits):
        merged.append(len(commits))
        return original(commits)

    storage._pipeline._commit_call = counting

    async with RedisStorage(redis_url) as other, trio.open_nursery() as nursery:
        await nursery.start(other.follow, received.append, lambda reload: None)

        async def commit(group: str) -> None:
            expected = 5 if group == "g7" else 0  # g7 computed its batch from a state storage never held
            try:
                outcomes[group] = await storage.commit("s", group, one_write(epochs[group], expected, 1), POLICY)
            except ConflictError as exc:
                outcomes[group] = exc

        async with trio.open_nursery() as writers:
            for group in groups:
                writers.start_soon(commit, group)
        with trio.fail_after(10):
            while len(received) < len(groups) - 1:
                await trio.sleep(0.005)
        nursery.cancel_scope.cancel()

    assert merged == [50]  # fifty commits, one script call
    assert isinstance(outcomes["g7"], ConflictError) and outcomes["g7"].stored_offset == 0
    assert all(outcomes[group] == 0 for group in groups if group != "g7")
    assert sorted(batch.group for batch in received) == sorted(group for group in groups if group != "g7")
    assert all([event.offset for event in batch.events] == [1] for batch in received)
    refused = await storage.load_group("s", "g7")
    assert (refused.offset, refused.items) == (0, {})  # the refused group changed nothing
    committed = await storage.load_group("s", "g8")
    assert (committed.offset, committed.items) == (1, {"x": {"id": "x", "n": 1}})


async def test_a_follower_sees_each_groups_batches_in_offset_order_across_many_calls(storage, redis_url):
    groups = [f"g{k}" for k in range(20)]
    epochs = {group: (await storage.load_group("s", group)).epoch for group in groups}
    received: list[RemoteBatch] = []
    async with RedisStorage(redis_url) as other, trio.open_nursery() as nursery:
        await nursery.start(other.follow, received.append, lambda reload: None)

        async def writer(group: str) -> None:
            for n in range(10):
                await storage.commit("s", group, one_write(epochs[group], n, n + 1), POLICY)

        async with trio.open_nursery() as writers:
            for group in groups:
                writers.start_soon(writer, group)
        with trio.fail_after(10):
            while sum(len(batch.events) for batch in received) < 200:
                await trio.sleep(0.005)
        nursery.cancel_scope.cancel()
    for group in groups:
        offsets = [event.offset for batch in received if batch.group == group for event in batch.events]
        assert offsets == list(range(1, 11))
