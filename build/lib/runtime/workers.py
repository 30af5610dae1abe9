"""``serve --workers N``: one parent, N worker processes sharing the HTTP and stream ports.

Why processes: one Python process uses one core; the kernel (SO_REUSEPORT,
see server/bind.py) spreads new connections over the workers, and the
workers share streams, queues and cron through the Redis storage exactly
as several hosts do (docs/deployment.md), so a worker is just ``serve``
with ``--worker-id``. Without a shared storage each worker would hold its
own copy of every group, so the parent refuses (exit 2).

The parent does three things: starts the workers, restarts one that dies
(after 0.1 s, doubling to 5 s while they keep dying fast; each restart is
logged and counted), and on SIGTERM or SIGINT forwards SIGTERM to every
worker, waits for all of them to drain and exits 0 (a second signal
kills them).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

import trio

__all__ = ["run_workers", "worker_count"]

logger = logging.getLogger("runtime.workers")

#: A worker that ran this long before dying is restarted after the shortest delay again.
HEALTHY_SECONDS = 10.0


def worker_count(value: str) -> int:
    """``auto`` is the number of cores; otherwise a positive integer (argparse type)."""
    if value == "auto":
        return os.cpu_count() or 1
    count = int(value)
    if count < 1:
        raise ValueError(value)
    return count


class _Workers:
    def __init__(self, argv: list[str], count: int) -> None:
        self.argv = argv
        self.count = count
        self.stopping = False
        self.restarts = 0
        self.processes: dict[int, trio.Process] = {}

    async def run_one(self, worker: int) -> None:
        delay = 0.1
        while not self.stopping:
            command = [sys.executable, "-m", "runtime", *self.argv, "--worker-id", str(worker)]
            started = trio.current_time()
            process = await trio.lowlevel.open_process(command)
            self.processes[worker] = process
            print(f"worker {worker} started (pid {process.pid})", flush=True)
            try:
                code = await process.wait()
            finally:
                if process.returncode is None:  # the parent is being cancelled: a second signal
                    process.kill()
                    with trio.CancelScope(shield=True):
                        await process.wait()
            if self.stopping:
                return
            self.restarts += 1
            if trio.current_time() - started > HEALTHY_SECONDS:
                delay = 0.1
            logger.warning("worker %d (pid %d) exited with %s; restarting it in %.1f s (restart %d)",
                           worker, process.pid, code, delay, self.restarts)
            print(f"worker {worker} exited ({code}); restarting in {delay:.1f} s", flush=True)
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def stop(self) -> None:
        self.stopping = True
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)


async def run_workers(argv: Sequence[str], count: int) -> int:
    """Run ``count`` workers of ``serve`` with ``argv`` (without ``--workers``) until signalled."""
    workers = _Workers(list(argv), count)
    async with trio.open_nursery() as nursery:

        async def on_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for _ in signals:
                    if workers.stopping:
                        nursery.cancel_scope.cancel()  # a second signal: kill them
                        return
                    print("shutting down the workers", file=sys.stderr, flush=True)
                    workers.stop()

        await nursery.start(on_signals)
        async with trio.open_nursery() as running:
            for worker in range(1, count + 1):
                running.start_soon(workers.run_one, worker)
        nursery.cancel_scope.cancel()
    return 0


def pick_port(host: str) -> int:
    """A free port for every worker to share (port 0 would give each worker its own)."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


__all__ += ["pick_port"]
