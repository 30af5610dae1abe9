"""The shared browser set-up works: Debian's Chromium, driven by Playwright, against a real server process."""

from __future__ import annotations

from tests.browser_support import browser, page, server_process  # noqa: F401 - pytest fixtures, used by name

STEP = '''
from runtime import ApiResponse, http, step

s = step({"name": "Page", "triggers": [http("GET", "/page")]})

@s.handle
async def handler(request, ctx):
    html = """<!doctype html><p id="out">waiting</p>
<script type="module">
const r = await fetch("/health");
document.getElementById("out").textContent = "health " + (await r.json()).status;
</script>"""
    return ApiResponse(200, html, {"content-type": "text/html"})
'''


def test_chromium_runs_a_page_and_its_module_script_against_a_real_server(page, tmp_path):  # noqa: F811 - the page fixture, by name
    (tmp_path / "page_step.py").write_text(STEP)
    with server_process("serve", str(tmp_path), "--storage", "memory") as server:
        page.goto(server.http_url + "/page")
        page.wait_for_selector("#out:text('health ok')")
