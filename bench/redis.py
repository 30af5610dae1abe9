"""Streams on Redis: atomic ops/s per process, and what crossing processes adds to latency.

    .venv/bin/python bench/redis.py [--ops N] [--concurrency C] [--url redis://127.0.0.1:6379/0]

Every op is ``await stream.update(group, "counter", [increment n by 1])``
from C concurrent Trio tasks in one process (concurrency is what lets the
group actor commit many ops in one Lua script call). Workloads:

- baseline: the same hot-group workload on memory storage, in this process,
  and the spread workload on memory (the actor path's own ceiling for it);
- Redis, one process, one hot group;
- Redis, two processes on the SAME hot group (they race: each commit is a
  compare-and-set, the loser catches up and applies its batch again);
- Redis, two processes, a hot group each;
- Redis, one process, ops spread over 1,000 groups.

Latency: a writer process sets an item ``--rate`` times a second with its
send time inside; a subscriber in the same process, and one in another
process on the same Redis, record when each event reaches them
(``time.monotonic`` is one clock for every process on a Linux machine).
"cross-process added" is the other process's p50/p99 minus the writer's own.

Every run reads its counters back and checks they add up, so a figure is
never for work that was not done. Redis runs with the keys under a prefix of
this run's own, deleted at the end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Lines, delete_redis_prefix, verify
from runtime import MemoryStorage, RedisStorage, Stream, StreamEngine, Subscriber

INCREMENT = [{"type": "increment", "path": "n", "by": 1}]


# -- one process's work ------------------------------------------------------------------


async def hammer(storage, ops: int, concurrency: int, groups: list[str], go=None) -> dict:
    """Run ``ops`` increments over ``groups`` from ``concurrency`` tasks; ops/s and the check."""
    async with StreamEngine(["bench"], storage=storage) as engine:
        handle = Stream("bench").bind(engine)
        for group in groups:  # activate (and load) every group before the clock starts
            await handle.get(group, "counter")
        gc.collect()
        gc.freeze()  # as `serve` does after start-up: 1,000 loaded groups are not rescanned by every full collection
        if go is not None:
            await go()
        per_task = ops // concurrency

        async def worker(k: int) -> None:
            for i in range(per_task):
                await handle.update(groups[(k + i * concurrency) % len(groups)], "counter", INCREMENT)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for k in range(concurrency):
                nursery.start_soon(worker, k)
        elapsed = time.perf_counter() - started
        total = 0
        for group in groups:
            item = await handle.get(group, "counter")
            total += item["n"] if item else 0
    return {"ops": per_task * concurrency, "seconds": elapsed, "total": total}


class Recorder(Subscriber):
    """A subscriber that records each event's latency from the send time inside it."""

    def __init__(self) -> None:
        self.latencies: list[float] = []

    def deliver(self, event, *, initial: bool = False) -> bool:
        if event.type in ("create", "update"):
            self.latencies.append(time.monotonic() - event.data["sent"])
        return True


async def follow(storage, group: str, expected: int, go) -> dict:
    async with StreamEngine(["bench"], storage=storage) as engine:
        recorder = Recorder()
        await engine.join(recorder, "bench", group, subscription_id=1)
        await go()
        with trio.move_on_after(60):
            while len(recorder.latencies) < expected:
                await trio.sleep(0.01)
    return {"latencies": recorder.latencies}


async def write_paced(storage, group: str, count: int, rate: float, go) -> dict:
    async with StreamEngine(["bench"], storage=storage) as engine:
        handle = Stream("bench").bind(engine)
        recorder = Recorder()
        await engine.join(recorder, "bench", group, subscription_id=1)
        await go()
        start = trio.current_time()
        for i in range(count):
            await trio.sleep_until(start + i / rate)
            await handle.set(group, "x", {"sent": time.monotonic(), "i": i})
        with trio.move_on_after(10):
            while len(recorder.latencies) < count:
                await trio.sleep(0.01)
    return {"latencies": recorder.latencies}


async def child(args: argparse.Namespace) -> None:
    """One process of a multi-process workload: ready → wait for "go" on stdin → result JSON."""
    storage = RedisStorage(args.url)
    stdin = Lines(trio.lowlevel.FdStream(os.dup(0)))

    async def go() -> None:
        print("ready", flush=True)
        await stdin.readline()

    groups = args.groups.split(",")
    if args.role == "hammer":
        result = await hammer(storage, args.ops, args.concurrency, groups, go)
    elif args.role == "follow":
        result = await follow(storage, groups[0], args.ops, go)
    else:
        result = await write_paced(storage, groups[0], args.ops, args.rate, go)
    print(json.dumps(result), flush=True)


