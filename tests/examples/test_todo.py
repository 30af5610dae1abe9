"""examples/todo: every route in process, the live events a client sees, and an exact completion count."""

from __future__ import annotations

import logging
import uuid

import trio

from .conftest import Probe, settle


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


async def test_create_list_complete_delete_with_the_live_events_a_client_sees(load_example):
    async with load_example("todo") as app:
        probe = Probe()
        joined = await app.engine.join(probe, "todo", "inbox", subscription_id="client")
        assert joined.offset == 0

        created = await app.request("POST", "/todo", json={"title": "buy milk"})
        assert created.status == 201
        todo = created.body
        assert is_uuid4(todo["id"])
        assert todo == {"id": todo["id"], "title": "buy milk", "completed": False, "createdAt": todo["createdAt"]}
        assert isinstance(todo["createdAt"], int) and todo["createdAt"] > 1_600_000_000_000

        listed = await app.request("GET", "/todo")
        assert listed.status == 200 and listed.body == [todo]

        completed = await app.request("POST", f"/todo/{todo['id']}/complete")
        assert completed.status == 200 and completed.body == {**todo, "completed": True}
        again = await app.request("POST", f"/todo/{todo['id']}/complete")  # idempotent, emits nothing
        assert again.status == 200 and again.body == {**todo, "completed": True}

        deleted = await app.request("DELETE", f"/todo/{todo['id']}")
        assert deleted.status == 200 and deleted.body == {**todo, "completed": True}
        assert (await app.request("DELETE", f"/todo/{todo['id']}")).status == 404
        gone = await app.request("POST", f"/todo/{todo['id']}/complete")
        assert gone.status == 404 and gone.body["error"] == "not_found"
        assert (await app.request("GET", "/todo")).body == []
        await settle(app)
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 1}

    assert probe.types() == ["sync", "create", "update", "delete"]
    frames = probe.envelopes()
    assert all(f["type"] == "stream" and f["streamName"] == "todo" and f["groupId"] == "inbox" for f in frames)
    assert [f["offset"] for f in frames] == [0, 1, 2, 3]
    assert frames[0]["id"] is None and frames[0]["event"] == {"type": "sync", "data": []}
    assert [f["id"] for f in frames[1:]] == [todo["id"]] * 3
    assert frames[1]["event"]["data"] == todo
    assert frames[2]["event"]["data"] == {**todo, "completed": True}
    assert frames[3]["event"]["data"] == {**todo, "completed": True}  # a delete carries the old value


async def test_completing_a_missing_todo_is_a_404_and_creates_nothing(load_example):
    async with load_example("todo") as app:
        probe = Probe()
        await app.engine.join(probe, "todo", "inbox", subscription_id="client")
        missing = str(uuid.uuid4())
        response = await app.request("POST", f"/todo/{missing}/complete")
        assert response.status == 404
        assert response.body == {"error": "not_found", "message": f"no todo {missing!r} in 'inbox'"}
        assert (await app.request("DELETE", f"/todo/{missing}")).status == 404
        assert await app.engine.storage.list_groups("todo") == []
        assert (await app.request("GET", "/todo")).body == []
    assert probe.types() == ["sync"]  # a failed update emits nothing


async def test_bad_requests_never_reach_the_store(load_example):
    async with load_example("todo") as app:
        for body in (None, {}, {"title": 5}, {"title": ""}, ["title"]):
            response = await app.request("POST", "/todo", json=body)
            assert response.status == 400, body
            assert response.body["error"] == "validation"
        missing = await app.request("POST", "/todo", json={})
        assert missing.body["errors"] == [{"path": "/title", "message": "is required"}]
        typed = await app.request("POST", "/todo", json={"title": 5})
        assert [e["path"] for e in typed.body["errors"]] == ["/title"]

        for url in ("/todo?groupId=", "/todo?groupId=a/b", "/todo?groupId=x&groupId=y", "/todo?groupId=" + "g" * 65):
            response = await app.request("POST", url, json={"title": "t"})
            assert response.status == 400, url
            assert response.body["errors"][0]["path"] == "/groupId"
            assert (await app.request("GET", url)).status == 400

        assert (await app.request("PUT", "/todo")).status == 405
        not_allowed = await app.request("GET", f"/todo/{uuid.uuid4()}")
        assert not_allowed.status == 405 and not_allowed.headers["Allow"] == "DELETE"
        assert (await app.request("GET", "/todo/x/complete")).status == 405
        assert await app.engine.storage.list_groups("todo") == []


