"""`StreamClient` against a real server: subscriptions, every event kind, refusals, auth, iterators."""

from __future__ import annotations

import pytest
import trio

from runtime import App, HistoryPolicy, Stream, StreamConfig
from runtime import Unauthorized as Refuse
from runtime.client import (
    ClientClosed,
    Position,
    StreamClient,
    SubscriptionRefused,
    Unauthorized,
)
from tests.server.conftest import running_ws

left: list = []


def can_access(subscription, auth):
    if subscription.group_id == "secret":
        return False
    if subscription.group_id == "private":
        return auth is not None and auth.get("user") == "ann"
    return True


def authenticate(request):
    if request.token == "bad":
        raise Refuse("bad token")
    return {"user": request.token} if request.token else None


def make_app(**options) -> App:
    todos = Stream(StreamConfig(name="todos", can_access=can_access, history=HistoryPolicy(max_events=50),
                                on_leave=lambda sub, ctx, auth: left.append((sub.group_id, sub.id))))
    return App(streams=[todos], authenticate=authenticate, **options)


def client(url: str, **options) -> StreamClient:
    return StreamClient(url, **{"backoff_initial": 0.05, "backoff_max": 0.2, **options})


async def until(condition, timeout: float = 5) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.005)


async def take(iterator, n: int) -> list:
    with trio.fail_after(5):
        return [await iterator.__anext__() for _ in range(n)]


async def test_group_and_item_subscriptions_see_every_event_kind():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        await todos.set("inbox", "a", {"title": "milk"})
        async with client(listening.stream_url) as c:
            group = await c.subscribe_group("todos", "inbox")
            item = await c.subscribe_item("todos", "inbox", "a")
            assert group.get_state() == [{"id": "a", "title": "milk"}]
            assert item.get_state() == {"id": "a", "title": "milk"}
            assert isinstance(group.last_position, Position) and group.last_position.offset == 1
            states, typing, item_typing = [], [], []
            group.add_change_listener(states.append)
            group.on_event("typing", typing.append)
            item.on_event("typing", item_typing.append)
            changes, item_changes = group.changes(), item.changes()

            await todos.set("inbox", "b", {"title": "bread"})
            await todos.update("inbox", "a", [{"type": "set", "path": "done", "value": True}])
            await todos.delete("inbox", "b")
            await todos.send({"groupId": "inbox", "id": None}, {"type": "typing", "data": {"who": "x"}})
            await todos.send({"groupId": "inbox", "id": "a"}, {"type": "typing", "data": {"who": "y"}})

            got = await take(changes, 5)
            assert [(ch.kind, ch.item_id) for ch in got] == [
                ("create", "b"), ("update", "a"), ("delete", "b"), ("event", None), ("event", "a")]
            assert [ch.offset for ch in got[:3]] == [2, 3, 4] and got[3].offset is None
            assert got[0].data == {"id": "b", "title": "bread"} and got[2].data == {"id": "b", "title": "bread"}
            assert (got[3].event_type, got[3].data) == ("typing", {"who": "x"})
            assert not any(ch.resynced for ch in got)
            # item frames reach the item subscription (and the group's): each once
            item_got = await take(item_changes, 2)
            assert [(ch.kind, ch.data) for ch in item_got] == [
                ("update", {"id": "a", "title": "milk", "done": True}), ("event", {"who": "y"})]
            assert item_changes.pending == 0 and changes.pending == 0

            assert group.get_state() == [{"id": "a", "title": "milk", "done": True}]
            assert item.get_state() == {"id": "a", "title": "milk", "done": True}
            assert [len(s) for s in states] == [2, 2, 1]  # Motia's change listener: the state after each change
            assert typing == [{"who": "x"}, {"who": "y"}] and item_typing == [{"who": "y"}]
            assert group.last_position.offset == 4 and item.last_position.offset == 3

            await todos.delete("inbox", "a")
            assert (await take(item_changes, 1))[0].kind == "delete"
            assert item.get_state() is None and group.get_state() == []