# -- the parent: workloads side by side ------------------------------------------------------


async def in_processes(args: argparse.Namespace, url: str, roles: list[tuple[str, str, int]]) -> list[dict]:
    """Start one child per (role, groups, ops), release them together, collect their results."""
    procs = []
    for role, groups, ops in roles:
        command = [sys.executable, __file__, "--child", "--role", role, "--url", url, "--groups", groups,
                   "--ops", str(ops), "--concurrency", str(args.concurrency), "--rate", str(args.rate)]
        procs.append(await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    lines = [Lines(proc.stdout) for proc in procs]
    for line in lines:
        verify(await line.readline() == "ready", "a child did not start")
    for proc in procs:
        await proc.stdin.send_all(b"go\n")
    results = [json.loads(await line.readline()) for line in lines]
    for proc in procs:
        await proc.wait()
    return results


def row(name: str, ops: int, seconds: float, baseline: float | None) -> str:
    rate = ops / seconds
    ratio = f"{rate / baseline:.2f}x" if baseline else "1.00x"
    return f"| {name} | {ops:,} | {rate:,.0f} | {ratio} |"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else 0.0


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    url = f"{args.url}?prefix={prefix}"
    try:
        print("| workload | ops | ops/s per process | vs memory |")
        print("|---|---:|---:|---:|")
        memory = await hammer(MemoryStorage(), args.ops, args.concurrency, ["hot"])
        verify(memory["total"] == memory["ops"], "memory: counts do not add up")
        base = memory["ops"] / memory["seconds"]
        print(row("baseline: memory, hot group, 1 process", memory["ops"], memory["seconds"], None))

        one = await hammer(RedisStorage(url), args.ops, args.concurrency, ["hot1"])
        verify(one["total"] == one["ops"], "redis: counts do not add up")
        print(row("Redis, hot group, 1 process", one["ops"], one["seconds"], base))

        same = await in_processes(args, url, [("hammer", "hot2", args.ops), ("hammer", "hot2", args.ops)])
        verify(same[1]["total"] >= same[0]["ops"] and max(r["total"] for r in same) == 2 * args.ops,
               "redis, shared hot group: counts do not add up")
        for k, result in enumerate(same):
            print(row(f"Redis, the same hot group, 2 processes (#{k + 1})", result["ops"], result["seconds"], base))

        apart = await in_processes(args, url, [("hammer", "hot3", args.ops), ("hammer", "hot4", args.ops)])
        for k, result in enumerate(apart):
            verify(result["total"] == result["ops"], "redis, a group each: counts do not add up")
            print(row(f"Redis, a hot group each, 2 processes (#{k + 1})", result["ops"], result["seconds"], base))

        spread_groups = [f"s{k}" for k in range(1000)]
        spread_memory = await hammer(MemoryStorage(), args.ops // 2, args.concurrency, spread_groups)
        verify(spread_memory["total"] == spread_memory["ops"], "memory, spread: counts do not add up")
        print(row("baseline: memory, spread over 1,000 groups, 1 process", spread_memory["ops"],
                  spread_memory["seconds"], base))
        spread = await hammer(RedisStorage(url), args.ops // 2, args.concurrency, spread_groups)
        verify(spread["total"] == spread["ops"], "redis, spread: counts do not add up")
        print(row("Redis, spread over 1,000 groups, 1 process", spread["ops"], spread["seconds"], base))

        count = int(args.rate * args.seconds)
        writer, other = await in_processes(args, url, [("write", "lat", count), ("follow", "lat", count)])
        own, cross = writer["latencies"], other["latencies"]
        verify(len(own) == count and len(cross) == count, "latency: events went missing")
        print()
        print(f"Latency, {count:,} sets at {args.rate:,.0f}/s, from the set to the subscriber:")
        print("| subscriber | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|")
        print(f"| in the writing process | {percentile(own, 50):.2f} | {percentile(own, 99):.2f} "
              f"| {max(own) * 1000:.2f} |")
        print(f"| in another process | {percentile(cross, 50):.2f} | {percentile(cross, 99):.2f} "
              f"| {max(cross) * 1000:.2f} |")
        print(f"| cross-process added | {percentile(cross, 50) - percentile(own, 50):.2f} "
              f"| {percentile(cross, 99) - percentile(own, 99):.2f} | |")
    finally:
        delete_redis_prefix(args.url, prefix)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=40_000, help="ops per hot-group run (default 40,000)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--rate", type=float, default=1000.0, help="sets per second in the latency run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--groups", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    trio.run(child if arguments.child else main, arguments)
