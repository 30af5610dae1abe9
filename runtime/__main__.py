"""``python -m runtime``: the command line.

    python -m runtime serve [DIR] [--host H] [--port P] [--stream-port P] [--storage URL] [--log-json]
    python -m runtime tail STREAM GROUP [ITEM] [--url ws://127.0.0.1:3112] [--token T] [--json]
    python -m runtime dev [DIR]     serve with the console on, reload on change (docs/dev.md)
    python -m runtime new DIR       a project to start from (docs/dev.md)

serves the project in DIR (default ``.``) until SIGINT or SIGTERM, which
shut it down gracefully (exit 0). Its default storage is the SQLite file
``DIR/.runtime/runtime.db``. A broken project, a bad storage URL or a port
in use is one clear line on stderr and a non-zero exit.

    python -m runtime dead-letters [--project DIR] [--storage URL] [--topic T]          list them
    python -m runtime dead-letters [--project DIR] [--storage URL] replay ID [ID ...]   back to their queue
    python -m runtime dead-letters [--project DIR] [--storage URL] replay --all

The default storage is the project's ``DIR/.runtime/runtime.db`` (DIR: ``.``). A replay
puts the message back in the pending queue with a fresh attempt count; a
server picks it up when it starts (a running app replays at once with
``app.replay_dead_letter``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs
import orjson
import trio

from .client.tail import add_tail_parser, run_tail
from .dev import add_dev_parser
from .errors import ConfigurationError, StorageError
from .scaffold import add_new_parser, run_new
from .storage import Storage, open_storage

DEFAULT_DB = Path(".runtime") / "runtime.db"


def default_storage_url(directory: str) -> str:
    return f"sqlite:{Path(directory) / DEFAULT_DB}"


def _storage_or_report(url: str) -> Storage | None:
    """The storage a URL names, or None after one line on stderr saying why not."""
    try:
        return open_storage(url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runtime", description="A real-time streams runtime on Trio.")
    commands = parser.add_subparsers(dest="command", required=True)
    add_tail_parser(commands)
    serve = commands.add_parser("serve", help="serve a project over HTTP (step routes, SSE)")
    serve.add_argument("directory", nargs="?", default=".", help="the project directory (default: .)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=3111, help="HTTP port (default: 3111; 0 picks a free one)")
    serve.add_argument("--stream-port", type=int, default=3112, help="WebSocket stream port (default: 3112)")
    serve.add_argument(
        "--storage", help="memory | sqlite:PATH | redis://HOST:PORT/DB (default: sqlite:DIR/.runtime/runtime.db)"
    )
    serve.add_argument(
        "--log-json", action="store_true", default=None, help="JSON log lines (or RUNTIME_LOG_FORMAT=json)"
    )
    serve.add_argument(
        "--queue-visibility-timeout", type=float, default=30.0, metavar="SECONDS",
        help="on Redis: how long a queue message stays with a process that stopped renewing it before "
             "another takes it over (default: 30)",
    )
    serve.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                       help="allow browser calls from this origin (repeatable; * for any)")
    serve.add_argument("--allowed-origin", action="append", default=[], metavar="URL",
                       help="only these origins may open stream subscriptions (repeatable)")
    serve.add_argument("--console-token", help="require this token for the console at /_console/ (needed off loopback)")
    serve.add_argument("--no-console", dest="console", action="store_false", default=None,
                       help="no console, even on loopback")
    add_dev_parser(commands)
    add_new_parser(commands)
    serve.add_argument("--http", choices=["fast", "asgi"], default="fast",
                       help="what serves the HTTP port: the runtime's own HTTP/1.1 (fast, default; SSE) "
                            "or hypercorn + quart-trio (asgi: TLS, HTTP/2); see docs/http.md")
    serve.add_argument("--tls-certfile", metavar="PEM", help="with --http asgi: TLS certificate")
    serve.add_argument("--tls-keyfile", metavar="PEM", help="with --http asgi: TLS private key")
    serve.add_argument("--workers", default="1", metavar="N",
                       help="worker processes sharing the ports (default 1; auto: one per core); needs redis storage")
    serve.add_argument("--worker-id", type=int, default=0, help=argparse.SUPPRESS)
    dead = commands.add_parser("dead-letters", help="list or replay queue messages that exhausted their retries")
    dead.add_argument("--project", dest="directory", default=".", help="the project directory (default: .)")
    dead.add_argument("--storage", help="storage URL (default: sqlite:DIR/.runtime/runtime.db)")
    dead.add_argument("--topic", help="only this topic")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    actions = dead.add_subparsers(dest="action")
    replay = actions.add_parser("replay", help="put dead letters back in their queue")
    replay.add_argument("ids", nargs="*", help="message ids to replay")
    replay.add_argument("--all", action="store_true", help="replay every dead letter (of --topic, if given)")
    return parser


async def _dead_letters(args: argparse.Namespace, storage: Storage) -> int:
    async with storage:
        letters = await storage.dead_letters(args.topic)
        if args.action != "replay":
            for letter in letters:
                if args.json:
                    print(orjson.dumps(attrs.asdict(letter)).decode())
                else:
                    print(f"{letter.id}  {letter.topic} -> {letter.step}  attempts={letter.attempts}  "
                          f"error={letter.last_error!r}  data={orjson.dumps(letter.data).decode()}")
            if not args.json:
                print(f"{len(letters)} dead letter(s)", file=sys.stderr)
            return 0
        by_id = {letter.id: letter for letter in letters}
        wanted = list(by_id) if args.all else args.ids
        if not wanted:
            print("nothing to replay: give message ids or --all", file=sys.stderr)
            return 2
        missing = [message_id for message_id in wanted if message_id not in by_id]
        if missing:
            print(f"no dead letter with id {', '.join(missing)}", file=sys.stderr)
            return 1
        for message_id in wanted:
            revived = attrs.evolve(by_id[message_id], attempts=0, due_ms=0, last_error=None)
            await storage.queue_put(revived)
            await storage.dead_letter_take(message_id)
            print(f"replayed {message_id}")
        return 0


async def _serve(args: argparse.Namespace) -> int:
    import signal

    from .app import App
    from .server.settings import ServerSettings

    storage_url = args.storage or default_storage_url(args.directory)
    storage = _storage_or_report(storage_url)
    if storage is None:
        return 2
    from .steps.loader import ProjectError

    try:
        app = App.from_directory(
            args.directory, storage=storage, queue_visibility_timeout=args.queue_visibility_timeout
        )
        settings = ServerSettings(
            host=args.host, port=args.port, stream_port=args.stream_port,
            cors_origins=args.cors_origin, allowed_origins=args.allowed_origin, gc_freeze=True,
            reuse_port=args.worker_id > 0, worker_id=args.worker_id,
            http=args.http, tls_certfile=args.tls_certfile, tls_keyfile=args.tls_keyfile,
        )
    except (ProjectError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shutdown = trio.Event()
    try:
        async with trio.open_nursery() as nursery:

            async def on_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    task_status.started()
                    async for _ in signals:
                        if shutdown.is_set():
                            nursery.cancel_scope.cancel()  # a second signal: stop now
                            return
                        print("shutting down", file=sys.stderr, flush=True)
                        shutdown.set()

            await nursery.start(on_signals)
            served = trio.Event()

            async def run_app(task_status: trio.TaskStatus[object]) -> None:
                try:
                    await app.serve(settings, shutdown=shutdown, console=args.console,
                                    console_token=args.console_token, task_status=task_status)
                finally:
                    served.set()

            listening = await nursery.start(run_app)
            print(f"listening on {listening.http_url} and {listening.stream_url} (storage {storage_url})", flush=True)
            if app.console is not None:
                print(f"console on {app.console.url(listening.http_url)}", flush=True)
            await shutdown.wait()
            with trio.move_on_after(settings.shutdown_timeout * 3):
                await served.wait()  # streams closed, requests finished, groups drained
            nursery.cancel_scope.cancel()
    except (OSError, StorageError, BaseExceptionGroup) as exc:
        from actors.exceptions import sole_error

        error = sole_error(exc) if isinstance(exc, BaseExceptionGroup) else exc
        if isinstance(error, StorageError):  # e.g. Redis unreachable at start-up
            print(f"error: {error}", file=sys.stderr)
            return 1
        if isinstance(error, ConfigurationError):  # e.g. a step route on the server's own paths
            print(f"error: {error}", file=sys.stderr)
            return 2
        if not isinstance(error, OSError):
            raise
        print(f"error: {error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def _workers_or_report(args: argparse.Namespace) -> int | None:
    """The number of workers, or None after one line on stderr saying why that cannot be."""
    from .workers import worker_count

    try:
        count = worker_count(args.workers)
    except ValueError:
        print(f"error: --workers takes a positive number or 'auto', not {args.workers!r}", file=sys.stderr)
        return None
    if count > 1:
        from .storage.base import SharedStorage

        storage = _storage_or_report(args.storage or default_storage_url(args.directory))
        if storage is None:
            return None
        if not isinstance(storage, SharedStorage):
            print(f"error: --workers {count} needs a storage the workers share (redis://...): with "
                  f"{storage!r} each worker would keep its own copy of every stream", file=sys.stderr)
            return None
    return count


def _worker_argv(args: argparse.Namespace, argv: Sequence[str] | None) -> list[str]:
    """The parent's own arguments without --workers, with port 0 resolved once (all workers share it)."""
    from .workers import pick_port

    given = list(sys.argv[1:] if argv is None else argv)
    kept: list[str] = []
    skip = False
    for arg in given:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if not arg.startswith("--workers="):
            kept.append(arg)
    if args.port == 0:
        kept += ["--port", str(pick_port(args.host))]
    if args.stream_port == 0:
        kept += ["--stream-port", str(pick_port(args.host))]
    return kept


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "tail":
        return run_tail(args)
    if args.command == "serve":
        from .logs import configure_logging

        configure_logging(json=args.log_json)
        workers = _workers_or_report(args)
        if workers is None:
            return 2
        if workers > 1:
            from .workers import run_workers

            try:
                return trio.run(run_workers, _worker_argv(args, argv), workers)
            except KeyboardInterrupt:
                return 130
        try:
            return trio.run(_serve, args)
        except KeyboardInterrupt:
            return 130
    if args.command == "dev":
        from .dev import main as dev_main

        return dev_main(args)
    if args.command == "new":
        return run_new(args)
    if args.command == "dead-letters":
        storage = _storage_or_report(args.storage or default_storage_url(args.directory))
        if storage is None:
            return 2
        return trio.run(_dead_letters, args, storage)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
