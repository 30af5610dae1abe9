"""`import runtime` costs nothing for what a user does not use (issue #15).

Redis support (coredis), the HTTP stack (hypercorn, quart) and the
client's transport load when they are first used, not with the package:
checked in a fresh interpreter, since this one has imported everything.
The time itself (``import runtime`` <= 2x ``import trio`` under
``python -X importtime``) is a figure for CONTRIBUTING.md, not an
assertion: timing is the benches' job.
"""

from __future__ import annotations

import subprocess
import sys

import orjson

HEAVY = ("coredis", "hypercorn", "quart", "trio_websocket", "jsonschema", "fastjsonschema", "croniter")


def imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport orjson\nprint(orjson.dumps(sorted(sys.modules)).decode())"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    loaded = set(orjson.loads(out))
    return [name for name in HEAVY if name in loaded]


def test_import_runtime_loads_no_optional_stack():
    assert imported_after("import runtime") == []


def test_redis_support_loads_when_a_redis_url_is_opened():
    assert "coredis" in imported_after("import runtime; runtime.open_storage('redis://127.0.0.1:6379/0')")
    assert "coredis" in imported_after("from runtime import RedisStorage")
    assert "coredis" not in imported_after("import runtime; runtime.open_storage('memory')")
