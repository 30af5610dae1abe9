"""The connection layer (subscriptions.py): what both transports rely on, in process and over sockets."""

from __future__ import annotations

import trio

from runtime import App, Stream, StreamConfig, Unauthorized
from runtime.server.auth import AuthRequest, Subscription
from runtime.server.metrics import ServerMetrics
from runtime.server.settings import ServerSettings
from runtime.server.subscriptions import Subscriptions
from runtime.server.ws_protocol import event_frame

from .conftest import running
from .test_sse_direct import connect, read_until


def _layer(app: App, metrics: ServerMetrics) -> Subscriptions:
    return Subscriptions(app, ServerSettings(), metrics, "websocket", encode=event_frame, slow_close=b"",
                         max_subscriptions=10)


async def test_a_refresh_ends_only_the_subscriptions_the_new_context_refuses():
    left: list[tuple[str, object]] = []
    config = StreamConfig(
        name="rooms",
        can_access=lambda sub, auth: sub.group_id == "lobby" or auth == "admin",
        on_leave=lambda sub, ctx, auth: left.append((sub.group_id, auth)),
    )
    def authenticate(request):
        if request.token == "refused":
            raise Unauthorized("no")
        return request.token

    app = App(streams=[Stream(config)], authenticate=authenticate)
    metrics = ServerMetrics()
    async with app:
        subs = _layer(app, metrics)
        request = AuthRequest(headers={}, path="/", query_params={}, addr=None, token="admin")
        assert await subs.authenticate(request, None) is None and subs.auth_context == "admin"
        assert await subs.join("a", Subscription("rooms", "lobby")) is None
        assert await subs.join("b", Subscription("rooms", "vault")) is None
        refused = await subs.join("c", Subscription("rooms", "vault2"))  # allowed: admin
        assert refused is None and metrics.subscriptions["websocket"] == 3

        told: list[str] = []
        failed = await subs.renew("bad")  # authenticate returns the token: "bad" is just another context
        assert failed is None and subs.auth_context == "bad"
        await subs.recheck(lambda subscription_id, joined: told.append(subscription_id))
        assert sorted(told) == ["b", "c"]
        assert sorted(left) == [("vault", "bad"), ("vault2", "bad")]
        left.clear()
        # renewed back to admin, re-joined, then a guest token
        assert await subs.renew("admin") is None
        assert await subs.join("b", Subscription("rooms", "vault")) is None
        assert await subs.join("c", Subscription("rooms", "vault2")) is None
        told.clear()
        assert await subs.renew("guest") is None
        await subs.recheck(lambda subscription_id, joined: told.append(subscription_id))

        assert sorted(told) == ["b", "c"]
        assert list(subs.table) == ["a"] and subs.auth_context == "guest"
        assert metrics.subscriptions["websocket"] == 1
        assert (await app.engine.group_stats("rooms", "vault"))["subscribers"] == 0
        assert (await app.engine.group_stats("rooms", "lobby"))["subscribers"] == 1
        assert sorted(left) == [("vault", "guest"), ("vault2", "guest")]
        # a refused refresh keeps the old context
        refused_refresh = await subs.renew("refused")
        assert refused_refresh is not None and refused_refresh.code == "REFRESH_FAILED"
        assert subs.auth_context == "guest"
        # a refused join under the new context is a Refusal the transport frames, not an exception
        refusal = await subs.join("d", Subscription("rooms", "vault"))
        assert refusal is not None and (refusal.status, refusal.code) == (403, "STREAM_ACCESS_DENIED")


async def test_the_subscription_limit_and_a_missing_stream_are_refusals():
    app = App(streams=[Stream("s")])
    async with app:
        subs = Subscriptions(app, ServerSettings(), ServerMetrics(), "websocket", encode=event_frame,
                             slow_close=b"", max_subscriptions=1)
        assert await subs.join("a", Subscription("s", "g")) is None
        too_many = await subs.join("b", Subscription("s", "g2"))
        assert too_many is not None and (too_many.status, too_many.code) == (429, "TOO_MANY_SUBSCRIPTIONS")
        assert await subs.join("a", Subscription("s", "g3")) is None  # the same id replaces: not one more
        assert list(subs.table) == ["a"] and subs.table["a"].group == ("s", "g3")
        missing = await subs.join("a", Subscription("ghost", "g"))
        assert missing is not None and (missing.status, missing.code) == (404, "STREAM_NOT_FOUND")


def _token_only(request):
    if request.token != "t":
        raise Unauthorized("no token")
    return {"user": "u"}


async def test_sse_authenticates_before_saying_whether_a_stream_exists():
    """The order is the layer's, the same on both transports: origin, authenticate, then the stream."""
    app = App(streams=[Stream("feed")], authenticate=_token_only)
    async with running(app) as (url, _):
        for target, status in ((b"/streams/ghost/g", b"401"), (b"/streams/ghost/g?authToken=t", b"404")):
            sock = await connect(url)
            await sock.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await read_until(sock, b"}")
            assert answer.startswith(b"HTTP/1.1 " + status), answer
            sock.close()


async def test_sse_keep_alive_counts_from_the_last_write_in_virtual_time(autojump_clock):
    app = App(streams=[Stream("hb")])
    async with running(app) as (url, _):
        sock = await connect(url)
        await sock.send(b"GET /streams/hb/g HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_until(sock, b"event: sync")
        start = trio.current_time()
        await trio.sleep(10)
        await app.stream("hb").set("g", "a", {"n": 1})  # written at +10: the stream was not quiet
        await read_until(sock, b"event: create")
        await read_until(sock, b": ping", limit=60)
        assert trio.current_time() - start >= 24.5  # 15 s after the last write, not 15 s after the sync
        sock.close()
