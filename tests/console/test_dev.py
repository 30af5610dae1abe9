"""`python -m runtime dev` and `python -m runtime new`, as real processes.

The dev process is driven through its files and its own output: each wait
is on a line it prints ("reloaded", "did not load") or on a real socket,
never on a timer.
"""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from runtime.scaffold import create_project
from tests.browser_support import ROOT, server_process

STEP = '''
from runtime import ApiResponse, Stream, http, step

todo = Stream("todo")
s = step({{"name": "Add", "triggers": [http("POST", "/add/:id")]}})

@s.handle
async def handler(request, ctx):
    await todo.set("g", request.path_params["id"], {{"version": {version}}})
    return ApiResponse(200, {{"version": {version}}})
'''


def _wait_for_line(process: subprocess.Popen[bytes], marker: str) -> list[str]:
    seen = []
    assert process.stdout is not None
    while True:
        line = process.stdout.readline().decode()
        assert line, f"dev exited before printing {marker!r}; it printed {seen}"
        seen.append(line.rstrip())
        if marker in line:
            return seen


def _sse_events(response: httpx.Response):
    """(id, event, data) of each SSE block until the stream ends."""
    block: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in block:
                yield block.get("id"), block["event"], block.get("data")
            block = {}
            continue
        field, _, value = line.partition(":")
        block[field] = value.strip()


def test_dev_reloads_an_edited_step_and_a_subscribed_client_resumes(tmp_path):
    (tmp_path / "todo_stream.py").write_text('from runtime import StreamConfig\nconfig = StreamConfig(name="todo")\n')
    step_file = tmp_path / "add_step.py"
    step_file.write_text(STEP.format(version=1))
    with server_process("dev", str(tmp_path), env={"NO_COLOR": "1"}) as dev:
        url = dev.http_url
        assert httpx.post(f"{url}/add/a").json() == {"version": 1}
        last_id = None
        with httpx.stream("GET", f"{url}/streams/todo/g", timeout=30) as response:
            events = _sse_events(response)
            last_id, kind, _ = next(events)
            assert kind == "sync"
            assert httpx.post(f"{url}/add/b").json() == {"version": 1}
            last_id, kind, _ = next(events)
            assert kind == "create"

            step_file.write_text(STEP.format(version=2))  # while the client is subscribed
            _wait_for_line(dev.process, "reloaded (1)")
            for last_id_seen, _kind, _ in events:  # the old server ended the stream
                last_id = last_id_seen or last_id

        assert httpx.post(f"{url}/add/c").json() == {"version": 2}  # the new behaviour answers
        with httpx.stream("GET", f"{url}/streams/todo/g", headers={"Last-Event-ID": last_id}, timeout=30) as response:
            events = _sse_events(response)
            position, kind, data = next(events)
            assert kind == "create" and '"c"' in data  # only what it missed: the epoch was kept
            assert next(events)[1] == "resumed"


def test_a_file_that_does_not_load_keeps_the_last_good_version_serving(tmp_path):
    (tmp_path / "todo_stream.py").write_text('from runtime import StreamConfig\nconfig = StreamConfig(name="todo")\n')
    step_file = tmp_path / "add_step.py"
    step_file.write_text(STEP.format(version=1))
    with server_process("dev", str(tmp_path), "--storage", "memory", env={"NO_COLOR": "1"}) as dev:
        step_file.write_text(STEP.format(version=2).replace("async def handler", "async def handler(:"))
        lines = _wait_for_line(dev.process, "add_step.py:")
        assert any("did not load" in line for line in lines)
        assert "SyntaxError" in lines[-1]
        assert httpx.post(f"{dev.http_url}/add/a").json() == {"version": 1}  # still the old version
        errors = httpx.get(f"{dev.http_url}/_console/api/overview").json()["dev_errors"]
        broken_line = step_file.read_text().splitlines().index("async def handler(:(request, ctx):") + 1
        assert errors[0]["file"].endswith("add_step.py") and errors[0]["line"] == broken_line
        assert "SyntaxError" in errors[0]["message"]

        step_file.write_text(STEP.format(version=3))  # fixed: it reloads, the banner clears
        _wait_for_line(dev.process, "reloaded (1)")
        assert httpx.post(f"{dev.http_url}/add/a").json() == {"version": 3}
        assert httpx.get(f"{dev.http_url}/_console/api/overview").json()["dev_errors"] == []


def test_new_makes_a_project_whose_own_test_passes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "runtime", "new", str(tmp_path / "demo")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "python -m runtime dev" in result.stdout
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path / "demo",
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    again = subprocess.run([sys.executable, "-m", "runtime", "new", str(tmp_path / "demo")],
                           capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_dev_serves_a_new_project_at_once(tmp_path):
    create_project(tmp_path / "demo")
    with server_process("dev", str(tmp_path / "demo"), "--storage", "memory") as dev:
        created = httpx.post(f"{dev.http_url}/todos/groceries", json={"title": "milk"})
        assert created.status_code == 201
        assert httpx.get(f"{dev.http_url}/_console/").status_code == 200
