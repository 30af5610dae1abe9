"""(ext) The Trio client's presence subscriptions and token refresh, against a real server.

Refresh timing runs in virtual time: MockClock jumping once every task has been idle 10 ms of
real time, so loopback I/O in flight lands first and a 100 s token lifetime costs no real time.
"""

from __future__ import annotations

import time

import pytest
import trio
import trio.testing

from runtime import App, Stream, StreamConfig, Unauthorized
from runtime.client import PresenceEntry, StreamClient, SubscriptionRefused

from ..server.conftest import running_ws

room = Stream(StreamConfig(name="room", can_access=lambda sub, auth: not (auth or {}).get("deny")))


def authenticate(request):
    """``<user>[:<lifetime>][+deny]``."""
    token = request.token or ""
    if token == "refused":
        raise Unauthorized("refused")
    token, _, flags = token.partition("+")
    user, _, lifetime = token.partition(":")
    context = {"user": user, "deny": flags == "deny"}
    if lifetime:
        context["expires_at"] = time.time() + float(lifetime)
    return context


def make_app() -> App:
    return App(streams=[room], authenticate=authenticate)


@pytest.fixture
def clock():
    return trio.testing.MockClock(autojump_threshold=0.01)


async def eventually(check, timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.01)


async def ended(sub) -> None:
    """Until the subscription fails (waiting on its error listener: no polling in virtual time)."""
    failed = trio.Event()
    sub.on_error(lambda error: failed.set())
    with trio.fail_after(500):
        await failed.wait()


async def test_presence_of_a_group_with_tabs_and_listeners():
    async with running_ws(make_app()) as listening:
        async with StreamClient(listening.stream_url, token="watcher") as watcher_client:
            seen = []
            watcher = await watcher_client.subscribe_group("room", "lobby", presence=True)
            watcher.on_presence(lambda kind, data: seen.append(kind))
            await eventually(lambda: watcher.presence == [PresenceEntry("watcher", 1, {})])
            async with StreamClient(listening.stream_url, token="ann") as ann:
                await ann.subscribe_group("room", "lobby", presence=True, presence_data={"tab": 1})
                tab2 = await ann.subscribe_group("room", "lobby")  # counted, though it asked for nothing
                await eventually(lambda: [(e.key, e.count) for e in watcher.presence] == [("ann", 2), ("watcher", 1)])
                assert tab2.presence == []
                await tab2.close()
                await eventually(lambda: [(e.key, e.count) for e in watcher.presence] == [("ann", 1), ("watcher", 1)])
            await eventually(lambda: [e.key for e in watcher.presence] == ["watcher"])
            assert "presence_join" in seen and seen[-1] == "presence_leave"


async def test_a_callable_token_is_refreshed_before_expiry_and_nothing_is_missed(clock):
    issued = []

    async def token():
        issued.append(trio.current_time())
        return "ann:100"

    app = make_app()
    async with running_ws(app) as listening:
        async with StreamClient(listening.stream_url, token=token) as client:
            start = trio.current_time()
            sub = await client.subscribe_group("room", "g")
            await trio.sleep(250)  # two refreshes (at 70 s and 140 s) and past every expiry
            await room.bind(app.engine).set("g", "x", {"v": 1})
            await eventually(lambda: [item["id"] for item in sub.get_state()] == ["x"])
            assert client.refreshes >= 2 and not sub.closed and client.connections == 1
            assert [round(t - start) for t in issued[:3]] == [0, 70, 140]


async def test_an_expired_token_ends_subscriptions_then_a_refresh_resumes_them(clock):
    tokens = iter(["ann:100", "refused", "ann"])

    async def token():
        return next(tokens)

    errors = []
    app = make_app()
    async with running_ws(app) as listening:
        async with StreamClient(listening.stream_url, token=token, on_error=errors.append) as client:
            sub = await client.subscribe_group("room", "g")
            # the refresh at 70 s is refused (REFRESH_FAILED): at 100 s the subscription ends with TOKEN_EXPIRED,
            # the client asks for a token again and re-joins from its position
            await trio.sleep(100.5)
            await room.bind(app.engine).set("g", "y", {"v": 2})
            await eventually(lambda: [item["id"] for item in sub.get_state()] == ["y"], timeout=30)
            assert not sub.closed and client.connections == 1
            assert [getattr(e, "code", None) for e in errors] == ["REFRESH_FAILED"]


async def test_a_fixed_token_that_expires_fails_its_subscriptions(clock):
    async with running_ws(make_app()) as listening:
        async with StreamClient(listening.stream_url, token="ann:100", on_error=lambda e: None) as client:
            sub = await client.subscribe_group("room", "g")
            await ended(sub)
            assert isinstance(sub.error, SubscriptionRefused) and sub.error.code == "TOKEN_EXPIRED"
            assert client.expires_at is not None


async def test_a_refresh_that_loses_access_fails_that_subscription(clock):
    tokens = iter(["ann:100", "ann+deny"])

    async def token():
        return next(tokens)

    async with running_ws(make_app()) as listening:
        async with StreamClient(listening.stream_url, token=token, on_error=lambda e: None) as client:
            sub = await client.subscribe_group("room", "g")
            await ended(sub)
            assert isinstance(sub.error, SubscriptionRefused) and sub.error.code == "STREAM_ACCESS_DENIED"
            assert client.refreshes == 1 and client.expires_at is None
