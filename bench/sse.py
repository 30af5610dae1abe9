"""SSE fan-out: deliveries/s and latency to 100 and 1,000 subscribers of one group, beside a quart-trio broadcaster.

    .venv/bin/python bench/sse.py [--size BYTES] [--events-100 N] [--events-1000 N]
                                  [--producers P] [--clients K] [--no-asgi-rows] [--profile SUBS[:P]]

Every figure crosses real sockets between processes on this machine:

- the server under test (``--role server``): an `App` with one stream,
  ``bench``, served by `App.serve`, and one HTTP step ``POST /publish`` that
  runs ``n`` ``update`` calls on item ``x`` of one group, from P concurrent
  producer tasks, each ``[increment seq, set t = time.time_ns(), set pad =
  "x" * size]``. The group actor assigns ``seq`` in commit order, so every
  subscriber must see seq 1, 2, ..., n whatever the producers' interleaving.
  One producer (each call awaits its commit before the next) is one row;
  P = ``--producers`` (default 16) concurrent producers, whose calls the
  group commits in batches, is another, run with 4x the events since it
  finishes fastest (every producer is closed-loop: at most one call in
  flight, so latency does not grow with the number of events);
- the same server with ``ServerSettings(sse_direct=False)`` (unless
  ``--no-asgi-rows``): SSE bodies written through hypercorn/Quart, as before
  the direct path (``runtime/server/sse_direct.py``), for a before/after in
  the same run;
- the baseline (``bench/_sse_baseline.py``), measured in the same run: a
  minimal quart-trio broadcaster on the same hypercorn Trio worker, one
  memory channel per client and one SSE event per chunk, publishing the
  same payload ``{"t", "seq", "pad"}`` (without the runtime's envelope, so its
  events are smaller: see the bytes/event column);
- a reference (``bench/_sse_raw.py``), also in the same run: that
  broadcaster again on raw Trio sockets with hand-written HTTP/1.1 chunks,
  no framework, one ``send_all`` per event; beside the baseline it shows
  what the ASGI/Quart/hypercorn/h11 stack costs per write;
- the load (``--role client``, K processes): raw Trio sockets, one HTTP/1.1
  GET per subscriber (chunked transfer decoded), events split on a blank
  line, ``seq`` and ``t`` pulled out with ``bytes.find``.

A row: the clients open their subscriptions (at most 64 connects at a time,
since hypercorn's listen backlog is 100) and wait until each has its
initial ``sync`` (ours) or ``: ok`` comment (baseline), so every subscriber
is registered; then the driver POSTs /publish and each client records, per
event, receipt time minus ``t`` (same machine, same wall clock) and
verifies ``seq`` is contiguous. deliveries/s = events received over all
subscribers / (last receipt - the moment /publish was sent).

The baseline and the reference publish from one loop, one event at a time;
their ratio column is the same for both runtime rows, so the P-producer
row's ratio also credits the group commit batching P callers.

Checks that cannot be switched off: every subscriber gets every event in
order, no gap, no duplicate (a row with any is an error, not a figure); the
baseline reached exactly the subscribers of the row; a subscriber the
runtime's slow-consumer policy resynced (a second ``event: sync``) is
counted in the "resyncs" column, with the events it skipped, never hidden.
Server CPU is utime+stime from /proc over the row, also per delivery;
client CPU is the busiest load process's CPU time over its wall time (near
100% means the load, not the server, may be the limit: the footer says
so); "other CPU s" is what the rest of the machine burnt meanwhile, since a
benchmark sharing its CPUs is worth less and should say so.

``--profile SUBS[:PRODUCERS]`` (e.g. ``1000`` or ``1000:16``) runs that one
runtime row with the server under cProfile (enabled on SIGUSR1 just before /publish, disabled after the
last receipt, dumped on SIGTERM) and prints where the server's time goes.
"""

from __future__ import annotations

import argparse
import logging
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

# bench/actors.py is named like the actor kernel: keep this folder off the
# import path so that the runtime's `import actors` finds the kernel.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

import orjson
import trio

sys.path.insert(0, HERE)  # just long enough to import the benchmarks' shared helpers
from _common import (
    Lines,
    proc_cpu,
    raise_fd_limit,
    start_listening,
    stop,
    system_busy,
    verify,
    wait_for_stop_signal_profiling,
)

del sys.path[0]

TARGET = 100_000  # deliveries/s at 1,000 subscribers (the target)
CONNECT_CONCURRENCY = 64  # below hypercorn's listen backlog of 100
RECV_SIZE = 256 * 1024


