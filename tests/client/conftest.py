"""The client tests run a real server in process (`running_ws`) and quiet its logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from runtime.server import ServerSettings


@pytest.fixture(autouse=True)
def _quiet(caplog):
    for name in ("actors", "runtime.streams", "runtime.server", "runtime.steps", "runtime.client"):
        caplog.set_level(logging.CRITICAL + 1, logger=name)


@asynccontextmanager
async def serving_gracefully(app: Any, **settings: Any) -> AsyncIterator[Any]:
    """Like `running_ws`, but leaving the block shuts the server down gracefully:
    every connection gets close code 1001 while the engine still runs."""
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listening = await nursery.start(
            lambda task_status: app.serve(
                ServerSettings(**{"port": 0, "stream_port": 0, **settings}), shutdown=shutdown, task_status=task_status
            )
        )
        try:
            yield listening
        finally:
            shutdown.set()
