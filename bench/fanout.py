"""WebSocket fan-out: one group to 100, 1,000 and 5,000 subscribers, beside two broadcasters written in a few lines.

    .venv/bin/python bench/fanout.py [--size BYTES] [--producers P] [--clients K] [--idle N] [--load c|python]
                                     [--deliveries N] [--baseline-deliveries N] [--quart-deliveries N]
                                     [--subscribers 100,1000,5000] [--servers ...] [--idle-servers ...]
                                     [--profile SUBS[:PRODUCERS][@EVENTS_PER_S]] [--sweep EVENTS_PER_S,...]

Every figure crosses real sockets between processes on this machine:

- the runtime (``--role runtime``): ``App(streams=[Stream("bench")])`` served
  by `App.serve` (its WebSocket listener on the stream port), with one HTTP
  step ``POST /publish`` that runs ``n`` ``set()`` calls on item ``x`` of
  the row's group with the payload ``{"t": time.time_ns(), "seq": i, "pad":
  "x" * size}``. Two ways: *max rate*, from P concurrent producer tasks (P=1:
  each set() awaited before the next, so every event is its own group turn
  and its own write per connection; P=64: the group takes many sets per
  turn and the server writes many events per write). seq is taken
  just before each call, which enqueues before its first checkpoint, so the
  commit order is seq order — the load checks it. And *paced*, open loop: a
  ticker releases one ticket per 1/rate s on a fixed schedule, P producers
  turn tickets into set() calls, and ``t`` is the event's scheduled time, so
  falling behind schedule counts in the latency. ``outbox_limit`` is 64 MiB,
  so the slow-consumer policy drops nothing in these rows; the step reports
  the server's drop and resync counters anyway;
- the baselines (``bench/_fanout_baselines.py``), in the same run, on the
  same payload (JSON-encoded once per event, sent as text): a
  trio-websocket server that broadcasts each event by ``await
  conn.send_message(text)`` to each connection in turn, and a quart-trio
  app on hypercorn with one memory channel and one sending task per
  connection (Quart's documented broadcast pattern);
- the load (``--role client``, K processes, default 1): a minimal WebSocket
  client on raw sockets — HTTP upgrade with a random key and its
  ``Sec-WebSocket-Accept`` checked, masked client frames (the join, pongs),
  unmasked server frames with 7-, 16- and 64-bit lengths, ``seq`` and ``t``
  found in each frame. Connections are opened, upgraded and joined
  concurrently on Trio; the measured phase is a plain epoll loop with one
  ``recv()`` per readable socket, written in C (``bench/_fanout_recv.c``,
  built with the system compiler on first use, loaded with ctypes): the same
  loop in Python (``--load python``) needed a whole core at ~500k
  deliveries/s, so on this 2-core machine it, not the server, set the
  maximum rate and most of the latency. Latencies are counted in 10 µs
  buckets. The load's CPU is in the table.

A row: the load opens its subscriptions and waits until each has its
initial ``sync`` (runtime: after its join frame) or ``ok`` (baselines:
the server registered the connection); then the driver publishes (HTTP
POST, or a message on the trio-websocket server's ``/control`` socket) and
each client records, per event, receipt time minus ``t`` (one machine, one
wall clock). deliveries/s = events received by all subscribers / (last
receipt - the moment the publish request was sent). Server CPU is
utime+stime from /proc over the same window, per delivery; "srv runq" is
the time the server was runnable but had no CPU (/proc/<pid>/schedstat),
which is how contention from other work shows; "srv gc ms" is the server's
garbage-collector pauses in the row (``bench/_fanout_gc.py``, gc.callbacks,
in every server; the collector is left as each server sets it: the runtime
freezes its start-up objects as ``python -m runtime serve`` does, unless
``--no-gc-freeze``). Each row
runs a fresh group (``g-<row>``), so its sync is empty.

Checks that cannot be switched off (a row failing one is an error, not a
figure): every subscriber gets seq 1..n in order, no gap, no repeat, no
unexpected frame; the server reached exactly the row's subscribers (the
runtime's group counted them; the baselines counted their connections);
the runtime's /publish saw the last seq committed; a resync of the
slow-consumer policy (a second sync) would be counted, with the events it
skipped, and shown in the table.

Then the runtime at 70% of its best 1,000-subscriber rate, paced, for its
p99; and the RSS per idle connection: a fresh server (warmed by one small
row), VmRSS before and after ``--idle`` connections (10,000) are opened and,
for the runtime, joined to one group (checked on its /metrics), divided by
their number; for the runtime and trio-websocket (``--idle-servers``).

``--profile SUBS[:PRODUCERS]`` runs that one runtime row with the server
under cProfile (the server profiles when ``FANOUT_PROFILE=<file>`` is in its
environment: enabled on SIGUSR1 just before the publish, disabled after the
last receipt, dumped on SIGTERM) and prints where its time goes.
``--sweep 10,50,100,200`` runs paced runtime rows at 1,000 subscribers at
those events/s instead, for latency against offered load.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import ctypes
import gc
import hashlib
import itertools
import logging
import math
import os
import pstats
import select
import signal
import socket
import struct
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

TARGET_RATE = 200_000  # deliveries/s at 1,000 subscribers
TARGET_RATIO = 5.0  # x the trio-websocket baseline at 1,000 subscribers
TARGET_P99_MS = 50.0  # at 70% of the maximum rate
TARGET_RSS_KB = 20.0  # per idle connection
STREAM = "bench"
RECV_SIZE = 256 * 1024
#: Latencies are counted in a histogram of 10 µs buckets (the last one, past 10 s, takes the rest):
#: a few MB per load process however long the row, and nothing to allocate while it runs.
LATENCY_BUCKET_NS = 10_000
LATENCY_BUCKETS = 1 << 20
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVERS = ("trio-websocket", "quart", "runtime")
LABELS = {
    "runtime": "runtime (App.serve, WebSocket listener)",
    "trio-websocket": "baseline: trio-websocket, send_message per conn",
    "quart": "baseline: quart-trio/hypercorn, channel+task per conn",
}
#: Concurrent connection attempts: hypercorn's listen backlog is 100, Trio's is the kernel's maximum.
CONNECT_CONCURRENCY = {"runtime": 256, "trio-websocket": 256, "quart": 64}


def run_delay(pid: int) -> float:
    """Seconds the process's main thread spent runnable but waiting for a CPU (/proc/<pid>/schedstat)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def load_helper(name: str) -> Any:
    """A bench/_fanout_*.py helper (this folder is off sys.path, see above)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the runtime under test ---------------------------------------------------------------------


def runtime_role(args: argparse.Namespace) -> None:
    from runtime import App, Stream, http, step
    from runtime.server import ServerSettings

    raise_fd_limit()
    logging.getLogger().setLevel(logging.CRITICAL + 1)
    for name in ("actors", "runtime", "hypercorn", "quart"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    listening: Any = None

    publish = step({"name": "Publish", "triggers": [http("POST", "/publish")]})

    @publish.handle
    async def run_publish(request, ctx):
        body = request.body
        group, n, size = body["group"], body["n"], body["size"]
        producers, rate = body.get("producers", 1), body.get("rate")
        stats = await app.engine.group_stats(STREAM, group)
        metrics = listening.server.metrics
        drops0, resyncs0 = metrics.slow_consumer_drops, metrics.resyncs
        pad = "x" * size
        seqs = iter(range(1, n + 1))
        set_ = bench.set
        if rate:
            # Open loop: a ticker releases one ticket per 1/rate s on a fixed schedule;
            # the producers take a ticket, then the next seq, then call set(). If
            # the server falls behind, tickets pile up and the producers catch up
            # with several sets in flight. ``t`` is the event's *scheduled* time, so
            # time spent behind schedule counts in the latency (no coordinated omission).
            tickets_in, tickets_out = trio.open_memory_channel(n)
            start, wall0 = trio.current_time(), time.time_ns()

            async def ticker() -> None:
                async with tickets_in:
                    k = 0
                    while True:  # every ticket due by now, however late this task ran
                        due = min(n, int((trio.current_time() - start) * rate) + 1)
                        for _ in range(k, due):
                            tickets_in.send_nowait(None)
                        k = max(k, due)
                        if k >= n:
                            return
                        await trio.sleep_until(start + k / rate)

            async def paced() -> None:
                async for _ in tickets_out:
                    seq = next(seqs)
                    await set_(group, "x", {"t": wall0 + int((seq - 1) * 1e9 / rate), "seq": seq, "pad": pad})

            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                for _ in range(producers):
                    nursery.start_soon(paced)
            behind = trio.current_time() - (start + (n - 1) / rate)
        else:
            async def producer() -> None:
                for seq in seqs:  # taken just before set(), which enqueues before its first checkpoint
                    await set_(group, "x", {"t": time.time_ns(), "seq": seq, "pad": pad})

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for _ in range(producers):
                    nursery.start_soon(producer)
            behind = 0.0
        elapsed = trio.current_time() - start
        item = await bench.get(group, "x")
        return {"status": 200, "body": {
            "events": n, "seq": item["seq"] if item else 0, "subscribers": stats["subscribers"],
            "drops": metrics.slow_consumer_drops - drops0, "resyncs": metrics.resyncs - resyncs0,
            "publish_s": elapsed, "behind_s": behind,
        }}

    # The collector is part of the system under test: left as the runtime sets
    # it, and its pauses timed (gc.callbacks) and read by the driver (GET /gc).
    gc_timer = load_helper("_fanout_gc")
    gc_timer.install()
    gc_step = step({"name": "GcStats", "triggers": [http("GET", "/gc")]})

    @gc_step.handle
    async def read_gc(request, ctx):
        return {"status": 200, "body": gc_timer.read()}

    app = App(streams=[Stream(STREAM)], steps=[publish, gc_step])
    bench = app.stream(STREAM)  # the handler's producer tasks are not the app's own
    # gc_freeze as `python -m runtime serve` sets it (--no-gc-freeze: off, to compare)
    settings = ServerSettings(port=0, stream_port=0, outbox_limit=64 * 1024 * 1024,
                              gc_freeze=os.environ.get("FANOUT_GC_FREEZE", "1") != "0")
    profile_out = os.environ.get("FANOUT_PROFILE")

    async def main() -> None:
        nonlocal listening
        async with trio.open_nursery() as nursery:
            listening = await nursery.start(lambda task_status: app.serve(settings, task_status=task_status))
            print(f"LISTENING {listening.http_url} {listening.stream_url}/", flush=True)
            await wait_for_stop_signal_profiling(profile_out)
            nursery.cancel_scope.cancel()

    trio.run(main)


# -- the load: a minimal WebSocket client on raw Trio sockets -------------------------------------


def mask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 masking: payload XOR the 4-byte key repeated."""
    n = len(payload)
    return (int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + mask(payload, key)


class Subscriber:
    """One WebSocket connection's frame parser and checker."""

    __slots__ = ("client", "sock", "pending", "ready", "expected", "done", "resyncs", "skipped", "gaps", "repeats",
                 "received", "recvs", "others", "pongs")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.sock: socket.socket | None = None
        self.pending = b""
        self.ready = False
        self.expected = 1  # the next seq
        self.done = False
        self.resyncs = 0
        self.skipped = 0
        self.gaps = 0
        self.repeats = 0
        self.received = 0
        self.recvs = 0
        self.others: list[bytes] = []
        self.pongs: list[bytes] = []

    def feed(self, data: bytes, now: int) -> None:
        buf = self.pending + data if self.pending else data
        size = len(buf)
        pos = 0
        latencies = self.client.latencies
        runtime = self.client.runtime
        while size - pos >= 2:
            first, length = buf[pos], buf[pos + 1]
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length, start = (buf[pos + 2] << 8) | buf[pos + 3], pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, start = int.from_bytes(buf[pos + 2:pos + 10], "big"), pos + 10
            else:
                raise ValueError("a masked frame from the server")
            end = start + length
            if end > size:
                break
            pos = end
            if first != 0x81 and first != 0x82:  # not a final text/binary frame
                self.control_frame(first, buf[start:end])
                continue
            s = buf.find(b'"seq":', start, end)
            if s < 0 or (runtime and buf.find(b'"sync"', start, s) >= 0):
                self.message(buf[start:end], s - start if s >= 0 else -1)
                continue
            seq = int(buf[s + 6:buf.find(b",", s, end)])
            t = buf.find(b'"t":', start, end)
            latencies.append(now - int(buf[t + 4:buf.find(b",", t, end)]))
            self.received += 1
            expected = self.expected
            if seq != expected:
                if seq < expected:
                    self.repeats += 1
                    continue
                self.gaps += 1
            self.expected = seq + 1
            if seq >= self.client.events and not self.done:
                self.done = True
                self.client.finished(now)
        self.pending = buf[pos:] if pos < size else b""

    def control_frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        if opcode == 0x9:
            self.pongs.append(payload)  # answered by the connection task
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
            raise EOFError(f"the server closed the connection ({code} {payload[2:]!r})")
        elif opcode != 0xA:
            self.others.append(bytes((first,)) + payload[:200])

    def message(self, frame: bytes, s: int) -> None:
        """A sync (runtime), the ``ok`` greeting (baselines), or something unexpected."""
        if self.client.runtime and b'"sync"' in frame:
            if not self.ready:
                self.ready = True
                self.client.became_ready()
                return
            self.resyncs += 1  # the slow-consumer policy: a fresh sync in place of a dropped backlog
            seq = int(frame[s + 6:frame.find(b",", s)]) if s >= 0 else 0
            if seq >= self.expected:
                self.skipped += seq - self.expected + 1
                self.expected = seq + 1
            if seq >= self.client.events and not self.done:
                self.done = True
                self.client.finished(time.time_ns())
        elif not self.client.runtime and frame == b"ok" and not self.ready:
            self.ready = True
            self.client.became_ready()
        else:
            self.others.append(frame[:200])


class NativeResult(ctypes.Structure):
    """``result_t`` of bench/_fanout_recv.c."""

    _fields_ = [(name, ctypes.c_int64) for name in (
        "done", "last_ns", "received", "recvs", "resyncs", "resynced_subs", "skipped", "gaps", "repeats", "others",
        "latencies")] + [("close_code", ctypes.c_int32), ("error", ctypes.c_int32), ("other", ctypes.c_char * 208)]


class Client:
    """K subscribers: set up on Trio, then received by a plain epoll loop (see `run`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.events = args.events
        self.runtime = args.group is not None
        self.subscribers = [Subscriber(self) for _ in range(args.subs)]
        self.latencies: list[int] = []
        self.histogram: Any = None  # the C loop's latency counts (see `run`)
        self.ready_count = 0
        self.done_count = 0
        self.last_ns = 0

    def became_ready(self) -> None:
        self.ready_count += 1

    def finished(self, now: int) -> None:
        self.done_count += 1
        self.last_ns = max(self.last_ns, now)

    def run(self) -> None:
        """Connect, upgrade and join every subscriber concurrently on Trio; once each
        has its sync (runtime) or ``ok`` (baselines), say READY. Then, on GO, receive
        with one epoll loop and one ``recv()`` per readable socket: the measured
        phase costs the load a system call per read, and no task switch, so that
        the load is as far from being the bottleneck as this machine allows (its
        CPU is reported)."""
        trio.run(self.open_all)
        # allocated (and zeroed: every page touched) before the clock starts
        self.histogram = (ctypes.c_uint32 * LATENCY_BUCKETS)() if self.args.load == "c" else None
        print("READY", flush=True)
        verify(sys.stdin.readline().strip() == "GO", "expected GO")
        if self.events:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            counts = self.receive_native() if self.args.load == "c" else self.receive()
            self.report(time.process_time() - cpu0, time.perf_counter() - wall0, counts)
        # Hold the connections open until the driver has read the server's CPU
        # time (or RSS): closing them is work the row must not include.
        sys.stdin.readline()

    async def open_all(self) -> None:
        limiter = trio.CapacityLimiter(self.args.connect_concurrency)
        with trio.fail_after(self.args.timeout):
            async with trio.open_nursery() as nursery:
                for sub in self.subscribers:
                    nursery.start_soon(self.connection, sub, limiter)
        verify(self.ready_count == len(self.subscribers), "a subscriber is not ready")

    async def connection(self, sub: Subscriber, limiter: trio.CapacityLimiter) -> None:
        host, port_path = self.args.url.removeprefix("ws://").split(":", 1)
        port, _, path = port_path.partition("/")
        key = base64.b64encode(os.urandom(16))
        request = (f"GET /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        async with limiter:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.setblocking(False)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sub.sock = raw  # kept open (and referenced) past this task and past trio.run
            sock = trio.socket.from_stdlib_socket(raw)
            await sock.connect((host, int(port)))
            await send_all(sock, request)
            head = b""
            while b"\r\n\r\n" not in head:
                data = await sock.recv(RECV_SIZE)
                if not data:
                    raise EOFError("the server closed the connection before the upgrade")
                head += data
            head, _, data = head.partition(b"\r\n\r\n")
            verify(head.startswith(b"HTTP/1.1 101"), f"upgrade refused: {head[:200]!r}")
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
            verify(b"sec-websocket-accept: " + accept.lower() in head.lower(), "wrong Sec-WebSocket-Accept")
            if self.runtime:
                await send_all(sock, client_frame(0x1, orjson.dumps({"type": "join", "data": {
                    "streamName": STREAM, "groupId": self.args.group, "subscriptionId": "s"}})))
            while True:
                if data:
                    sub.feed(data, time.time_ns())
                    if sub.ready:
                        return
                data = await sock.recv(RECV_SIZE)
                if not data:
                    raise EOFError("the server closed the connection before it was ready")

    def receive(self) -> dict[str, Any]:
        subs = self.subscribers
        for sub in subs:
            sub.recvs = 0  # count the reads of the events only
        by_fd = {sub.sock.fileno(): sub for sub in subs}
        poller = select.epoll(len(subs) + 1)
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        time_ns, poll, count = time.time_ns, poller.poll, len(subs)
        deadline = time.monotonic() + self.args.timeout
        try:
            while self.done_count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                for fd, _ in poll(min(left, 1.0)):
                    sub = by_fd[fd]
                    try:
                        data = sub.sock.recv(RECV_SIZE)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise EOFError("the server closed a connection")
                    sub.recvs += 1
                    sub.feed(data, time_ns())
                    while sub.pongs:
                        sub.sock.send(client_frame(0xA, sub.pongs.pop(0)))
        finally:
            poller.close()
        return {
            "received": sum(s.received for s in subs), "recvs": sum(s.recvs for s in subs),
            "resyncs": sum(s.resyncs for s in subs), "resynced_subs": sum(1 for s in subs if s.resyncs),
            "skipped": sum(s.skipped for s in subs), "gaps": sum(s.gaps for s in subs),
            "repeats": sum(s.repeats for s in subs),
            "others": [o.decode("latin-1") for s in subs for o in s.others][:5],
            "others_count": sum(len(s.others) for s in subs), "latencies": len(self.latencies),
            "histogram": sorted(collections.Counter(
                min(LATENCY_BUCKETS - 1, max(0, latency) // LATENCY_BUCKET_NS) for latency in self.latencies).items()),
        }

    def receive_native(self) -> dict[str, Any]:
        """What `receive` does, in C (bench/_fanout_recv.c), for a load that costs the machine
        little: the same checks, figures and ping answers; the counts come back summed."""
        lib = load_helper("_native").load("_fanout_recv")
        subs = self.subscribers
        n = len(subs)
        pending = [sub.pending for sub in subs]
        histogram = self.histogram
        result = NativeResult()
        lib.fanout_receive.argtypes = [
            ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_int64), ctypes.c_int64, ctypes.c_int, ctypes.c_double,
            ctypes.POINTER(ctypes.c_uint32), ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(NativeResult),
        ]
        lib.fanout_receive(
            n, (ctypes.c_int * n)(*(sub.sock.fileno() for sub in subs)), (ctypes.c_char_p * n)(*pending),
            (ctypes.c_int64 * n)(*map(len, pending)), self.events, int(self.runtime), float(self.args.timeout),
            histogram, LATENCY_BUCKETS, LATENCY_BUCKET_NS, ctypes.byref(result),
        )
        if result.error == -2:
            code = f" ({result.close_code})" if result.close_code else ""
            raise EOFError(f"the server closed a connection{code}")
        verify(result.error != -3, "a masked frame from the server")
        verify(result.error in (0, -1), f"receiving failed: {os.strerror(result.error)}")  # -1: timed out
        self.done_count, self.last_ns = result.done, result.last_ns
        return {
            "received": result.received, "recvs": result.recvs, "resyncs": result.resyncs,
            "resynced_subs": result.resynced_subs, "skipped": result.skipped, "gaps": result.gaps,
            "repeats": result.repeats, "others_count": result.others,
            "others": [result.other.decode("latin-1")] if result.others else [],
            "latencies": result.latencies,
            "histogram": [(bucket, count) for bucket, count in enumerate(histogram) if count],
        }

    def report(self, cpu: float, wall: float, counts: dict[str, Any]) -> None:
        result = {"subs": len(self.subscribers), "done": self.done_count, "last_ns": self.last_ns, "cpu_s": cpu,
                  "wall_s": wall, **counts}
        sys.stdout.buffer.write(b"RESULT " + orjson.dumps(result) + b"\n")
        sys.stdout.flush()


async def send_all(sock: Any, data: bytes) -> None:
    sent = 0
    while sent < len(data):
        sent += await sock.send(data[sent:])


def client_role(args: argparse.Namespace) -> None:
    raise_fd_limit()
    gc.disable()  # the load is the measuring instrument: no collector pauses in its receipt times
    Client(args).run()


# -- the driver ------------------------------------------------------------------------------------


class Server:
    def __init__(self, kind: str, process: Any, control: str, subscribe: str) -> None:
        self.kind, self.process, self.control, self.subscribe = kind, process, control, subscribe

    @property
    def pid(self) -> int:
        return self.process.pid


async def start_server(kind: str, profile_out: str | None = None) -> Server:
    if kind == "runtime":
        argv = [sys.executable, __file__, "--role", "runtime"]
    else:
        argv = [sys.executable, os.path.join(HERE, "_fanout_baselines.py"), "--server", kind]
    env = dict(os.environ, FANOUT_PROFILE=profile_out) if profile_out else None
    process, (control, subscribe) = await start_listening(argv, kind, env)
    control = control if "://" in control else f"http://{control}"
    return Server(kind, process, control, subscribe)


class Row:
    def __init__(self, server: str, subs: int, events: int, **fields: Any) -> None:
        self.server, self.subs, self.events = server, subs, events
        self.note = ""
        self.__dict__.update(fields)


async def open_load(server: Server, subs: int, events: int, args: argparse.Namespace, group: str | None,
                    clients: int) -> list[tuple[Any, Lines]]:
    """Start the load processes and wait until every subscriber is registered."""
    shares = [subs // clients + (1 if i < subs % clients else 0) for i in range(clients)]
    load = []
    try:
        for share in shares:
            argv = [sys.executable, __file__, "--role", "client", "--url", server.subscribe, "--subs", str(share),
                    "--events", str(events), "--timeout", str(args.timeout),
                    "--connect-concurrency", str(CONNECT_CONCURRENCY[server.kind]), "--load", args.load]
            if group is not None:
                argv += ["--group", group]
            process = await trio.lowlevel.open_process(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            load.append((process, Lines(process.stdout)))
        with trio.fail_after(args.timeout):
            for _, lines in load:
                line = await lines.readline()
                verify(line == "READY", f"a load client said {line!r}")
    except BaseException:
        for process, _ in load:
            await stop(process)
        raise
    return load


class Publisher:
    """The control side of one server: HTTP (runtime, quart) or a /control WebSocket (trio-websocket),
    opened before the clock starts (the GET /gc before each row opens the HTTP connection)."""

    def __init__(self, server: Server, http: Any) -> None:
        self.server, self.http, self.control = server, http, None

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        if self.server.kind == "trio-websocket":
            from trio_websocket import open_websocket_url

            self.control = await stack.enter_async_context(open_websocket_url(self.server.control))

    async def gc(self) -> dict[str, Any]:
        """The server's collector counters so far (and its longest pause since the last read)."""
        if self.control is not None:
            return await self.publish({"gc": True}, 30)
        return (await self.http.get(self.server.control + "/gc")).json()

    async def publish(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.control is not None:
            await self.control.send_message(orjson.dumps(body).decode())
            with trio.fail_after(timeout):
                return orjson.loads(await self.control.get_message())
        url = self.server.control + "/publish"
        response = await self.http.post(url, json=body, timeout=timeout)
        verify(response.status_code == 200, f"{url} answered {response.status_code}: {response.text[:300]}")
        return response.json()


async def run_row(server: Server, subs: int, events: int, args: argparse.Namespace, row_id: str, *,
                  producers: int = 1, rate: float | None = None, profile: bool = False) -> Row:
    import httpx

    runtime = server.kind == "runtime"
    group = f"g-{row_id}" if runtime else None
    clients = max(1, min(args.clients, subs // 50 or 1))
    where = f"{server.kind}, {subs} subscribers"
    load = await open_load(server, subs, events, args, group, clients)
    results: list[dict[str, Any]] = []
    reply: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(timeout=args.timeout) as http, contextlib.AsyncExitStack() as stack:
            publisher = Publisher(server, http)
            await publisher.open(stack)
            body: dict[str, Any] = {"n": events, "size": args.size}
            if runtime:
                body.update(group=group, producers=producers, rate=rate)
            gc0 = await publisher.gc()
            cpu0, busy0, wait0 = proc_cpu(server.pid), system_busy(), run_delay(server.pid)
            load0 = sum(proc_cpu(p.pid) for p, _ in load) + time.process_time()
            if profile:
                server.process.send_signal(signal.SIGUSR1)
                await trio.sleep(0.2)
            for process, _ in load:
                await process.stdin.send_all(b"GO\n")
            start_ns = time.time_ns()

            async def publish() -> None:
                reply.update(await publisher.publish(body, args.timeout))

            async def collect(lines: Lines) -> None:
                line = await lines.readline()
                verify(line.startswith("RESULT "), f"a load client said {line[:200]!r}")
                results.append(orjson.loads(line[7:]))

            with trio.fail_after(args.timeout + 30):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(publish)
                    for _, lines in load:
                        nursery.start_soon(collect, lines)
            cpu1, window = proc_cpu(server.pid), (time.time_ns() - start_ns) / 1e9
            waited = run_delay(server.pid) - wait0
            load1 = sum(proc_cpu(p.pid) for p, _ in load) + time.process_time()
            others = system_busy() - busy0 - (cpu1 - cpu0) - (load1 - load0)
            if profile:
                server.process.send_signal(signal.SIGUSR1)
            gc1 = await publisher.gc()
    finally:
        for process, _ in load:
            await stop(process)

    if runtime:
        verify(reply.get("events") == events and reply.get("seq") == events, f"{where}: /publish answered {reply}")
        verify(reply.get("subscribers") == subs, f"{where}: the group had {reply.get('subscribers')} subscribers")
    else:
        verify(reply == {"clients": subs}, f"{where}: the baseline broadcast to {reply.get('clients')} clients")
    total = {key: sum(r[key] for r in results) for key in
             ("subs", "done", "received", "recvs", "resyncs", "resynced_subs", "skipped", "gaps", "repeats",
              "others_count")}
    verify(total["subs"] == subs, f"{where}: {total['subs']} subscribers reported")
    verify(total["others_count"] == 0,
           f"{where}: {total['others_count']} unexpected frames, e.g. {[o for r in results for o in r['others']]}")
    verify(total["gaps"] == 0, f"{where}: {total['gaps']} gaps in seq without a resync")
    verify(total["repeats"] == 0, f"{where}: {total['repeats']} repeated or out-of-order events")
    verify(total["done"] == subs, f"{where}: only {total['done']} of {subs} subscribers got seq {events} "
                                  f"within {args.timeout} s")
    verify(total["received"] + total["skipped"] == subs * events,
           f"{where}: {total['received']} received + {total['skipped']} skipped != {subs * events}")
    if not runtime:
        verify(total["resyncs"] == 0 and total["skipped"] == 0, f"{where}: the baseline skipped events")
    verify(sum(r["latencies"] for r in results) == total["received"], f"{where}: latencies and receipts disagree")
    histogram: collections.Counter[int] = collections.Counter()
    for r in results:
        histogram.update(dict(r["histogram"]))
    elapsed = (max(r["last_ns"] for r in results) - start_ns) / 1e9
    return Row(
        server.kind, subs, events, producers=producers if runtime else None, rate=rate,
        received=total["received"], deliveries_per_s=total["received"] / elapsed, elapsed=elapsed,
        p50=percentile_ms(histogram, 0.50), p99=percentile_ms(histogram, 0.99),
        server_cpu=cpu1 - cpu0, server_busy=(cpu1 - cpu0) / window, others=max(0.0, others),
        server_waited=waited / window,
        client_cpu=max(r["cpu_s"] / r["wall_s"] for r in results), clients=clients,
        per_recv=total["received"] / max(1, total["recvs"]),
        resyncs=total["resyncs"], resynced_subs=total["resynced_subs"], skipped=total["skipped"],
        drops=reply.get("drops", 0), publish_s=reply.get("publish_s"), behind_s=reply.get("behind_s"),
        gc_count=gc1["count"] - gc0["count"], gc_full=gc1["full"] - gc0["full"],
        gc_ms=1000 * (gc1["total_s"] - gc0["total_s"]), gc_max_ms=1000 * gc1["max_s"],
    )


def percentile_ms(histogram: collections.Counter[int], fraction: float) -> float:
    """The latency below which ``fraction`` of the receipts fall, in ms: the upper edge of its 10 µs bucket."""
    rank = max(1, math.ceil(fraction * sum(histogram.values())))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return (bucket + 1) * LATENCY_BUCKET_NS / 1e6
    return math.nan


async def idle_rss(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """A fresh server, warmed by one small row; VmRSS before and after ``args.idle`` idle connections."""
    server = await start_server(kind)
    try:
        await run_row(server, 10, 20, args, "idle-warm")
        await trio.sleep(0.5)
        before = proc_rss_kb(server.pid)
        started = time.perf_counter()
        load = await open_load(server, args.idle, 0, args, "idle" if kind == "runtime" else None, 1)
        opened = time.perf_counter() - started
        try:
            for process, _ in load:
                await process.stdin.send_all(b"GO\n")
            await trio.sleep(1.0)
            after = proc_rss_kb(server.pid)
            if kind == "runtime":
                import httpx

                async with httpx.AsyncClient(timeout=30) as http:
                    metrics = (await http.get(server.control + "/metrics")).text
                verify(f'runtime_subscriptions{{transport="websocket"}} {args.idle}' in metrics,
                       f"the runtime does not count {args.idle} websocket subscriptions")
        finally:
            for process, _ in load:
                await stop(process)
    finally:
        await stop(server.process)
    return {"kind": kind, "before": before, "after": after, "per_conn_kb": (after - before) / args.idle,
            "open_s": opened}


def events_for(kind: str, subs: int, args: argparse.Namespace) -> int:
    """Events for a row: a budget of deliveries per server (the slow ones get fewer), at least 10 events."""
    deliveries = {"runtime": args.deliveries, "quart": args.quart_deliveries}.get(kind, args.baseline_deliveries)
    return max(10, deliveries // subs)


def label(row: Row) -> str:
    if row.server != "runtime":
        return LABELS[row.server]
    if row.producers == 1:
        return LABELS["runtime"] + ", 1 producer"
    return LABELS["runtime"] + f", {row.producers} producers"


def print_table(rows: list[Row], paced: Row | None, rss: list[dict[str, Any]], args: argparse.Namespace) -> None:
    base = {row.subs: row for row in rows if row.server == "trio-websocket"}
    width = max([len(label(row)) for row in rows] or [0])
    print(f"{'server':<{width}}  {'subs':>5}  {'events':>6}  {'deliveries/s':>12}  {'p50 ms':>7}  {'p99 ms':>7}  "
          f"{'srv µs/deliv':>12}  {'srv busy':>8}  {'srv runq':>8}  {'client CPU':>10}  {'other CPU s':>11}  "
          f"{'deliv/read':>10}  "
          f"{'resyncs':>7}  {'srv gc ms':>9}  {'vs trio-ws':>10}")
    for row in rows:
        b = base.get(row.subs)
        ratio = f"{row.deliveries_per_s / b.deliveries_per_s:>9.2f}x" if b and row is not b else f"{'-':>10}"
        resyncs = f"{row.resyncs}/{row.resynced_subs}" if row.resyncs else "0"
        gc = f"{row.gc_ms:.0f}/{row.gc_max_ms:.0f}"
        print(f"{label(row):<{width}}  {row.subs:>5,}  {row.events:>6,}  {row.deliveries_per_s:>12,.0f}  "
              f"{row.p50:>7.1f}  {row.p99:>7.1f}  {1e6 * row.server_cpu / row.received:>12.2f}  "
              f"{100 * row.server_busy:>7.0f}%  {100 * row.server_waited:>7.0f}%  "
              f"{100 * row.client_cpu:>6.0f}% x{row.clients}  {row.others:>11.2f}  "
              f"{row.per_recv:>10.1f}  {resyncs:>7}  {gc:>9}  {ratio}{row.note}")
    print()
    print(f"{os.cpu_count()} CPUs, shared by the server, the driver and the load processes (xK = K of them; client CPU "
          f"is the busiest one's CPU time over its wall time). Payload pad {args.size} B.")
    print("Runtime rows: P producer tasks calling set() concurrently (1 producer: each set() awaited before the "
          "next, so every event is its own group turn and its own write per connection); outbox_limit 64 MiB; "
          "server-side slow-consumer drops in these rows: "
          f"{sum(r.drops for r in rows if r.server == 'runtime')}.")
    print("deliveries/s = events received by all subscribers / (last receipt - publish request sent); latency = "
          "receipt - t (set just before the mutation / the broadcast); srv busy = server CPU / row time; srv runq = "
          "share of the row the server was runnable but waiting for a CPU (/proc schedstat: contention); "
          "deliv/read = frames per socket read at the load (how much the server coalesced); other CPU s = busy CPU "
          "on the machine not charged to the server, load or driver (other programs, loopback softirq); srv gc ms = "
          "the server's collector pauses in the row, total/longest (gc.callbacks, every server).")
    print("Every subscriber got seq 1..n in order, no gap, no repeat, no unexpected frame; resyncs (count/subscribers) "
          "would be fresh syncs from the slow-consumer policy, their skipped events not counted as deliveries.")
    saturated = [row for row in rows if row.client_cpu >= 0.9]
    if saturated:
        print("client CPU >= 90% in: " + ", ".join(f"{label(r)} x{r.subs}" for r in saturated)
              + " (the load, not the server, may be the limit there: see srv busy)")
    print("Max-rate rows publish their events as fast as they can: their latency is mostly the queue that burst "
          "builds; latency under a steady load is the 70% line below.")
    print()
    ours = [r for r in rows if r.server == "runtime" and r.subs == 1000]
    tws = base.get(1000)
    if ours:
        best = max(ours, key=lambda r: r.deliveries_per_s)
        rate = best.deliveries_per_s
        limit = "; the load, not the server, was the limit" if best.client_cpu >= 0.9 else ""
        print(f"target >= {TARGET_RATE:,} deliveries/s at 1,000 subscribers: {rate:,.0f} "
              f"({'met' if rate >= TARGET_RATE else 'NOT met'}; {label(best)}: server {100 * best.server_busy:.0f}% "
              f"busy, load {100 * best.client_cpu:.0f}% CPU{limit})")
        if tws:
            ratio = rate / tws.deliveries_per_s
            us, tws_us = best.server_cpu / best.received, tws.server_cpu / tws.received
            single = [r for r in ours if r.producers == 1]
            also = (f"; with 1 producer {single[0].deliveries_per_s / tws.deliveries_per_s:.2f}x, "
                    f"{1e6 * single[0].server_cpu / single[0].received:.1f} µs") if single else ""
            print(f"target >= {TARGET_RATIO:.0f}x trio-websocket at 1,000 subscribers: {ratio:.2f}x "
                  f"({'met' if ratio >= TARGET_RATIO else 'NOT met'}; server CPU per delivery {1e6 * us:.2f} µs vs "
                  f"{1e6 * tws_us:.1f} µs, {tws_us / us:.0f}x less{also})")
    if paced:
        print(f"target p99 <= {TARGET_P99_MS:.0f} ms at 70% of the max rate: 1,000 subscribers, {paced.rate:,.0f} "
              f"events/s offered on a fixed schedule ({1000 * paced.rate:,.0f} deliveries/s) for "
              f"{paced.events:,} events, "
              f"published in {paced.publish_s:.2f} s (last set {1000 * paced.behind_s:+.0f} ms vs its slot), "
              f"{paced.deliveries_per_s:,.0f} deliveries/s received: p50 {paced.p50:.1f} ms, p99 {paced.p99:.1f} ms "
              f"from the scheduled time ({'met' if paced.p99 <= TARGET_P99_MS else 'NOT met'}; server busy "
              f"{100 * paced.server_busy:.0f}%, runq {100 * paced.server_waited:.0f}%, other CPU {paced.others:.2f} s, "
              f"{paced.server_cpu * 1e6 / paced.received:.1f} µs/delivery, {paced.per_recv:.1f} deliveries/read, "
              f"gc {paced.gc_ms:.0f} ms in {paced.gc_count} pauses ({paced.gc_full} full), longest "
              f"{paced.gc_max_ms:.0f} ms; load {100 * paced.client_cpu:.0f}% CPU)")
    for r in rss:
        line = (f"RSS per idle connection, {r['kind']}, {args.idle:,} connections"
                f"{' joined to one group' if r['kind'] == 'runtime' else ''}: {r['per_conn_kb']:.1f} KB "
                f"(VmRSS {r['before'] / 1024:.1f} -> {r['after'] / 1024:.1f} MiB; opened in {r['open_s']:.1f} s)")
        if r["kind"] == "runtime":
            line += f" (target <= {TARGET_RSS_KB:.0f} KB: {'met' if r['per_conn_kb'] <= TARGET_RSS_KB else 'NOT met'})"
        print(line)


async def drive(args: argparse.Namespace) -> None:
    if args.load == "c":
        native = load_helper("_native")
        try:
            native.load("_fanout_recv")  # built once here, before the load processes need it
        except native.NativeUnavailable as exc:
            print(f"{exc}\nthe load receives in Python instead (--load python)", file=sys.stderr)
            args.load = "python"
    counts = [int(c) for c in args.subscribers.split(",") if c]
    rows: list[Row] = []
    paced: Row | None = None
    rss: list[dict[str, Any]] = []
    ids = (str(i) for i in itertools.count())
    profile_out = None
    kinds = ["runtime"] if args.profile or args.sweep else [k for k in SERVERS if k in args.servers.split(",")]
    if args.profile:
        profile_out = os.path.join(tempfile.mkdtemp(prefix="bench-fanout-"), "server.prof")
    servers: dict[str, Server] = {}
    with trio.fail_after(args.total_timeout):
        try:
            for kind in kinds:
                servers[kind] = await start_server(kind, profile_out if kind == "runtime" else None)
            for server in servers.values():  # warm up: imports, first requests, first group; not reported
                await run_row(server, 10, 20, args, f"warm-{next(ids)}")
            if args.sweep:
                for event_rate in (float(r) for r in args.sweep.split(",")):
                    row = await run_row(servers["runtime"], 1000, max(20, int(event_rate * args.paced_seconds)), args,
                                        next(ids), producers=args.producers, rate=event_rate)
                    print(f"paced {event_rate:6.0f} events/s ({1000 * event_rate:>8,.0f} deliveries/s offered): "
                          f"p50 {row.p50:7.1f} ms  p99 {row.p99:7.1f} ms  last set {1000 * row.behind_s:+6.0f} ms  "
                          f"srv busy {100 * row.server_busy:3.0f}%  runq {100 * row.server_waited:3.0f}%  "
                          f"{1e6 * row.server_cpu / row.received:5.1f} µs/deliv  {row.per_recv:5.1f} deliv/read  "
                          f"client CPU {100 * row.client_cpu:3.0f}%  other CPU {row.others:5.2f} s  "
                          f"gc {row.gc_count} ({row.gc_full} full) {row.gc_ms:.0f} ms, max {row.gc_max_ms:.0f} ms",
                          flush=True)
                return
            if args.profile:
                spec, _, rate = args.profile.partition("@")
                subs, _, producers = spec.partition(":")
                subs, producers = int(subs), int(producers or args.producers)
                if rate:  # paced, as a --sweep row
                    events = max(20, int(float(rate) * args.paced_seconds))
                else:
                    events = events_for("runtime" if producers > 1 else "baseline", subs, args)
                rows.append(await run_row(servers["runtime"], subs, events, args, next(ids), producers=producers,
                                          rate=float(rate) if rate else None, profile=True))
                await stop(servers["runtime"].process, signal.SIGTERM, wait=30)
            else:
                for subs in counts:
                    for kind in kinds:
                        for producers in ([1, args.producers] if kind == "runtime" else [1]):
                            closed = kind == "runtime" and producers == 1
                            events = events_for("baseline" if closed else kind, subs, args)
                            row = await run_row(servers[kind], subs, events, args, next(ids), producers=producers)
                            rows.append(row)
                            print(f"  {kind:>14} x{subs:<5,} {producers:>3} producer(s): "
                                  f"{row.deliveries_per_s:>9,.0f} deliveries/s", file=sys.stderr)
                ours = [r for r in rows if r.server == "runtime" and r.subs == 1000]
                if ours:
                    best = max(ours, key=lambda r: r.deliveries_per_s)
                    event_rate = 0.7 * best.deliveries_per_s / 1000
                    paced = await run_row(servers["runtime"], 1000, max(20, int(event_rate * args.paced_seconds)), args,
                                          next(ids), producers=args.producers, rate=event_rate)
        finally:
            for server in servers.values():
                await stop(server.process)
        if not args.profile and args.idle:
            for kind in args.idle_servers.split(","):
                rss.append(await idle_rss(kind, args))
    print_table(rows, paced, rss, args)
    if profile_out:
        print()
        print(f"runtime server profile, {args.profile} subscribers (SIGUSR1 just before /publish to after the last "
              "receipt):")
        stats = pstats.Stats(profile_out, stream=sys.stdout).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.profile_lines)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["driver", "runtime", "client"], default="driver", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=100, help="bytes of padding in each event's payload")
    parser.add_argument("--subscribers", default="100,1000,5000", help="subscriber counts, comma-separated")
    parser.add_argument("--servers", default=",".join(SERVERS), help="servers to run, comma-separated")
    parser.add_argument("--deliveries", type=int, default=3_000_000,
                        help="deliveries per max-rate runtime row (events = this / subscribers, at least 10)")
    parser.add_argument("--baseline-deliveries", type=int, default=100_000,
                        help="deliveries per trio-websocket row and 1-producer runtime row")
    parser.add_argument("--quart-deliveries", type=int, default=50_000, help="deliveries per quart row")
    parser.add_argument("--producers", type=int, default=64,
                        help="concurrent set() tasks in the runtime's max-rate and paced rows "
                             "(a 1-producer row runs too)")
    parser.add_argument("--clients", type=int, default=1, help="load processes (rows of < 100 subscribers use 1)")
    parser.add_argument("--paced-seconds", type=float, default=3.0, help="length of the 70%% row")
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections for the RSS figure (0: skip)")
    parser.add_argument("--idle-servers", default="runtime,trio-websocket", help="servers whose RSS is measured")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a row may take before it fails")
    parser.add_argument("--total-timeout", type=float, default=600, help="seconds the whole run may take")
    parser.add_argument("--profile", metavar="SUBS[:PRODUCERS][@EVENTS_PER_S]",
                        help="profile the runtime server in one row instead (@: paced at that rate)")
    parser.add_argument("--profile-lines", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--sweep", metavar="RATES",
                        help="instead: paced runtime rows at 1,000 subscribers at these events/s (comma-separated)")
    # the roles' own arguments
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="runtime server without gc_freeze (python -m runtime serve freezes start-up objects)")
    parser.add_argument("--load", choices=["c", "python"], default="c",
                        help="the load's receive loop: C (bench/_fanout_recv.c, the default) or Python")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--subs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--connect-concurrency", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "runtime":
        runtime_role(args)
    elif args.role == "client":
        client_role(args)
    else:
        raise_fd_limit()
        if args.no_gc_freeze:
            os.environ["FANOUT_GC_FREEZE"] = "0"  # inherited by the runtime server process
        trio.run(drive, args)