# -- the server under test ---------------------------------------------------------------


def server_role(args: argparse.Namespace) -> None:
    import attrs

    from runtime import App, Stream, http, step
    from runtime.server import ServerSettings

    raise_fd_limit()
    logging.getLogger().setLevel(logging.CRITICAL + 1)
    for name in ("actors", "runtime", "hypercorn", "quart"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)

    publish = step({"name": "Publish", "triggers": [http("POST", "/publish")]})

    @publish.handle
    async def run_publish(request, ctx):
        body = request.body
        group, n, producers = body["group"], body["n"], body.get("producers", 1)
        pad = "x" * body["size"]
        remaining = iter(range(n))
        update = bench.update

        async def producer() -> None:
            for _ in remaining:
                await update(group, "x", [
                    {"type": "increment", "path": "seq", "by": 1},
                    {"type": "set", "path": "t", "value": time.time_ns()},
                    {"type": "set", "path": "pad", "value": pad},
                ])

        async with trio.open_nursery() as nursery:
            for _ in range(producers):
                nursery.start_soon(producer)
        item = await bench.get(group, "x")
        return {"status": 200, "body": {"events": n, "seq": item["seq"] if item else 0}}

    app = App(streams=[Stream("bench")], steps=[publish])
    bench = app.stream("bench")  # the handler's producer tasks are not the app's own

    # The WebSocket listener, where the server has one, on a free port too: unused here.
    fields = attrs.fields_dict(ServerSettings)
    extra = {"stream_port": 0} if "stream_port" in fields else {}
    if args.sse_asgi:
        verify("sse_direct" in fields, "--sse-asgi: this runtime has no ServerSettings.sse_direct")
        extra["sse_direct"] = False
    settings = ServerSettings(port=args.port, **extra)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(
                lambda task_status: app.serve(settings, task_status=task_status)
            )
            print(f"LISTENING {listening.http_url}", flush=True)
            await wait_for_stop_signal_profiling(args.profile_out)
            nursery.cancel_scope.cancel()

    trio.run(main)


# -- the load ---------------------------------------------------------------------------------


