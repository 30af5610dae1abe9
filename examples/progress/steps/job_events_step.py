"""GET /jobs/:id/events: the job's progress as this step's own SSE response, Motia's streaming style.

``data: {status}`` once with the status as it is, then once per change, until
the job is done; then the response is closed and the handler returns None.
A client that goes away cancels the handler, and ``watch`` leaves the
subscription on the way out.

Streaming needs the HTTP server: in process ``request.response`` is None
(issue 5), and this step then answers 501 instead of failing with a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from streams.progress_stream import FINAL_STATES, STATUS_ID, watch

from runtime import ApiRequest, ApiResponse, FlowContext, http

config = {
    "name": "JobEvents",
    "description": "Stream a job's progress as text/event-stream",
    "triggers": [http("GET", "/jobs/:id/events")],
    "flows": ["progress"],
}


def sse_frame(job_id: str, status: dict[str, Any]) -> bytes:
    fields = {key: value for key, value in status.items() if key != "id"}  # "id" is the item's, "status"
    return b"data: " + orjson.dumps({"jobId": job_id, **fields}) + b"\n\n"


async def handler(request: ApiRequest, ctx: FlowContext) -> ApiResponse | None:
    job_id = request.path_params["id"]
    if await ctx.streams.progress.get(job_id, STATUS_ID) is None:
        return ApiResponse(404, {"error": "not_found", "message": f"no job {job_id!r}"})
    response = request.response
    if response is None:
        return ApiResponse(501, {"error": "streaming_unsupported",
                                 "message": "streaming responses need the HTTP server"})
    await response.status(200)
    await response.headers({
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    })
    try:
        async with watch(job_id) as updates:
            async for status in updates:
                if status is None:
                    continue
                response.writer.stream.write(sse_frame(job_id, status))
                if status["state"] in FINAL_STATES:
                    break
    finally:
        response.close()
    return None
