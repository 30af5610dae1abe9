"""POST /todo {"title"} -> 201 with the new item; the id is generated here."""

from __future__ import annotations

import time
import uuid

from streams.todo_stream import group_of

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "CreateTodo",
    "description": "Create a todo in a list (?groupId=, default inbox)",
    "triggers": [http("POST", "/todo", body_schema={
        "type": "object",
        "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 500}},
        "required": ["title"],
    })],
    "flows": ["todo"],
}


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    group_id, error = group_of(request)
    if error:
        return error
    todo_id = str(uuid.uuid4())
    created = await ctx.streams.todo.set(group_id, todo_id, {
        "title": request.body["title"],
        "completed": False,
        "createdAt": int(time.time() * 1000),
    })
    ctx.logger.info("todo created", {"id": todo_id, "groupId": group_id})
    return ApiResponse(status=201, body=created.new_value)
