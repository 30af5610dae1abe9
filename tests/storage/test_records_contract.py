# ruff: noqa: F811 - the contract module's fixtures are imported by name, then taken as arguments
"""Item expiries and idempotency records: the part of the storage contract a group's batch carries.

Run once per backend, with the fixtures of ``test_storage_contract``. Both
ride with a batch, so the tests check they land with it, atomically, and
that a refused batch leaves them as they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from runtime.storage import ConflictError, GroupCommit, HistoryPolicy, IdempotencyRecord, Storage
from tests.storage.test_storage_contract import (  # noqa: F401 - fixtures
    BACKENDS,
    DURABLE,
    GroupWriter,
    backend,
    item,
    redis_url,
    storage,
)


async def commit(
    writer: GroupWriter,
    *writes: tuple[str, dict | None],
    expiries: dict[str, int | None] | None = None,
    records: list[IdempotencyRecord] | None = None,
    max_records: int = 10_000,
) -> GroupCommit:
    """``writer.commit`` with expiries and records riding along."""
    batch = attrs.evolve(writer.build(*writes), expiries=expiries or {}, records=records or [],
                         max_records=max_records)
    await writer.storage.commit(writer.stream, writer.group, batch, HistoryPolicy())
    writer.offset, writer.timestamp = batch.offset, batch.timestamp
    for item_id, value in writes:
        if value is None:
            writer.items.pop(item_id, None)
        else:
            writer.items[item_id] = value
    return batch


def record(key: str, result: Any, expires_at: int = 10**13) -> IdempotencyRecord:
    return IdempotencyRecord(key=key, result=result, expires_at=expires_at)


# -- expiries ----------------------------------------------------------------------


async def test_expiries_are_found_by_group_and_by_stream(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")), ("b", item("b")), ("c", item("c")), expiries={"a": 5_000, "b": 3_000})
    other = await GroupWriter.load(storage, group="g2")
    await commit(other, ("x", item("x")), expiries={"x": 9_000})

    assert await storage.expiry_next("todo") == 3_000
    assert await storage.expiry_due("todo", 2_999) == []
    assert await storage.expiry_due("todo", 5_000) == ["g1"]
    assert sorted(await storage.expiry_due("todo", 9_000)) == ["g1", "g2"]
    assert await storage.expired_items("todo", "g1", 4_000) == ["b"]
    assert await storage.expired_items("todo", "g1", 5_000) == ["b", "a"]  # soonest first
    assert await storage.expired_items("todo", "g3", 5_000) == []
    assert await storage.expiry_next("other") is None
    assert await storage.expiry_due("other", 10**13) == []


async def test_expiry_due_honours_its_limit(storage: Storage) -> None:
    for n in range(5):
        writer = await GroupWriter.load(storage, group=f"g{n}")
        await commit(writer, ("a", item("a")), expiries={"a": 100 + n})
    assert len(await storage.expiry_due("todo", 1_000, limit=3)) == 3


async def test_a_deleted_item_takes_its_expiry_with_it_and_a_cleared_one_is_gone(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")), ("b", item("b")), expiries={"a": 1_000, "b": 2_000})
    await commit(writer, ("a", None))
    assert await storage.expired_items("todo", "g1", 5_000) == ["b"]
    await commit(writer, ("b", item("b", v=2)), expiries={"b": None})
    assert await storage.expired_items("todo", "g1", 5_000) == []
    assert await storage.expiry_next("todo") is None
    assert await storage.expiry_due("todo", 5_000) == []


async def test_a_later_expiry_replaces_the_earlier(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")), expiries={"a": 1_000})
    await commit(writer, ("a", item("a", v=2)), expiries={"a": 8_000})
    assert await storage.expired_items("todo", "g1", 7_999) == []
    assert await storage.expiry_next("todo") == 8_000


async def test_an_item_deleted_and_recreated_in_one_batch_keeps_the_batch_expiry(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")), expiries={"a": 1_000})
    await commit(writer, ("a", None), ("a", item("a", v=2)), expiries={"a": 3_000})
    assert await storage.expired_items("todo", "g1", 3_000) == ["a"]


# -- idempotency records ----------------------------------------------------------------


async def test_a_record_is_stored_with_its_batch_and_the_first_one_stays(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a", n=1)), records=[record("k1", {"first": True})])
    await commit(writer, ("a", item("a", n=2)), records=[record("k1", {"first": False}), record("k2", [1, 2])])
    found = await storage.idempotency_get("todo", "g1", ["k1", "k2", "k3"], now=0)
    assert found == {"k1": {"first": True}, "k2": [1, 2]}
    assert await storage.idempotency_get("todo", "other", ["k1"], now=0) == {}
    assert await storage.idempotency_get("todo", "g1", [], now=0) == {}


async def test_a_batch_of_records_alone_is_stored(storage: Storage) -> None:
    """A keyed call that changed nothing (deleting a missing item) still records its result."""
    writer = await GroupWriter.load(storage)
    await commit(writer, records=[record("k", None)])
    assert await storage.idempotency_get("todo", "g1", ["k"], now=0) == {"k": None}
    assert (await storage.load_group("todo", "g1")).offset == 0


async def test_an_expired_record_is_not_found(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")), records=[record("old", 1, expires_at=1_000), record("new", 2, 5_000)])
    assert await storage.idempotency_get("todo", "g1", ["old", "new"], now=999) == {"old": 1, "new": 2}
    assert await storage.idempotency_get("todo", "g1", ["old", "new"], now=1_000) == {"new": 2}


async def test_records_are_bounded_per_group_keeping_the_newest(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    for n in range(6):
        await commit(writer, ("a", item("a", n=n)), records=[record(f"k{n}", n, expires_at=10_000 + n)],
                     max_records=3)
    found = await storage.idempotency_get("todo", "g1", [f"k{n}" for n in range(6)], now=0)
    assert found == {"k3": 3, "k4": 4, "k5": 5}


async def test_a_refused_batch_stores_no_expiry_and_no_record(storage: Storage) -> None:
    writer = await GroupWriter.load(storage)
    await commit(writer, ("a", item("a")))
    stale = attrs.evolve(writer.build(("a", item("a", v=2))), expected_offset=0,
                         expiries={"a": 1_000}, records=[record("k", 1)])
    with pytest.raises(ConflictError):
        await storage.commit("todo", "g1", stale, HistoryPolicy())
    assert await storage.expired_items("todo", "g1", 5_000) == []
    assert await storage.idempotency_get("todo", "g1", ["k"], now=0) == {}


async def test_expiries_and_records_survive_a_restart_on_durable_backends(
    backend: str, tmp_path: Path, redis_url: str
) -> None:
    if not DURABLE[backend]:
        pytest.skip("memory storage keeps nothing across a restart, by design")
    async with BACKENDS[backend](tmp_path, redis_url) as first:
        writer = await GroupWriter.load(first)
        await commit(writer, ("a", item("a")), expiries={"a": 1_000}, records=[record("k", {"r": 1})])
    async with BACKENDS[backend](tmp_path, redis_url) as again:
        assert await again.expired_items("todo", "g1", 1_000) == ["a"]
        assert await again.expiry_due("todo", 1_000) == ["g1"]
        assert await again.idempotency_get("todo", "g1", ["k"], now=0) == {"k": {"r": 1}}
