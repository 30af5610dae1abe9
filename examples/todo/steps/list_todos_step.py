"""GET /todo -> 200 with the list's items (a JSON array), oldest first."""

from __future__ import annotations

from streams.todo_stream import group_of

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "ListTodos",
    "triggers": [http("GET", "/todo")],
    "flows": ["todo"],
}


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    group_id, error = group_of(request)
    if error:
        return error
    return ApiResponse(200, await ctx.streams.todo.list(group_id))
