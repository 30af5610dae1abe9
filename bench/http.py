"""HTTP step routes: wrk against ``python -m runtime serve examples/counter``, beside uvicorn + Starlette.

    .venv/bin/python bench/http.py [--duration 8] [--connections 50] [--no-baseline] [--no-paced]

Rows, all from the same run on the same machine:

- baseline: uvicorn (httptools, uvloop) + Starlette answering ``GET /health``
  with JSON, in its own venv that the bench makes once
  (``bench/.build/uvicorn-venv``, from PyPI with pip);
- the runtime: ``POST /counters/a`` (the counter example's step: one atomic
  ``increment`` of a stream item, through the group actor, then a JSON
  answer) and ``GET /health``, on in-memory storage;
- p99 latency at 70 % of each row's maximum rate: wrk paced by a Lua
  ``delay()`` per request (each of the C connections waits C/rate seconds
  between requests), so the load is open-ish and not the saturated closed
  loop of the max-rate rows; the achieved rate is printed beside it.
  wrk2 is not in Debian; this is the substitute.

Every row is ``wrk -t1 -cC -dDs --latency``: one wrk thread (the machine has
2 cores; the server gets the other). Needs Debian's ``wrk``
(``apt-get install wrk``); the bench says so and stops when it is missing.
The counter is read back at the end: its value must equal the POSTs wrk
counted as answered (non-2xx answers are reported and fail the run).
"""

from __future__ import annotations

import sys

if sys.path and sys.path[0].endswith("bench"):
    del sys.path[0]  # this file's name would shadow the stdlib's http package (urllib needs it)

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "bench" / ".build"
UVICORN_VENV = BUILD / "uvicorn-venv"
UVICORN_PACKAGES = ["uvicorn==0.30.6", "starlette==0.38.6", "httptools", "uvloop"]

BASELINE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def health(request):
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/health", health)])
'''

POST_LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = "{}"\n'
PACE_LUA = "function delay() return {delay_ms} end\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("bench/http.py needs wrk: apt-get install wrk (Debian's package)")
    return wrk


def uvicorn_python() -> Path:
    python = UVICORN_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {UVICORN_VENV} (uvicorn + Starlette, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(UVICORN_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *UVICORN_PACKAGES], check=True)
    (BUILD / "uvicorn_app.py").write_text(BASELINE_APP)
    return python


def wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def run_wrk(wrk: str, url: str, *, connections: int, duration: float, lua: str = "") -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", script.name, url],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(script.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    p50_ms = float(p50.group(1)) * scale[p50.group(2)] if p50 else float("nan")
    if non2xx or errors:
        print(out, flush=True)
    return {"rate": rate, "requests": requests, "p50": p50_ms, "p99": p99_ms,
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


def paced(wrk: str, url: str, rate: float, *, connections: int, duration: float, lua: str = "") -> dict[str, float]:
    """wrk at about ``rate`` req/s: a first short run with delay C/rate per request, then the
    delay corrected by what that run achieved (each request's own time adds to its delay)."""
    delay_ms = 1000 * connections / rate
    probe = run_wrk(wrk, url, connections=connections, duration=max(2, duration / 4),
                    lua=lua + PACE_LUA.format(delay_ms=max(0, int(delay_ms))))
    delay_ms -= 1000 * connections * (1 / probe["rate"] - 1 / rate)
    return run_wrk(wrk, url, connections=connections, duration=duration,
                   lua=lua + PACE_LUA.format(delay_ms=max(0, int(delay_ms))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--no-baseline", action="store_true", help="skip uvicorn + Starlette")
    parser.add_argument("--no-paced", action="store_true", help="skip the p99-at-70%% rows")
    parser.add_argument("--http", default=None, help="ServerSettings.http for the runtime (when it has one)")
    args = parser.parse_args()
    wrk = need_wrk()
    c, d = args.connections, args.duration
    rows: list[tuple[str, dict[str, float]]] = []

    if not args.no_baseline:
        python = uvicorn_python()
        port = free_port()
        base = subprocess.Popen([str(python), "-m", "uvicorn", "uvicorn_app:app", "--port", str(port),
                                 "--log-level", "warning", "--no-access-log", "--loop", "uvloop",
                                 "--http", "httptools"], cwd=BUILD)
        try:
            url = f"http://127.0.0.1:{port}/health"
            wait_http(url, base)
            top = run_wrk(wrk, url, connections=c, duration=d)
            rows.append(("baseline: uvicorn + Starlette, GET /health (JSON)", top))
            if not args.no_paced:
                rows.append(("baseline: the same at 70% of its max rate", paced(wrk, url, 0.7 * top["rate"],
                                                                                 connections=c, duration=d)))
        finally:
            base.terminate()
            base.wait()

    port, stream_port = free_port(), free_port()
    command = [sys.executable, "-m", "runtime", "serve", str(ROOT / "examples" / "counter"), "--port", str(port),
               "--stream-port", str(stream_port), "--storage", "memory"]
    if args.http:
        command += ["--http", args.http]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_http(base_url + "/health", server)
        before = counter_value(base_url)
        post = run_wrk(wrk, base_url + "/counters/a", connections=c, duration=d, lua=POST_LUA)
        rows.append(("runtime: POST /counters/a (a stream increment)", post))
        after = counter_value(base_url)
        health = run_wrk(wrk, base_url + "/health", connections=c, duration=d)
        rows.append(("runtime: GET /health", health))
        if not args.no_paced:
            rows.append(("runtime: POST at 70% of its max rate",
                         paced(wrk, base_url + "/counters/a", 0.7 * post["rate"], connections=c, duration=d,
                               lua=POST_LUA)))
            rows.append(("runtime: /health at 70% of its max rate",
                         paced(wrk, base_url + "/health", 0.7 * health["rate"], connections=c, duration=d)))
    finally:
        server.terminate()
        server.wait()

    print(f"\nwrk -t1 -c{c} -d{d:g}s --latency (keep-alive), {os.cpu_count()} cores\n")
    print(f"| {'row':<52} | {'req/s':>9} | {'p50 ms':>7} | {'p99 ms':>7} | {'vs baseline':>11} |")
    print(f"|{'-' * 54}|{'-' * 11}:|{'-' * 9}:|{'-' * 9}:|{'-' * 13}:|")
    baseline = rows[0][1]["rate"] if not args.no_baseline else None
    for name, row in rows:
        ratio = f"{row['rate'] / baseline:.2f}x" if baseline else "-"
        print(f"| {name:<52} | {row['rate']:>9,.0f} | {row['p50']:>7.2f} | {row['p99']:>7.2f} | {ratio:>11} |")
    # every POST wrk saw answered was one increment (wrk may cut requests in flight at the end)
    answered = int(post["requests"])
    if post["non2xx"] or not answered <= after - before <= answered + c:
        sys.exit(f"the counter moved by {after - before}, wrk counted {answered} answers ({post['non2xx']} non-2xx)")
    print(f"\ncounter checked: +{after - before} for {answered} answered POSTs")
    print("targets: POST >= 15,000 req/s and >= 0.5x the baseline; /health >= 25,000; p99 <= 10 ms at 70%")


def counter_value(base_url: str) -> int:
    request = urllib.request.Request(base_url + "/counters/a?by=0", method="POST", data=b"{}",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return int(json.loads(answer.read())["value"])


if __name__ == "__main__":
    main()
