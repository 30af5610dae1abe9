"""``tail`` as a user runs it: a subprocess against a real server, a few lines, then the end."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import trio

from runtime import App, Stream, StreamConfig
from tests.server.conftest import running_ws

ROOT = Path(__file__).resolve().parents[2]
WIRED = "add_tail_parser" in (ROOT / "runtime" / "__main__.py").read_text()


def tail_command(*args: str, module: str = "runtime.client.tail") -> list[str]:
    if module == "runtime":
        return [sys.executable, "-m", "runtime", "tail", *args]
    return [sys.executable, "-m", module, *args]


def make_app() -> App:
    return App(streams=[Stream(StreamConfig(name="todos", can_access=lambda sub, auth: sub.group_id != "secret"))])


class Tail:
    """A running tail: its output line by line."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def line(self, timeout: float = 15) -> str:
        with trio.fail_after(timeout):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError(f"tail exited: {self._buffer!r}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    async def until(self, text: str) -> list[str]:
        seen = []
        while True:
            seen.append(await self.line())
            if text in seen[-1]:
                return seen

    async def drain(self) -> str:
        with trio.fail_after(15):
            while chunk := await self.process.stdout.receive_some(65536):
                self._buffer += chunk
        return self._buffer.decode()

    async def exit_status(self) -> int:
        with trio.fail_after(15):
            return await self.process.wait()


async def start(*args: str, module: str = "runtime.client.tail") -> Tail:
    process = await trio.lowlevel.open_process(
        tail_command(*args, module=module), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    return Tail(process)


async def stderr_of(tail: Tail) -> str:
    with trio.fail_after(15):
        data = b""
        while chunk := await tail.process.stderr.receive_some(65536):
            data += chunk
    return data.decode()


async def test_tail_prints_each_event_the_state_on_enter_and_exits_0_at_end_of_input():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        await todos.set("inbox", "a", {"title": "milk"})
        tail = await start("todos", "inbox", "--url", listening.stream_url)
        try:
            assert "  sync  1 item(s)" in await tail.line()
            await todos.set("inbox", "b", {"title": "bread"})
            await todos.update("inbox", "a", [{"type": "set", "path": "done", "value": True}])
            await todos.delete("inbox", "b")
            await todos.send({"groupId": "inbox", "id": None}, {"type": "typing", "data": {"who": "ann"}})
            lines = [await tail.line() for _ in range(4)]
            assert [line.split("  ")[1:3] for line in lines] == [
                ["create", "b"], ["update", "a"], ["delete", "b"], ["event:typing", "-"]]
            assert lines[0].endswith('{"id":"b","title":"bread"}') and lines[3].endswith('{"who":"ann"}')
            await tail.process.stdin.send_all(b"\n")  # Enter: the whole state
            assert await tail.line() == f"--- state: 1 item(s) at {await _position(app)} ---"
            assert orjson.loads(await tail.line()) == {"id": "a", "title": "milk", "done": True}
            assert await tail.line() == "---"
            await tail.process.stdin.aclose()
            assert await tail.exit_status() == 0
        finally:
            if tail.process.returncode is None:
                tail.process.kill()


async def _position(app: App) -> str:
    stats = await app.engine.group_stats("todos", "inbox")
    return f"{stats['epoch']}:{stats['offset']}"


async def test_tail_json_item_reconnects_after_a_restart_says_so_and_exits_0_on_sigint():
    port = _free_port()
    app = make_app()
    async with running_ws(app, stream_port=port, shutdown_timeout=0.5):
        await app.stream("todos").set("inbox", "a", {"n": 1})
        tail = await start("todos", "inbox", "a", "--json", "--url", f"ws://127.0.0.1:{port}")
        first = orjson.loads(await tail.line())
        assert first["kind"] == "sync" and first["id"] == "a" and first["data"] == {"id": "a", "n": 1}
        await app.stream("todos").set("inbox", "a", {"n": 2})
        assert orjson.loads(await tail.line())["data"] == {"id": "a", "n": 2}
    assert orjson.loads(await tail.line())["kind"] == "disconnected"
    try:
        restarted = make_app()  # memory storage: a new epoch, so the gap is covered by a snapshot
        async with running_ws(restarted, stream_port=port, shutdown_timeout=0.5):
            await restarted.stream("todos").set("inbox", "a", {"n": 3})
            lines = [orjson.loads(line) for line in await tail.until('"resynced":true')]
            assert lines[-1]["kind"] == "sync" and lines[-1]["data"] == {"id": "a", "n": 3}
            assert any(line["kind"] == "connected" for line in lines)
            tail.process.send_signal(signal.SIGINT)
            assert await tail.exit_status() == 0
    finally:
        if tail.process.returncode is None:
            tail.process.kill()


async def test_tail_exits_1_with_one_line_when_refused_or_unreachable():
    async with running_ws(make_app()) as listening:
        for args, expected in (
            (("todos", "secret"), "STREAM_ACCESS_DENIED"),
            (("nope", "inbox"), "STREAM_NOT_FOUND"),
        ):
            tail = await start(*args, "--url", listening.stream_url)
            assert await tail.exit_status() == 1
            error = await stderr_of(tail)
            assert error.count("\n") == 1 and error.startswith("tail: ") and expected in error
    tail = await start("todos", "inbox", "--url", f"ws://127.0.0.1:{_free_port()}")
    assert await tail.exit_status() == 1
    error = await stderr_of(tail)
    assert error.count("\n") == 1 and "cannot connect to ws://127.0.0.1:" in error


@pytest.mark.skipif(not WIRED, reason="`tail` is not wired into runtime/__main__.py yet")
async def test_python_m_runtime_tail():
    app = make_app()
    async with running_ws(app) as listening:
        tail = await start("todos", "inbox", "--url", listening.stream_url, module="runtime")
        try:
            assert "  sync  0 item(s)" in await tail.line()
            await tail.process.stdin.aclose()
            assert await tail.exit_status() == 0
        finally:
            if tail.process.returncode is None:
                tail.process.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_tail_piped_into_head_ends_quietly_with_0():
    """``tail ... | head -2``: once head has its lines, tail's next write meets a closed pipe."""
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        command = " ".join(tail_command("todos", "inbox", "--url", listening.stream_url, "--no-input"))
        process = await trio.lowlevel.open_process(
            ["bash", "-c", f"{command} | head -2; echo \"tail exited ${{PIPESTATUS[0]}}\" >&2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        )
        try:
            # head's own output is buffered until it exits: keep writing until both have ended
            # (head after its two lines, tail at its next write, which meets the closed pipe)
            n = 0
            with trio.fail_after(20):
                while process.returncode is None:
                    n += 1
                    await todos.set("inbox", "a", {"n": n})
                    with trio.move_on_after(0.05):
                        await process.wait()
            lines = (await Tail(process).drain()).splitlines()
            assert len(lines) == 2 and "  sync  " in lines[0] and "  a  {" in lines[1], lines
            assert process.returncode == 0
            assert await stderr_of(Tail(process)) == "tail exited 0\n"  # no traceback, no BrokenPipeError
        finally:
            if process.returncode is None:
                process.kill()


def test_tails_usage_says_what_happens_without_no_input_in_the_background():
    result = subprocess.run(tail_command("--help", module="runtime"), capture_output=True, text=True, cwd=ROOT)
    description = " ".join(result.stdout.split("\n\n", 1)[1].split())
    assert description.startswith(
        "Watch a stream group or item live: one line per event; Enter prints the whole state. It reads stdin "
        "unless --no-input: end of input exits, so in the background (&, nohup, </dev/null) give --no-input "
        "or it exits right after the sync.")
