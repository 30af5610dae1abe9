"""``python -m runtime serve`` as a user runs it: startup errors, serving, SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess

import httpx
import trio

from .conftest import ROOT, TODO_STREAM, serve_command, serve_process


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(serve_command(*args), capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_broken_project_is_one_clear_error(tmp_path):
    (tmp_path / "bad_step.py").write_text("import nope_not_a_module\n")
    result = run(str(tmp_path), "--port", "0")
    assert result.returncode == 2
    assert "bad_step.py:1: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_step_route_on_the_servers_own_paths_is_one_clear_error(tmp_path):
    (tmp_path / "health_step.py").write_text(
        'from runtime import http\n'
        'config = {"name": "MyHealth", "triggers": [http("GET", "/health")]}\n'
        'async def handler(request, ctx):\n'
        '    return {"status": 200}\n'
    )
    result = run(str(tmp_path), "--port", "0", "--stream-port", "0", "--storage", "memory")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: step 'MyHealth': GET /health collides with the server's own routes")


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
    (tmp_path / "todo_stream.py").write_text(TODO_STREAM)
    async with serve_process(str(tmp_path)) as (process, url):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/health")).status_code == 200
            async with client.stream("GET", "/streams/todo/inbox") as stream:
                chunks = stream.aiter_bytes()
                head = b""
                while b"event: sync" not in head:  # the retry hint may come in a chunk of its own
                    head += await chunks.__anext__()
                process.send_signal(signal.SIGTERM)
                with trio.fail_after(10):
                    rest = b"".join([chunk async for chunk in chunks])  # the server ends the stream itself
                assert b"event:" not in rest
        with trio.fail_after(10):
            code = await process.wait()
        assert code == 0
        assert (tmp_path / ".runtime" / "runtime.db").exists()  # the default storage
