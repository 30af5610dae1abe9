"""``python -m runtime tail STREAM GROUP [ITEM]``: watch a group or an item live in a terminal.

    python -m runtime tail todo inbox                 # the whole group
    python -m runtime tail todo inbox a --json        # one item, one JSON object per line
    python -m runtime tail todo inbox --url ws://host:3112 --token "$TOKEN"

One line per event (time, kind, item id, data as compact JSON); a line
when the connection drops and comes back, and one when a snapshot replaced
the state (a gap the history could not cover). Press Enter to print the
whole state. Ctrl-C, SIGTERM or end of input exits 0 — so without
``--no-input``, a tail started in the background or with stdin closed
exits right after the sync; a reader that goes away (``| head -2``) ends it
quietly with 0 too. A refused subscription, a rejected token or an
unreachable server is one line on stderr and exit 1.

``runtime/__main__.py`` wires `add_tail_parser` and `run_tail`; this module
also runs alone (``python -m runtime.client.tail ...``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

import orjson
import trio

from .errors import StreamClientError
from .merge import Change
from .subscription import Subscription

__all__ = ["add_tail_parser", "run_tail", "main", "DEFAULT_URL"]

DEFAULT_URL = "ws://127.0.0.1:3112"
DESCRIPTION = (
    "Watch a stream group or item live: one line per event; Enter prints the whole state. "
    "It reads stdin unless --no-input: end of input exits, so in the background (&, nohup, </dev/null) "
    "give --no-input or it exits right after the sync."
)


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("stream", help="the stream name")
    parser.add_argument("group", help="the group id")
    parser.add_argument("item", nargs="?", help="an item id: watch only this item")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the stream listener (default: {DEFAULT_URL})")
    parser.add_argument("--token", default=os.environ.get("RUNTIME_TOKEN"),
                        help="auth token, sent as the Authorization subprotocol (default: $RUNTIME_TOKEN)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--sort-key", help="sort a group's state by this field (as Motia's clients do)")
    parser.add_argument("--no-input", action="store_true",
                        help="do not read stdin (no state on Enter; end of input does not exit): "
                             "needed in the background, under nohup or with </dev/null")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up when the first connection takes longer (default: 10)")
    return parser


def add_tail_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tail`` command to ``python -m runtime``'s sub-parsers; returns its parser."""
    parser = subparsers.add_parser(
        "tail", help="watch a stream group or item live",
        description=DESCRIPTION,
    )
    _configure(parser)
    parser.set_defaults(handler=run_tail)
    return parser


