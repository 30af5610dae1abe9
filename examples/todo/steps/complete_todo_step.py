"""POST /todo/:id/complete -> 200 with the completed item; 404 if there is no such todo.

One atomic update, no read-then-write: ``update()`` upserts, so on its own it
would *create* ``{"completed": true}`` for an unknown id. The first op is a
JSON Patch ``test`` of ``/id``, which every stored item has and an upsert's
empty starting value has not, so a missing todo fails the whole update
(``UpdateError`` at index 0): nothing is written, nothing is emitted.

The second op tests ``/completed`` is false, so completing twice changes
nothing and emits no second ``update`` (the completion is counted once). That
case answers 200 with the item as it is: completing is idempotent.
"""

from __future__ import annotations

from streams.todo_stream import group_of

from runtime import ApiRequest, ApiResponse, FlowContext, UpdateError, http

config = {
    "name": "CompleteTodo",
    "description": "Mark a todo completed (atomic; idempotent)",
    "triggers": [http("POST", "/todo/:id/complete")],
    "flows": ["todo"],
}

_EXISTS, _NOT_YET_COMPLETED = 0, 1


def _not_found(todo_id: str, group_id: str) -> ApiResponse:
    return ApiResponse(404, {"error": "not_found", "message": f"no todo {todo_id!r} in {group_id!r}"})


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    group_id, error = group_of(request)
    if error:
        return error
    todo_id = request.path_params["id"]
    try:
        result = await ctx.streams.todo.update(group_id, todo_id, [
            {"op": "test", "path": "/id", "value": todo_id},          # _EXISTS
            {"op": "test", "path": "/completed", "value": False},     # _NOT_YET_COMPLETED
            {"type": "set", "path": "completed", "value": True},
        ])
    except UpdateError as exc:
        if exc.index == _NOT_YET_COMPLETED:
            current = await ctx.streams.todo.get(group_id, todo_id)
            if current is not None:  # (it may have been deleted since)
                return ApiResponse(200, current)
        elif exc.index != _EXISTS:
            raise
        return _not_found(todo_id, group_id)
    ctx.logger.info("todo completed", {"id": todo_id, "groupId": group_id})
    return ApiResponse(200, result.new_value)
