"""(ext) Presence across ``python -m runtime serve`` processes on one Redis, and after a kill -9.

Each process runs a project whose ``authenticate`` names the user by the token. Presence timing is
shortened through the storage URL (``presence_ttl=2&presence_interval=0.5``; defaults 10 and 3, a
bound of ttl + interval = 13 s): the test waits on real processes, with a deadline, never a sleep.
"""

from __future__ import annotations

import orjson
import trio
from trio_websocket import open_websocket_url

from . import test_redis_processes as processes
from .conftest import client

redis_url = processes.redis_url  # (the fixture: a prefix of this test's own)
servers = processes.servers

ROOM_STREAM = 'from runtime import StreamConfig\nconfig = StreamConfig(name="room")\n'
RUNTIME_CONFIG = 'def authenticate(request):\n    return {"user": request.token} if request.token else None\n'

TTL, INTERVAL = 2.0, 0.5


def project(tmp_path) -> str:
    (tmp_path / "room_stream.py").write_text(ROOM_STREAM)
    (tmp_path / "runtime_config.py").write_text(RUNTIME_CONFIG)
    return str(tmp_path)


async def presence_of(server, group: str = "lobby") -> list[dict]:
    async with client(server.url) as http:
        answer = await http.get(f"/streams/room/{group}/presence", headers={
            "Accept": "application/json", "Authorization": "Bearer reader"})
    assert answer.status_code == 200
    return answer.json()["presence"]


def join(sid: str, presence: bool = True) -> str:
    return orjson.dumps({"type": "join", "data": {
        "streamName": "room", "groupId": "lobby", "subscriptionId": sid, "presence": presence}}).decode()


async def receive(ws, timeout: float = 10) -> dict:
    with trio.fail_after(timeout):
        return orjson.loads(await ws.get_message())


async def test_tabs_on_two_processes_are_one_entry_and_a_killed_process_leaves_within_the_bound(redis_url, tmp_path):
    url = f"{redis_url}&presence_ttl={TTL}&presence_interval={INTERVAL}"
    async with servers(url, 2, project(tmp_path)) as [first, second]:
        first_ws, second_ws = first.process.stream_url, second.process.stream_url
        async with open_websocket_url(first_ws, subprotocols=["Authorization", "watcher"]) as watcher, \
                open_websocket_url(first_ws, subprotocols=["Authorization", "ann"]) as tab1:
            await watcher.send_message(join("w"))
            assert (await receive(watcher))["event"]["type"] == "sync"
            assert (await receive(watcher))["event"]["type"] == "presence"
            await tab1.send_message(join("t", presence=False))
            assert (await receive(watcher))["event"]["data"] == {"key": "ann", "count": 1, "data": {}}
            async with open_websocket_url(second_ws, subprotocols=["Authorization", "ann"]) as tab2:
                await tab2.send_message(join("t"))
                assert (await receive(tab2))["event"]["type"] == "sync"
                listed = (await receive(tab2))["event"]
                assert listed["data"] == [{"key": "ann", "count": 2, "data": {}},
                                          {"key": "watcher", "count": 1, "data": {}}]
                assert (await receive(watcher))["event"]["data"] == {"key": "ann", "count": 2, "data": {}}
                assert [(e["key"], e["count"]) for e in await presence_of(second)] == [("ann", 2), ("watcher", 1)]
                # bob, only on the second process
                async with open_websocket_url(second_ws, subprotocols=["Authorization", "bob"]) as bob:
                    await bob.send_message(join("b", presence=False))
                    assert (await receive(watcher))["event"]["data"]["key"] == "bob"
                    second.process.kill()  # -9: its records stay in Redis until they lapse and are reaped
                    killed_at = trio.current_time()
                    seen = []
                    while {"ann", "bob"} - {e["data"]["key"] for e in seen}:
                        frame = await receive(watcher, timeout=3 * (TTL + INTERVAL))
                        seen.append(frame["event"])
                    waited = trio.current_time() - killed_at
                    print(f"presence_leave {waited:.2f} s after kill -9 (ttl {TTL}, interval {INTERVAL})")
            assert {(e["type"], e["data"]["key"], e["data"]["count"]) for e in seen} == {
                ("presence_join", "ann", 1), ("presence_leave", "bob", 0)}
            assert waited <= TTL + INTERVAL + 2  # the bound, plus slack for a loaded machine
            assert [(e["key"], e["count"]) for e in await presence_of(first)] == [("ann", 1), ("watcher", 1)]
