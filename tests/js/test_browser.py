"""The browser client in Debian's Chromium against a real server process (tests/browser_support.py).

A page written for Motia's browser client works with only its import changed; a server restart
during which the group moves on is resumed (no sync frame, no missed event: SQLite keeps state and
history); a refused token reaches the app as ``refused`` with the 401; SSE works where it is chosen.
Pages are the project's own (``GET /app``), so ``/_client/stream.js`` is imported exactly as a page
of the app would import it.
"""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import httpx
import trio
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from runtime import App, SQLiteStorage
from tests.browser_support import server_process

PROJECT = Path(__file__).resolve().parent / "browser_project"
WAIT = 15_000  # ms: bound on every wait for the page


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def open_page(page, server, script: str, query: str = "") -> None:
    """Load a page of the server's origin (the project's ``GET /app``) and run ``script`` in it as a
    module script, with ``WS_URL`` defined."""
    page.goto(f"{server.http_url}/app{query}")
    page.add_script_tag(type="module", content=f"const WS_URL = {json.dumps(server.stream_url)};\n{script}")


def wait_for(page, expression: str, arg=None) -> None:
    """Wait (bounded) until ``expression`` holds in the page; on a timeout say what the page saw."""
    try:
        page.wait_for_function(f"(arg) => {{ try {{ return {expression} }} catch {{ return false }} }}", arg=arg,
                               timeout=WAIT)
    except PlaywrightTimeout:
        seen = page.evaluate("JSON.stringify(window.seen ?? null)")
        raise AssertionError(f"the page never had {expression} (arg={arg!r}); it saw {seen}") from None


def same(path: str) -> str:
    """A JS expression: the JSON of ``window.seen.<path>`` equals the argument's."""
    return f"JSON.stringify(window.seen.{path}) === JSON.stringify(arg)"


#: Written for `@motiadev/stream-client-browser` 0.17: only its API, its way of passing a token.
MOTIA_PAGE = """
import { Stream } from "@motiadev/stream-client-browser";

const stream = new Stream(WS_URL, { protocols: ["Authorization", "let-me-in"] });
const group = stream.subscribeGroup("todos", "inbox", "title");
const item = stream.subscribeItem("todos", "inbox", "a");
const denied = stream.subscribeGroup("todos", "secret");
window.seen = { group: null, item: undefined, typing: [], denied: [] };
group.addChangeListener((state) => { window.seen.group = state; });
item.addChangeListener((state) => { window.seen.item = state; });
group.onEvent("typing", (data) => window.seen.typing.push(data));
denied.onEvent("error", (data) => window.seen.denied.push(data));
"""


def test_a_page_written_for_motias_client_works_with_the_import_changed(page):
    script = MOTIA_PAGE.replace('"@motiadev/stream-client-browser"', '"/_client/stream.js"')
    assert script.count("/_client/stream.js") == 1 and script.replace("/_client/stream.js", "") == \
        MOTIA_PAGE.replace("@motiadev/stream-client-browser", "")  # the one-line diff, nothing else
    with server_process("serve", str(PROJECT), "--storage", "memory") as server, \
            httpx.Client(base_url=server.http_url, timeout=10) as http:
        http.put("/w/inbox/b", json={"title": "bread"})
        open_page(page, server, script)
        wait_for(page, same("group"), [{"id": "b", "title": "bread"}])
        wait_for(page, "window.seen.denied.length === 1")
        assert page.evaluate("window.seen.denied") == [
            {"code": "STREAM_ACCESS_DENIED", "message": "access to this stream is denied"}]
        http.put("/w/inbox/a", json={"title": "apples"})  # create: sorted in by title
        wait_for(page, same("group"), [{"id": "a", "title": "apples"}, {"id": "b", "title": "bread"}])
        wait_for(page, same("item"), {"id": "a", "title": "apples"})
        http.put("/w/inbox/a", json={"title": "cherries"})  # update: re-sorted
        wait_for(page, same("group"), [{"id": "b", "title": "bread"}, {"id": "a", "title": "cherries"}])
        http.post("/e/inbox", json={"type": "typing", "data": {"who": "ann"}})  # a custom event
        wait_for(page, same("typing"), [{"who": "ann"}])
        http.delete("/w/inbox/a")
        wait_for(page, same("group"), [{"id": "b", "title": "bread"}])
        wait_for(page, "window.seen.item === null")


