"""RunJob (queue ``job.start``): works through the stages, one atomic stream update per stage.

Each stage takes ``PROGRESS_STAGE_SECONDS`` (env, default 1.0; read per job,
so tests can make it small). Every update is a compare-and-set: a JSON Patch
``test`` of the stage the worker last saw comes first, then ``increment`` of
``stage`` and ``set`` of ``percent``/``state``/``label``. So:

* a redelivered message (queues are at-least-once) resumes from the stage the
  stream says, and a job already done is left alone;
* two deliveries running at once cannot both advance a stage: the loser's
  ``test`` fails (``UpdateError``), nothing is written, and it stops.
"""

from __future__ import annotations

import os
from typing import Any

import trio
from streams.progress_stream import FINAL_STATES, STAGES, STATUS_ID

from runtime import FlowContext, UpdateError, queue, step

DEFAULT_STAGE_SECONDS = 1.0


def stage_seconds() -> float:
    return float(os.environ.get("PROGRESS_STAGE_SECONDS", DEFAULT_STAGE_SECONDS))


run_job = step({
    "name": "RunJob",
    "description": "Run a job's stages and publish progress to the progress stream",
    "triggers": [queue("job.start", input={
        "type": "object", "properties": {"jobId": {"type": "string", "minLength": 1}}, "required": ["jobId"],
    })],
    "flows": ["progress"],
})


@run_job.handle
async def run(message: dict[str, Any], ctx: FlowContext) -> None:
    job_id = message["jobId"]
    progress = ctx.streams.progress
    status = await progress.get(job_id, STATUS_ID)
    if status is None:
        ctx.logger.warning("no such job; message dropped", {"jobId": job_id})
        return
    if status["state"] in FINAL_STATES:
        return  # a redelivery of a finished job
    stage, stages, seconds = status["stage"], status["stages"], stage_seconds()
    try:
        if status["state"] == "queued":
            await progress.update(job_id, STATUS_ID, [
                {"op": "test", "path": "/state", "value": "queued"},
                {"type": "set", "path": "state", "value": "running"},
                {"type": "set", "path": "label", "value": STAGES[stage]},
            ])
        while stage < stages:
            await trio.sleep(seconds)  # the stage's work
            done = stage + 1 == stages
            await progress.update(job_id, STATUS_ID, [
                {"op": "test", "path": "/stage", "value": stage},
                {"type": "increment", "path": "stage", "by": 1},
                {"type": "set", "path": "percent", "value": round(100 * (stage + 1) / stages)},
                {"type": "set", "path": "state", "value": "done" if done else "running"},
                {"type": "set", "path": "label", "value": None if done else STAGES[stage + 1]},
            ])
            stage += 1
    except UpdateError as exc:
        if exc.index != 0:
            raise
        ctx.logger.warning("another delivery is running this job; stopping", {"jobId": job_id, "stage": stage})
        return
    ctx.logger.info("job done", {"jobId": job_id})
