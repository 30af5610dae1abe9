"""The merge-rule cases shared with the JS client (merge_cases.json), run against the Python client's rules.

The same file drives clients/js through a real `Stream` (merge.test.mjs, run by test_node.py), so
the two clients cannot drift apart on what a front end's state becomes.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from runtime.client.merge import GroupState, ItemState

CASES = orjson.loads((Path(__file__).parent / "merge_cases.json").read_bytes())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_merge_case(case):
    state = GroupState(case.get("sortKey")) if case["kind"] == "group" else ItemState()
    synced = False
    for number, step in enumerate(case["steps"]):
        if step["type"] == "sync":
            state.sync(step["data"], step["ts"], force=not synced)  # the first answers the join
            synced = True
        elif step["type"] == "event":
            delivered = state.accept_event(step["ts"]) if isinstance(state, ItemState) else True
            assert delivered == step["delivered"], f"step {number}"
        else:
            state.apply(step["type"], step.get("id"), step["data"], step["ts"])
        assert state.view() == step["state"], f"step {number}: {step}"