RESUME_PAGE = """
import { Stream } from "/_client/stream.js";

// count what the server sends, under the client (the page's own WebSocket, instrumented)
const frames = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (m) => { const f = JSON.parse(m.data); if (f.event) frames.push(f.event.type); });
  }
};
const stream = new Stream(WS_URL, { token: "let-me-in", backoff: { initial: 100, max: 400, jitter: 0.2 } });
const group = stream.subscribeGroup("todos", "inbox");
const item = stream.subscribeItem("todos", "inbox", "a");
window.seen = { frames, states: [], group: null, item: undefined, resumed: [], resyncs: 0 };
stream.on("state", (state) => window.seen.states.push(state));
group.addChangeListener((state) => { window.seen.group = state; });
item.addChangeListener((state) => { window.seen.item = state; });
group.onResumed((n) => window.seen.resumed.push(["group", n]));
item.onResumed((n) => window.seen.resumed.push(["item", n]));
group.onResync(() => { window.seen.resyncs += 1; });
item.onResync(() => { window.seen.resyncs += 1; });
"""


async def _write_while_down(db: Path) -> list:
    async with App.from_directory(PROJECT, storage=SQLiteStorage(db)) as away:
        todos = away.stream("todos")
        await todos.update("inbox", "a", [{"type": "set", "path": "n", "value": 1}])
        await todos.set("inbox", "d", {"title": "dates", "n": 0})
        await todos.delete("inbox", "b")
        await todos.update("inbox", "a", [{"type": "set", "path": "n", "value": 2}])
        return await todos.list("inbox")


def test_a_server_restart_is_resumed_no_sync_and_no_missed_event(page, tmp_path):
    db = tmp_path / "streams.db"
    ports = {"port": free_port(), "stream_port": free_port()}
    storage = ("--storage", f"sqlite:{db}")
    with server_process("serve", str(PROJECT), *storage, **ports) as server:
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            http.put("/w/inbox/a", json={"title": "apples", "n": 0})
            http.put("/w/inbox/b", json={"title": "bread", "n": 0})
            open_page(page, server, RESUME_PAGE)
            wait_for(page, "window.seen.group.length === 2 && window.seen.item.n === 0")
            http.put("/w/inbox/c", json={"title": "cheese", "n": 0})
            wait_for(page, "window.seen.group.length === 3")
        server.process.send_signal(signal.SIGTERM)  # a graceful stop: close 1001
        assert server.process.wait(timeout=30) == 0
        wait_for(page, "window.seen.states.at(-1) === 'connecting'")

    expected = trio.run(_write_while_down, db)  # the group moves on while the client is away

    with server_process("serve", str(PROJECT), *storage, **ports) as server:
        wait_for(page, same("group"), expected)
        wait_for(page, "window.seen.resumed.length === 2 && window.seen.states.at(-1) === 'open'")
        seen = page.evaluate("window.seen")
        assert seen["item"] == {"id": "a", "title": "apples", "n": 2}
        assert sorted(seen["resumed"]) == [["group", 4], ["item", 2]]  # 4 missed changes, 2 of them to "a"
        assert seen["frames"].count("sync") == 2, seen["frames"]  # the first joins' only: no full sync again
        assert seen["resyncs"] == 0
        assert seen["states"][:2] == ["connecting", "open"] and "resyncing" in seen["states"]
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            http.put("/w/inbox/e", json={"title": "eggs", "n": 0})  # and live again
        wait_for(page, "window.seen.group.some((i) => i.id === 'e')")


def test_a_refused_token_reaches_the_app_as_refused_with_its_status(page):
    script = """
import { Stream } from "/_client/stream.js";
const stream = new Stream(WS_URL, { token: "nope" });
window.seen = { refused: null, states: [] };
stream.on("refused", (detail) => { window.seen.refused = detail; });
stream.on("state", (state) => window.seen.states.push(state));
stream.subscribeGroup("todos", "inbox");
"""
    with server_process("serve", str(PROJECT), "--storage", "memory") as server:
        open_page(page, server, script)
        wait_for(page, "window.seen.refused !== null")
        assert page.evaluate("window.seen") == {
            "refused": {"status": 401, "code": "UNAUTHORIZED", "message": "bad token"},
            "states": ["connecting", "refused"],
        }


