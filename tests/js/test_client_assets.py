"""``/_client/``: the built browser client served by a real server, and the refusal probe."""

from __future__ import annotations

from pathlib import Path

import httpx
from trio_websocket import ConnectionRejected, open_websocket_url

from runtime import App, StreamConfig, Unauthorized
from runtime.server import ServerSettings

DIST = Path(__file__).resolve().parents[2] / "clients" / "js" / "dist"


def authenticate(request):
    if request.token != "let-me-in":
        raise Unauthorized("bad token")
    return {"user": "ann"}


async def test_the_modules_are_served_with_their_type_and_revalidation(nursery):
    app = App(streams=[StreamConfig(name="todos")], authenticate=authenticate)
    listening = await nursery.start(lambda task_status: app.serve(ServerSettings(port=0, stream_port=0),
                                                                  task_status=task_status))
    async with httpx.AsyncClient(base_url=listening.http_url) as client:
        for name in ("stream.js", "react.js"):
            response = await client.get(f"/_client/{name}", headers={"origin": "http://elsewhere:5173"})
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/javascript; charset=utf-8"
            assert response.headers["cache-control"] == "no-cache"
            assert response.headers["access-control-allow-origin"] == "*"  # importable from a dev server
            assert response.content == (DIST / name).read_bytes()
            again = await client.get(f"/_client/{name}", headers={"if-none-match": response.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
        react = (await client.get("/_client/react.js")).text
        assert 'from "./stream.js"' in react and 'from "react"' in react  # one copy of the client per page
        assert (await client.get("/_client/nope.js")).status_code == 404


async def test_the_probe_answers_as_the_websocket_handshake_would(nursery):
    app = App(streams=[StreamConfig(name="todos")], authenticate=authenticate)
    listening = await nursery.start(lambda task_status: app.serve(ServerSettings(port=0, stream_port=0),
                                                                  task_status=task_status))
    async with httpx.AsyncClient(base_url=listening.http_url) as client:
        refused = await client.get("/_client/auth", headers={"authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert refused.json() == {"error": {"code": "UNAUTHORIZED", "message": "bad token"}}
        assert refused.headers["cache-control"] == "no-store"
        admitted = await client.get("/_client/auth", headers={"authorization": "Bearer let-me-in"})
        assert admitted.status_code == 200 and admitted.json() == {"ok": True}
        # the handshake's own verdict, for the same token
        try:
            async with open_websocket_url(listening.stream_url + "/?authToken=nope"):
                raise AssertionError("the handshake admitted a bad token")
        except ConnectionRejected as rejected:
            assert rejected.status_code == 401