class Subscriber:
    """One SSE connection's parser and checker."""

    __slots__ = ("client", "raw", "chunked", "pending", "ready", "expected", "done", "resyncs", "skipped",
                 "gaps", "repeats", "received", "bytes", "chunks")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.raw = b""
        self.chunked = True
        self.pending = b""
        self.ready = False
        self.expected = 1  # the next seq
        self.done = False
        self.resyncs = 0
        self.skipped = 0
        self.gaps = 0
        self.repeats = 0
        self.received = 0
        self.bytes = 0
        self.chunks = 0  # HTTP chunks: one per body write of the server

    def dechunk(self, data: bytes) -> bytes:
        """The body bytes of every complete HTTP/1.1 chunk received so far."""
        if not self.chunked:
            return data
        raw = self.raw + data if self.raw else data
        size_of = len(raw)
        pos = 0
        out = []
        while True:
            eol = raw.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
            end = eol + 2 + size
            if end + 2 > size_of:
                break
            if size == 0:
                raise EOFError("the server ended the stream")
            out.append(raw[eol + 2:end])
            pos = end + 2
        self.raw = raw[pos:]
        self.chunks += len(out)
        return out[0] if len(out) == 1 else b"".join(out)

    def feed(self, data: bytes, now: int) -> None:
        self.bytes += len(data)
        buffer = self.pending + data if self.pending else data
        blocks = buffer.split(b"\n\n")
        self.pending = blocks.pop()
        latencies = self.client.latencies
        n = self.client.events
        for block in blocks:
            s = block.find(b'"seq":')
            if s < 0 or b"event: sync" in block:
                self.control(block, s)
                continue
            seq = int(block[s + 6:block.find(b",", s)])
            t = block.find(b'"t":')
            latencies.append(now - int(block[t + 4:block.find(b",", t)]))
            self.received += 1
            expected = self.expected
            if seq != expected:
                if seq < expected:
                    self.repeats += 1
                    continue
                self.gaps += 1
            self.expected = seq + 1
            if seq >= n and not self.done:
                self.done = True
                self.client.finished(self, now)

    def control(self, block: bytes, s: int) -> None:
        """A sync (ours), the ``: ok`` comment (baseline), a retry hint or a heartbeat."""
        if b"event: sync" in block:
            if self.ready:
                self.resyncs += 1
            seq = int(block[s + 6:block.find(b",", s)]) if s >= 0 else 0
            if seq >= self.expected:
                self.skipped += seq - self.expected + 1
                self.expected = seq + 1
            if not self.ready:
                self.ready = True
                self.client.became_ready()
            elif seq >= self.client.events and not self.done:
                self.done = True
                self.client.finished(self, time.time_ns())
        elif block == b": ok" and not self.ready:
            self.ready = True
            self.client.became_ready()


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.events = args.events
        self.subscribers = [Subscriber(self) for _ in range(args.subs)]
        self.latencies: list[int] = []
        self.ready_count = 0
        self.done_count = 0
        self.all_ready = trio.Event()
        self.all_done = trio.Event()
        self.last_ns = 0

    def became_ready(self) -> None:
        self.ready_count += 1
        if self.ready_count == len(self.subscribers):
            self.all_ready.set()

    def finished(self, sub: Subscriber, now: int) -> None:
        self.done_count += 1
        self.last_ns = max(self.last_ns, now)
        if self.done_count == len(self.subscribers):
            self.all_done.set()

    async def connection(self, sub: Subscriber, limiter: trio.CapacityLimiter) -> None:
        host, port = self.args.host, self.args.port
        request = (f"GET {self.args.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()
        async with limiter:
            sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
            sock.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
            await sock.connect((host, port))
            sent = 0
            while sent < len(request):
                sent += await sock.send(request[sent:])
            head = b""
            while b"\r\n\r\n" not in head:
                data = await sock.recv(RECV_SIZE)
                if not data:
                    raise EOFError("the server closed the connection before answering")
                head += data
        head, _, rest = head.partition(b"\r\n\r\n")
        verify(head.startswith(b"HTTP/1.1 200"), f"subscription refused: {head[:200]!r}")
        sub.chunked = b"transfer-encoding: chunked" in head.lower()
        recv, dechunk, feed, time_ns = sock.recv, sub.dechunk, sub.feed, time.time_ns
        data = rest
        with sock:
            while True:
                if data:
                    body = dechunk(data)
                    if body:
                        feed(body, time_ns())
                data = await recv(RECV_SIZE)
                if not data:
                    raise EOFError("the server closed an SSE stream")

    async def run(self) -> None:
        limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)
        commands = Lines(trio.lowlevel.FdStream(os.dup(sys.stdin.fileno())))
        async with trio.open_nursery() as nursery:
            for sub in self.subscribers:
                nursery.start_soon(self.connection, sub, limiter)
            with trio.fail_after(self.args.timeout):
                await self.all_ready.wait()
            print("READY", flush=True)
            verify(await commands.readline() == "GO", "expected GO")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for sub in self.subscribers:
                sub.chunks = 0  # count the writes of the events only
            with trio.move_on_after(self.args.timeout):
                await self.all_done.wait()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            self.report(cpu, wall)
            # Hold the connections open until the driver has read the server's
            # CPU time: closing 1,000 streams is work the row must not include.
            with trio.move_on_after(self.args.timeout):
                await commands.readline()
            nursery.cancel_scope.cancel()

    def report(self, cpu: float, wall: float) -> None:
        subs = self.subscribers
        result = {
            "subs": len(subs), "done": self.done_count, "last_ns": self.last_ns, "cpu_s": cpu, "wall_s": wall,
            "received": sum(s.received for s in subs), "bytes": sum(s.bytes for s in subs),
            "chunks": sum(s.chunks for s in subs),
            "resyncs": sum(s.resyncs for s in subs), "resynced_subs": sum(1 for s in subs if s.resyncs),
            "skipped": sum(s.skipped for s in subs), "gaps": sum(s.gaps for s in subs),
            "repeats": sum(s.repeats for s in subs), "latencies": self.latencies,
        }
        sys.stdout.buffer.write(b"RESULT " + orjson.dumps(result) + b"\n")
        sys.stdout.flush()


def client_role(args: argparse.Namespace) -> None:
    raise_fd_limit()
    trio.run(Client(args).run)


# -- the driver ----------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, process: Any, url: str, path: str) -> None:
        self.name, self.process, self.url, self.path = name, process, url, path

    @property
    def pid(self) -> int:
        return self.process.pid


async def start_server(name: str, argv: list[str], path: str) -> Server:
    process, (url, *_) = await start_listening(argv, name)
    return Server(name, process, url if "://" in url else f"http://{url}", path)


