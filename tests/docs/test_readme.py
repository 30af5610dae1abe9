"""README.md's counter example: its files are examples/counter's, and the shown answer is the real one."""

from __future__ import annotations

import httpx

from tests.server.conftest import serve_process

from .markdown import ROOT, blocks, shown_outputs


async def test_the_readme_curl_line_shows_what_a_real_server_answers():
    (sh,) = [b for b in blocks(ROOT / "README.md") if b.language == "sh" and "counters/clicks" in b.body]
    assert "make serve EXAMPLE=counter" in sh.body  # the server the curl lines talk to
    ((command, shown),) = shown_outputs(sh)
    assert command == "curl -X POST 'localhost:3111/counters/clicks?by=5'"
    # `make serve EXAMPLE=counter` on free ports, on a fresh start (memory storage)
    async with serve_process(str(ROOT / "examples" / "counter"), "--storage", "memory") as (_process, url):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            response = await client.post("/counters/clicks?by=5")
    assert response.status_code == 200 and response.text == shown


def test_the_readme_counter_code_is_the_example_project():
    (code,) = [b for b in blocks(ROOT / "README.md") if b.language == "python" and "counter_step.py" in b.body]
    stream_part, step_part = code.body.split("# counter_step.py\n")
    assert stream_part.replace("# counter_stream.py\n", "").strip() == (
        ROOT / "examples/counter/counter_stream.py").read_text().strip()
    assert " ".join(step_part.split()) == " ".join((ROOT / "examples/counter/counter_step.py").read_text().split())
