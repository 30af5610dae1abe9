"""Fixtures for the streams suite: the same tests run against every backend."""

from __future__ import annotations

import logging

import pytest

from runtime import MemoryStorage, RedisStorage, SQLiteStorage
from tests.helpers import Probe
from tests.redis_support import delete_prefix, ensure_redis, unique_prefix

__all__ = ["Probe", "backend"]


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


@pytest.fixture
def redis_url():
    """The URL of the shared Redis with a key prefix of this test's own (deleted after it)."""
    prefix = unique_prefix()
    yield f"{ensure_redis()}?prefix={prefix}"
    delete_prefix(prefix)


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level(logging.CRITICAL + 1, logger="actors")
    caplog.set_level(logging.CRITICAL + 1, logger="runtime.streams")
