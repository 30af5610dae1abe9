"""A real Chromium driven by Playwright, against a real server process, for the browser tests.

The browser is Debian's ``/usr/bin/chromium`` (``executable_path``): Playwright's
own driver is used, its downloadable browsers never are (no ``playwright
install``). When the binary is missing it is installed with apt-get (CI runs
as root on a clean clone); when that is impossible the tests skip, except
under ``CI=true``, where they fail loudly rather than pass by skipping.

Browser tests are plain sync test functions (Playwright's sync API; the
suite's trio_mode only takes over async tests)::

    from tests.browser_support import browser, page, server_process   # noqa: F401 - pytest fixtures, used by name

    def test_page(page, tmp_path):
        with server_process("serve", str(project)) as server:
            page.goto(server.http_url + "/_console/")
            page.wait_for_selector("text=todo")

``browser`` is launched once per module with a fresh user-data directory;
``page`` is a new page per test (import both names when you use ``page``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "ensure_chromium", "browser", "page", "server_process", "Server"]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
#: No GPU, no sandbox (containers, root in CI), and no traffic of its own:
#: the only network a test browser sees is the server under test.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if _IN_CI:
        pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _apt_get(*args: str, attempts: int = 5) -> bool:
    """Run apt-get; it waits up to a minute for a lock another install holds, and is retried after that."""
    for _ in range(attempts):
        result = subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=60", *args],
            capture_output=True, text=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if result.returncode == 0:
            return True
        if "lock" not in (result.stderr + result.stdout).lower():
            sys.stderr.write(result.stderr)
            return False
    return False


def ensure_chromium() -> str:
    """The path of Debian's Chromium, installed with apt-get if it is missing."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if shutil.which("apt-get") is None:
        _unavailable(f"{CHROMIUM} is missing and there is no apt-get to install it")
    elif os.geteuid() != 0:
        _unavailable(f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium) as root")
    elif not (_apt_get("update") and _apt_get("install", "-y", "--no-install-recommends", "chromium")):
        _unavailable("apt-get could not install chromium")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is still missing after apt-get install chromium")
    return CHROMIUM


def _sync_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    return sync_playwright()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for this module (a Playwright ``BrowserContext``), with a fresh user-data directory."""
    executable = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="runtime-chromium-") as profile:
        with _sync_playwright() as playwright:
            # A persistent context is how Playwright takes a user-data dir of our choosing.
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 800},
            )
            try:
                yield context
            finally:
                context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new page, closed after the test with the module's cookies cleared, so tests do not see each
    other's state; console messages and page errors are echoed to the test's output."""
    one = browser.new_page()
    one.on("console", lambda message: print(f"[browser {message.type}] {message.text}"))
    one.on("pageerror", lambda error: print(f"[browser pageerror] {error}"))
    try:
        yield one
    finally:
        one.close()
        browser.clear_cookies()


@attrs.frozen
class Server:
    process: subprocess.Popen[bytes]
    http_url: str
    stream_url: str


@contextmanager
def server_process(command: str, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 30.0, port: int = 0, stream_port: int = 0) -> Iterator[Server]:
    """``python -m runtime COMMAND ARGS --port 0 --stream-port 0`` (``serve`` or ``dev``) as a real process.

    Fixed ``port`` / ``stream_port`` are for a test that restarts a server where its clients reconnect.

    Yields once it prints its "listening on" line; it is stopped (SIGTERM,
    then SIGKILL) on the way out. Its stderr goes to the test's output.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime", command, *args, "--port", str(port), "--stream-port", str(stream_port)],
        stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            line = process.stdout.readline().decode()
            if not line:
                raise AssertionError(f"`python -m runtime {command}` exited ({process.wait()}) before listening")
            if "listening on " in line:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"`python -m runtime {command}` did not listen within {timeout} s")
        http_url, _, stream_url = line.split("listening on ", 1)[1].split()[:3]
        yield Server(process, http_url, stream_url)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