class Row:
    def __init__(self, label: str, kind: str, subs: int, events: int, **fields: Any) -> None:
        self.label, self.kind, self.subs, self.events = label, kind, subs, events
        self.__dict__.update(fields)


async def run_row(server: Server, label: str, subs: int, events: int, args: argparse.Namespace,
                  producers: int = 1, profile: bool = False, run_id: str = "") -> Row:
    import httpx

    kind = server.name
    path = server.path.format(group=f"g-{run_id}")
    host, port = server.url.split("://")[1].rsplit(":", 1)
    shares = [subs // args.clients + (1 if i < subs % args.clients else 0) for i in range(args.clients)]
    clients = []
    try:
        for share in shares:
            argv = [sys.executable, __file__, "--role", "client", "--host", host, "--port", port, "--path", path,
                    "--subs", str(share), "--events", str(events), "--timeout", str(args.timeout)]
            process = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            clients.append((process, Lines(process.stdout)))
        with trio.fail_after(args.timeout):
            for _, lines in clients:
                line = await lines.readline()
                verify(line == "READY", f"a load client said {line!r}")
        results: list[dict[str, Any]] = []
        reply: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=server.url, timeout=args.timeout) as http:
            await http.get("/health" if kind == "ours" else "/sse-absent")  # connection open before the clock starts
            cpu0, busy0 = proc_cpu(server.pid), system_busy()
            ours0 = sum(proc_cpu(p.pid) for p, _ in clients) + time.process_time()
            if profile:
                server.process.send_signal(signal.SIGUSR1)
                await trio.sleep(0.2)
            for process, _ in clients:
                await process.stdin.send_all(b"GO\n")
            start_ns = time.time_ns()

            async def publish() -> None:
                response = await http.post("/publish", json={
                    "n": events, "size": args.size, "group": f"g-{run_id}", "producers": producers})
                verify(response.status_code == 200, f"/publish answered {response.status_code}: {response.text[:300]}")
                reply.update(response.json())

            async def collect(lines: Lines) -> None:
                line = await lines.readline()
                verify(line.startswith("RESULT "), f"a load client said {line[:200]!r}")
                results.append(orjson.loads(line[7:]))

            with trio.fail_after(args.timeout + 30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(publish)
                    for _, lines in clients:
                        nursery.start_soon(collect, lines)
            cpu1 = proc_cpu(server.pid)
            ours1 = sum(proc_cpu(p.pid) for p, _ in clients) + time.process_time()
            others = system_busy() - busy0 - (cpu1 - cpu0) - (ours1 - ours0)
            if profile:
                server.process.send_signal(signal.SIGUSR1)
    finally:
        for process, _ in clients:
            await stop(process)

    if kind == "ours":
        verify(reply == {"events": events, "seq": events}, f"/publish answered {reply}")
    else:
        verify(reply == {"clients": subs}, f"the {kind} server broadcast to {reply.get('clients')} clients, not {subs}")
    total = {key: sum(r[key] for r in results) for key in
             ("subs", "done", "received", "bytes", "chunks", "resyncs", "resynced_subs", "skipped", "gaps", "repeats")}
    where = f"{label}, {subs} subscribers"
    verify(total["subs"] == subs, f"{where}: {total['subs']} subscribers reported")
    verify(total["gaps"] == 0, f"{where}: {total['gaps']} gaps in seq without a resync")
    verify(total["repeats"] == 0, f"{where}: {total['repeats']} repeated or out-of-order events")
    verify(total["done"] == subs, f"{where}: only {total['done']} of {subs} subscribers got seq {events} "
                                  f"within {args.timeout} s")
    verify(total["received"] + total["skipped"] == subs * events,
           f"{where}: {total['received']} received + {total['skipped']} skipped != {subs * events}")
    if kind != "ours":
        verify(total["resyncs"] == 0 and total["skipped"] == 0, f"{where}: the {kind} server skipped events")
    latencies = sorted(lat for r in results for lat in r["latencies"])
    verify(len(latencies) == total["received"], f"{where}: latencies and receipts disagree")
    elapsed = (max(r["last_ns"] for r in results) - start_ns) / 1e9
    return Row(
        label, kind, subs, events, producers=producers, received=total["received"],
        rate=total["received"] / elapsed, elapsed=elapsed,
        p50=latencies[len(latencies) // 2] / 1e6,
        p99=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e6,
        server_cpu=cpu1 - cpu0, server_busy=(cpu1 - cpu0) / elapsed, others=max(0.0, others),
        client_cpu=max(r["cpu_s"] / r["wall_s"] for r in results),
        bytes_per_event=total["bytes"] / max(1, total["received"]),
        events_per_write=total["received"] / max(1, total["chunks"]),
        resyncs=total["resyncs"], resynced_subs=total["resynced_subs"], skipped=total["skipped"],
    )


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    baselines = {row.subs: row for row in rows if row.kind == "baseline"}
    width = max(len(row.label) for row in rows)
    columns = [("subs", 5), ("events", 6), ("deliveries", 10), ("deliv/s", 9), ("p50 ms", 7), ("p99 ms", 7),
               ("srv CPU s", 9), ("µs/deliv", 8), ("srv busy", 8), ("client CPU", 10), ("other CPU s", 11),
               ("B/event", 7), ("ev/write", 8), ("resyncs", 7), ("vs baseline", 11)]
    print(f"{'server':<{width}}  " + "  ".join(f"{name:>{size}}" for name, size in columns))
    for row in rows:
        base = baselines.get(row.subs)
        ratio = f"{row.rate / base.rate:.2f}x" if base and row is not base else "-"
        cells = [f"{row.subs:,}", f"{row.events:,}", f"{row.received:,}", f"{row.rate:,.0f}", f"{row.p50:.1f}",
                 f"{row.p99:.1f}", f"{row.server_cpu:.2f}", f"{1e6 * row.server_cpu / row.received:.1f}",
                 f"{100 * row.server_busy:.0f}%", f"{100 * row.client_cpu:.0f}%", f"{row.others:.2f}",
                 f"{row.bytes_per_event:.0f}", f"{row.events_per_write:.1f}",
                 f"{row.resyncs}/{row.resynced_subs}" if row.resyncs else "0", ratio]
        print(f"{row.label:<{width}}  " + "  ".join(f"{cell:>{size}}" for cell, (_, size) in zip(cells, columns)))
    print()
    print(f"{os.cpu_count()} CPUs; server, driver and {args.clients} load process(es) share them. Payload pad "
          f"{args.size} B; B/event is SSE bytes received per event (ours carries the protocol envelope).")
    print("ev/write = events per HTTP chunk received after GO, i.e. per body write of the server.")
    print("srv busy = server CPU time / (last receipt - POST /publish): near 100% the server is the limit.")
    print("other CPU s = busy CPU time on the machine during the row not charged to the server, load or driver "
          "processes (other programs; kernel softirq work for loopback TCP): high values mean a contended row.")
    print("deliveries/s = events received by all subscribers / (last receipt - POST /publish); latency = receipt - "
          "t set just before the mutation call (one wall clock).")
    print("Every subscriber got seq 1..n in order, no gap, no repeat; resyncs (count/subscribers) = extra "
          "`event: sync` from the slow-consumer policy, whose skipped events are not counted as deliveries.")
    saturated = [row for row in rows if row.client_cpu >= 0.9]
    if saturated:
        print("client CPU >= 90% in: " + ", ".join(f"{r.label} x{r.subs}" for r in saturated)
              + " (the load may be the limit there; try --clients 2)")
    for row in rows:
        if row.kind == "ours" and row.subs == 1000:
            per_core = row.received / row.server_cpu if row.server_cpu else float("inf")
            print(f"target >= {TARGET:,} deliveries/s at 1,000 subscribers, {row.label}: {row.rate:,.0f} "
                  f"({'met' if row.rate >= TARGET else 'NOT met'}; server at {100 * row.server_busy:.0f}% busy, "
                  f"{per_core:,.0f} deliveries per server CPU second)")


def package_of(filename: str) -> str:
    """Where a profiled function lives: the runtime's own modules, or the library."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins and C methods"
    path = os.path.abspath(filename)
    root = os.path.dirname(HERE)
    if path.startswith(os.path.join(root, "runtime") + os.sep):
        parts = os.path.relpath(path, root).split(os.sep)
        return "/".join(parts[:2]) if len(parts) > 2 else parts[0]
    if path.startswith(os.path.join(root, "actors") + os.sep):
        return "actors (kernel)"
    if "site-packages" in path:
        return path.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
    return "python stdlib" if "/lib/python" in path else os.path.relpath(path, root)


async def drive(args: argparse.Namespace) -> None:
    ours_argv = [sys.executable, __file__, "--role", "server", "--port", "0"]
    profile_path = None
    if args.profile:
        profile_path = os.path.join(tempfile.mkdtemp(prefix="bench-sse-"), "server.prof")
        ours_argv += ["--profile-out", profile_path]
    servers: list[Server] = []
    rows: list[Row] = []
    try:
        ours = await start_server("ours", ours_argv, "/streams/bench/{group}")
        servers.append(ours)
        asgi = None
        if args.asgi_rows and not args.profile:
            asgi = await start_server("ours", [*ours_argv, "--sse-asgi"], "/streams/bench/{group}")
            servers.append(asgi)
        base = await start_server("baseline", [sys.executable, os.path.join(HERE, "_sse_baseline.py"), "--port", "0"],
                                  "/sse")
        servers.append(base)
        raw = await start_server("raw", [sys.executable, os.path.join(HERE, "_sse_raw.py"), "--port", "0"], "/sse")
        servers.append(raw)
        runs = iter(range(1_000_000))
        # Warm both servers (imports, first requests, first group): not reported.
        for server in (ours, base, raw, *([asgi] if asgi else [])):
            await run_row(server, "warm-up", 10, 20, args, run_id=f"warm-{next(runs)}")
        plan = []
        for subs, events in ((100, args.events_100), (1000, args.events_1000)):
            plan.append(("baseline: quart-trio broadcaster, 1 event per chunk", base, subs, events, 1))
            plan.append(("reference: raw Trio sockets, 1 event per write", raw, subs, events, 1))
            if asgi is not None:
                plan.append(("runtime SSE through hypercorn/Quart, 1 producer", asgi, subs, events, 1))
            plan.append(("runtime SSE, 1 producer", ours, subs, events, 1))
            if args.producers > 1:
                # 4x the events: these rows run fastest, and a short row measures little
                plan.append((f"runtime SSE, {args.producers} producers", ours, subs, 4 * events, args.producers))
        if args.profile:
            subs, _, producers = args.profile.partition(":")
            plan = [p for p in plan if p[1] is ours and (p[2], p[4]) == (int(subs), int(producers or 1))][:1]
            verify(bool(plan), f"--profile {args.profile}: no runtime row with that many subscribers and producers")
        for label, server, subs, events, producers in plan:
            rows.append(await run_row(server, label, subs, events, args, producers=producers,
                                      profile=bool(args.profile), run_id=str(next(runs))))
        if args.profile:
            await stop(ours.process, signal.SIGTERM, wait=30)
    finally:
        for server in servers:
            await stop(server.process)
    print_table(rows, args)
    if profile_path:
        print()
        print(f"server profile, {args.profile} (SIGUSR1 just before /publish to after the last receipt):")
        stats = pstats.Stats(profile_path, stream=sys.stdout)
        by_package: dict[str, float] = {}
        for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():
            by_package[package_of(filename)] = by_package.get(package_of(filename), 0.0) + tottime
        total = sum(by_package.values())
        print("own time (tottime) by package:")
        for name, seconds in sorted(by_package.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<28} {seconds:>7.2f} s  {100 * seconds / total:>5.1f}%")
        stats.strip_dirs()
        stats.sort_stats("tottime").print_stats(args.profile_lines)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["driver", "server", "client"], default="driver", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=100, help="bytes of padding in each event's payload")
    parser.add_argument("--events-100", type=int, default=1_000, help="events published to 100 subscribers")
    parser.add_argument("--events-1000", type=int, default=100, help="events published to 1,000 subscribers")
    parser.add_argument("--producers", type=int, default=16,
                        help="concurrent updaters in the extra runtime rows (1: no extra rows)")
    parser.add_argument("--asgi-rows", action=argparse.BooleanOptionalAction, default=False,
                        help="also run the runtime with ServerSettings(sse_direct=False), on a runtime that "
                             "still has it (SSE has one path since issue #14: the rows are off by default)")
    parser.add_argument("--clients", type=int, default=1, help="load processes sharing the subscribers")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a row may take before it fails")
    parser.add_argument("--profile", metavar="SUBS[:PRODUCERS]",
                        help="profile the runtime server in one row instead, e.g. 1000 or 1000:16")
    parser.add_argument("--profile-lines", type=int, default=30, help=argparse.SUPPRESS)
    # the roles' own arguments
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--subs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    parser.add_argument("--sse-asgi", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        server_role(args)
    elif args.role == "client":
        client_role(args)
    else:
        raise_fd_limit()
        trio.run(drive, args)
