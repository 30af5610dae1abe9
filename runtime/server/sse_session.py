"""What both SSE transports share: admitting a request, and leaving a group however the stream ended.

The ASGI route (`http.py`, for requests that arrive on a keep-alive
connection) and the direct path (`sse_direct.py`, for a connection's first
request) answer the same refusals, in the same order, with the same bodies,
and clean up the same way: shielded, bounded, never raising.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors import ActorStopped

from ..errors import StreamNotFound
from ..streams.events import parse_position
from .auth import AuthRequest, Refused, Subscription, authenticate, check_access, notify_leave, token_from

if TYPE_CHECKING:
    from .auth import HeaderMap
    from .http import HttpServer
    from .outbox import Outbox

__all__ = ["Admitted", "Refusal", "admit", "leave"]

logger = logging.getLogger("runtime.server")


@attrs.frozen
class Admitted:
    subscription: Subscription
    since: tuple[str, int] | None
    auth_context: Any
    #: (ext) ``?presence=true`` on a group subscription: presence events after the sync
    presence: bool = False


@attrs.frozen
class Refusal:
    status: int
    body: dict[str, Any]


def _refusal(status: int, code: str, message: str) -> Refusal:
    return Refusal(status, {"error": {"code": code, "message": message}})


async def admit(
    server: HttpServer, subscription: Subscription, *, headers: HeaderMap, path: str,
    query: Mapping[str, Any], addr: tuple[str, int] | None,
) -> Admitted | Refusal:
    """Origin, then the stream, then ``authenticate``, then ``can_access`` / ``on_join``; then the resume token."""
    if not server.settings.origin_allowed(headers.get("Origin")):
        return _refusal(403, "ORIGIN_NOT_ALLOWED", "this origin may not subscribe")
    try:
        definition = server.app.engine.definition(subscription.stream_name)
    except StreamNotFound as exc:
        return _refusal(404, exc.code, str(exc))
    token = token_from(headers, query)
    auth_request = AuthRequest(headers=headers, path=path, query_params=query, addr=addr, token=token)
    try:
        auth_context = await authenticate(server.app.authenticate, auth_request)
        await check_access(server.app, definition.config, subscription, auth_context)
    except Refused as refused:
        return _refusal(refused.status, refused.code, str(refused))
    # The header first: an EventSource opened with ?lastEventId=X keeps that URL when it reconnects
    # and sends its newer position as Last-Event-ID; the query resumes clients that cannot set headers.
    last_event_id = headers.get("Last-Event-ID")
    if last_event_id is None:
        last_event_id = query.get("lastEventId")
    since = parse_position(last_event_id if isinstance(last_event_id, str) else None)
    presence = query.get("presence") == "true" and subscription.id is None
    return Admitted(subscription, since, auth_context, presence)


async def leave(server: HttpServer, outbox: Outbox, subscription: Subscription, subscription_id: str,
                auth_context: Any) -> None:
    """Unregister from the group and run ``on_leave``; shielded, bounded by the shutdown timeout."""
    with trio.move_on_after(server.settings.shutdown_timeout, shield=True):
        try:
            await server.app.engine.leave(outbox, subscription.stream_name, subscription.group_id, subscription_id)
        except (ActorStopped, RuntimeError):
            pass  # the engine stopped first (shutdown): the group and its registrations are gone
        try:
            await notify_leave(server.app, subscription, auth_context)
        except Exception:  # noqa: BLE001 - cleanup must not raise into the server
            logger.exception("SSE cleanup for %s/%s failed", subscription.stream_name, subscription.group_id)
