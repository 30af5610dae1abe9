"""POST /jobs -> 202 {"jobId", ...} at once; the work happens in RunJob (queue ``job.start``)."""

from __future__ import annotations

import time
import uuid

from streams.progress_stream import STAGES, STATUS_ID

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "StartJob",
    "description": "Accept a long job and return its id immediately",
    "triggers": [http("POST", "/jobs")],
    "enqueues": ["job.start"],
    "flows": ["progress"],
}


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    job_id = str(uuid.uuid4())
    # The status exists before the job is queued, so a client that subscribes
    # right after the 202 gets a snapshot (state "queued"), never a 404.
    await ctx.streams.progress.set(job_id, STATUS_ID, {
        "state": "queued", "stage": 0, "stages": len(STAGES), "percent": 0, "label": None,
        "createdAt": int(time.time() * 1000),
    })
    await ctx.enqueue({"topic": "job.start", "data": {"jobId": job_id}})
    ctx.logger.info("job accepted", {"jobId": job_id})
    return ApiResponse(202, {
        "jobId": job_id,
        "status": f"/jobs/{job_id}",
        "stream": f"/streams/progress/{job_id}",
        "events": f"/jobs/{job_id}/events",
    }, {"Location": f"/jobs/{job_id}"})
