"""GET /jobs/:id -> 200 with the job's status item; 404 for an unknown job."""

from __future__ import annotations

from streams.progress_stream import STATUS_ID

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "JobStatus",
    "triggers": [http("GET", "/jobs/:id")],
    "flows": ["progress"],
}


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    job_id = request.path_params["id"]
    status = await ctx.streams.progress.get(job_id, STATUS_ID)
    if status is None:
        return ApiResponse(404, {"error": "not_found", "message": f"no job {job_id!r}"})
    status.pop("id")  # the item id ("status"), not the job's
    return ApiResponse(200, {"jobId": job_id, **status})
