"""Fenced blocks of the Markdown docs, by their info string (the convention in docs/testing.md, last section).

A block whose info string carries ``file=PATH`` (```` ```python file=tests/test_todo.py ````) is a
complete file the suite writes at PATH and runs; a shell line ending in ``# => TEXT`` shows its output.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.S | re.M)


@attrs.frozen
class Block:
    language: str
    marks: dict[str, str]
    body: str
    line: int


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        words = match.group(1).split()
        language, marks = (words[0], words[1:]) if words else ("", [])
        pairs = dict(word.split("=", 1) if "=" in word else (word, "") for word in marks)
        found.append(Block(language, pairs, match.group(2), text.count("\n", 0, match.start()) + 1))
    return found


def files(doc: Path) -> dict[str, str]:
    """PATH -> content of every ``file=PATH`` block, in document order (a later block wins)."""
    return {block.marks["file"]: block.body for block in blocks(doc) if "file" in block.marks}


def shown_outputs(block: Block) -> list[tuple[str, str]]:
    """``(command, output)`` for each line of a shell block that ends in ``# => OUTPUT``."""
    pairs = []
    for line in block.body.splitlines():
        if "# => " in line:
            command, output = line.split("# => ", 1)
            pairs.append((command.split("#", 1)[0].strip(), output.split(" (", 1)[0].strip()))
    return pairs
