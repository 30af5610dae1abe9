"""The browser client at ``/_client/``: its built modules, and the probe it asks why a socket failed.

``GET /_client/stream.js`` and ``/_client/react.js`` are clients/js's committed build
(``runtime/server/client_js`` links to ``clients/js/dist``; the wheel ships the files), so a page
without a bundler can ``import { Stream } from "/_client/stream.js"`` and no user needs Node. The
URLs are stable, so the answer is ``no-cache`` with an ``ETag`` (a revalidation costs a 304, an
upgrade of the runtime is seen at once), and ``access-control-allow-origin: *`` (public code: a
page on another origin, a dev server, may import it as a module).

``GET /_client/auth`` runs the app's ``authenticate`` on the request's token exactly as the
WebSocket handshake does: 200 ``{"ok": true}``, or the handshake's refusal (401 and its JSON). A
browser hides why a WebSocket upgrade failed (a 401 is only a close with code 1006), so the
client asks here once per failed attempt to tell ``refused {status, code}`` from "server down".
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from ..steps.inputs import ApiRequest, ApiResponse
from .auth import AuthRequest, Refused, authenticate, token_from

if TYPE_CHECKING:
    from ..app import App

__all__ = ["PREFIX", "MODULES", "install_client_assets"]

PREFIX = "/_client"
#: What is served: the two entry points of clients/js (react.js imports ./stream.js).
MODULES = ("stream.js", "react.js")
_JS = "text/javascript; charset=utf-8"


@cache
def _module(name: str) -> tuple[bytes, str]:
    """A built module and its ETag (read once per process: the files change only with the runtime)."""
    body = resources.files(__package__).joinpath("client_js", name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _asset(name: str) -> Callable[[ApiRequest], Awaitable[ApiResponse]]:
    async def serve(request: ApiRequest) -> ApiResponse:
        body, etag = _module(name)
        headers = {"content-type": _JS, "cache-control": "no-cache", "etag": etag,
                   "access-control-allow-origin": "*", "x-content-type-options": "nosniff"}
        if etag in (request.headers.get("if-none-match") or ""):
            return ApiResponse(304, b"", headers)
        return ApiResponse(200, body, headers)

    return serve


def install_client_assets(app: App) -> None:
    """Register ``/_client/*`` on ``app`` (once; `App.serve` calls it)."""

    async def probe(request: ApiRequest) -> ApiResponse:
        headers = {"content-type": "application/json", "cache-control": "no-store"}
        try:
            await authenticate(app.authenticate, AuthRequest(
                request.headers, request.path, request.query_params, None,
                token_from(request.headers, request.query_params)))
        except Refused as refused:
            return ApiResponse(refused.status, {"error": {"code": refused.code, "message": str(refused)}}, headers)
        return ApiResponse(200, {"ok": True}, headers)

    for name in MODULES:
        app.add_internal_route("GET", f"{PREFIX}/{name}", _asset(name))
    app.add_internal_route("GET", f"{PREFIX}/auth", probe)
