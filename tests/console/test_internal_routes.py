"""Routes the runtime serves itself (`App.add_internal_route`): ordinary route-table entries, not steps."""

from __future__ import annotations

import httpx
import pytest

from runtime import ApiResponse, App, http, step
from runtime.errors import ConfigurationError
from tests.server.conftest import running

PAGE = "<!doctype html><title>console</title>"


def page(request):
    return ApiResponse(200, PAGE, {"content-type": "text/html; charset=utf-8"})


async def script(request):
    return ApiResponse(200, b"export const x = 1;\n", {"content-type": "text/javascript"})


def _catch_all():
    s = step({"name": "CatchAll", "triggers": [http("GET", "/:a/:b")]})

    @s.handle
    async def handler(request, ctx):
        return ApiResponse(200, {"a": request.path_params["a"]})

    return s


async def test_an_internal_route_is_served_as_sent_and_is_not_a_step():
    app = App(steps=[_catch_all()])
    app.add_internal_route("GET", "/_probe/", page)
    app.add_internal_route("GET", "/_probe/app.js", script)
    async with app:
        response = await app.request("GET", "/_probe/")
        assert (response.status, response.body) == (200, PAGE)
        assert response.headers["X-Trace-Id"]
        # the literal segments win over the user's /:a/:b, which still answers its own paths
        assert (await app.request("GET", "/_probe/app.js")).body == b"export const x = 1;\n"
        assert (await app.request("GET", "/x/y")).body == {"a": "x"}
    assert list(app.steps.steps) == ["CatchAll"]
    assert app.steps.metrics.invocations == 1  # only the user's step counted


async def test_over_http_the_body_and_content_type_are_sent_as_they_are():
    app = App()
    app.add_internal_route("GET", "/_probe/", page)
    app.add_internal_route("GET", "/_probe/app.js", script)
    async with running(app) as (url, _server):
        async with httpx.AsyncClient(base_url=url) as client:
            response = await client.get("/_probe/")
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.text == PAGE
            js = await client.get("/_probe/app.js")
            assert (js.headers["content-type"], js.content) == ("text/javascript", b"export const x = 1;\n")


async def test_a_user_step_on_a_reserved_prefix_is_a_clear_error():
    s = step({"name": "Sneaky", "triggers": [http("GET", "/_console/:page")]}, lambda request: None)
    app = App(steps=[s])
    with pytest.raises(ConfigurationError, match=r"step 'Sneaky': GET /_console/:page is on /_console/"):
        app.add_internal_route("GET", "/_console/", page)


async def test_an_internal_handler_that_raises_is_a_500_and_the_app_carries_on():
    def broken(request):
        raise RuntimeError("boom")

    app = App()
    app.add_internal_route("GET", "/_probe/broken", broken)
    app.add_internal_route("GET", "/_probe/", page)
    async with app:
        response = await app.request("GET", "/_probe/broken")
        assert response.status == 500
        assert response.body["error"] == "internal" and response.body["trace_id"]
        assert (await app.request("GET", "/_probe/")).status == 200
