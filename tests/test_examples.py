"""The examples in examples/ run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_embedded_actors_example_prints_the_total():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "embedded_actors.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1998000"


async def test_the_readme_counter_example():
    from runtime import App

    from .streams.conftest import Probe

    async with App.from_directory(EXAMPLES / "counter") as app:
        probe = Probe()
        await app.engine.join(probe, "counter", "counters", subscription_id=1)
        import trio

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(app.request, "POST", "/counters/clicks?by=2")
        assert await app.stream("counter").get("counters", "clicks") == {"id": "clicks", "value": 100}
        assert [e.type for e in probe.events] == ["sync", "create"] + ["update"] * 49
        response = await app.request("POST", "/counters/clicks")
        assert response.status == 200 and response.body == {"id": "clicks", "value": 101}


def test_embedded_runtime_example_sees_every_reading_live():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "embedded_runtime.py")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "seen live: 20, 21, 22, 23, 24"
