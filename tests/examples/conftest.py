"""Fixtures for the example projects: load one in isolation, watch its streams like a client."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime import App
from tests.helpers import Probe

__all__ = ["Probe", "load_example", "settle"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _purge(names: set[str]) -> None:
    for name in [m for m in sys.modules if m.split(".", 1)[0] in names]:
        del sys.modules[name]


@pytest.fixture
def load_example() -> Callable[..., App]:
    """``load_example("todo")``: ``App.from_directory(examples/todo)``, isolated from other projects.

    Projects share top-level module names (``streams``, ``steps``), and a step
    file's ``from streams.todo_stream import todo`` takes whatever
    ``sys.modules`` already holds; so each load starts and ends with those
    names purged and the project root off ``sys.path``.
    """
    loaded: list[tuple[str, set[str]]] = []

    def load(name: str, **options: Any) -> App:
        root = EXAMPLES / name
        top_level = {p.stem for p in root.iterdir() if p.is_dir() or p.suffix == ".py"}
        _purge(top_level)
        loaded.append((str(root.resolve()), top_level))
        return App.from_directory(root, **options)

    yield load
    for root, top_level in loaded:
        _purge(top_level)
        while root in sys.path:
            sys.path.remove(root)


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="actors")
    caplog.set_level(logging.CRITICAL + 1, logger="runtime.streams")


async def settle(app: App, timeout: float = 60) -> None:
    """Wait until every stream trigger and queued message caused so far has been handled."""
    with trio.fail_after(timeout):
        while app.engine.triggers.pending or await app.engine.storage.queue_pending():
            await trio.sleep(0.01)
