"""Project discovery, and every error that stops startup with the file and the reason."""

from __future__ import annotations

import textwrap
from types import SimpleNamespace

import pytest
import trio

from runtime import App, ProjectError, load_project


def write(root, files: dict[str, str]):
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


GOOD = {
    "streams/todo_stream.py": """
        from runtime import StreamConfig
        config = StreamConfig(name="todo", schema={"title": "string"})
    """,
    "streams/notes_stream.py": """
        config = {"name": "notes", "base_config": {"storageType": "default"}}
    """,
    "steps/api/create_todo_step.py": """
        from runtime import http
        from streams.todo_stream import config as todo_config
        from helpers import normalise

        config = {"name": "CreateTodo", "triggers": [http("POST", "/todos")], "flows": ["todo"]}

        async def handler(request, ctx):
            item = await ctx.streams.todo.set("inbox", request.body["id"], {"title": normalise(request.body["title"])})
            return {"status": 201, "body": item.new_value}
    """,
    "steps/legacy_step.py": """
        config = {"type": "api", "name": "Legacy", "path": "/legacy", "method": "GET", "emits": ["x"]}

        async def handler(req, context):
            return {"status": 200, "body": {"legacy": True}}
    """,
    "steps/decorated_step.py": """
        from runtime import step, queue, cron, Stream
        notes = Stream("notes")
        worker = step({"name": "Worker", "triggers": [queue("work")]})
        nightly = step({"name": "Nightly", "triggers": [cron("0 3 * * *")]})

        @worker.handle
        async def work(data):
            await notes.set("g", "n", data)

        nightly.handle(lambda _input, ctx: None)
    """,
    "helpers.py": "def normalise(text):\n    return text.strip()\n",
    "runtime_config.py": """
        def authenticate(request):
            return {"user": request.token}
    """,
    ".hidden/bad_step.py": "raise RuntimeError('hidden folders are skipped')\n",
    ".runtime/bad_step.py": "raise RuntimeError('.runtime is skipped')\n",
    "venv/pyvenv.cfg": "home = /usr\n",
    "venv/lib/bad_step.py": "raise RuntimeError('virtual environments are skipped')\n",
    "node_modules/pkg/bad_step.py": "raise RuntimeError('node_modules is skipped')\n",
}


async def test_a_good_project_loads_and_runs(tmp_path):
    project = load_project(write(tmp_path / "proj", GOOD))
    assert sorted(s.name for s in project.steps) == ["CreateTodo", "Legacy", "Nightly", "Worker"]
    assert project.authenticate(SimpleNamespace(token="t")) == {"user": "t"}
    async with App(project) as app:
        response = await app.request("POST", "/todos", json={"id": "a", "title": "  milk "})
        assert response.status == 201 and response.body == {"id": "a", "title": "milk"}
        assert (await app.request("GET", "/legacy")).body == {"legacy": True}
        await app.enqueue("work", {"text": "hi"})
        with trio.fail_after(5):
            while (await app.engine.storage.queue_pending()):
                await trio.sleep(0.01)
        from runtime import Stream

        assert await Stream("notes").get("g", "n") == {"id": "n", "text": "hi"}


def problems_of(tmp_path, files) -> list[tuple[str, str]]:
    with pytest.raises(ProjectError) as caught:
        load_project(write(tmp_path / "broken", files))
    return caught.value.problems


def test_import_error_names_the_file_and_line(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": "import os\n\nraise ImportError('no such thing')\n",
        "b_step.py": "def broken(:\n    pass\n",
    })
    assert problems[0][0].endswith("a_step.py") and problems[0][1] == "line 3: ImportError: no such thing"
    assert problems[1][0].endswith("b_step.py") and problems[1][1].startswith("line 1: SyntaxError")


def test_duplicate_step_names(tmp_path):
    step_file = """
        from runtime import http
        config = {{"name": "Same", "triggers": [http("GET", "/{path}")]}}
        async def handler(request, ctx): ...
    """
    problems = problems_of(tmp_path, {"a_step.py": step_file.format(path="a"), "b_step.py": step_file.format(path="b")})
    assert len(problems) == 1 and "duplicate step name 'Same'" in problems[0][1]
    assert problems[0][0].endswith("b_step.py") and "a_step.py" in problems[0][1]


def test_two_steps_on_one_method_and_path(tmp_path):
    step_file = """
        from runtime import http
        config = {{"name": "{name}", "triggers": [http("GET", "/todos/{param}")]}}
        async def handler(request, ctx): ...
    """
    problems = problems_of(tmp_path, {
        "a_step.py": step_file.format(name="A", param=":id"), "b_step.py": step_file.format(name="B", param=":key"),
    })
    assert "GET /todos/:key is also handled by step 'A'" in problems[0][1]


def test_a_trigger_naming_an_undeclared_stream(tmp_path):
    problems = problems_of(tmp_path, {"a_step.py": """
        from runtime import stream
        config = {"name": "Watch", "triggers": [stream("ghost")]}
        async def handler(event, ctx): ...
    """})
    assert "stream trigger names 'ghost', which no module declares" in problems[0][1]


def test_a_stream_declared_by_name_alone_is_declared(tmp_path):
    project = load_project(write(tmp_path / "p", {"a_step.py": """
        from runtime import Stream, stream
        presence = Stream("presence")
        config = {"name": "Watch", "triggers": [stream("presence")]}
        async def handler(event, ctx): ...
    """}))
    assert [s.name for s in project.steps] == ["Watch"]


