"""Fixtures for the streams suite: the same tests run against every backend."""

from __future__ import annotations

import logging

import pytest

from runtime import MemoryStorage, RedisStorage, SQLiteStorage
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix


class Probe:
    """A subscriber that records what it is given (a connection's stand-in)."""

    def __init__(self, accept: bool = True) -> None:
        self.events: list = []
        self.accept = accept

    def deliver(self, event, *, initial: bool = False) -> bool:
        if not self.accept and not initial:
            return False
        self.events.append(event)
        return True

    def types(self) -> list[str]:
        return [event.type for event in self.events]

    def offsets(self) -> list:
        return [event.offset for event in self.events]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request, tmp_path):
    """A factory for a storage of the parametrised kind; the same place each call (a restart)."""
    path = tmp_path / "streams.db"
    prefix = unique_prefix()

    def make():
        if request.param == "redis":
            return RedisStorage(f"{ensure_redis()}?prefix={prefix}")
        return MemoryStorage() if request.param == "memory" else SQLiteStorage(path)

    make.kind = request.param
    yield make
    if request.param == "redis":
        delete_prefix(prefix)


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="actors")
    caplog.set_level(logging.CRITICAL + 1, logger="runtime.streams")