def test_sse_transport_in_the_browser(page):
    script = """
import { Stream } from "/_client/stream.js";
const stream = new Stream(WS_URL, { token: "let-me-in", transport: "sse" });
const group = stream.subscribeGroup("todos", "inbox");
window.seen = { group: null, transport: stream.transport };
group.addChangeListener((state) => { window.seen.group = state; });
"""
    with server_process("serve", str(PROJECT), "--storage", "memory") as server, \
            httpx.Client(base_url=server.http_url, timeout=10) as http:
        http.put("/w/inbox/a", json={"title": "apples"})
        open_page(page, server, script)
        wait_for(page, same("group"), [{"id": "a", "title": "apples"}])
        http.put("/w/inbox/b", json={"title": "bread"})
        wait_for(page, same("group"), [{"id": "a", "title": "apples"}, {"id": "b", "title": "bread"}])
        assert page.evaluate("window.seen.transport") == "sse"


PRESENCE_PAGE = """
import { Stream } from "/_client/stream.js";
const params = new URLSearchParams(location.search);
const stream = new Stream(WS_URL, { token: "user:" + params.get("who") });
const room = stream.subscribeGroup("todos", "lobby", { presence: true, presenceData: { name: params.get("who") } });
window.seen = { presence: [] };
room.onPresence((entries) => { window.seen.presence = entries; });
"""


def entry(name: str) -> dict:
    return {"key": name, "count": 1, "data": {"name": name}}


def test_presence_with_two_tabs(page, browser):
    with server_process("serve", str(PROJECT), "--storage", "memory") as server:
        open_page(page, server, PRESENCE_PAGE, "?who=ann")
        wait_for(page, same("presence"), [entry("ann")])
        other = browser.new_page()
        try:
            open_page(other, server, PRESENCE_PAGE, "?who=bob")
            wait_for(other, same("presence"), [entry("ann"), entry("bob")])  # the whole list on joining
            wait_for(page, same("presence"), [entry("ann"), entry("bob")])  # and the first tab told of the second
        finally:
            other.close()  # the tab goes away: its subscription with it
        wait_for(page, same("presence"), [entry("ann")])


def test_the_token_is_refreshed_before_it_expires_with_no_gap(page):
    script = """
import { Stream } from "/_client/stream.js";
let n = 0;
const frames = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (m) => {
      const f = JSON.parse(m.data);
      frames.push(f.event ? f.event.type : f.type);
    });
  }
};
const stream = new Stream(WS_URL, { token: async () => "lease:" + (++n) });
const group = stream.subscribeGroup("todos", "inbox");
window.seen = { frames, tokens: () => n, refreshed: [], errors: [], group: null, sockets: 0 };
stream.on("refreshed", (d) => window.seen.refreshed.push(d.expiresAt));
stream.on("error", (d) => window.seen.errors.push(d.code));
stream.on("open", () => { window.seen.sockets += 1; });
group.onEvent("error", (d) => window.seen.errors.push(d.code));
group.addChangeListener((state) => { window.seen.group = state; });
"""
    with server_process("serve", str(PROJECT), "--storage", "memory") as server, \
            httpx.Client(base_url=server.http_url, timeout=10) as http:
        open_page(page, server, script)
        wait_for(page, same("group"), [])
        # each lease is 2 s, asked to refresh after 1 s: two refreshes outlive the first token
        wait_for(page, "window.seen.refreshed.length >= 2")
        http.put("/w/inbox/a", json={"title": "apples"})
        wait_for(page, same("group"), [{"id": "a", "title": "apples"}])
        seen = page.evaluate("({ ...window.seen, tokens: window.seen.tokens() })")
        assert seen["errors"] == [] and seen["sockets"] == 1  # no TOKEN_EXPIRED, no reconnect
        assert seen["frames"].count("refresh_required") >= 2 and seen["frames"].count("refreshed") >= 2
        assert seen["frames"].count("sync") == 1 and seen["tokens"] >= 3  # no re-join; a new token each time
        assert all(isinstance(at, float) for at in seen["refreshed"])
