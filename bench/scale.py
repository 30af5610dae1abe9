"""WebSocket fan-out with ``serve --workers 1`` and ``--workers 2`` on Redis, same load, same run.

    .venv/bin/python bench/scale.py [--subs 2000] [--events 300] [--producers 64] [--url redis://127.0.0.1:6379/0]

Each row serves a generated project (stream ``bench``, ``POST /publish``
doing ``n`` ``set()`` calls of item ``x`` of one group from P producer
tasks, the payload bench/fanout.py's load checks) with ``python -m runtime
serve DIR --workers W --storage redis://...``. The load is bench/fanout.py's
own (``--role client``: raw-socket WebSocket clients, a C epoll receive
loop), reused, not copied: its subscribers connect to the one stream port
and the kernel (SO_REUSEPORT) spreads them over the workers. The publish
request lands on one worker; the other worker's subscribers get the events
through Redis pub/sub. deliveries/s = events received by all subscribers /
(last receipt - the publish request). Every subscriber must receive every
seq in order (the load's checks), or the row fails. CPU is utime+stime from
/proc over the row: the workers' (summed) and Redis's own.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import trio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import fanout
from bench._common import Lines, delete_redis_prefix, proc_cpu, stop, verify

STREAM_FILE = 'from runtime import StreamConfig\n\nconfig = StreamConfig(name="bench")\n'
STEP_FILE = '''
import time

import trio
from runtime import ApiRequest, ApiResponse, FlowContext, http, step

publish = step({"name": "Publish", "triggers": [http("POST", "/publish")]})


@publish.handle
async def run_publish(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    body = request.body
    group, n, pad = body["group"], body["n"], "x" * body["size"]
    seqs = iter(range(1, n + 1))
    bench = ctx.streams.bench

    async def producer() -> None:
        for seq in seqs:  # taken just before set(), which enqueues before its first checkpoint
            await bench.set(group, "x", {"t": time.time_ns(), "seq": seq, "pad": pad})

    async with trio.open_nursery() as nursery:
        for _ in range(body["producers"]):
            nursery.start_soon(producer)
    item = await bench.get(group, "x")
    return ApiResponse(200, {"events": n, "seq": item["seq"] if item else 0})
'''


def redis_pid(url: str) -> int:
    info = subprocess.run(["redis-cli", "-u", url.split("?")[0], "INFO", "server"], capture_output=True, text=True,
                          check=True).stdout
    return int(next(line for line in info.splitlines() if line.startswith("process_id:")).split(":")[1])


async def serve(project: str, workers: int, url: str) -> tuple[Any, list[int], str, str]:
    from tests.redis_support import free_port

    port, stream_port = free_port(), free_port()
    argv = [sys.executable, "-m", "runtime", "serve", project, "--workers", str(workers), "--storage", url,
            "--port", str(port), "--stream-port", str(stream_port)]
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                               cwd=HERE.parent)
    lines = Lines(process.stdout)
    pids: list[int] = []
    listening = 0
    with trio.fail_after(60):
        while listening < workers:
            line = await lines.readline()
            if " started (pid " in line:
                pids.append(int(line.rsplit("pid ", 1)[1].rstrip(")")))
            listening += line.startswith("listening on")
    return process, pids or [process.pid], f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{stream_port}/"


async def row(project: str, workers: int, url: str, args: argparse.Namespace, redis: int) -> dict[str, Any]:
    import httpx

    process, pids, http_url, ws_url = await serve(project, workers, url)
    group = f"g-{workers}-{uuid.uuid4().hex[:6]}"
    server = fanout.Server("runtime", process, http_url, ws_url)
    load_args = argparse.Namespace(timeout=args.timeout, load="c")
    try:
        load = await fanout.open_load(server, args.subs, args.events, load_args, group, args.clients)
        results: list[dict[str, Any]] = []
        try:
            async with httpx.AsyncClient(timeout=args.timeout) as http:
                await http.get(http_url + "/health")
                cpu0, redis0 = sum(proc_cpu(pid) for pid in pids), proc_cpu(redis)
                for load_process, _ in load:
                    await load_process.stdin.send_all(b"GO\n")
                start_ns = time.time_ns()
                reply: dict[str, Any] = {}

                async def publish() -> None:
                    response = await http.post(http_url + "/publish", json={
                        "group": group, "n": args.events, "size": args.size, "producers": args.producers})
                    verify(response.status_code == 200, f"/publish answered {response.status_code}")
                    reply.update(response.json())

                async def collect(lines: Lines) -> None:
                    line = await lines.readline()
                    verify(line.startswith("RESULT "), f"a load client said {line[:200]!r}")
                    results.append(orjson.loads(line[7:]))

                with trio.fail_after(args.timeout + 30):
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(publish)
                        for _, lines in load:
                            nursery.start_soon(collect, lines)
                cpu1, redis1 = sum(proc_cpu(pid) for pid in pids), proc_cpu(redis)
                window = (time.time_ns() - start_ns) / 1e9
        finally:
            for load_process, _ in load:
                await stop(load_process)
    finally:
        await stop(process, signal.SIGTERM, wait=20)
    verify(reply.get("seq") == args.events, f"/publish answered {reply}")
    done = sum(r["done"] for r in results)
    received = sum(r["received"] for r in results)
    verify(sum(r["subs"] for r in results) == args.subs, "subscribers missing")
    verify(done == args.subs, f"only {done} of {args.subs} subscribers got every event")
    verify(sum(r["gaps"] + r["repeats"] for r in results) == 0, "gaps or repeats")
    elapsed = (max(r["last_ns"] for r in results) - start_ns) / 1e9
    return {"workers": workers, "received": received, "rate": received / elapsed,
            "skipped": sum(r["skipped"] for r in results),
            "cpu": (cpu1 - cpu0) / window, "redis_cpu": (redis1 - redis0) / window}


async def main(args: argparse.Namespace) -> None:
    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
    url = f"{args.url}?prefix={prefix}"
    redis = redis_pid(args.url)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as project:
            Path(project, "bench_stream.py").write_text(STREAM_FILE)
            Path(project, "publish_step.py").write_text(STEP_FILE)
            for workers in args.workers:
                rows.append(await row(project, workers, url, args, redis))
    finally:
        delete_redis_prefix(args.url, prefix)
    print(f"WebSocket fan-out, {args.subs:,} subscribers of one group, {args.events} events of "
          f"{args.size} B from {args.producers} producers, Redis storage:")
    print("| workers | deliveries | deliveries/s | vs 1 worker | workers' CPU (cores) | Redis CPU (cores) | skipped |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    base = rows[0]["rate"]
    for r in rows:
        print(f"| {r['workers']} | {r['received']:,} | {r['rate']:,.0f} | {r['rate'] / base:.2f}x "
              f"| {r['cpu']:.2f} | {r['redis_cpu']:.2f} | {r['skipped']:,} |")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subs", type=int, default=2000)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--producers", type=int, default=64)
    parser.add_argument("--clients", type=int, default=1, help="load processes")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    return parser.parse_args()


if __name__ == "__main__":
    os.environ.setdefault("RUNTIME_LOG_FORMAT", "json")
    trio.run(main, parse())
