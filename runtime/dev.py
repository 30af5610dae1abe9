"""``python -m runtime dev [DIR]``: serve a project with the console on, and reload it when a file changes.

The loop (docs/dev.md): load the project; serve it (console on, readable
coloured logs); watch DIR for changes to ``.py`` files (hidden folders,
``.runtime/`` and virtual environments ignored); on a change, load the
project again in this process, its own modules imported afresh. If that
load fails, the running version keeps serving and each problem (file, line,
error) is printed and shown in the console's banner. If it loads, the
running server shuts down gracefully and the new one starts on the same
ports with the same storage (SQLite by default): groups keep their epoch
and history, so a client that reconnects with its last position (SSE
``Last-Event-ID``, WebSocket ``since``) is resumed with the events it
missed instead of a fresh sync.

Reloading restarts the app rather than swapping handlers in place: streams,
triggers, queues and cron are wired at start, and a restart rewires all of
them with no half-old state. It costs the clients a reconnect (EventSource
retries after the ``retry:`` hint).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import trio

__all__ = ["add_dev_parser", "run_dev", "ColourFormatter"]

logger = logging.getLogger("runtime.dev")

_SKIP_DIRS = {".runtime", "__pycache__", "node_modules", ".venv", "venv", ".git"}


def add_dev_parser(commands: Any) -> None:
    dev = commands.add_parser("dev", help="serve a project with the console on, reloading it when a file changes")
    dev.add_argument("directory", nargs="?", default=".", help="the project directory (default: .)")
    dev.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    dev.add_argument("--port", type=int, default=3111, help="HTTP port (default: 3111; 0 picks a free one)")
    dev.add_argument("--stream-port", type=int, default=3112, help="WebSocket stream port (default: 3112)")
    dev.add_argument("--storage",
                     help="memory | sqlite:PATH | redis://HOST:PORT/DB (default: sqlite:DIR/.runtime/runtime.db)")
    dev.add_argument("--console-token", help="require this token for the console (needed off loopback)")


# -- logs ------------------------------------------------------------------------------------


def _colour_wanted(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    return bool(os.environ.get("FORCE_COLOR")) or (hasattr(stream, "isatty") and stream.isatty())


class ColourFormatter(logging.Formatter):
    """The text format of ``serve`` with the level coloured and the trace id dimmed."""

    _LEVELS = {"DEBUG": "\033[2m", "INFO": "\033[32m", "WARNING": "\033[33m", "ERROR": "\033[31m",
               "CRITICAL": "\033[1;31m"}

    def __init__(self) -> None:
        from .logs import TextFormatter

        super().__init__()
        self._text = TextFormatter()

    def format(self, record: logging.LogRecord) -> str:
        line = self._text.format(record)
        colour = self._LEVELS.get(record.levelname, "")
        line = line.replace(f" {record.levelname:<5} ", f" {colour}{record.levelname:<5}\033[0m ", 1)
        return re.sub(r"  trace=(\S+)", "  \033[2mtrace=\\1\033[0m", line, count=1)


def _configure_logging() -> None:
    from .logs import configure_logging

    configure_logging(json=False)
    if _colour_wanted(sys.stderr):
        for name in ("runtime", "actors"):
            for handler in logging.getLogger(name).handlers:
                if getattr(handler, "_runtime_handler", False):
                    handler.setFormatter(ColourFormatter())


def _say(message: str, colour: str = "") -> None:
    """A line of the dev loop itself, on stdout (the logs go to stderr)."""
    if colour and _colour_wanted(sys.stdout):
        message = f"{colour}{message}\033[0m"
    print(message, flush=True)


# -- loading ----------------------------------------------------------------------------------


def _forget_modules(root: Path) -> None:
    """Drop every imported module whose file is under ``root``, so the next load imports them afresh
    (step files and the helpers they import alike)."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file:
            try:
                Path(file).resolve().relative_to(root)
            except ValueError:
                continue
            del sys.modules[name]


def problems_of(exc: Exception) -> list[dict[str, Any]]:
    """A failed load as ``{file, line, message}`` entries (for the terminal and the console's banner)."""
    problems = getattr(exc, "problems", None)
    if not problems:
        return [{"file": None, "line": None, "message": f"{type(exc).__name__}: {exc}"}]
    return [{"file": p.file or None, "line": p.line, "message": p.message} for p in problems]


