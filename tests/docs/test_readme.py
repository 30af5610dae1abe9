"""README.md's counter example: its files are examples/counter's, and the shown answer is the real one."""

from __future__ import annotations

import orjson

from runtime import App

from .markdown import ROOT, blocks, shown_outputs


def test_the_readme_curl_line_shows_what_the_counter_answers():
    (sh,) = [b for b in blocks(ROOT / "README.md") if b.language == "sh" and "counters/clicks" in b.body]
    assert "make serve EXAMPLE=counter" in sh.body  # the server the curl lines talk to
    ((command, shown),) = shown_outputs(sh)
    assert command == "curl -X POST 'localhost:3111/counters/clicks?by=5'"

    async def answer() -> bytes:
        async with App.from_directory(ROOT / "examples" / "counter") as app:  # memory: a fresh start
            response = await app.request("POST", "/counters/clicks?by=5")
            return orjson.dumps(response.body)

    import trio

    assert trio.run(answer).decode() == shown


def test_the_readme_counter_code_is_the_example_project():
    (code,) = [b for b in blocks(ROOT / "README.md") if b.language == "python" and "counter_step.py" in b.body]
    stream_part, step_part = code.body.split("# counter_step.py\n")
    assert stream_part.replace("# counter_stream.py\n", "").strip() == (
        ROOT / "examples/counter/counter_stream.py").read_text().strip()
    assert " ".join(step_part.split()) == " ".join((ROOT / "examples/counter/counter_step.py").read_text().split())
