"""CountCompletion (queue ``todo.completed``) keeps ``state["stats"]["completed"]``; TodoStats serves it.

Why the count is exact under concurrency
----------------------------------------
``ctx.state`` has get and set but no atomic increment, so ``get`` + 1 +
``set`` from two handlers at once could lose one. Two things make it exact:

* **Serialised**: the queue trigger has ``concurrency=1``, so this step
  handles one ``todo.completed`` message at a time, whatever list (stream
  group) it came from. (Counting in the stream trigger would not do: stream
  triggers are serialised per group only, and are not retried.)
* **Idempotent**: queues are at-least-once, so a message may be delivered
  again (a retry after a failure, a redelivery after a restart). Each
  delivery records its todo in the ``todo.completions`` scope (a no-op the
  second time) and then sets the count to the size of that scope, so a
  duplicate never counts twice and a crash between the two writes heals on
  redelivery. The price is a scope listing per completion, which is fine
  for an example; a real app with millions of completions would keep the
  counter in a stream item (``update`` with ``increment`` is atomic) or in a
  store with transactions.
"""

from __future__ import annotations

from typing import Any

from runtime import ApiRequest, ApiResponse, FlowContext, http, queue, step

STATS_SCOPE, COMPLETED_KEY = "stats", "completed"
COMPLETIONS_SCOPE = "todo.completions"

count_completion = step({
    "name": "CountCompletion",
    "description": "Count completed todos in state (stats/completed)",
    "triggers": [queue("todo.completed", concurrency=1, input={
        "type": "object", "properties": {"id": {"type": "string"}, "groupId": {"type": "string"}},
        "required": ["id", "groupId"],
    })],
    "flows": ["todo"],
})


@count_completion.handle
async def count(todo: dict[str, Any], ctx: FlowContext) -> None:
    await ctx.state.set(COMPLETIONS_SCOPE, todo["id"], {"groupId": todo["groupId"]})
    completed = len(await ctx.state.list(COMPLETIONS_SCOPE))
    await ctx.state.set(STATS_SCOPE, COMPLETED_KEY, completed)
    ctx.logger.info("completion counted", {"id": todo["id"], "completed": completed})


todo_stats = step({
    "name": "TodoStats",
    "description": "How many todos have been completed, across every list",
    "triggers": [http("GET", "/todo/stats")],
    "flows": ["todo"],
})


@todo_stats.handle
async def stats(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    return ApiResponse(200, {"completed": await ctx.state.get(STATS_SCOPE, COMPLETED_KEY) or 0})
