"""DELETE /todo/:id -> 200 with the deleted item; 404 if there is no such todo."""

from __future__ import annotations

from streams.todo_stream import group_of

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "DeleteTodo",
    "triggers": [http("DELETE", "/todo/:id")],
    "flows": ["todo"],
}


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    group_id, error = group_of(request)
    if error:
        return error
    todo_id = request.path_params["id"]
    deleted = await ctx.streams.todo.delete(group_id, todo_id)
    if deleted.old_value is None:  # a missing item emits nothing
        return ApiResponse(404, {"error": "not_found", "message": f"no todo {todo_id!r} in {group_id!r}"})
    ctx.logger.info("todo deleted", {"id": todo_id, "groupId": group_id})
    return ApiResponse(200, deleted.old_value)
