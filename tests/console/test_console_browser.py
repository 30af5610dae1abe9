"""The console in a real Chromium, against a real `python -m runtime serve` process.

Each test waits on the page's DOM (Playwright's waits poll the page, they do
not sleep). The screenshots of docs/console.md are taken here: into
docs/images/ when ``CONSOLE_SCREENSHOTS=1`` (how the committed ones were
made), else into the test's tmp directory, so an ordinary run leaves the
work tree clean.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser_support import ROOT, browser, page, server_process  # noqa: F401 (fixtures)

PROJECT = Path(__file__).parent / "browser_project"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with server_process("serve", str(PROJECT), "--storage", "memory") as one:
        yield one


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("CONSOLE_SCREENSHOTS") == "1":
        return ROOT / "docs" / "images"
    return tmp_path


def _post(server: Any, path: str, body: Any) -> httpx.Response:
    response = httpx.post(server.http_url + path, json=body, timeout=10)
    assert response.status_code < 300, response.text
    return response


def test_the_console_lists_the_streams_and_shows_a_new_item_live(page, server, shots):  # noqa: F811
    _post(server, "/todos/inbox", {"id": "first", "title": "read the docs"})
    page.goto(server.http_url + "/_console/")
    page.wait_for_selector("#streams-list .stream[data-stream=todo]")
    page.wait_for_selector("#streams-list .stream[data-stream=secret]")
    page.click("#streams-list .stream[data-stream=todo]")
    page.wait_for_selector("#groups tr[data-group=inbox]")
    page.click("#groups tr[data-group=inbox]")
    page.wait_for_selector("#live-state.live")
    page.wait_for_selector("#items-table tr[data-item=first]")

    _post(server, "/todos/inbox", {"id": "milk", "title": "buy milk"})
    page.wait_for_selector("#items-table tr[data-item=milk]", timeout=1000)
    row = page.wait_for_selector("#event-log tr[data-type=create][data-item=milk]", timeout=1000)
    row.wait_for_selector("a.trace-link", timeout=1000)  # the server's copy adds the trace id
    cells = [c.inner_text() for c in row.query_selector_all("td")]
    assert cells[0] == "create" and cells[1] == "milk" and cells[2].isdigit()
    assert "buy milk" in cells[6]

    page.fill("#filter-item", "first")
    assert page.locator("#event-log tr[data-item=milk]").is_hidden()
    page.fill("#filter-item", "")
    page.click("#items-table tr[data-item=milk]")
    page.wait_for_selector("#item-view #item-value:has-text('buy milk')")
    page.wait_for_selector("#item-history tr")
    page.screenshot(path=str(shots / "console-streams.png"))


def test_a_request_from_the_step_form_and_its_trace_down_to_the_stream_write(page, server, shots):  # noqa: F811
    page.goto(server.http_url + "/_console/#steps")
    form = page.wait_for_selector("form.request-form[data-path='/todos/:list']")
    form.query_selector("input[name=param-list]").fill("work")
    form.query_selector("textarea[name=body]").fill('{"id": "report", "title": "write the report"}')
    form.query_selector("button[type=submit]").click()
    status = page.wait_for_selector(".response .status")
    assert status.inner_text().startswith("201")
    assert "write the report" in page.inner_text(".response pre.body")
    assert "x-trace-id" in page.text_content(".response pre.headers")
    page.screenshot(path=str(shots / "console-steps.png"), full_page=True)

    page.click(".response a.trace-link")
    write = page.wait_for_selector("#timeline .entry[data-kind=stream]")
    assert "todo/work/report" in write.inner_text()
    assert "offset 1" in write.inner_text()
    kinds = [e.get_attribute("data-kind") for e in page.query_selector_all("#timeline .entry")]
    assert kinds[:2] == ["http", "step"] and "log" in kinds
    page.screenshot(path=str(shots / "console-trace.png"))


def test_a_queue_step_that_keeps_failing_is_dead_lettered_and_replayed_from_the_console(page, server, shots):  # noqa: F811
    _post(server, "/jobs", {"id": "j1"})
    page.goto(server.http_url + "/_console/#steps")
    row = page.wait_for_selector("#dead-letters tbody tr", timeout=10_000)  # two failed attempts, no backoff
    assert "flaky backend (call 2)" in row.inner_text()
    assert "jobs → RunJob" in row.inner_text()
    page.wait_for_selector("#lanes tr[data-topic=jobs]")
    page.screenshot(path=str(shots / "console-dead-letters.png"), full_page=True)

    row.query_selector("button.replay").click()
    page.wait_for_selector("#dead-letters tbody tr", state="detached")
    page.goto(server.http_url + "/_console/#streams/todo/jobs")
    page.wait_for_selector("#items-table tr[data-item=j1]")  # the replay ran, and succeeded


def test_run_a_cron_step_now(page, server):  # noqa: F811
    page.goto(server.http_url + "/_console/#steps")
    cron = page.wait_for_selector(".cron[data-step=NewYear]")
    next_year = datetime.datetime.now(datetime.UTC).year + 1
    assert cron.get_attribute("data-next").startswith(f"{next_year}-01-01T00:00:00")
    cron.query_selector("button.run-now").click()
    page.wait_for_selector(".cron[data-step=NewYear] button.run-now:has-text('ran')")
    page.goto(server.http_url + "/_console/#streams/todo/cron")
    page.wait_for_selector("#items-table tr[data-item=tick]")


def test_the_live_monitor_charts_the_servers_metrics(page, server, shots):  # noqa: F811
    page.goto(server.http_url + "/_console/#streams/todo/inbox")
    page.wait_for_selector("#live-state.live")
    page.goto(server.http_url + "/_console/#monitor")
    for n in range(5):
        _post(server, "/todos/inbox", {"id": f"m{n}", "title": "again"})
    page.wait_for_selector(".chart[data-chart=subscriptions] .legend:has-text('sse 1')")
    page.wait_for_function("""() => [...document.querySelectorAll('.chart[data-chart=events] polyline')].some(
        line => line.getAttribute('points').split(' ').some(point => Number(point.split(',')[1]) < 58))""")
    page.screenshot(path=str(shots / "console-monitor.png"))


def test_the_console_token_is_refused_and_accepted(page, tmp_path):  # noqa: F811
    with server_process("serve", str(PROJECT), "--storage", "memory", "--console-token", "s3cret") as server:
        _post(server, "/secret/door", {"code": 1234})
        response = page.goto(server.http_url + "/_console/")
        assert response.status == 401
        page.wait_for_selector("text=This console needs its token")
        assert httpx.get(server.http_url + "/_console/api/overview").status_code == 401
        assert page.goto(server.http_url + "/_console/?token=wrong").status == 401

        assert page.goto(server.http_url + "/_console/?token=s3cret#streams/secret/vault").status == 200
        # the stream refuses every subscriber; the console token sees it, live
        page.wait_for_selector("#live-state.live")
        page.wait_for_selector("#items-table tr[data-item=door]")
        _post(server, "/secret/window", {"code": 42})
        page.wait_for_selector("#items-table tr[data-item=window]", timeout=1000)
        # without the token the same subscription is refused
        assert httpx.get(server.http_url + "/streams/secret/vault").status_code == 403