async def test_sort_key_and_two_subscriptions_to_one_group():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        for key, title in (("1", "pear"), ("2", "apple")):
            await todos.set("fruit", key, {"title": title})
        async with client(listening.stream_url) as c:
            plain = await c.subscribe_group("todos", "fruit")
            by_title = await c.subscribe_group("todos", "fruit", sort_key="title")
            assert [i["title"] for i in plain.get_state()] == ["pear", "apple"]
            assert [i["title"] for i in by_title.get_state()] == ["apple", "pear"]
            plain_changes, sorted_changes = plain.changes(), by_title.changes()
            await todos.set("fruit", "3", {"title": "banana"})
            await todos.update("fruit", "1", [{"type": "set", "path": "title", "value": "cherry"}])
            # one frame per connection, delivered to both subscriptions of the room, once each
            assert [ch.kind for ch in await take(plain_changes, 2)] == ["create", "update"]
            assert [ch.kind for ch in await take(sorted_changes, 2)] == ["create", "update"]
            assert [i["title"] for i in plain.get_state()] == ["cherry", "apple", "banana"]
            assert [i["title"] for i in by_title.get_state()] == ["apple", "banana", "cherry"]
            await plain.close()
            await todos.set("fruit", "4", {"title": "kiwi"})
            assert (await take(sorted_changes, 1))[0].item_id == "4"
            assert plain.get_state()[-1]["title"] == "banana"  # closed: no longer follows


async def test_refused_joins_raise_and_the_client_carries_on():
    app = make_app()
    async with running_ws(app) as listening:
        async with client(listening.stream_url) as c:
            with trio.fail_after(5):
                with pytest.raises(SubscriptionRefused) as denied:
                    await c.subscribe_group("todos", "secret")
                assert denied.value.code == "STREAM_ACCESS_DENIED" and denied.value.group == "secret"
                assert "denied" in denied.value.message
                with pytest.raises(SubscriptionRefused) as missing:
                    await c.subscribe_item("todos_typo", "inbox", "a")
                assert missing.value.code == "STREAM_NOT_FOUND" and missing.value.item_id == "a"
                with pytest.raises(SubscriptionRefused):
                    await c.subscribe_group("todos", "private")  # anonymous
                ok = await c.subscribe_group("todos", "inbox")
            assert ok.get_state() == [] and c.subscriptions == [ok]


async def test_too_many_subscriptions_is_a_refusal():
    async with running_ws(make_app(), ws_max_subscriptions=2) as listening:
        async with client(listening.stream_url) as c:
            with trio.fail_after(5):
                await c.subscribe_group("todos", "g1")
                await c.subscribe_group("todos", "g2")
                with pytest.raises(SubscriptionRefused) as refused:
                    await c.subscribe_group("todos", "g3")
            assert refused.value.code == "TOO_MANY_SUBSCRIPTIONS"


async def test_auth_token_is_sent_and_a_rejected_handshake_surfaces_without_a_retry_loop():
    calls: list = []

    def counting(request):
        calls.append(request.token)
        return authenticate(request)

    app = make_app()
    app.authenticate = counting
    async with running_ws(app) as listening:
        async with client(listening.stream_url, token="ann") as c:
            private = await c.subscribe_group("todos", "private")  # the auth context reached can_access
            assert private.get_state() == [] and calls == ["ann"]

        errors: list = []
        async with client(listening.stream_url, token="bad", on_error=errors.append) as c:
            with trio.fail_after(5):
                with pytest.raises(Unauthorized) as rejected:
                    await c.subscribe_group("todos", "inbox")
            assert rejected.value.status == 401 and rejected.value.code == "UNAUTHORIZED"
            assert "bad token" in str(rejected.value)
            assert errors == [rejected.value] and c.state == "failed" and c.error is rejected.value
            with pytest.raises(Unauthorized):
                await c.wait_connected()
            with pytest.raises(Unauthorized):
                await c.subscribe_item("todos", "inbox", "a")
            await trio.sleep(0.3)  # many backoff periods: no new attempt
            assert calls.count("bad") == 1


async def test_a_token_callable_is_asked_again_after_a_401():
    tokens = iter(["bad", "bad", "ann"])
    attempts: list = []
    app = make_app()
    async with running_ws(app) as listening:
        async with client(listening.stream_url, token=lambda: next(tokens)) as c:
            c.on_connection_change(lambda state, error: attempts.append((state, type(error).__name__)))
            with trio.fail_after(5):
                sub = await c.subscribe_group("todos", "private")
            assert sub.get_state() == []
            assert ("disconnected", "Unauthorized") in attempts and c.connected


