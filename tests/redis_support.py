"""A real Redis for the tests: the one on 127.0.0.1:6379, started when nothing answers.

Under ``CI=true`` a Redis that cannot be reached or started fails the test
(never a skip), so a broken environment cannot pass CI by testing less.
Every test gets its own key prefix and its keys are deleted afterwards, so
tests never see each other's data and never flush anything.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

HOST, PORT = "127.0.0.1", 6379


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis_server(port: int, *extra: str) -> None:
    """Start a throw-away redis-server on ``port`` (no disk), and wait until it answers."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    subprocess.run(
        [binary, "--daemonize", "yes", "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no",
         *extra],
        check=True, stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _answers(HOST, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server on port {port} did not answer")
        time.sleep(0.05)


def ensure_redis() -> str:
    """The URL of a Redis that answers, starting one if needed; fails (CI) or skips (locally)."""
    if not _answers(HOST, PORT):
        try:
            start_redis_server(PORT)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            message = f"no Redis on {HOST}:{PORT} and none could be started: {exc}"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(message)
            pytest.skip(message)
    return f"redis://{HOST}:{PORT}/0"


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def delete_prefix(prefix: str, port: int = PORT) -> None:
    """Delete every key whose name starts with ``prefix`` (synchronously: it runs after the test's event loop)."""
    script = (
        "local keys = redis.call('KEYS', ARGV[1]) "
        "for i = 1, #keys, 500 do redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys))) end "
        "return #keys"
    )
    subprocess.run(
        ["redis-cli", "-h", HOST, "-p", str(port), "EVAL", script, "0", f"{prefix}*"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]
