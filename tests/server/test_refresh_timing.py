"""(ext) Token expiry in virtual time: refresh_required, then TOKEN_EXPIRED (WebSocket) or the end of
the response (SSE), through a real server and real clients on loopback.

The clock is Trio's MockClock, jumping once every task has been idle for 10 ms of real time
(long enough for loopback I/O in flight to land first): a 100 s token lifetime takes no real time.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import open_websocket_url

from runtime import App, Stream, StreamConfig, Unauthorized
from runtime.server.auth_lease import AuthLease, expires_at, refresh_notice

from .conftest import SSEReader, running_ws

room = Stream(StreamConfig(name="room"))


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0.01)


def authenticate(request):
    """``<user>:<lifetime seconds>``: a context that expires that long from now (wall clock)."""
    token = request.token or ""
    if token == "refused":
        raise Unauthorized("refused")
    user, _, lifetime = token.partition(":")
    return {"user": user, "expires_at": time.time() + float(lifetime)} if lifetime else {"user": user}


def make_app() -> App:
    return App(streams=[room], authenticate=authenticate)


async def receive(ws) -> dict:
    with trio.fail_after(500):
        return orjson.loads(await ws.get_message())


def join(sid: str) -> str:
    body = {"streamName": "room", "groupId": "g", "subscriptionId": sid}
    return orjson.dumps({"type": "join", "data": body}).decode()


def refresh(token: str) -> str:
    return orjson.dumps({"type": "refresh", "data": {"token": token}}).decode()


def test_notice_is_refresh_before_ahead_or_half_the_lifetime():
    assert refresh_notice(1000.0, 0.0, 30.0) == 970.0
    assert refresh_notice(1020.0, 1000.0, 30.0) == 1010.0  # 20 s left: half of it
    assert refresh_notice(1000.0, 1010.0, 30.0) == 1000.0  # already past: now
    assert expires_at({"expires_at": 5}) == 5.0 and expires_at(None) is None
    assert expires_at({"expires_at": True}) is None

    class Context:
        expires_at = 12.5

    assert expires_at(Context()) == 12.5


async def test_a_lease_notifies_once_expires_once_and_a_replacement_restarts_it(clock):
    lease = AuthLease({"expires_at": time.time() + 100}, refresh_before=30)
    seen = []
    async with trio.open_nursery() as nursery:
        start = trio.current_time()

        async def expire():
            seen.append(("expired", round(trio.current_time() - start)))

        nursery.start_soon(lease.watch, lambda e: seen.append(("notice", round(trio.current_time() - start))),
                           expire)
        await trio.sleep(80)
        lease.replace({"expires_at": time.time() + 100})  # refreshed at 80 s: a new notice at 150 s
        await trio.sleep(200)
        lease.replace(None)  # a context without an expiry: nothing more, ever
        await trio.sleep(500)
        nursery.cancel_scope.cancel()
    assert seen == [("notice", 70), ("notice", 150), ("expired", 180)]


async def test_websocket_refresh_required_then_token_expired_then_refresh_and_rejoin(clock):
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "ann:100"]) as ws:
            start, wall = trio.current_time(), time.time()
            await ws.send_message(join("a"))
            assert (await receive(ws))["event"]["type"] == "sync"
            notice = await receive(ws)
            assert notice["type"] == "refresh_required" and round(trio.current_time() - start) == 70
            assert abs(notice["data"]["expiresAt"] - (wall + 100)) < 5  # (the wall clock does not jump)
            unauthorized = await receive(ws)
            assert round(trio.current_time() - start) == 100
            assert unauthorized["event"] == {"type": "unauthorized"} and unauthorized["groupId"] == "g"
            error = await receive(ws)
            assert error["event"]["event"]["data"]["code"] == "TOKEN_EXPIRED"
            # the connection stays: a join with the lapsed context is refused the same way ...
            await ws.send_message(join("b"))
            assert (await receive(ws))["event"] == {"type": "unauthorized"}
            assert (await receive(ws))["event"]["event"]["data"]["code"] == "TOKEN_EXPIRED"
            # ... and a refresh then a re-join works
            await ws.send_message(refresh("ann"))
            assert await receive(ws) == {"type": "refreshed", "data": {"expiresAt": None}}
            await ws.send_message(join("a"))
            assert (await receive(ws))["event"]["type"] == "sync"


async def test_websocket_a_refresh_in_time_keeps_every_subscription_and_a_failed_one_keeps_the_old_expiry(clock):
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "ann:100"]) as ws:
            start = trio.current_time()
            await ws.send_message(join("a"))
            assert (await receive(ws))["event"]["type"] == "sync"
            assert (await receive(ws))["type"] == "refresh_required"
            await ws.send_message(refresh("refused"))
            assert (await receive(ws))["error"]["code"] == "REFRESH_FAILED"
            await ws.send_message(refresh("ann:100"))
            refreshed = await receive(ws)
            assert refreshed["type"] == "refreshed" and refreshed["data"]["expiresAt"] > time.time() + 90
            # the old expiry (100 s) passes without an end; the new context's notice comes 70 s after the refresh
            again = await receive(ws)
            assert again["type"] == "refresh_required" and round(trio.current_time() - start) == 140
            await room.bind(listening.server.app.engine).set("g", "x", {})
            assert (await receive(ws))["event"]["type"] == "create"  # still subscribed, no new sync


async def test_a_short_lived_token_is_asked_to_refresh_at_half_its_life(clock):
    async with running_ws(make_app()) as listening:
        async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "ann:20"]) as ws:
            start = trio.current_time()
            assert (await receive(ws))["type"] == "refresh_required"
            assert round(trio.current_time() - start) == 10


async def test_sse_refresh_required_then_the_response_ends_and_a_new_token_resumes(clock):
    async with running_ws(make_app()) as listening:
        async with httpx.AsyncClient(base_url=listening.http_url, timeout=None) as http:
            await room.bind(listening.server.app.engine).set("g", "x", {"v": 1})
            start = trio.current_time()
            async with http.stream("GET", "/streams/room/g", headers={"Authorization": "Bearer ann:100"}) as response:
                reader = SSEReader(response)
                sync = await reader.next_event()
                last_id = sync["id"]
                notice = await reader.next_event()
                assert notice["event"] == "refresh_required" and "id" not in notice
                assert round(trio.current_time() - start) == 70 and set(notice["data"]) == {"expiresAt"}
                with pytest.raises(StopAsyncIteration):  # the body ends cleanly at the expiry
                    while True:
                        event = await reader.next()
                        assert "data" not in event  # (heartbeats only)
                assert round(trio.current_time() - start) == 100
            await room.bind(listening.server.app.engine).set("g", "y", {"v": 2})
            async with http.stream("GET", "/streams/room/g", headers={
                    "Authorization": "Bearer ann:100", "Last-Event-ID": last_id}) as response:
                resumed = await SSEReader(response).next_event()
                assert resumed["event"] == "create" and resumed["data"]["event"]["data"]["id"] == "y"


async def test_sse_presence_events_follow_the_sync(clock):
    async with running_ws(make_app()) as listening:
        async with httpx.AsyncClient(base_url=listening.http_url, timeout=None) as http:
            async with http.stream("GET", "/streams/room/g?presence=true",
                                   headers={"Authorization": "Bearer ann"}) as response:
                reader = SSEReader(response)
                assert (await reader.next_event())["event"] == "sync"
                listed = await reader.next_event()
                assert listed["event"] == "presence" and "id" not in listed
                assert listed["data"]["event"]["data"] == [{"key": "ann", "count": 1, "data": {}}]
                async with open_websocket_url(listening.stream_url, subprotocols=["Authorization", "bob"]) as ws:
                    await ws.send_message(join("b"))
                    joined = await reader.next_event()
                    assert joined["event"] == "presence_join"
                    assert joined["data"]["event"]["data"] == {"key": "bob", "count": 1, "data": {}}
                left = await reader.next_event()
                assert left["event"] == "presence_leave" and left["data"]["event"]["data"]["key"] == "bob"
