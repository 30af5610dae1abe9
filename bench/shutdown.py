"""SIGTERM to exit of ``python -m runtime serve``, beside the same server with nothing open.

    .venv/bin/python bench/shutdown.py [--runs 7]

Rows, from the same run (a throwaway project with one stream and one streaming step, memory
storage, both ports on free loopback ports):

- baseline: SIGTERM with no connection open;
- an idle keep-alive HTTP connection (one request answered) and three WebSockets joined to a
  group: each must get its 1001 close frame, the keep-alive connection its EOF;
- a streaming response in flight: SIGTERM, then the handler is released (a file appears) and
  finishes; the time from its last chunk to the exit.

Every run checks exit status 0. The grace period (``shutdown_timeout``) is 5 s: these figures
are what docs/operations.md ("Shutdown") quotes.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UPGRADE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
FEED = 'from runtime import StreamConfig\nconfig = StreamConfig(name="feed")\n'
SLOW = '''
from pathlib import Path
import trio
from runtime import http, step

slow = step({"name": "Slow", "triggers": [http("GET", "/slow")]})

@slow.handle
async def slow_stream(request, ctx):
    response = request.response
    await response.status(200)
    try:
        response.writer.stream.write(b"first\\n")
        while not Path(__file__).with_name("release").exists():
            await trio.sleep(0.005)
        response.writer.stream.write(b"last\\n")
    finally:
        response.close()
'''


def masked_text(payload: bytes) -> bytes:
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload  # a zero mask: the payload as is


def start(project: Path) -> tuple[subprocess.Popen[bytes], tuple[str, int], tuple[str, int]]:
    process = subprocess.Popen([sys.executable, "-m", "runtime", "serve", str(project), "--port", "0",
                                "--stream-port", "0", "--storage", "memory"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    http_url, _, stream_url = line.split("listening on ", 1)[1].split()[:3]

    def address(url: str) -> tuple[str, int]:
        host, port = url.split("//")[1].split(":")
        return host, int(port)

    return process, address(http_url), address(stream_url)


def stopped(process: subprocess.Popen[bytes], since: float) -> float:
    assert process.wait(timeout=30) == 0, process.returncode
    return time.monotonic() - since


def nothing_open(project: Path) -> float:
    process, _, _ = start(project)
    since = time.monotonic()
    process.send_signal(signal.SIGTERM)
    return stopped(process, since)


def keep_alive_and_websockets(project: Path) -> float:
    process, http, stream = start(project)
    keep_alive = socket.create_connection(http)
    keep_alive.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b'"ok"' in keep_alive.recv(4096)
    websockets = []
    for n in range(3):
        ws = socket.create_connection(stream)
        ws.sendall(UPGRADE)
        assert b" 101 " in ws.recv(4096)
        ws.sendall(masked_text(b'{"type":"join","data":{"streamName":"feed","groupId":"g%d","subscriptionId":"s"}}'
                               % n))
        assert b"sync" in ws.recv(65536)
        websockets.append(ws)
    since = time.monotonic()
    process.send_signal(signal.SIGTERM)
    took = stopped(process, since)
    assert all(ws.recv(64)[:4] == b"\x88\x16\x03\xe9" for ws in websockets), "a WebSocket without its 1001"
    assert keep_alive.recv(64) == b""
    return took


def streaming_in_flight(project: Path) -> float:
    release = project / "release"
    release.unlink(missing_ok=True)
    process, http, _ = start(project)
    busy = socket.create_connection(http)
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"first" not in head:
        head += busy.recv(4096)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the drain has begun
    release.touch()
    rest = b""
    while not rest.endswith(b"0\r\n\r\n"):
        rest += busy.recv(4096)
    since = time.monotonic()
    return stopped(process, since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        project = Path(directory)
        (project / "feed_stream.py").write_text(FEED)
        (project / "slow_step.py").write_text(SLOW)
        rows = [("baseline: nothing open, SIGTERM -> exit", nothing_open),
                ("idle keep-alive + 3 WebSockets, SIGTERM -> exit", keep_alive_and_websockets),
                ("streaming response in flight, last chunk -> exit", streaming_in_flight)]
        for name, case in rows:
            times = [case(project) for _ in range(args.runs)]
            print(f"{name:52} median {statistics.median(times) * 1000:7.1f} ms  "
                  f"min {min(times) * 1000:7.1f}  max {max(times) * 1000:7.1f}  ({args.runs} runs)")


if __name__ == "__main__":
    main()
