"""Presence at the transports: a group subscription's identity, counted and (maybe) told.

Both transports call `join_presence` right after a group join's sync (or
``resumed``), so a listener's ``presence`` list follows its sync on the
wire, and `leave_presence` when the subscription ends however it ends. The
identity comes from the stream's ``presence`` hook (streams/presence.py); a
hook that raises leaves the subscription uncounted, logged, and never fails
the join: presence is information, not access. `read_presence` answers
``GET <prefix>/<stream>/<group>/presence`` (with ``Accept: application/json``).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from actors import ActorStopped

from ..errors import StreamNotFound
from ..streams.presence import resolve_identity
from .auth import AuthRequest, ConsoleAccess, Refused, Subscription, authenticate, token_from
from .auth_lease import still_allowed

if TYPE_CHECKING:
    from ..app import App
    from ..streams.subscribers import Subscriber
    from .auth import HeaderMap
    from .http import HttpServer

__all__ = ["join_presence", "leave_presence", "is_presence_read", "read_presence"]

logger = logging.getLogger("runtime.server")


async def join_presence(
    app: App, subscriber: Subscriber, subscription: Subscription, subscription_id: Hashable, auth_context: Any, *,
    connection_id: str, listen: bool, client_data: Any = None,
) -> None:
    """Count a group subscription in its group's presence; ``listen``: send it the list and the changes."""
    if subscription.id is not None:
        return  # item subscriptions neither count nor hear presence
    engine = app.engine
    identity: tuple[str, Any] | None = None
    if not isinstance(auth_context, ConsoleAccess):  # an operator watching is nobody's presence
        config = engine.definition(subscription.stream_name).config
        try:
            identity = await resolve_identity(config.presence, auth_context, subscription,
                                              connection_id=connection_id, client_data=client_data)
        except Exception:  # noqa: BLE001 - a broken presence hook leaves this subscription uncounted, nothing more
            logger.exception("presence hook of %s raised; the subscription is not counted", subscription.stream_name)
    await engine.presence.join(subscriber, subscription.stream_name, subscription.group_id, subscription_id,
                               identity, listen=listen)


async def leave_presence(app: App, subscriber: Subscriber, subscription: Subscription,
                         subscription_id: Hashable) -> None:
    """The subscription ended: no longer counted (others are told), no longer told. Never raises
    for a stopped engine (shutdown)."""
    if subscription.id is not None:
        return
    try:
        await app.engine.presence.leave(subscriber, subscription.stream_name, subscription.group_id, subscription_id)
    except (ActorStopped, RuntimeError):
        pass


def is_presence_read(parts: list[str], headers: HeaderMap) -> bool:
    """``GET <prefix>/<stream>/<group>/presence`` asking for JSON: a presence read, not an SSE
    subscription to an item called "presence" (which an EventSource, asking for text/event-stream
    or nothing in particular, still gets)."""
    if len(parts) != 3 or parts[2] != "presence":
        return False
    accept = (headers.get("accept") or "").lower()
    return "application/json" in accept and "text/event-stream" not in accept


async def read_presence(server: HttpServer, stream: str, group: str, *, headers: HeaderMap, path: str,
                        query: Mapping[str, Any], addr: tuple[str, int] | None) -> tuple[int, dict[str, Any]]:
    """The answer to a presence read: ``(200, {"presence": [...]})`` or a refusal's status and body.

    The same checks as an SSE subscription to the group — origin, stream, ``authenticate``,
    ``can_access`` — except ``on_join``: reading who is there is not joining.
    """
    def refusal(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"code": code, "message": message}}

    if not server.settings.origin_allowed(headers.get("Origin")):
        return refusal(403, "ORIGIN_NOT_ALLOWED", "this origin may not subscribe")
    app = server.app
    try:
        definition = app.engine.definition(stream)
    except StreamNotFound as exc:
        return refusal(404, exc.code, str(exc))
    request = AuthRequest(headers=headers, path=path, query_params=query, addr=addr, token=token_from(headers, query))
    try:
        auth_context = await authenticate(app.authenticate, request)
    except Refused as refused:
        return refusal(refused.status, refused.code, str(refused))
    if not await still_allowed(definition.config, Subscription(stream, group), auth_context):
        return refusal(403, "STREAM_ACCESS_DENIED", "access to this stream is denied")
    entries = await app.engine.presence.entries(stream, group)
    return 200, {"presence": [entry.as_json() for entry in entries]}