async def test_group_id_selects_the_list(load_example):
    async with load_example("todo") as app:
        inbox, work = Probe(), Probe()
        await app.engine.join(inbox, "todo", "inbox", subscription_id="a")
        await app.engine.join(work, "todo", "work", subscription_id="b")
        home = (await app.request("POST", "/todo", json={"title": "milk"})).body
        job = (await app.request("POST", "/todo", query={"groupId": "work"}, json={"title": "report"})).body
        assert (await app.request("GET", "/todo")).body == [home]
        assert (await app.request("GET", "/todo?groupId=inbox")).body == [home]
        assert (await app.request("GET", "/todo?groupId=work")).body == [job]

        assert (await app.request("POST", f"/todo/{job['id']}/complete")).status == 404  # wrong list
        assert (await app.request("DELETE", f"/todo/{job['id']}")).status == 404
        done = await app.request("POST", f"/todo/{job['id']}/complete?groupId=work")
        assert done.status == 200 and done.body["completed"] is True
        assert (await app.request("DELETE", f"/todo/{job['id']}?groupId=work")).status == 200
        await settle(app)
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 1}
        assert await app.engine.storage.list_groups("todo") == ["inbox"]
    assert inbox.types() == ["sync", "create"]
    assert work.types() == ["sync", "create", "update", "delete"]


async def test_concurrent_completions_are_counted_exactly(load_example, autojump_clock):
    async with load_example("todo") as app:
        ids: list[tuple[str, str]] = []
        for i in range(20):
            group = "inbox" if i % 2 else "work"  # two lists: stream triggers run per group, concurrently
            response = await app.request("POST", "/todo", query={"groupId": group}, json={"title": f"todo {i}"})
            ids.append((group, response.body["id"]))

        results: list = []

        async def complete(group: str, todo_id: str) -> None:
            results.append(await app.request("POST", f"/todo/{todo_id}/complete", query={"groupId": group}))

        async with trio.open_nursery() as nursery:
            for group, todo_id in ids:
                nursery.start_soon(complete, group, todo_id)
                nursery.start_soon(complete, group, todo_id)  # twice at once: still one completion
        assert len(results) == 40 and all(r.status == 200 and r.body["completed"] for r in results)

        await settle(app)
        assert await app.steps.state.get("stats", "completed") == 20
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 20}
        assert len(await app.steps.state.list("todo.completions")) == 20
        assert await app.dead_letters() == []


async def test_a_redelivered_completion_is_not_counted_twice(load_example, autojump_clock):
    async with load_example("todo") as app:
        todo = (await app.request("POST", "/todo", json={"title": "t"})).body
        await app.request("POST", f"/todo/{todo['id']}/complete")
        await settle(app)
        message = {"id": todo["id"], "groupId": "inbox", "title": "t"}
        await app.enqueue("todo.completed", message)  # at-least-once: the same message again
        await app.enqueue("todo.completed", message)
        await settle(app)
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 1}


async def test_only_completions_pass_the_trigger_condition_and_the_trace_id_follows(load_example, caplog):
    caplog.set_level(logging.INFO, logger="runtime.steps")
    async with load_example("todo") as app:
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 0}
        todo = (await app.request("POST", "/todo", json={"title": "t"})).body
        other = (await app.request("POST", "/todo", json={"title": "u"})).body
        completed = await app.request("POST", f"/todo/{todo['id']}/complete")
        await app.request("DELETE", f"/todo/{todo['id']}")   # a delete of a completed todo is not a completion
        await app.request("DELETE", f"/todo/{other['id']}")
        await settle(app)
        assert (await app.request("GET", "/todo/stats")).body == {"completed": 1}
        # create, create, delete, delete were declined by TodoCompleted's condition
        assert app.steps.metrics.skipped == 4 and app.steps.metrics.handler_errors == 0
    counted = [r for r in caplog.records if r.getMessage().startswith("completion counted")]
    assert len(counted) == 1
    assert counted[0].step == "CountCompletion" and counted[0].trace_id == completed.headers["X-Trace-Id"]
