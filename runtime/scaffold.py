"""``python -m runtime new DIR``: a project to start from, whose own test passes and which `dev` serves at once.

It holds a stream with a schema (``todo``), an HTTP step that writes to it
(``POST /todos``), a stream trigger that reacts to each new item (it counts
them in a second stream, ``stats``), and a test using ``runtime.testing``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_new_parser", "create_project", "FILES"]

FILES: dict[str, str] = {
    "todo_stream.py": '''\
"""The todo stream: one group per list, one item per todo."""

from runtime import StreamConfig

config = StreamConfig(
    name="todo",
    description="Todo items, grouped by list",
    schema={
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "title": {"type": "string", "minLength": 1}, "done": {"type": "boolean"},
        },
        "required": ["title"],
    },
)
''',
    "stats_stream.py": '''\
"""Counters the trigger keeps: the group "lists", one item per list."""

from runtime import StreamConfig

config = StreamConfig(name="stats", schema={"created": "integer"})
''',
    "create_todo_step.py": '''\
"""POST /todos/:list {"title": ...} -> 201 with the new todo, which every subscriber of todo/<list> sees."""

import uuid

from runtime import ApiResponse, Stream, http, step

todo = Stream("todo")

create_todo = step({
    "name": "CreateTodo",
    "description": "Add a todo to a list",
    "triggers": [http("POST", "/todos/:list", body_schema={
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
    })],
    "flows": ["todo"],
})


@create_todo.handle
async def handler(request, ctx):
    todo_id = uuid.uuid4().hex[:8]
    result = await todo.set(request.path_params["list"], todo_id, {"title": request.body["title"], "done": False})
    ctx.logger.info("todo created", {"id": todo_id})
    return ApiResponse(201, result.new_value)
''',
    "count_todos_step.py": '''\
"""A stream trigger: each todo created adds one to its list's counter in the stats stream."""

from runtime import Stream, step, stream

stats = Stream("stats")

count_todos = step({
    "name": "CountTodos",
    "description": "Count the todos created per list",
    "triggers": [stream("todo", condition=lambda event, ctx: event.event.type == "create")],
    "flows": ["todo"],
})


@count_todos.handle
async def handler(event, ctx):
    await stats.update("lists", event.group_id, [{"type": "increment", "path": "created", "by": 1}])
''',
    "tests/test_todo.py": '''\
"""The project's own test: in process, in virtual time (runtime.testing; docs/testing.md)."""

from pathlib import Path

from runtime.testing import open_test_app

PROJECT = Path(__file__).resolve().parents[1]


async def test_a_new_todo_reaches_subscribers_and_is_counted():
    async with open_test_app(PROJECT) as app:
        todos = await app.subscribe("todo", "groceries")
        await todos.expect("sync", data=[])
        response = await app.http.post("/todos/groceries", json={"title": "buy milk"})
        assert response.status == 201
        created = await todos.expect("create", id=response.json()["id"])
        assert created.data["title"] == "buy milk"
        await app.settle()
        assert (await app.stream("stats").get("lists", "groceries"))["created"] == 1


async def test_a_todo_without_a_title_is_refused():
    async with open_test_app(PROJECT) as app:
        response = await app.http.post("/todos/groceries", json={})
        assert response.status == 400
''',
    "pytest.ini": '''\
[pytest]
trio_mode = true
testpaths = tests
''',
    "README.md": '''\
# {name}

A project for the Trio streams runtime.

    python -m runtime dev .          # serve it, open the console URL it prints, edit files: it reloads
    python -m pytest                 # its tests (pip install pytest pytest-trio)
    curl -X POST localhost:3111/todos/groceries -H 'content-type: application/json' -d '{{"title": "buy milk"}}'
    curl -N localhost:3111/streams/todo/groceries      # the list, live (SSE)

Files: `*_stream.py` declare streams, `*_step.py` declare steps; `tests/` tests them in process.
''',
    ".gitignore": ".runtime/\n__pycache__/\n",
}


def add_new_parser(commands: Any) -> None:
    new = commands.add_parser("new", help="create a project to start from (a stream, an HTTP step, a trigger, a test)")
    new.add_argument("directory", help="where to create it (must not exist, or be empty)")


def create_project(directory: str | Path) -> list[Path]:
    """Write the scaffold into ``directory``; raises FileExistsError if it holds anything."""
    root = Path(directory)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not empty")
    written = []
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{name}", root.resolve().name).replace("{{", "{").replace("}}", "}")
                        if name == "README.md" else text)
        written.append(path)
    return written


def run_new(args: argparse.Namespace) -> int:
    try:
        written = create_project(args.directory)
    except (FileExistsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"  created {path}")
    print(f"\nnext:\n  python -m runtime dev {args.directory}\n  cd {args.directory} && python -m pytest")
    return 0
