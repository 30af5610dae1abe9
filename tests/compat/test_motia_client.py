"""Motia's published Node stream client against this runtime, unchanged.

The client (``@motiadev/stream-client-node``, pinned in package.json) is
installed by this test's set-up with npm. Under CI a missing Node or a
failed install fails the test; elsewhere it skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
import trio

from runtime import App, SQLiteStorage, StreamConfig, Unauthorized
from runtime.server import ServerSettings

HERE = Path(__file__).resolve().parent


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"Motia client compatibility cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def motia_client() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed for the Motia client tests")
    if not (HERE / "node_modules" / "@motiadev" / "stream-client-node").exists():
        result = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--package-lock=false"],
            cwd=HERE, capture_output=True, text=True, timeout=300,
        )
        if result.returncode != 0:
            _unavailable(f"npm install failed: {result.stderr.strip()[-500:]}")
    return HERE / "motia_client.mjs"


def authenticate(request):
    if request.token != "let-me-in":
        raise Unauthorized("bad token")
    return {"user": "ann"}


todos = StreamConfig(name="todos", can_access=lambda sub, auth: sub.group_id != "secret")


class ClientProcess:
    """Reads the client's report lines and keeps the latest state of each subscription."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""
        self.state: dict[str, object] = {}
        self.events: list[dict] = []

    async def _next(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError("the Motia client exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        report = orjson.loads(line)
        if "state" in report:
            self.state[report["sub"]] = report["state"]
        else:
            self.events.append(report)
        return report

    async def until(self, condition) -> None:
        """Read reports until ``condition(self)`` holds (15 s at most)."""
        with trio.fail_after(15):
            while not condition(self):
                await self._next()


async def serve(app: App, nursery: trio.Nursery, stream_port: int = 0):
    return await nursery.start(lambda task_status: app.serve(
        ServerSettings(port=0, stream_port=stream_port), task_status=task_status))


async def test_motia_node_client_sees_every_change_and_survives_a_restart(motia_client, tmp_path):
    db = tmp_path / "compat.db"
    app = App(streams=[todos], authenticate=authenticate, storage=SQLiteStorage(db))
    store = app.stream("todos")
    async with trio.open_nursery() as outer:
        server_scope = trio.CancelScope()
        listening = None

        async def first_server(task_status=trio.TASK_STATUS_IGNORED):
            with server_scope:
                async with trio.open_nursery() as nursery:
                    task_status.started(await serve(app, nursery))

        listening = await outer.start(first_server)
        port = int(listening.stream_url.rsplit(":", 1)[1])
        await store.set("inbox", "b", {"title": "bread"})
        process = await trio.lowlevel.open_process(
            ["node", str(motia_client), listening.stream_url, "let-me-in"], cwd=HERE,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        client = ClientProcess(process)
        try:
            # the group's sync lands in the client's state; the refused join says why
            await client.until(lambda c: c.state.get("group") == [{"id": "b", "title": "bread"}])
            await client.until(lambda c: any(e["sub"] == "denied" for e in c.events))
            assert client.events[-1] == {"sub": "denied", "event": "error", "data": {
                "code": "STREAM_ACCESS_DENIED", "message": "access to this stream is denied"}}
            assert "denied" not in client.state  # a refused join records no state

            await store.set("inbox", "a", {"title": "milk"})
            await client.until(lambda c: c.state.get("item") == {"id": "a", "title": "milk"})
            both = [{"id": "a", "title": "milk"}, {"id": "b", "title": "bread"}]
            await client.until(lambda c: c.state.get("group") == both)

            await store.update("inbox", "a", [{"type": "set", "path": "done", "value": True}])
            await client.until(lambda c: c.state.get("item") == {"id": "a", "title": "milk", "done": True})

            await store.send({"groupId": "inbox", "id": None}, {"type": "typing", "data": {"who": "ann"}})
            await client.until(lambda c: {"sub": "group", "event": "typing", "data": {"who": "ann"}} in c.events)

            await store.delete("inbox", "b")
            await client.until(lambda c: c.state.get("group") == [{"id": "a", "title": "milk", "done": True}])

            # restart the server on the same port: the client reconnects by itself and re-syncs
            server_scope.cancel()
            await trio.sleep(0.1)
            app = App(streams=[todos], authenticate=authenticate, storage=SQLiteStorage(db))
            store = app.stream("todos")
            async with trio.open_nursery() as nursery:
                await serve(app, nursery, stream_port=port)
                await store.set("inbox", "c", {"title": "cheese"})  # changed while the client was away
                await client.until(lambda c: [i["id"] for i in c.state.get("group", [])] == ["a", "c"])
                await store.set("inbox", "d", {"title": "dates"})
                await client.until(lambda c: [i["id"] for i in c.state.get("group", [])] == ["a", "c", "d"])
                await store.delete("inbox", "a")
                await client.until(lambda c: c.state.get("item") is None)
                await process.stdin.send_all(b"close\n")
                await client.until(lambda c: {"closed": True} in c.events)
                nursery.cancel_scope.cancel()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        outer.cancel_scope.cancel()
