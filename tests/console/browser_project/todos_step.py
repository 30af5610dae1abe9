from runtime import ApiResponse, Stream, http, step

todo = Stream("todo")
secret = Stream("secret")

create = step({"name": "CreateTodo", "flows": ["todo"], "triggers": [http("POST", "/todos/:list", body_schema={
    "type": "object", "properties": {"id": {"type": "string"}, "title": {"type": "string"}},
    "required": ["id", "title"]})]})


@create.handle
async def create_todo(request, ctx):
    ctx.logger.info("creating a todo", {"id": request.body["id"]})
    result = await todo.set(request.path_params["list"], request.body["id"], {"title": request.body["title"]})
    return ApiResponse(201, result.new_value)


hide = step({"name": "HideSecret", "triggers": [http("POST", "/secret/:id")]})


@hide.handle
async def hide_secret(request, ctx):
    await secret.set("vault", request.path_params["id"], {"code": request.body["code"]})
    return ApiResponse(201, {"ok": True})
