"""A queue step that fails its first two deliveries (both attempts), so the message is dead-lettered;
a replay then succeeds and writes todo/jobs/<id>."""

from runtime import ApiResponse, Stream, http, queue, step

todo = Stream("todo")
calls = {"n": 0}

submit = step({"name": "SubmitJob", "flows": ["jobs"], "enqueues": ["jobs"], "triggers": [http("POST", "/jobs")]})


@submit.handle
async def submit_job(request, ctx):
    await ctx.enqueue({"topic": "jobs", "data": request.body})
    return ApiResponse(202, {"queued": request.body["id"]})


work = step({"name": "RunJob", "flows": ["jobs"], "triggers": [queue("jobs")],
             "retry": {"attempts": 2, "backoff": 0, "jitter": 0}})


@work.handle
async def run_job(data, ctx):
    calls["n"] += 1
    if calls["n"] <= 2:
        raise RuntimeError(f"flaky backend (call {calls['n']})")
    await todo.set("jobs", data["id"], {"title": f"job {data['id']} done"})
