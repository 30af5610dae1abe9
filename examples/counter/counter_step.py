from runtime import ApiRequest, ApiResponse, FlowContext, http, step, stream

bump = step({"name": "Bump", "triggers": [http("POST", "/counters/:name")]})


@bump.handle
async def bump_counter(request: ApiRequest, ctx: FlowContext) -> ApiResponse:
    by = int(request.query_params.get("by", 1))
    result = await ctx.streams.counter.update(
        "counters", request.path_params["name"], [{"type": "increment", "path": "value", "by": by}]
    )  # atomic: the group actor applies one update at a time
    return ApiResponse(200, result.new_value)


milestone = step({"name": "Milestone", "triggers": [
    stream("counter", condition=lambda change, ctx: change.event.type == "update"
           and change.event.data["value"] % 100 == 0)]})


@milestone.handle
async def celebrate(change, ctx: FlowContext) -> None:
    ctx.logger.info("milestone", {"counter": change.id, "value": change.event.data["value"]})
