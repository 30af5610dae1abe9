"""(ext) Presence and token refresh over a real WebSocket listener, with a raw WebSocket client.

The timing of ``refresh_required`` and of the expiry is tested in virtual
time in test_ws_refresh_timing.py; here the frames and their effects.
"""

from __future__ import annotations

import httpx
import orjson
import trio
from trio_websocket import open_websocket_url

from runtime import App, PresenceEntry, Stream, StreamConfig, Unauthorized

from .conftest import running_ws


def can_access(subscription, auth):
    return not (auth or {}).get("deny")


room = Stream(StreamConfig(name="room", can_access=can_access))
named = Stream(StreamConfig(name="named", presence=lambda auth, sub: (auth["user"], {"n": auth["user"].upper()})))


def authenticate(request):
    token = request.token or ""
    if token.startswith("bad"):
        raise Unauthorized("bad token")
    user, _, flags = token.partition("+")
    return {"user": user, "deny": "deny" in flags} if user else None


def make_app() -> App:
    return App(streams=[room, named], authenticate=authenticate)


async def receive(ws) -> dict:
    with trio.fail_after(5):
        return orjson.loads(await ws.get_message())


def join(sid, group="lobby", *, stream="room", presence=True, data=None, item=None) -> str:
    body = {"streamName": stream, "groupId": group, "subscriptionId": sid, "presence": presence}
    if data is not None:
        body["presenceData"] = data
    if item is not None:
        body["id"] = item
    return orjson.dumps({"type": "join", "data": body}).decode()


def connect(listening, token):
    return open_websocket_url(listening.stream_url, subprotocols=["Authorization", token])


async def test_presence_list_after_sync_then_joins_and_leaves_with_tab_counts():
    async with running_ws(make_app()) as listening:
        async with connect(listening, "watcher") as watcher:
            await watcher.send_message(join("w"))
            assert (await receive(watcher))["event"]["type"] == "sync"
            listed = await receive(watcher)
            assert listed["id"] is None and "offset" not in listed and "epoch" not in listed
            assert listed["event"] == {"type": "presence", "data": [{"key": "watcher", "count": 1, "data": {}}]}
            async with connect(listening, "ann") as tab1, connect(listening, "ann") as tab2:
                await tab1.send_message(join("t", presence=False, data=None))
                assert (await receive(watcher))["event"] == {
                    "type": "presence_join", "data": {"key": "ann", "count": 1, "data": {}}}
                await tab2.send_message(join("t", data={"cursor": 3}))
                assert (await receive(tab2))["event"]["type"] == "sync"
                assert (await receive(tab2))["event"]["data"] == [
                    {"key": "ann", "count": 2, "data": {"cursor": 3}}, {"key": "watcher", "count": 1, "data": {}}]
                assert (await receive(watcher))["event"] == {
                    "type": "presence_join", "data": {"key": "ann", "count": 2, "data": {"cursor": 3}}}
                # over HTTP, with the same auth as an SSE subscription to the group
                async with httpx.AsyncClient(base_url=listening.http_url, timeout=5) as http:
                    answer = await http.get("/streams/room/lobby/presence", headers={
                        "Accept": "application/json", "Authorization": "Bearer ann"})
                    assert answer.status_code == 200
                    assert answer.json() == {"presence": [{"key": "ann", "count": 2, "data": {"cursor": 3}},
                                                          {"key": "watcher", "count": 1, "data": {}}]}
                    denied = await http.get("/streams/room/lobby/presence", headers={
                        "Accept": "application/json", "Authorization": "Bearer ann+deny"})
                    assert denied.status_code == 403
            # both tabs closed: count 1 (an upsert), then the leave
            assert (await receive(watcher))["event"]["type"] == "presence_join"
            assert (await receive(watcher))["event"] == {"type": "presence_leave", "data": {"key": "ann", "count": 0}}


async def test_the_stream_hook_names_the_identity_and_item_joins_are_not_counted():
    async with running_ws(make_app()) as listening:
        async with connect(listening, "bob") as ws:
            await ws.send_message(join("a", stream="named"))
            assert (await receive(ws))["event"]["type"] == "sync"
            assert (await receive(ws))["event"]["data"] == [{"key": "bob", "count": 1, "data": {"n": "BOB"}}]
            await ws.send_message(join("b", stream="named", item="x"))  # an item join: no presence, not counted
            assert (await receive(ws))["event"]["type"] == "sync"
            assert await named.bind(listening.server.app.engine).presence("lobby") == [
                PresenceEntry("bob", 1, {"n": "BOB"})]
            await ws.send_message(orjson.dumps({"type": "leave", "data": {
                "streamName": "named", "groupId": "lobby", "subscriptionId": "a"}}).decode())
            with trio.fail_after(5):
                while await named.bind(listening.server.app.engine).presence("lobby"):
                    await trio.sleep(0.01)


async def test_bad_presence_data_is_answered_and_changes_nothing():
    async with running_ws(make_app()) as listening:
        async with connect(listening, "ann") as ws:
            await ws.send_message(join("a", data={"big": "x" * 2000}))
            error = await receive(ws)
            assert error["type"] == "error" and error["error"]["code"] == "BAD_FRAME"
            await ws.send_message(join("a", data=["not an object"]))
            assert (await receive(ws))["error"]["code"] == "BAD_FRAME"
            await ws.send_message(join("a"))
            assert (await receive(ws))["event"]["type"] == "sync"


async def test_refresh_keeps_allowed_subscriptions_ends_refused_ones_and_a_bad_token_changes_nothing():
    async with running_ws(make_app()) as listening:
        async with connect(listening, "ann") as ws:
            await ws.send_message(join("a", presence=False))
            sync = await receive(ws)
            assert sync["event"]["type"] == "sync"
            await ws.send_message(orjson.dumps({"type": "refresh", "data": {"token": "bad-one"}}).decode())
            failed = await receive(ws)
            assert failed == {"type": "error", "error": {"code": "REFRESH_FAILED", "message": "bad token"}}
            await ws.send_message(orjson.dumps({"type": "refresh", "data": {"token": "ann"}}).decode())
            assert await receive(ws) == {"type": "refreshed", "data": {"expiresAt": None}}
            # no gap: the subscription still gets changes, without a new sync
            await room.bind(listening.server.app.engine).set("lobby", "x", {"v": 1})
            assert (await receive(ws))["event"]["type"] == "create"
            await ws.send_message(orjson.dumps({"type": "refresh", "data": {"token": "ann+deny"}}).decode())
            assert await receive(ws) == {"type": "refreshed", "data": {"expiresAt": None}}
            refused = await receive(ws)
            assert refused["event"] == {"type": "unauthorized"} and refused["groupId"] == "lobby"
            error = await receive(ws)
            assert error["event"]["event"]["data"]["code"] == "STREAM_ACCESS_DENIED"
            # ended: later changes are not sent; the connection still answers
            await room.bind(listening.server.app.engine).set("lobby", "y", {"v": 2})
            await ws.send_message(orjson.dumps({"type": "refresh", "data": {}}).decode())
            assert (await receive(ws))["error"]["code"] == "BAD_FRAME"
