"""What the multi-process benchmarks share: checks, /proc readings, pipes, signals."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from typing import Any

import trio

__all__ = [
    "verify", "raise_fd_limit", "proc_cpu", "system_busy", "Lines", "wait_for_stop_signal", "start_listening", "stop",
    "wait_for_stop_signal_profiling", "delete_redis_prefix",
]


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


async def wait_for_stop_signal_profiling(profile_out: str | None) -> None:
    """Until SIGTERM or SIGINT; with ``profile_out``, each SIGUSR1 starts or stops cProfile,
    and the profile is written there at the end (the driver brackets one row with SIGUSR1)."""
    import cProfile

    profiler = cProfile.Profile() if profile_out else None
    profiling = False
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGUSR1) as signals:
        async for signum in signals:
            if signum != signal.SIGUSR1:
                break
            if profiler is not None:
                profiler.disable() if profiling else profiler.enable()
                profiling = not profiling
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_out)


async def start_listening(argv: list[str], name: str, env: dict[str, str] | None = None) -> tuple[Any, list[str]]:
    """Start a server process and wait for its ``LISTENING <field> ...`` line; (process, fields)."""
    process = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, env=env)
    try:
        with trio.fail_after(30):
            line = await Lines(process.stdout).readline()
        verify(line.startswith("LISTENING "), f"{name} server said {line!r}")
    except BaseException:
        process.kill()
        raise
    return process, line.split()[1:]


async def stop(process: Any, sig: int = signal.SIGKILL, wait: float = 10) -> None:
    """Signal a server process and reap it, killing it if it outlives ``wait`` seconds."""
    if process.returncode is None:
        process.send_signal(sig)
    with trio.move_on_after(wait, shield=True):
        await process.wait()
    if process.returncode is None:
        process.kill()
        with trio.move_on_after(5, shield=True):
            await process.wait()


def delete_redis_prefix(url: str, prefix: str) -> None:
    """Delete a run's keys (``prefix:*``) from the shared Redis, never anything else."""
    subprocess.run(
        ["redis-cli", "-u", url, "EVAL",
         "local k = redis.call('KEYS', ARGV[1]) for i = 1, #k, 500 do "
         "redis.call('DEL', unpack(k, i, math.min(i + 499, #k))) end return #k", "0", f"{prefix}:*"],
        stdout=subprocess.DEVNULL, check=False,
    )