def test_invalid_cron_expressions(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": """
            from runtime import cron
            config = {"name": "A", "triggers": [cron("every monday")]}
            async def handler(_, ctx): ...
        """,
        "b_step.py": """
            from runtime import cron
            config = {"name": "B", "triggers": [cron("* * * * * *")]}
            async def handler(_, ctx): ...
        """,
    })
    assert [p[1] for p in problems] == [
        "step 'A': invalid cron expression 'every monday' (five fields: minute hour day-of-month month day-of-week)",
        "step 'B': invalid cron expression '* * * * * *' (five fields: minute hour day-of-month month day-of-week)",
    ]


def test_handlers_with_the_wrong_signature(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": """
            config = {"name": "A", "triggers": []}
            async def handler(): ...
        """,
        "b_step.py": """
            config = {"name": "B", "triggers": []}
            async def handler(request, ctx, extra): ...
        """,
        "c_step.py": """
            from runtime import step
            s = step({"name": "C", "triggers": []})
            def bad(a, b, c): ...
            s.handle(bad)
        """,
        "d_step.py": """
            config = {"name": "D", "triggers": []}
        """,
    })
    messages = {file.rsplit("/", 1)[-1]: message for file, message in problems}
    assert messages["a_step.py"].startswith("handler has the wrong signature: handler takes no arguments")
    assert messages["b_step.py"].startswith("handler has the wrong signature: handler takes 3 arguments")
    assert "TypeError: handler takes 3 arguments" in messages["c_step.py"]
    assert messages["d_step.py"] == "defines `config` but no `handler`"


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(ProjectError) as caught:
        load_project(write(tmp_path / "p", {
            "a_step.py": "raise ValueError('one')\n",
            "b_step.py": "raise ValueError('two')\n",
        }))
    assert len(caught.value.problems) == 2
    assert "a_step.py: line 1: ValueError: one" in str(caught.value)


MOTIA_STYLE = {
    "multi_step.py": '''
        """A Motia Python step file with only its imports changed (motia -> runtime)."""
        from typing import Any

        from runtime import ApiRequest, ApiResponse, FlowContext, http, queue, cron

        config = {
            "name": "MultiTrigger",
            "description": "one handler, three triggers",
            "triggers": [http("POST", "/orders"), queue("orders.retry"), cron("*/10 * * * *")],
            "enqueues": ["orders.created"],
            "virtualSubscribes": [],
            "flows": ["orders"],
            "infrastructure": {"handler": {"ram": 128}, "queue": {"max_retries": 4}},
        }

        async def handler(input: Any, ctx: FlowContext[Any]) -> ApiResponse[Any] | None:
            async def on_http(request: ApiRequest[Any]) -> ApiResponse[Any]:
                ctx.logger.info("order via http", {"path": ctx.trigger.path, "method": ctx.trigger.method})
                await ctx.enqueue({"topic": "orders.created", "data": ctx.get_data()})
                return ApiResponse(status=200, body={"trace": ctx.trace_id, "got": request.body})

            async def on_queue(data: Any) -> None:
                await ctx.state.set("orders", "retried", data)

            async def on_cron() -> None:
                await ctx.state.set("orders", "swept", True)

            return await ctx.match({"http": on_http, "queue": on_queue, "cron": on_cron})
    ''',
    "created_step.py": '''
        from runtime import queue
        config = {"name": "OnCreated", "triggers": [queue("orders.created")]}
        async def handler(data, ctx):
            await ctx.state.set("orders", "created", data)
    ''',
    "legacy_cron_step.py": '''
        config = {"type": "cron", "name": "LegacyCron", "cron": "0 * * * *"}
        async def handler(context):  # Motia's cron handlers take the context only
            await context.state.set("orders", "legacy_cron", context.trigger.expression)
    ''',
}


async def test_a_motia_step_file_ports_by_changing_its_imports(tmp_path):
    project = load_project(write(tmp_path / "motia", MOTIA_STYLE))
    multi = next(s for s in project.steps if s.name == "MultiTrigger")
    assert multi.config.retry.attempts == 5  # max_retries 4 + the first attempt
    async with App(project) as app:
        response = await app.request("POST", "/orders", json={"sku": "x"})
        assert response.status == 200
        assert response.body == {"trace": response.headers["X-Trace-Id"], "got": {"sku": "x"}}
        await app.enqueue("orders.retry", {"n": 1})
        await app.steps.fire_cron("MultiTrigger")
        await app.steps.fire_cron("LegacyCron")
        with trio.fail_after(5):
            while len(await app.steps.state.list("orders")) < 4:
                await trio.sleep(0.01)
        assert await app.steps.state.list("orders") == {
            "created": {"sku": "x"}, "legacy_cron": "0 * * * *", "retried": {"n": 1}, "swept": True,
        }


def test_two_projects_with_the_same_module_names_do_not_leak_into_each_other(tmp_path):
    for name, title in (("one", "first"), ("two", "second")):
        write(tmp_path / name, {
            "helpers.py": f"TITLE = {title!r}\n",
            "streams/notes_stream.py": "from runtime import StreamConfig\nconfig = StreamConfig(name='notes')\n",
            "steps/show_step.py": """
                from runtime import http
                from helpers import TITLE
                config = {"name": "Show", "triggers": [http("GET", "/title")]}
                async def handler(request, ctx):
                    return {"status": 200, "body": TITLE}
            """,
        })
    first = load_project(tmp_path / "one")
    second = load_project(tmp_path / "two")
    again = load_project(tmp_path / "one")
    titles = []
    for project in (first, second, again):
        handler = project.steps[0].handler
        titles.append(handler.__globals__["TITLE"])
    assert titles == ["first", "second", "first"]
