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
from typing import Any, Callable, Mapping

import attrs

from ..errors import Unauthorized

__all__ = ["AuthRequest", "Subscription", "call_hook", "authenticate", "token_from", "Refused"]

logger = logging.getLogger("runtime.server")


@attrs.frozen
class AuthRequest:
    """What ``authenticate`` sees: ``headers``, ``path``, ``query_params``, ``addr``, ``token``."""

    headers: Mapping[str, str]
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


def token_from(headers: Mapping[str, str], query_params: Mapping[str, Any], subprotocol_token: str | None = None) -> str | None:
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
