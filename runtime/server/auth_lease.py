"""A connection's auth context, its expiry and its renewal: when to ask for a refresh, when it
has lapsed, and what a refresh re-checks.

An auth context may carry ``expires_at`` (seconds since the epoch; a dict key
or an attribute). `refresh_notice` says when the server asks for a new token
(``refresh_before`` seconds ahead, or half the remaining lifetime when that
is shorter, so a short-lived token is not asked to refresh at once). The
wall clock is read only to convert ``expires_at`` into the Trio clock, when
a context is set; every deadline after that is Trio's (MockClock in tests).

`AuthLease` holds the current context for one connection (WebSocket) or one
response (SSE); ``watch`` runs in the connection's nursery and calls
``notify(expires_at)`` once per context at its notice time and ``expire()``
at its expiry, unless `replace` (a successful refresh) came first.

A refresh (`renew`) re-runs ``authenticate`` on the connection's own request
with the token replaced; each live subscription is then re-checked with
``can_access`` alone (`still_allowed`): ``on_join`` ran when it joined, and a
refresh is not a new join.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .auth import AuthRequest, ConsoleAccess, Subscription, authenticate, call_hook

if TYPE_CHECKING:
    from ..app import App

__all__ = ["AuthLease", "expires_at", "refresh_notice", "renew", "still_allowed"]

logger = logging.getLogger("runtime.server")


def expires_at(auth_context: Any) -> float | None:
    """The context's ``expires_at`` (seconds since the epoch), or None when it has none."""
    if auth_context is None:
        return None
    value = auth_context.get("expires_at") if isinstance(auth_context, Mapping) else getattr(
        auth_context, "expires_at", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def refresh_notice(expiry: float, now: float, refresh_before: float) -> float:
    """When (same clock as ``expiry`` and ``now``) ``refresh_required`` goes out."""
    lead = min(refresh_before, max(0.0, expiry - now) / 2)
    return expiry - lead


class AuthLease:
    """The auth context of a connection, with its expiry on the Trio clock."""

    def __init__(self, context: Any, *, refresh_before: float, wall: Callable[[], float] = time.time) -> None:
        self._refresh_before = refresh_before
        self._wall = wall
        self._changed = trio.Event()
        self.context: Any = None
        self.expires_at: float | None = None
        #: Trio-clock deadlines of the current context: (notice, expiry), or None.
        self.deadlines: tuple[float, float] | None = None
        #: The current context has lapsed (and no refresh has replaced it).
        self.expired = False
        self.replace(context)

    def replace(self, context: Any) -> None:
        """A new context (a successful refresh): its own deadlines, a notice of its own."""
        self.context = context
        self.expires_at = expiry = expires_at(context)
        self.expired = False
        if expiry is None:
            self.deadlines = None
        else:
            now_wall, now = self._wall(), trio.current_time()
            self.deadlines = (now + refresh_notice(expiry, now_wall, self._refresh_before) - now_wall,
                              now + expiry - now_wall)
        self._changed.set()
        self._changed = trio.Event()

    async def watch(self, notify: Callable[[float], Any], expire: Callable[[], Awaitable[Any]]) -> None:
        """Until cancelled: ``notify(expires_at)`` at each context's notice time, ``await expire()`` at
        its expiry (both at most once per context)."""
        while True:
            changed, deadlines, expiry = self._changed, self.deadlines, self.expires_at
            if deadlines is None or expiry is None or self.expired:
                await changed.wait()
                continue
            notice_at, expiry_at = deadlines
            with trio.move_on_at(notice_at):
                await changed.wait()
            if changed.is_set():
                continue
            notify(expiry)
            with trio.move_on_at(expiry_at):
                await changed.wait()
            if changed.is_set():
                continue
            self.expired = True
            await expire()


async def renew(app: App, request: AuthRequest, token: str) -> Any:
    """The auth context for ``token`` on the connection's own request; `Refused` when refused."""
    return await authenticate(app.authenticate, attrs.evolve(request, token=token))


async def still_allowed(config: Any, subscription: Subscription, auth_context: Any) -> bool:
    """``can_access`` with a new context; a hook that raises refuses (as at join)."""
    if isinstance(auth_context, ConsoleAccess) or config.can_access is None:
        return True
    try:
        return bool(await call_hook(config.can_access, subscription, auth_context))
    except Exception:  # noqa: BLE001 - a broken hook refuses, and says so in the log
        logger.exception("can_access for %s raised on refresh; refusing", subscription.stream_name)
        return False
