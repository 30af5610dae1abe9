"""The JS client's own tests (Node's test runner) and the freshness of its committed build.

clients/js's devDependencies (esbuild, TypeScript) are installed here with npm the first time.
Under CI=true a missing Node or a failed install fails; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
HERE = Path(__file__).resolve().parent


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the JS client tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed for the JS client tests")
    assert node is not None and npm is not None
    if not (CLIENT / "node_modules" / "esbuild").exists():
        result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--package-lock=false"],
                                cwd=CLIENT, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            _unavailable(f"npm install failed: {result.stderr.strip()[-500:]}")
    return node


def test_the_committed_build_is_the_build_of_the_sources(node):
    """dist/ is what the server serves and the wheel ships: a change to src/ must be rebuilt."""
    result = subprocess.run([node, "build.mjs", "--check"], cwd=CLIENT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_node_suite(node):
    """Merge rules (shared cases), the connection's states, backoff, resume, refusals, refresh,
    presence, SSE: against fakes of the socket, EventSource and fetch (tests/js/*.test.mjs)."""
    files = sorted(str(path) for path in HERE.glob("*.test.mjs"))
    result = subprocess.run([node, "--test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
