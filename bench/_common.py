"""What the multi-process benchmarks share: checks, /proc readings, pipes, signals."""

from __future__ import annotations

import os
import resource
import signal
from typing import Any

import trio

__all__ = ["verify", "raise_fd_limit", "proc_cpu", "system_busy", "Lines", "wait_for_stop_signal"]


def verify(condition: bool, message: str) -> None:
    """An assert that ``python -O`` cannot switch off: a figure must be for work done."""
    if not condition:
        raise AssertionError(message)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_cpu(pid: int) -> float:
    """utime + stime of a process, seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_busy() -> float:
    """CPU seconds every process on the machine spent busy (the ``cpu`` line of /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Lines:
    """Lines from a Trio receive stream (the pipes between the processes)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def readline(self) -> str:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line.decode()
            data = await self._stream.receive_some(1 << 20)
            if not data:
                raise EOFError("the process closed its output")
            self._buffer += data


async def wait_for_stop_signal() -> None:
    """Until SIGTERM or SIGINT: how a benchmark's server process is told to stop."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            return
