"""Atomic increments per second through stream group actors, memory and SQLite.

    .venv/bin/python bench/streams.py [--ops N] [--sqlite-ops N] [--concurrency C] [--batch B] [--batch-concurrency BC]
                                      [--sqlite-sync MODE] [--profile WORKLOAD]

Every op is ``await stream.update(group, "counter", [increment n by 1])``,
sent by C concurrent Trio tasks (concurrency is what lets a group actor take
many messages in one turn and commit them in one storage call). Workloads:
one hot group (1 group, 1 item), and ops spread over 1,000 groups (op k to
group k mod 1,000), on memory and on SQLite (a file in a temporary
directory). Hot groups run N ops, spread workloads N/4, concurrency-1
baselines N/5 (the "ops" column), to keep the run under a minute.

Batched rows send the same increments with ``stream.update_many(group,
[(item, ops)] * B)``: one call (one ask) carries B ops, each still its own
change with its own offset and event, from 1 task and from a few (default
10: B x concurrency ops in flight; at 200 x 100 a turn holds 20,000 ops and
the garbage collector's full passes over them dominate). They are compared
with the per-call baseline of the same run, and the summary says which form
meets the target.

Baselines, measured in the same run:

- memory rows: the same workload at concurrency 1 (each update waits for
  its reply before the next is sent, so every turn holds one op);
- SQLite rows: the same workload at concurrency 1, which makes every
  transaction hold exactly one op (one transaction per op, through the
  actor); printed beside it, one-write ``GroupCommit``s passed straight to
  ``SQLiteStorage.commit`` in a loop (one transaction per op, no actor, no
  ``Stream`` call), which is what one op per transaction costs at the
  storage layer alone.

Every engine run ends by reading the counters back and asserting that they
add up to the ops sent (for SQLite, from a fresh storage on the same file
after the engine closed), so a figure is never for work that was not done.
"ops/commit" is the mean number of writes per ``storage.commit`` call,
counted by a thin subclass of the storage that only counts and delegates.

``--profile WORKLOAD`` runs one workload (e.g. ``memory-hot``) under cProfile
and prints where the event-loop thread spends its time instead of the table
(SQLite's worker thread is not profiled).
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

# bench/actors.py is named like the actor kernel: keep this folder off the
# import path so that the runtime's `import actors` finds the kernel.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import trio

from runtime.storage import GroupCommit, HistoryPolicy, MemoryStorage, SQLiteStorage, StoredEvent
from runtime.streams import Stream, StreamEngine
from runtime.streams.ops import apply_ops

STREAM = "bench"
ITEM = "counter"
OPS = [{"type": "increment", "path": "n", "by": 1}]
SPREAD_GROUPS = 1_000


class _CountingCommits:
    """Counts commit calls and writes, then delegates; changes nothing else."""

    commits = 0
    writes = 0

    async def commit(self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy) -> None:
        self.commits += 1
        self.writes += len(commit.writes)
        await super().commit(stream, group, commit, policy)


class CountingMemory(_CountingCommits, MemoryStorage):
    pass


class CountingSQLite(_CountingCommits, SQLiteStorage):
    pass


def verify(condition: bool, message: str) -> None:
    """An assert that ``python -O`` cannot switch off: a figure must be for work done."""
    if not condition:
        raise AssertionError(message)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


class Result:
    def __init__(self, ops: int, ops_per_s: float, ops_per_commit: float | None = None) -> None:
        self.ops = ops
        self.ops_per_s = ops_per_s
        self.ops_per_commit = ops_per_commit


# -- the reference: the pure function, no actor -------------------------------


def inline_apply_ops(n: int) -> Result:
    item: dict[str, Any] | None = None
    start = time.perf_counter()
    for _ in range(n):
        item = apply_ops(item, OPS)
    elapsed = time.perf_counter() - start
    verify(item is not None and item["n"] == n, f"apply_ops counted to {item}, not {n}")
    return Result(n, rate(n, elapsed))


# -- the engine workloads ---------------------------------------------------------------


async def engine_increments(
    storage_factory: Callable[[], Any], n: int, concurrency: int, groups: int, batch: int = 0
) -> Result:
    """``n`` increments from ``concurrency`` tasks, op k going to group k % groups.

    ``batch`` > 0 sends them ``batch`` at a time with ``update_many`` (one
    call per batch, to one group) instead of one ``update`` per op.
    """
    storage = storage_factory()
    names = ["hot"] if groups == 1 else [f"g{i:04d}" for i in range(groups)]
    stream = Stream(STREAM)
    async with StreamEngine([Stream(STREAM)], storage=storage):
        # Activate (load) every group before the clock starts: the figure is for
        # increments, not for first activations.
        for name in names:
            verify(await stream.get(name, ITEM) is None, f"group {name} is not empty")
        storage.commits = storage.writes = 0
        counter = itertools.count()

        async def worker() -> None:
            update = stream.update
            for k in counter:
                if k >= n:
                    return
                await update(names[k % groups], ITEM, OPS)

        calls = itertools.count()

        async def batch_worker() -> None:
            update_many = stream.update_many
            for c in calls:
                first = c * batch
                if first >= n:
                    return
                entries = [(ITEM, OPS)] * min(batch, n - first)
                await update_many(names[c % groups], entries)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(batch_worker if batch else worker)  # the batched form of the same workload
        elapsed = time.perf_counter() - start
        commits, writes = storage.commits, storage.writes
        total = 0
        for name in names:
            item = await stream.get(name, ITEM)
            total += item["n"] if item else 0
        verify(total == n, f"the counters add up to {total}, not {n}")
    verify(writes == n, f"{writes} writes committed for {n} ops")
    if isinstance(storage, SQLiteStorage):
        # Read back from disk, through a storage that never saw the engine.
        async with SQLiteStorage(storage.path) as reopened:
            total = 0
            for name in names:
                state = await reopened.load_group(STREAM, name)
                total += state.items[ITEM]["n"] if ITEM in state.items else 0
        verify(total == n, f"the file holds counters adding up to {total}, not {n}")
    return Result(n, rate(n, elapsed), writes / commits)


async def direct_sqlite_commits(path: str, n: int, sync: str) -> Result:
    """One-write GroupCommits straight into SQLiteStorage.commit: one transaction per op, no actor."""
    policy = HistoryPolicy()
    async with SQLiteStorage(path, synchronous=sync) as storage:
        state = await storage.load_group(STREAM, "hot")
        epoch, offset, timestamp = state.epoch, state.offset, state.timestamp
        value: dict[str, Any] | None = state.items.get(ITEM)
        start = time.perf_counter()
        for _ in range(n):
            old = value
            value = apply_ops(old, OPS)
            value["id"] = ITEM
            offset += 1
            timestamp = max(time.time_ns() // 1_000_000, timestamp + 1)
            event = StoredEvent(offset, timestamp, ITEM, "update" if old is not None else "create", value)
            await storage.commit(
                STREAM, "hot",
                GroupCommit(epoch=epoch, offset=offset, timestamp=timestamp, writes=[(ITEM, value)],
                            events=[event], expected_offset=offset - 1),
                policy,
            )
        elapsed = time.perf_counter() - start
    async with SQLiteStorage(path) as reopened:
        state = await reopened.load_group(STREAM, "hot")
    verify(state.items[ITEM]["n"] == n and state.offset == n, f"the file holds {state.items}, offset {state.offset}")
    return Result(n, rate(n, elapsed), 1.0)


# -- the table ------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    n, sqlite_n, c, sync, b = args.ops, args.sqlite_ops, args.concurrency, args.sqlite_sync, args.batch
    bc = args.batch_concurrency
    # Sized so the whole run stays well under a minute on a 2-core machine:
    # hot groups run all the ops, spread workloads a quarter (every op is its own
    # actor turn there), concurrency-1 baselines a fifth.
    spread_n, base_n = max(1, n // 4), max(1, n // 5)
    sqlite_spread_n, sqlite_base_n = max(1, sqlite_n // 4), max(1, sqlite_n // 5)
    rows: list[tuple[str, Result, Result | None]] = []

    def row(name: str, result: Result, baseline: Result | None) -> Result:
        rows.append((name, result, baseline))
        return result

    inline = row("reference: apply_ops() inline, one increment (pure function, no actor)",
                 inline_apply_ops(n), None)
    memory = CountingMemory
    hot_base = base = await engine_increments(memory, base_n, 1, 1)
    row("baseline: memory, hot group, concurrency 1", base, base)
    mem_hot = row(f"memory, hot group (1 group, 1 item), concurrency {c}",
                  await engine_increments(memory, n, c, 1), base)
    base = await engine_increments(memory, base_n, 1, SPREAD_GROUPS)
    row(f"baseline: memory, {SPREAD_GROUPS:,} groups, concurrency 1", base, base)
    row(f"memory, spread over {SPREAD_GROUPS:,} groups, concurrency {c}",
        await engine_increments(memory, spread_n, c, SPREAD_GROUPS), base)
    mem_hot_one = row(f"memory, hot group, update_many of {b} ops, concurrency 1",
                      await engine_increments(memory, n, 1, 1, batch=b), hot_base)
    mem_hot_many = row(f"memory, hot group, update_many of {b} ops, concurrency {bc}",
                       await engine_increments(memory, n, bc, 1, batch=b), hot_base)

    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        files = (os.path.join(tmp, f"{i}.db") for i in itertools.count())
        sqlite = lambda: CountingSQLite(next(files), synchronous=sync)  # noqa: E731 - a one-line factory beside the others
        one_txn = await engine_increments(sqlite, sqlite_base_n, 1, 1)
        row("baseline: sqlite, hot group, concurrency 1 (one txn per op)", one_txn, one_txn)
        direct = row("baseline: sqlite, storage.commit() of one write per txn (no actor)",
                     await direct_sqlite_commits(next(files), sqlite_base_n, sync), one_txn)
        sql_hot = row(f"sqlite, hot group, group commit, concurrency {c}",
                      await engine_increments(sqlite, sqlite_n, c, 1), one_txn)
        base = await engine_increments(sqlite, sqlite_base_n, 1, SPREAD_GROUPS)
        row(f"baseline: sqlite, {SPREAD_GROUPS:,} groups, concurrency 1 (one txn per op)", base, base)
        row(f"sqlite, spread over {SPREAD_GROUPS:,} groups, concurrency {c}",
            await engine_increments(sqlite, sqlite_spread_n, c, SPREAD_GROUPS), base)
        sql_batch = row(f"sqlite, hot group, update_many of {b} ops, concurrency {bc}",
                        await engine_increments(sqlite, sqlite_n, bc, 1, batch=b), one_txn)

    width = max(len(name) for name, _, _ in rows)
    print(f"{'workload':<{width}}  {'ops':>7}  {'ops/s':>9}  {'vs baseline':>11}  {'ops/commit':>10}")
    for name, result, baseline in rows:
        ratio = f"{result.ops_per_s / baseline.ops_per_s:>10.2f}x" if baseline else f"{'-':>11}"
        batch = f"{result.ops_per_commit:>10.1f}" if result.ops_per_commit is not None else f"{'-':>10}"
        print(f"{name:<{width}}  {result.ops:>7,}  {result.ops_per_s:>9,.0f}  {ratio}  {batch}")
    print()
    print(f"SQLite: WAL, synchronous={sync}. Every engine row's counters were read back and add up to its ops.")
    print(f"group commit, hot group: {sql_hot.ops_per_s / one_txn.ops_per_s:.1f}x one txn per op through "
          f"the actor, {sql_hot.ops_per_s / direct.ops_per_s:.1f}x one-write storage.commit() calls")
    best_batched = max(mem_hot_one.ops_per_s, mem_hot_many.ops_per_s)
    print(f"target >= 200,000 ops/s, memory hot group: one update() per op {mem_hot.ops_per_s:,.0f} "
          f"({'met' if mem_hot.ops_per_s >= 200_000 else 'NOT met'}); update_many of {b} "
          f"{mem_hot_one.ops_per_s:,.0f} from 1 task, {mem_hot_many.ops_per_s:,.0f} from {bc} "
          f"({'met' if best_batched >= 200_000 else 'NOT met'}); apply_ops alone runs at {inline.ops_per_s:,.0f}/s")
    print(f"target >= 30,000 ops/s, SQLite hot group with group commit: {sql_hot.ops_per_s:,.0f} "
          f"({'met' if sql_hot.ops_per_s >= 30_000 else 'NOT met'}); update_many of {b}: {sql_batch.ops_per_s:,.0f}")


PROFILED = {
    "memory-hot": (False, 1, False), "memory-spread": (False, SPREAD_GROUPS, False),
    "sqlite-hot": (True, 1, False), "sqlite-spread": (True, SPREAD_GROUPS, False),
    "memory-hot-batched": (False, 1, True),
}


async def profile(args: argparse.Namespace) -> None:
    is_sqlite, groups, batched = PROFILED[args.profile]
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        if is_sqlite:
            factory = lambda: CountingSQLite(os.path.join(tmp, "p.db"), synchronous=args.sqlite_sync)  # noqa: E731 - a one-line factory beside the others
            n = args.sqlite_ops
        else:
            factory, n = CountingMemory, args.ops
        profiler = cProfile.Profile()
        profiler.enable()
        concurrency = args.batch_concurrency if batched else args.concurrency
        result = await engine_increments(factory, n, concurrency, groups, batch=args.batch if batched else 0)
        profiler.disable()
    print(f"{args.profile}: {result.ops_per_s:,.0f} ops/s under cProfile, "
          f"{result.ops_per_commit:.1f} ops/commit, {n:,} ops")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000, help="increments per memory workload")
    parser.add_argument("--sqlite-ops", type=int, default=60_000, help="increments per SQLite workload")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent updating tasks")
    parser.add_argument("--batch", type=int, default=100, help="ops per update_many call in the batched rows")
    parser.add_argument("--batch-concurrency", type=int, default=10, help="concurrent tasks in the batched rows")
    parser.add_argument("--sqlite-sync", default="NORMAL", help="SQLite synchronous mode (NORMAL: no fsync per commit)")
    parser.add_argument("--profile", choices=sorted(PROFILED), help="profile one workload instead of the table")
    args = parser.parse_args()
    trio.run(profile if args.profile else main, args)