def load(root: Path) -> Any:
    """The project at ``root`` loaded afresh; raises `ProjectError` (or another error) when it cannot be."""
    from .steps.loader import load_project

    _forget_modules(root)
    return load_project(root)


def _watched(change: Any, path: str) -> bool:
    parts = Path(path).parts
    return path.endswith(".py") and not any(p in _SKIP_DIRS or p.startswith(".") for p in parts[:-1])


# -- the loop ---------------------------------------------------------------------------------------


async def _serve_until(app: Any, args: argparse.Namespace, ports: dict[str, int], reload: trio.Event,
                       errors: list[dict[str, Any]], reloads: int, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` until ``reload`` is set, then shut it down gracefully."""
    from .server.settings import ServerSettings

    settings = ServerSettings(host=args.host, port=ports["http"], stream_port=ports["stream"])
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(lambda task_status: app.serve(
            settings, shutdown=shutdown, console=True, console_token=args.console_token, task_status=task_status))
        if app.console is not None:
            app.console.dev_errors = errors
            app.console.dev = {"reloads": reloads}
        task_status.started(listening)
        await reload.wait()
        shutdown.set()


async def run_dev(args: argparse.Namespace) -> int:
    import watchfiles

    from .__main__ import default_storage_url
    from .app import App
    from .steps.loader import Project

    root = Path(args.directory).resolve()
    if not root.is_dir():
        print(f"error: {args.directory} is not a directory", file=sys.stderr)
        return 2
    storage_url = args.storage or default_storage_url(str(root))
    errors: list[dict[str, Any]] = []
    try:
        project = load(root)
    except Exception as exc:  # noqa: BLE001 - shown, and served empty until the files are fixed
        errors = problems_of(exc)
        _report(errors)
        project = Project(root)
    ports = {"http": args.port, "stream": args.stream_port}
    reloads = 0
    from .storage import open_storage

    async with trio.open_nursery() as nursery:
        changes: trio.MemorySendChannel[set[Any]]
        changes, incoming = trio.open_memory_channel[set[Any]](1)

        async def watch() -> None:
            async for batch in watchfiles.awatch(root, watch_filter=_watched, debounce=200, step=50):
                await changes.send(batch)

        nursery.start_soon(watch)
        while True:
            try:
                app = App(project, storage=open_storage(storage_url))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                nursery.cancel_scope.cancel()
                return 2
            reload = trio.Event()
            served = trio.Event()

            async def serve_one(app: Any = app, reload: trio.Event = reload, served: trio.Event = served,
                                reloads: int = reloads, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await _serve_until(app, args, ports, reload, errors, reloads, task_status=task_status)
                finally:
                    served.set()

            listening = await nursery.start(serve_one)
            ports["http"] = int(listening.http_url.rsplit(":", 1)[1])
            ports["stream"] = int(listening.stream_url.rsplit(":", 1)[1].split("/")[0])
            if reloads == 0:
                print(f"listening on {listening.http_url} and {listening.stream_url} (storage {storage_url})",
                      flush=True)
                if app.console is not None:
                    _say(f"console on {app.console.url(listening.http_url)}", "\033[1;36m")
                _say(f"watching {root} for changes")
            else:
                _say(f"reloaded ({reloads}): listening on {listening.http_url}", "\033[1;32m")
            while True:
                batch = await incoming.receive()
                names = sorted({str(Path(path).relative_to(root)) for _, path in batch})
                _say(f"changed: {', '.join(names)}")
                try:
                    project = load(root)
                except Exception as exc:  # noqa: BLE001 - the running version keeps serving
                    errors[:] = problems_of(exc)
                    _report(errors)
                    continue
                errors.clear()
                break
            reload.set()
            await served.wait()
            reloads += 1


def _report(errors: list[dict[str, Any]]) -> None:
    _say("the project did not load; the last version that loaded keeps serving:", "\033[1;31m")
    for error in errors:
        where = f"{error['file']}:{error['line']}" if error["line"] else (error["file"] or "")
        _say(f"  {where}: {error['message']}" if where else f"  {error['message']}", "\033[31m")


def main(args: argparse.Namespace) -> int:
    _configure_logging()
    try:
        return trio.run(run_dev, args)
    except KeyboardInterrupt:
        return 130
