"""pytest fixtures for pytest-trio: ``pytest_plugins = ["runtime.testing.plugin"]``.

``runtime_app`` is a `TestApp` for the project named by the test's
``@pytest.mark.runtime_project("path")`` marker, or the ``runtime_project``
ini option (relative to the rootdir), running in virtual time (it uses
pytest-trio's ``autojump_clock``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import TestApp, open_test_app


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("runtime_project", "the project directory the runtime_app fixture loads", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runtime_project(path): the project directory runtime_app loads")


@pytest.fixture
async def runtime_app(request: pytest.FixtureRequest, autojump_clock: object) -> AsyncIterator[TestApp]:
    marker = request.node.get_closest_marker("runtime_project")
    project = marker.args[0] if marker else request.config.getini("runtime_project")
    if not project:
        raise pytest.UsageError(
            "runtime_app needs a project: @pytest.mark.runtime_project('path') or runtime_project = path in the ini"
        )
    path = Path(project)
    if not path.is_absolute():
        path = Path(request.config.rootpath) / path
    async with open_test_app(path) as app:
        yield app
