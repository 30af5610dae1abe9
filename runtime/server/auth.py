"""Authentication and access hooks shared by the SSE and WebSocket transports.

The app's ``authenticate(request)`` sees who connects and returns an auth
context (any JSON-able value; ``None`` for anonymous) or refuses by raising
`Unauthorized` (an exception of any other kind refuses too: a broken hook
must not let everyone in). Per stream, ``can_access(subscription,
auth_context)`` and ``on_join(subscription, ctx, auth_context)`` decide on
each subscription; ``on_leave`` is told when it ends. Hooks may be sync or
async.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs

from ..errors import Unauthorized
from ..steps.context import FlowContext, TriggerInfo, new_trace_id

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from ..app import App

    #: Request headers as the transports hand them over: a plain mapping or werkzeug's `Headers`.
    HeaderMap = Mapping[str, str] | Headers

__all__ = [
    "AuthRequest", "Subscription", "call_hook", "authenticate", "token_from", "Refused", "check_access", "notify_leave",
    "ConsoleAccess",
]

logger = logging.getLogger("runtime.server")


@attrs.frozen
class AuthRequest:
    """What ``authenticate`` sees: ``headers``, ``path``, ``query_params``, ``addr``, ``token``."""

    headers: HeaderMap
    path: str
    query_params: Mapping[str, Any]
    addr: tuple[str, int] | None
    token: str | None


@attrs.frozen
class Subscription:
    """What ``can_access`` / ``on_join`` / ``on_leave`` see."""

    stream_name: str
    group_id: str
    id: str | None = None

    def __getitem__(self, key: str) -> Any:
        aliases = {"streamName": "stream_name", "groupId": "group_id"}
        return getattr(self, aliases.get(key, key))


class Refused(Exception):
    """A subscription or connection refused by a hook; ``status`` is 401 or 403."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


async def call_hook(hook: Callable[..., Any], *args: Any) -> Any:
    result = hook(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def parse_query(raw: str) -> dict[str, Any]:
    """A query string as ``authenticate`` and step handlers see it on every transport: a name's
    value, or the list of its values when it is repeated."""
    query: dict[str, Any] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in query:
            previous = query[name]
            query[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[name] = value
    return query


def token_from(
    headers: HeaderMap, query_params: Mapping[str, Any], subprotocol_token: str | None = None
) -> str | None:
    """First found wins: the ``Authorization`` subprotocol pair, ``authToken``, ``Bearer``."""
    if subprotocol_token:
        return subprotocol_token
    query_token = query_params.get("authToken")
    if isinstance(query_token, list):
        query_token = query_token[0] if query_token else None
    if query_token:
        return str(query_token)
    header = headers.get("authorization") or headers.get("Authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


async def authenticate(hook: Callable[..., Any] | None, request: AuthRequest) -> Any:
    """The auth context, or `Refused` (401). No hook: everyone is anonymous (``None``)."""
    if hook is None:
        return None
    try:
        return await call_hook(hook, request)
    except Unauthorized as exc:
        raise Refused(401, "UNAUTHORIZED", str(exc) or "authentication failed") from exc
    except Exception as exc:  # noqa: BLE001 - a broken hook refuses, and says so in the log
        logger.exception("authenticate hook raised; refusing the connection")
        raise Refused(401, "UNAUTHORIZED", "authentication failed") from exc


def _hook_context(app: App, name: str) -> FlowContext:
    return FlowContext(app.steps, step=name, trace_id=new_trace_id(), trigger=TriggerInfo("stream"))


class ConsoleAccess:
    """The auth context of a subscription made with the console token (``--console-token``): an
    operator watching, who sees every stream whatever ``can_access`` says and joins without
    ``on_join`` (the console is an observer, not a participant)."""

    def __repr__(self) -> str:
        return "<ConsoleAccess>"


async def check_access(app: App, config: Any, subscription: Subscription, auth_context: Any) -> None:
    """``can_access`` then ``on_join``; raises `Refused` (403) when either says no, or raises."""
    if isinstance(auth_context, ConsoleAccess):
        return
    try:
        if config.can_access is not None and not await call_hook(config.can_access, subscription, auth_context):
            raise Refused(403, "STREAM_ACCESS_DENIED", "access to this stream is denied")
        if config.on_join is not None:
            result = await call_hook(config.on_join, subscription, _hook_context(app, "on_join"), auth_context)
            if isinstance(result, Mapping) and result.get("unauthorized"):
                raise Refused(403, "STREAM_ACCESS_DENIED", "the join was refused")
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken hook refuses
        logger.exception("access hook for %s raised; refusing", subscription.stream_name)
        raise Refused(403, "STREAM_ACCESS_DENIED", "access check failed") from exc


async def notify_leave(app: App, subscription: Subscription, auth_context: Any) -> None:
    """Run the stream's ``on_leave`` hook, if any."""
    if isinstance(auth_context, ConsoleAccess):
        return  # it never ran on_join
    config = app.engine.definition(subscription.stream_name).config
    if config.on_leave is not None:
        await call_hook(config.on_leave, subscription, _hook_context(app, "on_leave"), auth_context)
