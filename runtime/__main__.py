"""``python -m runtime``: the command line.

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
from pathlib import Path
from typing import Sequence

import attrs
import orjson
import trio

from .storage import Storage, open_storage

DEFAULT_DB = Path(".runtime") / "runtime.db"


def default_storage_url(directory: str) -> str:
    return f"sqlite:{Path(directory) / DEFAULT_DB}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runtime", description="A real-time streams runtime on Trio.")
    commands = parser.add_subparsers(dest="command", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "dead-letters":
        url = args.storage or default_storage_url(args.directory)
        try:
            storage = open_storage(url)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return trio.run(_dead_letters, args, storage)
    return 2  # pragma: no cover - argparse requires a command


if __name__ == "__main__":
    sys.exit(main())