async def test_closing_a_subscription_leaves_and_a_cancelled_subscribe_leaves_nothing():
    left.clear()
    released = trio.Event()

    async def on_join(subscription, ctx, auth):
        if subscription.group_id == "slow":
            await released.wait()

    todos_config = StreamConfig(name="slowjoin", on_join=on_join,
                                on_leave=lambda sub, ctx, auth: left.append((sub.group_id, sub.id)))
    app = App(streams=[Stream(todos_config)], authenticate=authenticate)
    async with running_ws(app) as listening:
        async with client(listening.stream_url) as c:
            sub = await c.subscribe_item("slowjoin", "fast", "a")
            changes = sub.changes()
            await sub.close()
            assert sub.closed and c.subscriptions == []
            await until(lambda: ("fast", "a") in left)
            with pytest.raises(StopAsyncIteration):
                await changes.__anext__()  # the iteration ends with the subscription

            with trio.move_on_after(0.2):
                await c.subscribe_group("slowjoin", "slow")  # the server is still deciding
            assert c.subscriptions == []
            released.set()  # the join completes, then the leave sent on cancellation
            await until(lambda: ("slow", None) in left)
            stats = await app.engine.group_stats("slowjoin", "slow")
            assert stats["subscriptions"] == 0


async def test_an_iterator_that_falls_behind_gets_one_snapshot():
    app = make_app()
    todos = app.stream("todos")
    async with running_ws(app) as listening:
        async with client(listening.stream_url) as c:
            sub = await c.subscribe_group("todos", "burst")
            slow = sub.changes(buffer=3)
            for i in range(10):
                await todos.set("burst", f"k{i}", {"i": i})
            await until(lambda: sub.last_position.offset == 10)
            first = await take(slow, 1)
            assert first[0].kind == "sync" and first[0].resynced and first[0].dropped == 10
            assert first[0].data == sub.get_state() and len(first[0].data) == 10
            assert slow.pending == 0
            await todos.set("burst", "k0", {"i": 99})
            assert (await take(slow, 1))[0].data == {"id": "k0", "i": 99}  # then live again
            assert sub.resyncs == 0  # the subscription itself missed nothing


async def test_closing_the_client_ends_iterators_and_subscribe_calls():
    async with running_ws(make_app()) as listening:
        async with client(listening.stream_url) as c:
            sub = await c.subscribe_group("todos", "inbox")
            ended = trio.Event()

            async def consume():
                async for _ in sub:
                    pass
                ended.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await trio.sleep(0.01)
                await c.close()
            assert ended.is_set() and sub.closed and sub.error is None
            with pytest.raises(ClientClosed):
                await c.subscribe_group("todos", "inbox")


async def test_subscribing_waits_for_a_server_that_is_not_there_yet():
    app = make_app()
    todos = app.stream("todos")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    states: list = []
    async with client(f"ws://127.0.0.1:{port}") as c:
        c.on_connection_change(lambda state, error: states.append(state))
        with pytest.raises(Exception) as failed:
            await c.wait_connected()
        assert "cannot connect" in str(failed.value)
        async with trio.open_nursery() as nursery:
            got: list = []

            async def subscribe():
                got.append(await c.subscribe_group("todos", "inbox"))

            nursery.start_soon(subscribe)
            await trio.sleep(0.2)
            async with running_ws(app, stream_port=port):
                await todos.set("inbox", "a", {"n": 1})
                await until(lambda: got)
                assert got[0].get_state() == [{"id": "a", "n": 1}]
    assert states.count("disconnected") >= 2 and "connected" in states


async def test_error_frames_that_belong_to_no_join_reach_on_error():
    from runtime.client import ServerError
    from runtime.client.protocol import parse_frame

    errors: list = []
    async with running_ws(make_app()) as listening:
        async with client(listening.stream_url, on_error=errors.append) as c:
            await c.subscribe_group("todos", "inbox")
            # as the reader hands them over: an error frame and a frame nobody can read
            await c._dispatch(parse_frame(b'{"type":"error","error":{"code":"BAD_FRAME","message":"not JSON"}}'))
            await c._dispatch(parse_frame(b"garbage"))
    assert [type(e) for e in errors] == [ServerError, ServerError]
    assert errors[0].code == "BAD_FRAME" and errors[1].code == "MALFORMED_FRAME"
