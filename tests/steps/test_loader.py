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


def problems_of(tmp_path, files) -> list:
    with pytest.raises(ProjectError) as caught:
        load_project(write(tmp_path / "broken", files))
    return caught.value.problems


def where(problem) -> tuple[str, int | None]:
    return problem.file.rsplit("/", 1)[-1], problem.line


def test_import_errors_name_the_file_the_line_and_what_to_do(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": "import os\n\nraise ImportError('no such thing')\n",
        "b_step.py": "def broken(:\n    pass\n",
        "c_step.py": "import\\\n",
        "d_step.py": "x = 1\nimport no_such_module_here\n",
    })
    assert [where(p) for p in problems] == [("a_step.py", 3), ("b_step.py", 1), ("c_step.py", 1), ("d_step.py", 2)]
    assert problems[0].message == (
        "ImportError: no such thing (raised while the module was imported: fix the code at that line)")
    assert problems[1].message.startswith("SyntaxError: ") and problems[1].message.endswith(
        "(fix the syntax at that line)")
    assert problems[3].message == (
        "ModuleNotFoundError: No module named 'no_such_module_here' (install 'no_such_module_here' in this "
        "environment; if it is a module of the project, import it by its path relative to the project directory)")


def test_duplicate_step_names_name_both_files_and_lines(tmp_path):
    step_file = """
        from runtime import http
        config = {{"name": "Same", "triggers": [http("GET", "/{path}")]}}
        async def handler(request, ctx): ...
    """
    problems = problems_of(tmp_path, {"a_step.py": step_file.format(path="a"), "b_step.py": step_file.format(path="b")})
    assert len(problems) == 1 and where(problems[0]) == ("b_step.py", 3)
    assert problems[0].message.startswith("duplicate step name 'Same' (also in ")
    assert problems[0].message.endswith("a_step.py:3): rename one; step names are unique in a project")


def test_two_steps_on_one_route_name_both_steps_files_and_lines(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": """
            from runtime import http
            config = {"name": "A", "triggers": [http("GET", "/todos/:id")]}
            async def handler(request, ctx): ...
        """,
        "b_step.py": """
            from runtime import http, step

            # a step object, declared on line 5
            show = step({"name": "B", "triggers": [http("GET", "/todos/:key")]})

            @show.handle
            async def show_todo(request, ctx): ...
        """,
    })
    assert len(problems) == 1 and where(problems[0]) == ("b_step.py", 5)
    message = problems[0].message
    assert message.startswith("step 'B': GET /todos/:key is also handled by step 'A' (")
    assert message.endswith("a_step.py:3) (/todos/:id and /todos/:key differ only in parameter names): "
                            "change the method or path of one of them")
    assert "b_step.py:5: step 'B'" in str(ProjectError(problems))


def test_a_trigger_naming_an_undeclared_stream(tmp_path):
    problems = problems_of(tmp_path, {
        "todo_stream.py": "from runtime import Stream\ntodo = Stream('todo')\n",
        "a_step.py": """
            from runtime import stream
            config = {"name": "Watch", "triggers": [stream("ghost")]}
            async def handler(event, ctx): ...
        """,
    })
    assert where(problems[0]) == ("a_step.py", 3)
    assert problems[0].message == (
        "step 'Watch': stream trigger names 'ghost', which no module declares (declared: todo): fix the name, "
        "or declare it in a *_stream.py file with config = StreamConfig(name='ghost')")


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
    assert [where(p) for p in problems] == [("a_step.py", 3), ("b_step.py", 3)]
    assert [p.message for p in problems] == [
        "step 'A': invalid cron expression 'every monday': write five fields, "
        "minute hour day-of-month month day-of-week (e.g. '*/5 * * * *')",
        "step 'B': invalid cron expression '* * * * * *': write five fields, "
        "minute hour day-of-month month day-of-week (e.g. '*/5 * * * *')",
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
            x = 1
            config = {"name": "D", "triggers": []}
        """,
        "e_step.py": """
            from runtime import step
            lonely = step({"name": "E", "triggers": []})
        """,
    })
    found = {where(p): p.message for p in problems}
    assert found[("a_step.py", 3)] == (
        "handler has the wrong signature: handler takes no arguments; it must take (input) or (input, ctx)")
    assert found[("b_step.py", 3)] == (
        "handler has the wrong signature: handler takes 3 arguments; it must take (input) or (input, ctx)")
    assert found[("c_step.py", 5)].startswith("TypeError: handler takes 3 arguments")
    assert found[("d_step.py", 3)] == (
        "defines `config` but no `handler`: add `async def handler(input, ctx): ...` to the module")
    assert found[("e_step.py", 3)] == (
        "step 'E' has no handler: decorate a function with @lonely.handle, or call lonely.handle(fn)")


