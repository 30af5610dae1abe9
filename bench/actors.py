"""Throughput of the actor kernel, beside a Trio memory channel in the same run.

    .venv/bin/python bench/actors.py [--messages N]

Prints messages/s through one actor handled one per turn and drained in
batches, asks/s from one asker and from many, and the same workloads over
a plain `trio.open_memory_channel` as the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# This file is named like the package it measures: keep its own folder off
# the import path so that `import actors` finds the kernel.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import outcome
import trio

from actors import Actor, ActorSystem


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message):
        self.count += 1
        return self.count


class OnePerTurn(Counter):
    max_batch = 1


class BatchCounter(Counter):
    max_batch = 256

    async def receive_batch(self, messages):
        results = []
        for _ in messages:
            self.count += 1
            results.append(outcome.Value(self.count))
        return results


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


async def channel_one_by_one(n: int) -> float:
    send, receive = trio.open_memory_channel(1000)

    async def consumer():
        async for _ in receive:
            pass

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        async with send:
            for i in range(n):
                await send.send(i)
    return rate(n, time.perf_counter() - start)


async def channel_drained(n: int) -> float:
    send, receive = trio.open_memory_channel(1000)

    async def consumer():
        while True:
            try:
                await receive.receive()
            except trio.EndOfChannel:
                return
            while True:
                try:
                    receive.receive_nowait()
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    return

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        async with send:
            for i in range(n):
                await send.send(i)
    return rate(n, time.perf_counter() - start)


async def channel_request_reply(n: int) -> float:
    send, receive = trio.open_memory_channel(1000)

    async def server():
        async for reply_to in receive:
            await reply_to.send(1)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        reply_send, reply_receive = trio.open_memory_channel(1)
        for _ in range(n):
            await send.send(reply_send)
            await reply_receive.receive()
        nursery.cancel_scope.cancel()
    return rate(n, time.perf_counter() - start)


async def actor_tells(factory, n: int) -> float:
    async with ActorSystem(mailbox_size=1000) as system:
        ref = system.spawn(factory)
        start = time.perf_counter()
        for i in range(n):
            await ref.tell(i)
        assert await ref.ask("done") == n + 1
        return rate(n, time.perf_counter() - start)


async def actor_asks(n: int, askers: int) -> float:
    async with ActorSystem(mailbox_size=1000) as system:
        ref = system.spawn(Counter)
        per_asker = n // askers

        async def asker():
            for _ in range(per_asker):
                await ref.ask(None)

        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(askers):
                nursery.start_soon(asker)
        return rate(per_asker * askers, time.perf_counter() - start)


async def main(n: int) -> None:
    rows = []
    base_send = await channel_one_by_one(n)
    base_drain = await channel_drained(n)
    base_reply = await channel_request_reply(n // 4)
    rows.append(("baseline: memory channel, one by one", base_send, base_send))
    rows.append(("baseline: memory channel, drained in batches", base_drain, base_send))
    rows.append(("actor tell, one message per turn (max_batch=1)", await actor_tells(OnePerTurn, n), base_send))
    rows.append(("actor tell, drained in batches (receive)", await actor_tells(Counter, n), base_send))
    rows.append(("actor tell, drained in batches (receive_batch)", await actor_tells(BatchCounter, n), base_send))
    rows.append(("baseline: request/reply over memory channels", base_reply, base_reply))
    rows.append(("actor ask, 1 asker", await actor_asks(n // 4, 1), base_reply))
    rows.append(("actor ask, 100 concurrent askers", await actor_asks(n // 4, 100), base_reply))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'workload':<{width}}  {'per second':>12}  vs baseline")
    for name, value, baseline in rows:
        print(f"{name:<{width}}  {value:>12,.0f}  {value / baseline:>6.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=400_000)
    args = parser.parse_args()
    trio.run(main, args.messages)