def _clock(timestamp: int) -> str:
    moment = datetime.fromtimestamp(timestamp / 1000) if timestamp > 0 else datetime.now()
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _compact(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


class Printer:
    """Formats what tail shows, as text or JSON lines, flushed line by line.

    When the reader goes away (``tail ... | head -2``: a closed pipe) it
    stops writing and calls ``on_closed`` once, which ends the command.
    """

    def __init__(self, out: TextIO, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.closed = False
        self.on_closed: Any = None

    def _write(self, line: str) -> None:
        if self.closed:
            return
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except BrokenPipeError:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    def _json(self, **fields: Any) -> None:
        self._write(_compact({k: v for k, v in fields.items() if v is not None}))

    def change(self, change: Change) -> None:
        if self.as_json:
            self._json(
                time=_clock(change.timestamp), timestamp=change.timestamp or None, kind=change.kind,
                event=change.event_type, id=change.item_id, data=change.data,
                position=change.position.token if change.position else None,
                resynced=change.resynced or None, replayed=change.replayed, dropped=change.dropped or None,
            )
            return
        when = _clock(change.timestamp)
        if change.kind == "resumed":
            self._write(f"{when}  resumed  {change.replayed or 0} missed change(s) replayed")
        elif change.kind == "sync":
            self._write(f"{when}  {'resync' if change.resynced else 'sync'}  {self._summary(change)}")
        elif change.kind == "event":
            self._write(f"{when}  event:{change.event_type}  {change.item_id or '-'}  {_compact(change.data)}")
        else:
            self._write(f"{when}  {change.kind}  {change.item_id or '-'}  {_compact(change.data)}")

    @staticmethod
    def _summary(change: Change) -> str:
        data = change.data
        size = f"{len(data)} item(s)" if isinstance(data, list) else _compact(data)
        if change.dropped:
            return f"{size}; this display fell behind, {change.dropped} change(s) skipped"
        if change.resynced:
            return f"{size}; state replaced by a snapshot, events in the gap may be missing"
        return size

    def state(self, sub: Subscription) -> None:
        state = sub.get_state()
        position = sub.last_position.token if sub.last_position else None
        if self.as_json:
            self._json(time=_clock(0), kind="state", position=position, data=state)
            return
        if isinstance(state, list):
            self._write(f"--- state: {len(state)} item(s)" + (f" at {position}" if position else "") + " ---")
            for item in state:
                self._write(_compact(item))
            self._write("---")
        else:
            self._write("--- state" + (f" at {position}" if position else "") + f" ---\n{_compact(state)}\n---")

    def connection(self, state: str, error: BaseException | None) -> None:
        if state not in ("connected", "disconnected"):
            return
        if self.as_json:
            self._json(time=_clock(0), kind=state, error=str(error) if error else None)
        elif state == "connected":
            self._write(f"{_clock(0)}  connected")
        else:
            self._write(f"{_clock(0)}  disconnected  {error}; reconnecting")


async def _read_lines(stdin: TextIO, on_line: Any) -> None:
    """Each line of stdin calls ``on_line``; returns at end of input."""
    while True:
        line = await trio.to_thread.run_sync(stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        on_line()


async def tail(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None,
               stdin: TextIO | None = None) -> int:
    """The tail command in the current Trio run; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin if stdin is not None else sys.stdin
    printer = Printer(out, args.json)

    def fail(message: str) -> int:
        err.write(f"tail: {message}\n")
        err.flush()
        return 1

    try:
        from .client import StreamClient
    except ImportError as missing:  # the transport is an optional dependency of the server
        return fail(f"the stream client needs trio-websocket ({missing}); pip install trio-websocket")
    try:
        stream_client = StreamClient(args.url, token=args.token, connect_timeout=args.connect_timeout)
    except ValueError as bad:
        return fail(str(bad))

    with trio.CancelScope() as everything:  # a closed output ends everything, quietly
        printer.on_closed = everything.cancel
        status = await _follow(args, stream_client, printer, stdin, fail)
    if printer.closed:
        _silence(out)
        return 0
    return status


def _silence(out: TextIO) -> None:
    """Point a closed stdout at /dev/null, so the interpreter's last flush at exit cannot fail loudly."""
    if out is not sys.stdout:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


async def _follow(args: argparse.Namespace, stream_client: Any, printer: Printer, stdin: TextIO,
                  fail: Any) -> int:
    status = 0
    async with stream_client as client:
        try:
            await client.wait_connected()
            if args.item:
                sub: Subscription = await client.subscribe_item(args.stream, args.group, args.item)
            else:
                sub = await client.subscribe_group(args.stream, args.group, sort_key=args.sort_key)
        except StreamClientError as error:
            return fail(str(error))
        changes = sub.changes(buffer=1024)
        # the first state, then every change from the same instant on
        printer.change(Change(
            kind="sync", stream=sub.stream, group=sub.group, item_id=sub.item_id, data=sub.get_state(),
            timestamp=0, epoch=sub.last_position.epoch if sub.last_position else None,
            offset=sub.last_position.offset if sub.last_position else None,
        ))
        client.on_connection_change(printer.connection)

        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                nonlocal status
                try:
                    async for change in changes:
                        printer.change(change)
                except StreamClientError as error:
                    status = fail(str(error))
                nursery.cancel_scope.cancel()

            async def read_input() -> None:
                await _read_lines(stdin, lambda: printer.state(sub))
                nursery.cancel_scope.cancel()  # end of input: done

            async def signals() -> None:
                with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                    async for _ in received:
                        nursery.cancel_scope.cancel()
                        return

            nursery.start_soon(watch)
            if not args.no_input and stdin is not None and not stdin.closed:
                nursery.start_soon(read_input)
            if _main_thread():  # signal handlers can only be installed there
                nursery.start_soon(signals)
    return status


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def run_tail(args: argparse.Namespace) -> int:
    """Run ``tail`` for parsed arguments (from `add_tail_parser`); returns the exit status."""
    try:
        return trio.run(tail, args)
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None and group.subgroup(
                lambda e: not isinstance(e, (KeyboardInterrupt, trio.Cancelled))) is None:
            return 0
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m runtime.client.tail STREAM GROUP [ITEM] ...``."""
    parser = _configure(argparse.ArgumentParser(prog="python -m runtime tail", description=DESCRIPTION))
    return run_tail(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