def test_invalid_step_and_stream_configs(tmp_path):
    problems = problems_of(tmp_path, {
        "a_step.py": """
            config = {"name": "A", "triggers": [], "colour": "red"}
            async def handler(request, ctx): ...
        """,
        "b_stream.py": """
            config = {"name": "b", "onJion": print}
        """,
    })
    found = {where(p): p.message for p in problems}
    assert found[("a_step.py", 2)] == "invalid step config: step 'A': unknown config field(s) ['colour']"
    assert found[("b_stream.py", 2)].startswith("invalid stream config: unknown stream config field(s) ['onJion']")


def test_a_bad_schema_names_its_file_line_and_stream_together_with_step_errors(tmp_path):
    problems = problems_of(tmp_path, {
        "likes_stream.py": """
            from runtime import StreamConfig

            config = StreamConfig(name="likes", schema={"likes": "int"})
        """,
        "a_step.py": "raise ValueError('also broken')\n",
    })
    assert [where(p) for p in problems] == [("a_step.py", 1), ("likes_stream.py", 4)]
    assert problems[1].message == (
        "ValueError: stream 'likes': invalid schema: schema field 'likes': unknown type 'int'; the shorthand takes "
        "string, number, integer, boolean, object, array (for anything else, write JSON Schema with "
        "\"type\": \"object\") (raised while the module was imported: fix the code at that line)")


def test_a_schema_is_checked_when_the_stream_is_declared():
    from runtime import StreamConfig

    with pytest.raises(ValueError, match="^stream 'likes': invalid schema: schema field 'likes': unknown type 'int'"):
        StreamConfig(name="likes", schema={"likes": "int"})


def test_a_stream_declared_twice_differently_names_both_places(tmp_path):
    problems = problems_of(tmp_path, {
        "a_stream.py": "from runtime import StreamConfig\nconfig = StreamConfig(name='todo')\n",
        "b_stream.py": (
            "from runtime import StreamConfig\n\nconfig = StreamConfig(name='todo', schema={'t': 'string'})\n"),
    })
    assert len(problems) == 1 and where(problems[0]) == ("b_stream.py", 3)
    assert problems[0].message.startswith("stream 'todo' is declared twice with different configs (also in ")
    assert problems[0].message.endswith(
        "a_stream.py:2): keep one StreamConfig and import it, or use Stream('todo') for a handle")


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(ProjectError) as caught:
        load_project(write(tmp_path / "p", {
            "a_step.py": "raise ValueError('one')\n",
            "b_step.py": "raise ValueError('two')\n",
        }))
    assert len(caught.value.problems) == 2
    assert "a_step.py:1: ValueError: one (raised while the module was imported" in str(caught.value)
    assert "b_step.py:1: ValueError: two" in str(caught.value)


def test_a_module_imported_before_loading_is_the_one_the_app_runs(tmp_path):
    """A test that imports a step module first holds the app's own objects, not a stale copy."""
    import importlib
    import sys

    root = write(tmp_path / "p", {"a_step.py": """
        from runtime import http, step
        calls = []
        hello = step({"name": "Hello", "triggers": [http("GET", "/hello")]})

        @hello.handle
        async def say(request, ctx):
            calls.append(request.path)
            return {"status": 200, "body": "hi"}
    """})
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("a_step")
        project = load_project(root)
        assert project.steps[0] is module.hello
        (root / "a_step.py").write_text((root / "a_step.py").read_text().replace('"hi"', '"hello again"'))
        reloaded = load_project(root)  # an edited file is imported again (a dev server's reload)
        assert reloaded.steps[0].handler.__code__.co_consts != project.steps[0].handler.__code__.co_consts
    finally:
        sys.modules.pop("a_step", None)


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
