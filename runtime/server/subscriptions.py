"""The connection layer: what a subscription connection is, for WebSocket and SSE alike.

A `Subscriptions` is one client connection as the streams see it. The
transports (`websocket.py`, `sse.py`) only frame bytes and parse what the
client sends; everything else about a subscription connection is here:

* **Admission.** `authenticate`: the ``Origin`` check, then the app's
  ``authenticate`` hook; its result is the connection's `auth_context`.
  `check`: the per-connection subscription limit, the stream, then
  ``can_access`` and ``on_join``. `attach`: the group registration
  (`engine.join`); `join` is `check` then `attach`. Every refusal is a
  `Refusal` (HTTP status, code, message) that the transport frames: SSE
  answers it as a JSON error response, WebSocket as frames in the join's
  envelope. The order is the same on both: origin, authenticate, limit,
  stream, ``can_access``, ``on_join``.
* **The subscription table** (`table`): subscription id -> `Joined`, the
  `Subscription` the hooks saw and the per-subscription ``options`` the
  client asked for: ``presence`` (bool: send this subscription the group's
  presence events) and ``presence_data`` (its own entry's data). Every group
  subscription counts in its group's presence (`presence_wire.join_presence`
  at attach, `leave_presence` at leave; item subscriptions do not). Changes
  to the table are made one at a time: a transport holds `lock` around each
  client command (join, leave, refresh) and the expiry.
* **Leave and ``on_leave``, however a subscription ends**: the client's
  leave, a join that replaces it, a join that failed after ``on_join``
  ran, and the end of the connection (`connected` leaves every one,
  shielded and bounded by ``shutdown_timeout``, never raising).
* **The slow-consumer policy.** The outbox calls `_overflowed` when a group
  dropped its backlog: under ``slow_consumer="close"`` the connection ends at
  once (`end_now`, the transport's slow ending: close 4008, or the last
  chunk); under ``"resync"`` the writer re-joins every subscription
  (`resync`). A subscription whose re-join fails ends the connection the
  same way: the client reconnects and resumes instead of silently missing a
  group.
* **The heartbeat.** `connected` registers the connection with the server's
  `Heartbeat` (heartbeat.py) when the transport has one; the layer is what
  the heartbeat pings (`ping` queues the transport's ping bytes) and ends
  (`timed_out`).
* **The writer hand-off.** The layer owns the `Outbox` (outbox.py) and the
  connection's writer task (`write`), which writes only what the server's
  `Flusher` handed back, runs resyncs, and does the final flush.

Lifecycle, as a transport uses it::

    subs = Subscriptions(...)                 # owns the outbox
    refusal = await subs.authenticate(request, origin)
    async with subs.connected(stream):        # counted, watched; left and cleaned up on exit
        ... reader task: subs.join / subs.leave from what the client sends ...
        await subs.write(last=...)            # the writer; returns once closed and drained

**Auth context.** The connection's `lease` (auth_lease.py) holds its auth
context (`auth_context`) and that context's expiry; every hook call made for
this connection (``can_access``, ``on_join``, ``on_leave``) gets the context
it holds at that moment. A token refresh is `renew` (``authenticate`` again
on the connection's own request, the token replaced: on success the lease
holds the new context) then `recheck` (``can_access`` alone for every live
subscription; those now refused are told to the transport and left). The
transport runs ``lease.watch`` in its nursery and frames its notices; at
expiry, `end_all` ends every subscription, and `check` refuses new joins
with ``TOKEN_EXPIRED`` until a refresh.

Nothing here raises into the server for what one client does: hooks that
raise refuse (admission) or are logged (``on_leave``), a failed group join
is a `Refusal` with code ``JOIN_FAILED``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors import ActorStopped

from ..errors import StreamNotFound
from ..streams.events import Event
from .auth import AuthRequest, Refused, Subscription, authenticate, check_access, notify_leave
from .auth_lease import AuthLease, renew, still_allowed
from .listeners import NETWORK_ERRORS
from .outbox import Outbox
from .presence_wire import join_presence, leave_presence
from .settings import SLOW_CLOSE

if TYPE_CHECKING:
    from .flusher import Flusher
    from .heartbeat import Heartbeat
    from .metrics import ServerMetrics
    from .settings import ServerSettings

__all__ = ["Joined", "Refusal", "Subscriptions"]

logger = logging.getLogger("runtime.server")

#: Seconds the last bytes of a connection ended at once (close 4008, a last chunk) may take: best
#: effort, its client may read nothing at all.
LAST_WRITE_TIMEOUT = 1.0


@attrs.frozen
class Refusal:
    """Why a connection or a subscription was refused: what the transport frames."""

    status: int
    code: str
    message: str

    @property
    def body(self) -> dict[str, Any]:
        """The JSON error body (an HTTP refusal's, and the shape of the WebSocket error frames)."""
        return {"error": {"code": self.code, "message": self.message}}


@attrs.frozen
class Joined:
    """One live subscription of the table."""

    subscription: Subscription
    #: What the client asked for with its join beyond the subscription itself (e.g. presence).
    options: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def group(self) -> tuple[str, str]:
        return self.subscription.stream_name, self.subscription.group_id

    @property
    def presence(self) -> bool:
        """It asked for the group's presence events (``presence: true`` / ``?presence=true``)."""
        return bool(self.options.get("presence"))


class Subscriptions:
    """One client connection's auth context, subscriptions, outbox and writer (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        settings: ServerSettings,
        metrics: ServerMetrics,
        transport: str,
        *,
        encode: Callable[[Event], bytes],
        slow_close: bytes,
        max_subscriptions: int,
        flusher: Flusher | None = None,
        fd: int = -1,
        wrap: Callable[[bytes], bytes] | None = None,
        heartbeat: Heartbeat | None = None,
        ping: bytes = b"",
        ping_timeout_close: bytes = b"",
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        #: The metrics label: ``"websocket"`` or ``"sse"``.
        self.transport = transport
        self.max_subscriptions = max_subscriptions
        if flusher is not None and (not flusher.running or fd < 0):
            flusher = None  # no flusher task (or no socket): the writer writes everything
        self.outbox = Outbox(
            settings.outbox_limit, encode, metrics=metrics, on_overflow=self._overflowed,
            on_ready=None if flusher is None else flusher.mark, fd=fd if flusher is not None else -1, wrap=wrap,
        )
        #: The connection's id: the default presence identity of an anonymous client.
        self.id = uuid.uuid4().hex
        #: The auth context and its expiry (`authenticate`; `renew` replaces the context).
        self.lease: AuthLease | None = None
        #: The request `authenticate` admitted: a refresh re-authenticates it with the new token.
        self.auth_request: AuthRequest | None = None
        #: subscription id -> `Joined`
        self.table: dict[str, Joined] = {}
        #: Held by the transport around each change of the table (a client command, the expiry).
        self.lock = trio.Lock()
        self.stream: Any = None
        self._slow_close = slow_close
        self._heartbeat = heartbeat
        self._ping = ping
        self._ping_timeout_close = ping_timeout_close
        #: The bytes that end a connection being ended at once (`end_now`); None while it is not.
        self._last: bytes | None = None
        self._scope = trio.CancelScope()
        self._open = False
        #: Heartbeat bookkeeping (heartbeat.py): pings sent, and the last one a pong answered.
        self.pings_sent = 0
        self.pings_answered = 0

    def __repr__(self) -> str:
        return f"<Subscriptions {self.transport} {len(self.table)} subscriptions>"

    # -- admission ---------------------------------------------------------------------------------

    async def authenticate(self, request: AuthRequest, origin: str | None) -> Refusal | None:
        """The ``Origin`` check, then the app's ``authenticate``: None when the connection is admitted."""
        if not self.settings.origin_allowed(origin):
            return Refusal(403, "ORIGIN_NOT_ALLOWED", "this origin may not subscribe")
        try:
            auth_context = await authenticate(self.app.authenticate, request)
        except Refused as refused:
            return Refusal(refused.status, refused.code, str(refused))
        self.auth_request = request
        self.lease = AuthLease(auth_context, refresh_before=self.settings.refresh_before)
        return None

    @property
    def auth_context(self) -> Any:
        """The connection's auth context now (None before `authenticate`, or anonymous)."""
        return None if self.lease is None else self.lease.context

    async def check(self, subscription_id: str, subscription: Subscription) -> Refusal | None:
        """The limit, the stream, ``can_access`` and ``on_join``: None when it may be attached."""
        most = self.max_subscriptions
        if subscription_id not in self.table and len(self.table) >= most:
            return Refusal(429, "TOO_MANY_SUBSCRIPTIONS", f"at most {most} subscriptions per connection")
        try:
            definition = self.app.engine.definition(subscription.stream_name)
        except StreamNotFound as exc:
            return Refusal(404, exc.code, str(exc))
        if self.lease is not None and self.lease.expired:
            return Refusal(401, "TOKEN_EXPIRED", "the token has expired: refresh it first")
        try:
            await check_access(self.app, definition.config, subscription, self.auth_context)
        except Refused as refused:
            return Refusal(refused.status, refused.code, str(refused))
        return None

    async def attach(self, subscription_id: str, subscription: Subscription, *,
                     since: tuple[str, int] | None = None, options: Mapping[str, Any] | None = None,
                     ) -> Refusal | None:
        """Register with the group (its sync is queued on the outbox) and enter the table.

        A join under an id already in the table replaces that subscription: in
        another group it leaves first (``on_leave``); in the same group the
        registration is swapped and the old one's ``on_leave`` runs after.
        """
        engine = self.app.engine
        previous = self.table.get(subscription_id)
        if previous is not None and previous.group != (subscription.stream_name, subscription.group_id):
            await self.leave(subscription_id)
            previous = None
        try:
            await engine.join(self.outbox, subscription.stream_name, subscription.group_id,
                              subscription_id=subscription_id, item_id=subscription.id, since=since)
        except Exception as exc:  # noqa: BLE001 - answered to this client only
            logger.error("%s join to %s/%s failed: %r", self.transport, subscription.stream_name,
                         subscription.group_id, exc)
            await self._notify_leave(subscription)  # on_join ran for a join that was not made
            return Refusal(500, "JOIN_FAILED", f"join failed: {type(exc).__name__}")
        if previous is None:
            self.metrics.subscriptions[self.transport] += 1
        else:
            if previous.subscription.id is None and subscription.id is not None:
                # group -> item in the same group: no longer counted (group -> group: join_presence replaces)
                await leave_presence(self.app, self.outbox, previous.subscription, subscription_id)
            await self._notify_leave(previous.subscription)
        joined = self.table[subscription_id] = Joined(subscription, dict(options or {}))
        await join_presence(self.app, self.outbox, subscription, subscription_id, self.auth_context,
                            connection_id=self.id, listen=joined.presence,
                            client_data=joined.options.get("presence_data"))
        return None

    async def join(self, subscription_id: str, subscription: Subscription, *,
                   since: tuple[str, int] | None = None, options: Mapping[str, Any] | None = None,
                   ) -> Refusal | None:
        """`check`, then `attach`."""
        refusal = await self.check(subscription_id, subscription)
        if refusal is None:
            refusal = await self.attach(subscription_id, subscription, since=since, options=options)
        return refusal

    async def renew(self, token: str) -> Refusal | None:
        """A refresh: ``authenticate`` again with ``token``; on success the lease holds the new
        context (and its expiry); refused, the old one stays. Hold `lock`, then `recheck`."""
        assert self.lease is not None and self.auth_request is not None  # set by `authenticate`
        try:
            context = await renew(self.app, self.auth_request, token)
        except Refused as refused:
            return Refusal(refused.status, "REFRESH_FAILED", str(refused))
        self.lease.replace(context)
        return None

    async def recheck(self, refused: Callable[[str, Joined], object]) -> None:
        """``can_access`` for every live subscription with the current context; each one it now
        refuses is told to ``refused`` (the transport frames it), then left."""
        for subscription_id, joined in list(self.table.items()):
            config = self.app.engine.definition(joined.subscription.stream_name).config
            if not await still_allowed(config, joined.subscription, self.auth_context):
                refused(subscription_id, joined)
                await self.leave(subscription_id)

    async def end_all(self, ended: Callable[[str, Joined], object]) -> None:
        """Every subscription ends (the token expired): each is told to ``ended``, then left."""
        for subscription_id, joined in list(self.table.items()):
            ended(subscription_id, joined)
            await self.leave(subscription_id)

    # -- leaving ------------------------------------------------------------------------------------

    async def leave(self, subscription_id: str) -> bool:
        """Leave the group and run ``on_leave``; False when there was no such subscription."""
        joined = self.table.pop(subscription_id, None)
        if joined is None:
            return False
        self.metrics.subscriptions[self.transport] -= 1
        await leave_presence(self.app, self.outbox, joined.subscription, subscription_id)
        stream, group = joined.group
        try:
            await self.app.engine.leave(self.outbox, stream, group, subscription_id)
        except (ActorStopped, RuntimeError):
            pass  # the engine stopped first (shutdown): the group and its registrations are gone
        await self._notify_leave(joined.subscription)
        return True

    async def _notify_leave(self, subscription: Subscription) -> None:
        try:
            await notify_leave(self.app, subscription, self.auth_context)
        except Exception:  # noqa: BLE001 - a failing hook must not stop the cleanup
            logger.exception("on_leave for %s/%s raised", subscription.stream_name, subscription.group_id)

    # -- the connection's life -----------------------------------------------------------------------

    @asynccontextmanager
    async def connected(self, stream: Any) -> AsyncIterator[None]:
        """The connection is open for its body: counted, heartbeated, and ended at once by `end_now`.

        On the way out, however it ends: the flusher lets go of the socket,
        every subscription leaves (shielded, bounded by ``shutdown_timeout``),
        and a connection ended at once gets its last bytes, best effort.
        """
        self.stream = stream
        self._open = True
        self.metrics.connections[self.transport] += 1
        if self._heartbeat is not None:
            self._heartbeat.watch(self)
        try:
            with self._scope:
                yield
        finally:
            self._open = False
            outbox = self.outbox
            outbox.detach()  # the flusher never writes to a connection that is ending (its fd may be reused)
            outbox.close()
            self.metrics.connections[self.transport] -= 1
            with trio.move_on_after(self.settings.shutdown_timeout, shield=True):
                for subscription_id in list(self.table):
                    await self.leave(subscription_id)
            if self._last is not None and not outbox.writing:
                with trio.move_on_after(LAST_WRITE_TIMEOUT, shield=True):
                    try:
                        # after any part of a frame the socket did not take, so the ending stays whole
                        await stream.send_all(outbox.take_unsent() + self._last)
                    except NETWORK_ERRORS:
                        pass

    def end_now(self, last: bytes) -> None:
        """End the connection without waiting for its client to read what is queued; ``last`` is
        written after, best effort."""
        if self._last is None:
            self._last = last
            self.outbox.detach()
            self._scope.cancel()

    @property
    def ending(self) -> bool:
        """`end_now` was called."""
        return self._last is not None

    def _overflowed(self) -> None:
        """A group dropped our backlog (called by the group actor). Under the close policy, end now:
        the writer may be stuck on a client that reads nothing, and must not wait."""
        if self.settings.slow_consumer == SLOW_CLOSE and self._last is None:
            self.metrics.slow_consumer_closes += 1
            self.end_now(self._slow_close)

    async def write(self, *, last: bytes = b"") -> None:
        """The connection's writer: what the flusher handed back, resyncs, and the final flush
        (then ``last``, e.g. SSE's last chunk). Returns once the outbox is closed and drained."""
        outbox = self.outbox
        while True:
            await outbox.wait()
            if self._last is not None:
                await trio.sleep_forever()  # already cancelled: ending at once
            if outbox.needs_resync and not outbox.closed:  # the close policy never gets here
                await self.resync()
            if outbox.flushing and not outbox.closed:
                continue  # woken for the resync only: the flusher writes the frames
            if not await outbox.write_out(self.stream) and outbox.closed:
                if last:
                    await self.stream.send_all(last)
                return

    async def resync(self) -> None:
        """Dropped backlog: a fresh sync for every subscription, in order. One that cannot be
        re-joined ends the connection (the slow ending): a client must not miss a group silently."""
        self.metrics.resyncs += 1
        engine = self.app.engine
        outbox = self.outbox
        joined = list(self.table.items())
        outbox.begin_resync(entry.group for _, entry in joined)
        for subscription_id, entry in joined:
            stream, group = entry.group
            try:
                await engine.join(outbox, stream, group, subscription_id=subscription_id,
                                  item_id=entry.subscription.id)
            except Exception as exc:  # noqa: BLE001 - this connection ends, the server goes on
                logger.error("resync of %s/%s failed: %r", stream, group, exc)
                outbox.abandon_resync(stream, group)
                self.end_now(self._slow_close)
                return
            current = self.table.get(subscription_id)
            if current is None or current.subscription != entry.subscription:
                # left (or replaced) while we re-joined: undo the registration we just made
                await engine.leave(outbox, stream, group, subscription_id)
            elif current.presence:  # the registration stands: its presence list comes again after the sync
                engine.presence.resend(outbox, stream, group, subscription_id)

    # -- what the server's `Heartbeat` sees ----------------------------------------------------------

    @property
    def open(self) -> bool:
        return self._open

    @property
    def last_write(self) -> float:
        """When bytes were last written (Trio clock): a quiet-only heartbeat counts from it."""
        return self.outbox.last_write

    def ping(self) -> None:
        self.outbox.push_raw(self._ping)

    def timed_out(self) -> None:
        # at once: a client that answers no ping may read nothing either, and a queued close
        # frame would wait behind everything it has not read
        self.end_now(self._ping_timeout_close)
