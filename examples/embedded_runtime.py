"""Embedding the runtime in a Trio program, next to the program's own tasks.

The program runs an App with its HTTP listener in its own nursery, feeds a
stream from a task of its own (a sensor, say), and reads the live changes
back over SSE, then shuts everything down by cancelling. Run:

    .venv/bin/python examples/embedded_runtime.py     # prints the readings it saw live

Shown in docs/embedding.md and run by tests/test_examples.py.
"""

import httpx
import trio

from runtime import App, Stream, StreamConfig

readings = Stream(StreamConfig(name="readings", schema={"celsius": "number"}))


async def sensor(app: App, count: int) -> None:
    """The program's own work: it writes to the stream like any step would."""
    store = app.stream("readings")  # a handle bound to this app, usable from any task
    for i in range(count):
        await store.set("lab", "thermometer", {"celsius": 20 + i})
        await trio.sleep(0.01)


async def watch(url: str, count: int, task_status=trio.TASK_STATUS_IGNORED) -> list:
    """A client of the app, following the group over Server-Sent Events."""
    seen = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with client.stream("GET", "/streams/readings/lab") as response:
            buffer = ""
            async for text in response.aiter_text():
                buffer += text
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    if "event: sync" in block:
                        task_status.started()  # subscribed: the snapshot has arrived
                    elif "event: create" in block or "event: update" in block:
                        seen.append(block.split('"celsius":', 1)[1].split("}", 1)[0])
                if len(seen) == count:
                    return seen
    return seen


async def main() -> None:
    app = App(streams=[readings], storage="memory")
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(lambda task_status: app.serve(port=0, task_status=task_status))
        async with trio.open_nursery() as work:
            results = []

            async def follow(task_status=trio.TASK_STATUS_IGNORED):
                results.extend(await watch(listening.http_url, 5, task_status=task_status))

            await work.start(follow)  # subscribed before the sensor starts
            work.start_soon(sensor, app, 5)
        print("seen live:", ", ".join(results))
        nursery.cancel_scope.cancel()  # stops the server and the app, nothing left running


if __name__ == "__main__":
    trio.run(main)
