"""TodoCompleted: a stream trigger on ``todo`` that turns a completion into a ``todo.completed`` message.

It runs after the change commits, under the trace id of the request that
completed the todo. The condition lets through only ``update`` events whose
new value has ``completed: true``; ``CompleteTodo`` tests ``completed`` is
false before setting it, so each todo produces exactly one such event.
"""

from __future__ import annotations

from runtime import FlowContext, StreamTriggerInput, step, stream


def is_completion(event: StreamTriggerInput, ctx: FlowContext) -> bool:
    return event.event.type == "update" and (event.event.data or {}).get("completed") is True


todo_completed = step({
    "name": "TodoCompleted",
    "description": "Enqueue todo.completed when a todo becomes completed",
    "triggers": [stream("todo", condition=is_completion)],
    "enqueues": ["todo.completed"],
    "flows": ["todo"],
})


@todo_completed.handle
async def on_completed(event: StreamTriggerInput, ctx: FlowContext) -> None:
    todo = event.event.data
    await ctx.enqueue({"topic": "todo.completed", "data": {
        "id": event.id, "groupId": event.group_id, "title": todo.get("title"),
    }})
