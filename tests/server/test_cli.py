"""``python -m runtime serve`` as a user runs it: startup errors, serving, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import trio

ROOT = Path(__file__).resolve().parents[2]


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtime", "serve", *args]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(serve_command(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_broken_project_is_one_clear_error(tmp_path):
    (tmp_path / "bad_step.py").write_text("import nope_not_a_module\n")
    result = run(str(tmp_path), "--port", "0")
    assert result.returncode == 2
    assert "bad_step.py: line 1: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_storage_url_is_one_clear_error(tmp_path):
    result = run(str(tmp_path), "--storage", "postgres://nope", "--port", "0")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_an_unreachable_redis_is_one_clear_error(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        result = run(str(tmp_path), "--storage", f"redis://127.0.0.1:{port}/0?timeout=1", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: cannot reach Redis at 127.0.0.1:{port}: Unable to establish a connection to 127.0.0.1:{port}"
    )


def test_a_port_in_use_is_one_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(str(tmp_path), "--port", str(port), "--storage", "memory")
    assert result.returncode == 1
    assert f"127.0.0.1:{port} is already in use" in result.stderr and "Traceback" not in result.stderr


async def test_sigterm_during_active_streams_exits_0(tmp_path):
    (tmp_path / "todo_stream.py").write_text(textwrap.dedent("""
        from runtime import StreamConfig
        config = StreamConfig(name="todo")
    """))
    process = await trio.lowlevel.open_process(
        serve_command(str(tmp_path), "--port", "0", "--stream-port", "0"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "RUNTIME_LOG_FORMAT": "json"},
    )
    try:
        line = b""
        with trio.fail_after(30):
            while b"\n" not in line:
                line += await process.stdout.receive_some(4096)
        url = line.decode().split("listening on ", 1)[1].split()[0]
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/health")).status_code == 200
            async with client.stream("GET", "/streams/todo/inbox") as stream:
                chunks = stream.aiter_bytes()
                assert b"event: sync" in await chunks.__anext__()
                process.send_signal(signal.SIGTERM)
                with trio.fail_after(10):
                    rest = b"".join([chunk async for chunk in chunks])  # the server ends the stream itself
                assert b"event:" not in rest
        with trio.fail_after(10):
            code = await process.wait()
        assert code == 0
        assert (tmp_path / ".runtime" / "runtime.db").exists()  # the default storage
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
