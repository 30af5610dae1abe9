"""What the browser tests write through: set, delete, and a custom event, as step routes."""

from runtime import ApiResponse, Stream, http, step

todos = Stream("todos")

put = step({"name": "PutTodo", "triggers": [http("PUT", "/w/:group/:id")]})
drop = step({"name": "DropTodo", "triggers": [http("DELETE", "/w/:group/:id")]})
say = step({"name": "SayTodo", "triggers": [http("POST", "/e/:group")]})


@put.handle
async def put_todo(request, ctx):
    result = await todos.set(request.path_params["group"], request.path_params["id"], request.body)
    return ApiResponse(200, result.new_value)


@drop.handle
async def drop_todo(request, ctx):
    await todos.delete(request.path_params["group"], request.path_params["id"])
    return ApiResponse(204, None)


@say.handle
async def say_todo(request, ctx):
    await todos.send({"group_id": request.path_params["group"], "id": request.body.get("id")},
                     {"type": request.body["type"], "data": request.body["data"]})
    return ApiResponse(202, None)


page = step({"name": "AppPage", "triggers": [http("GET", "/app")]})


@page.handle
async def app_page(request, ctx):
    # An empty page of the app's own origin; the tests add their module script to it. (A page the
    # test runner fulfilled itself would count as a public address: Chromium then blocks loopback.)
    return ApiResponse(200, "<!doctype html><html><head><title>app</title></head><body></body></html>",
                       {"content-type": "text/html; charset=utf-8"})
