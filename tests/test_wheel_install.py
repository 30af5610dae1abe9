"""The runtime used from another project: build its wheel, install it in a fresh venv, serve from there.

What a user does (README, "Using it in your own project"): no checkout on
``sys.path``, no editable install — only the wheel and its dependencies. It
catches what the suite's editable install hides: a package or data file
missing from the wheel, a dependency missing from ``pyproject.toml``.

Fast by reusing downloads: the dependencies' wheels are kept in a wheelhouse
inside the dev venv (``.venv/wheelhouse``), filled by ``pip download`` the
first time (or when a dependency changed) and installed from with
``--no-index`` after that; the whole test takes about 10 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"

PROJECT = {
    "counter_stream.py": """
        from runtime import StreamConfig

        config = StreamConfig(name="counter", schema={"value": "integer"})
    """,
    "counter_step.py": """
        from runtime import ApiResponse, http, step

        bump = step({"name": "Bump", "triggers": [http("POST", "/counters/:name")]})

        @bump.handle
        async def bump_counter(request, ctx):
            result = await ctx.streams.counter.update(
                "counters", request.path_params["name"], [{"type": "increment", "path": "value", "by": 2}])
            return ApiResponse(200, result.new_value)
    """,
}


def pip(*args: str, python: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(python), *args, "--quiet"],
                          capture_output=True, text=True, timeout=600)


def test_the_built_wheel_installed_in_a_fresh_venv_serves_a_project(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--quiet",
                            "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("trio_streams_runtime-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    offline = ("install", "--no-index", "--find-links", str(WHEELHOUSE), str(wheel))
    installed = pip(*offline, python=python)
    if installed.returncode != 0:  # first run, or a dependency changed: fill the wheelhouse once
        downloaded = pip("download", "-d", str(WHEELHOUSE), str(wheel), python=python)
        assert downloaded.returncode == 0, downloaded.stderr
        installed = pip(*offline, python=python)
    assert installed.returncode == 0, installed.stderr

    project = tmp_path / "my_project"
    project.mkdir()
    for name, body in PROJECT.items():
        (project / name).write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(python), "-c", "import runtime; print(runtime.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert where.stdout.startswith(str(tmp_path / "venv")), where  # the wheel's copy, not the checkout

    server = subprocess.Popen(
        [str(python), "-m", "runtime", "serve", "my_project", "--port", "0", "--stream-port", "0",
         "--storage", "memory"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = server.stdout.readline()  # the server's "listening on" line (or EOF if it failed)
        assert "listening on http://" in line, server.stderr.read() if server.poll() is not None else line
        url = line.split("listening on ", 1)[1].split()[0]
        with httpx.Client(base_url=url, timeout=10) as client:
            health = client.get("/health")
            assert health.status_code == 200 and health.json() == {"status": "ok"}
            client.post("/counters/clicks")
            bumped = client.post("/counters/clicks")
            assert bumped.status_code == 200 and bumped.json() == {"id": "clicks", "value": 4}
            # the browser client's build is package data (runtime/server/client_js links to clients/js/dist)
            module = client.get("/_client/stream.js")
            assert module.status_code == 200
            assert module.content == (ROOT / "clients" / "js" / "dist" / "stream.js").read_bytes()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
