"""Embedding the actor kernel in a Trio program, next to the program's own tasks.

Run: .venv/bin/python examples/embedded_actors.py   (prints 1998000)
Shown in docs/actors.md and run by tests/test_examples.py.
"""

import trio

from actors import Actor, ActorSystem


class Totals(Actor):
    def __init__(self):
        self.total = 0

    async def receive(self, message):
        kind, value = message
        if kind == "add":
            self.total += value
        return self.total

async def producer(totals, n):
    for i in range(n):
        await totals.tell(("add", i))

async def run_actors(*, task_status=trio.TASK_STATUS_IGNORED):
    async with ActorSystem() as system:
        task_status.started(system)
        await trio.sleep_forever()       # until the program cancels us

async def main():
    async with trio.open_nursery() as nursery:
        system = await nursery.start(run_actors)
        totals = system.spawn(Totals)
        async with trio.open_nursery() as producers:
            for _ in range(4):
                producers.start_soon(producer, totals, 1000)
        print(await totals.ask(("get", None)))   # 1998000
        nursery.cancel_scope.cancel()            # stops the actors too

if __name__ == "__main__":
    trio.run(main)
