"""Queues and cron ticks on Redis, shared by every process of an app.

Keys (under the storage's prefix; the topic is length-prefixed, the step
comes last, so a key names exactly one (topic, step)):

* ``<p>:qs:<len>:<topic>:<step>``: a Stream of the lane's messages (field
  ``m``: the message JSON), read by the consumer group ``runtime``, one
  consumer per process (``storage.origin``). An entry is deleted when it
  is acknowledged (``ACK``), retried or dead-lettered, so the stream holds
  exactly the messages not yet handled: that backlog is its bound. No
  MAXLEN: trimming would drop messages nobody has handled.
* ``<p>:qr:<len>:<topic>:<step>``: a sorted set of delayed retries (score:
  due wall-clock ms, member: the message JSON). ``MOVE_DUE`` moves due
  ones back onto the stream; any process may run it, it is atomic.
* dead letters: the storage's own hash and order (``storage.dead_letters``,
  ``replay_dead_letter`` and the CLI see them).
* ``<p>:cron:<step>:<tick ms>``: ``SET NX PX`` by the process that fires
  that tick.

Delivery: a reader per lane does ``XREADGROUP ... COUNT <free slots> BLOCK
<1 s> STREAMS key >`` on a client of its own (a blocking command holds its
connection: the storage's client and its pool stay free for everything
else; Trio cancellation drops the connection). A maintenance task per lane
moves due retries, renews the lease of this process's in-flight messages
(``XCLAIM ... JUSTID``: resets their idle time without counting a
delivery) and claims messages idle longer than the visibility timeout
(``XAUTOCLAIM``): a crashed process's messages go to a live one. The
delivery count Redis keeps counts the attempts a crash interrupted, so a
message that kills its consumer each time still ends in the dead letters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import coredis
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from runtime.errors import StorageError

from ..base import QueuedMessage
from .codec import decode_message, encode_message
from .scripts import STORE_ORDERED

if TYPE_CHECKING:
    from .storage import RedisStorage

__all__ = ["RedisQueues"]

logger = logging.getLogger("runtime.steps")

GROUP = "runtime"
_ERRORS = (RedisError, TimeoutError, OSError, StorageError)

#: KEYS: stream. ARGV: group. Creates the group (reading from the start) unless it exists.
ENSURE_GROUP = r"""
redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
return 1
"""

#: KEYS: stream. ARGV: group, entry id. Returns 1 when the entry was pending.
ACK = r"""
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
"""

#: KEYS: stream, retries. ARGV: group, entry id, due ms, message JSON.
#: Returns 0 (and changes nothing) when the entry was no longer pending.
RETRY = r"""
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""

#: KEYS: stream, dead, dead order, sequence. ARGV: group, entry id, message id, message JSON.
#: Returns 0 (and changes nothing) when the entry was no longer pending.
BURY = STORE_ORDERED + r"""
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
store_ordered(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4])
return 1
"""

#: KEYS: retries, stream. ARGV: now ms, limit. Returns {moved, next due ms or nil}.
MOVE_DUE = r"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'm', m)
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {#due, nxt[2] or false}
"""

#: KEYS: stream. ARGV: group, consumer, min idle ms, count, forget ms.
#: Returns {{entry id, message JSON, delivery count}, ...} of the entries claimed.
#: Also forgets consumers (processes gone for good) idle over ``forget ms`` with nothing pending.
CLAIM = r"""
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= ARGV[2] and info['pending'] == 0 and info['idle'] > tonumber(ARGV[5]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
  end
end
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', tonumber(ARGV[4]))
local out = {}
for _, e in ipairs(r[2]) do
  local id, fields = e[1], e[2]
  if type(fields) == 'table' then
    local m = nil
    for i = 1, #fields, 2 do if fields[i] == 'm' then m = fields[i + 1] end end
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local n = 1
    if p[1] then n = p[1][4] end
    if m then out[#out + 1] = {id, m, n} else redis.call('XACK', KEYS[1], ARGV[1], id) end
  end
end
return out
"""

#: KEYS: stream. ARGV: group, consumer, entry ids... Resets the idle time of the
#: entries this consumer still owns (not one another process claimed since).
RENEW = r"""
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
"""

#: KEYS: pending, pending order, stream. ARGV: message id, message JSON.
#: Moves a message ``queue_put`` stored (a dead letter replayed from the CLI) onto its stream, once.
ADOPT = r"""
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'm', ARGV[2])
return 1
"""

SCRIPTS = {
    "ENSURE_GROUP": ENSURE_GROUP, "ACK": ACK, "RETRY": RETRY, "BURY": BURY, "MOVE_DUE": MOVE_DUE,
    "CLAIM": CLAIM, "RENEW": RENEW, "ADOPT": ADOPT,
}

#: Milliseconds a read blocks in Redis before it loops (well under the client's timeout).
BLOCK_MS = 1000
#: How long a claimed cron tick stays claimed.
CRON_CLAIM_MS = 10 * 60 * 1000


def lane_key(prefix: str, kind: str, topic: str, step: str) -> str:
    return f"{prefix}:{kind}:{len(topic)}:{topic}:{step}"


def cron_key(prefix: str, step: str, tick_ms: int) -> str:
    return f"{prefix}:cron:{step}:{tick_ms}"


class _Backoff:
    """Log an outage once per failure run, sleep 0.1 s doubling to 5 s, and say when it is over."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.delay = 0.0

    async def failed(self, exc: BaseException) -> None:
        first = not self.delay
        self.delay = min(max(self.delay * 2, 0.1), 5.0)
        logger.log(logging.WARNING if first else logging.DEBUG,
                   "%s failed (%r); retrying in %.1f s", self.what, exc, self.delay)
        await trio.sleep(self.delay)

    def ok(self) -> None:
        if self.delay:
            logger.warning("%s works again", self.what)
            self.delay = 0.0


@attrs.define(eq=False)
class _Receipt:
    lane: _RedisLane
    entry_id: bytes

    async def ack(self) -> None:
        await self.lane.settle("acknowledging", "ACK", [self.lane.stream], [GROUP, self.entry_id])

    async def retry(self, message: QueuedMessage) -> None:
        await self.lane.settle(
            "scheduling a retry of", "RETRY", [self.lane.stream, self.lane.retries],
            [GROUP, self.entry_id, message.due_ms, encode_message(message)],
        )
        self.lane.wake_at(message.due_ms)

    async def bury(self, message: QueuedMessage) -> None:
        keys = self.lane.queues.storage.keys
        await self.lane.settle(
            "dead-lettering", "BURY", [self.lane.stream, keys.dead, keys.dead_order, keys.sequence],
            [GROUP, self.entry_id, message.id, encode_message(message)],
        )


class _RedisLane:
    """The messages of one topic for one step, in this process."""

    def __init__(
        self, queues: RedisQueues, topic: str, step: str, *, concurrency: int, attempts: int,
        deliver: Callable[[QueuedMessage, Any], Awaitable[None]],
    ) -> None:
        prefix = queues.storage.keys.prefix
        self.queues = queues
        self.topic = topic
        self.step = step
        self.stream = lane_key(prefix, "qs", topic, step)
        self.retries = lane_key(prefix, "qr", topic, step)
        self.attempts = attempts
        self.deliver = deliver
        self.limiter = trio.CapacityLimiter(concurrency)
        self.inflight: set[bytes] = set()
        self._freed = trio.Event()
        self._wake = trio.Event()
        self._next_due = math.inf  # trio time of the earliest retry this process knows of

    # -- from handlers ---------------------------------------------------------------

    async def settle(self, what: str, script: str, keys: list[str], args: list[Any]) -> None:
        try:
            await self.queues.run_script(f"{what} a message of {self.topic} -> {self.step}", script, keys, args)
        except StorageError as exc:
            logger.warning("%s; the message stays pending and is delivered again after the "
                           "visibility timeout", exc)

    def wake_at(self, due_ms: int) -> None:
        self._next_due = min(self._next_due, self.queues.clock.trio_time_at(due_ms / 1000))
        self._wake.set()

    # -- consuming -------------------------------------------------------------------

    async def run(self, nursery: trio.Nursery) -> None:
        async with trio.open_nursery() as own:
            own.start_soon(self._read, nursery, name=f"queue reader {self.topic} -> {self.step}")
            own.start_soon(self._maintain, nursery, name=f"queue upkeep {self.topic} -> {self.step}")

    async def _ensure_group(self) -> None:
        await self.queues.run_script("creating a consumer group", "ENSURE_GROUP", [self.stream], [GROUP])

    async def _read(self, nursery: trio.Nursery) -> None:
        queues = self.queues
        backoff = _Backoff(f"reading queue {self.topic} -> {self.step} from Redis at {queues.storage.where}")
        ready = False
        while True:
            while self.limiter.available_tokens < 1:
                await self._freed.wait()
                self._freed = trio.Event()
            try:
                if not ready:
                    await self._ensure_group()
                    ready = True
                reply = await queues.reader.xreadgroup(
                    GROUP, queues.storage.origin, {self.stream: ">"},
                    count=int(self.limiter.available_tokens), block=BLOCK_MS,
                )
            except _ERRORS as exc:
                ready = False  # a NOGROUP (Redis lost its data) creates the group again
                await backoff.failed(exc)
                continue
            backoff.ok()
            for entries in (reply or {}).values():
                for entry in entries:
                    raw = entry.field_values.get(b"m")
                    await self._start(nursery, entry.identifier, raw if isinstance(raw, bytes) else None, 1)

    async def _start(self, nursery: trio.Nursery, entry_id: Any, raw: bytes | None, deliveries: int) -> None:
        entry_id = entry_id if isinstance(entry_id, bytes) else str(entry_id).encode()
        receipt = _Receipt(self, entry_id)
        if raw is None:
            await receipt.ack()
            return
        message = decode_message(raw)
        interrupted = deliveries - 1  # deliveries that ended without an ack, a retry or a dead letter
        if interrupted:
            message = attrs.evolve(message, attempts=message.attempts + interrupted)
            if message.attempts >= self.attempts:
                error = f"delivered {deliveries} times without an acknowledgement (its consumer died or stalled)"
                logger.error("queue message %s of %s -> %s dead-lettered: %s", message.id, self.topic, self.step, error)
                await receipt.bury(attrs.evolve(message, last_error=error))
                return
        token = object()
        self.inflight.add(entry_id)
        await self.limiter.acquire_on_behalf_of(token)
        nursery.start_soon(self._run_one, message, receipt, token, name=f"queue {self.topic} -> {self.step}")

    async def _run_one(self, message: QueuedMessage, receipt: _Receipt, token: object) -> None:
        try:
            await self.deliver(message, receipt)
        finally:
            self.inflight.discard(receipt.entry_id)
            self.limiter.release_on_behalf_of(token)
            self._freed.set()

    async def _maintain(self, nursery: trio.Nursery) -> None:
        """Move due retries, renew this process's leases, claim what crashed consumers left."""
        queues = self.queues
        storage = queues.storage
        backoff = _Backoff(f"queue upkeep of {self.topic} -> {self.step} on Redis at {storage.where}")
        interval = queues.claim_interval
        next_claim = trio.current_time()
        while True:
            try:
                moved, next_due = await queues.run_script(
                    "moving due retries", "MOVE_DUE", [self.retries, self.stream], [queues.clock.now_ms(), 100])
                if next_due is None:
                    self._next_due = math.inf
                else:
                    self._next_due = queues.clock.trio_time_at(int(float(next_due)) / 1000)
                if moved >= 100:
                    continue
                if trio.current_time() >= next_claim:
                    await self._renew_and_claim(nursery)
                    next_claim = trio.current_time() + interval
            except _ERRORS as exc:
                await backoff.failed(exc)
                continue
            backoff.ok()
            with trio.move_on_at(min(next_claim, self._next_due)):
                await self._wake.wait()
            self._wake = trio.Event()

    async def _renew_and_claim(self, nursery: trio.Nursery) -> None:
        queues = self.queues
        if self.inflight:
            await queues.run_script("renewing leases", "RENEW", [self.stream],
                                    [GROUP, queues.storage.origin, *sorted(self.inflight)])
        free = int(self.limiter.available_tokens)
        if free < 1:
            return
        await self._ensure_group()
        claimed = await queues.run_script(
            "claiming idle messages", "CLAIM", [self.stream],
            [GROUP, queues.storage.origin, int(queues.visibility_timeout * 1000), free, queues.forget_ms])
        for entry_id, raw, deliveries in claimed:
            logger.warning("queue %s -> %s: claimed message entry %s (delivery %d) from a consumer that "
                           "did not finish it", self.topic, self.step, entry_id.decode(), deliveries)
            await self._start(nursery, entry_id, raw, int(deliveries))


class RedisQueues:
    """Every queue lane of one app in this process, and its cron ticks; see the module docstring."""

    def __init__(self, storage: RedisStorage, clock: Any, *, visibility_timeout: float = 30.0) -> None:
        if not visibility_timeout > 0:
            raise ValueError("the visibility timeout must be positive")
        self.storage = storage
        self.clock = clock
        self.visibility_timeout = visibility_timeout
        #: Seconds between lease renewals and claims: a third of the visibility timeout.
        self.claim_interval = min(max(visibility_timeout / 3, 0.02), 10.0)
        #: Milliseconds after which a consumer with nothing pending (a process gone) is dropped from a group.
        self.forget_ms = int(max(3600.0, visibility_timeout * 10) * 1000)
        self.lanes: dict[tuple[str, str], _RedisLane] = {}
        self._scripts: dict[str, Any] = {}
        self._reader: coredis.Redis[bytes] | None = None

    def add_lane(self, topic: str, step: str, *, concurrency: int, attempts: int,
                 deliver: Callable[[QueuedMessage, Any], Awaitable[None]]) -> None:
        self.lanes[(topic, step)] = _RedisLane(self, topic, step, concurrency=concurrency, attempts=attempts,
                                              deliver=deliver)

    @property
    def reader(self) -> coredis.Redis[bytes]:
        assert self._reader is not None
        return self._reader

    async def run_script(self, what: str, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.storage.client.register_script(SCRIPTS[name])
        return await self.storage._call(what, script(keys=keys, args=args))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Consume every lane until cancelled; handlers run in a nursery of this task."""
        if not self.lanes:
            task_status.started()
            await self._adopt_pending()
            await self._adopt_loop()
            return
        storage = self.storage
        reader = coredis.Redis.from_url(
            storage.url, decode_responses=False, retry_policy=NoRetryPolicy(),
            stream_timeout=storage.timeout + BLOCK_MS / 1000, connect_timeout=storage.timeout,
            max_connections=len(self.lanes) + 1,
        )
        async with reader:
            self._reader = reader
            try:
                async with trio.open_nursery() as nursery:
                    await self._adopt_pending()
                    for lane in self.lanes.values():
                        nursery.start_soon(lane.run, nursery, name=f"queue lane {lane.topic} -> {lane.step}")
                    nursery.start_soon(self._adopt_loop)
                    task_status.started()
            finally:
                self._reader = None

    async def put(self, message: QueuedMessage) -> None:
        encoded = encode_message(message)
        stream = lane_key(self.storage.keys.prefix, "qs", message.topic, message.step)
        await self.storage._call("enqueueing a message", self.storage.client.xadd(stream, {"m": encoded}))

    async def claim_tick(self, step: str, tick_ms: int) -> bool:
        key = cron_key(self.storage.keys.prefix, step, tick_ms)
        won = await self.storage._call("claiming a cron tick", self.storage.client.set(
            key, self.storage.origin, condition=coredis.PureToken.NX, px=CRON_CLAIM_MS))
        return bool(won)

    # -- messages stored with queue_put (a dead letter the CLI replayed) ----------------------

    async def _adopt_pending(self) -> None:
        try:
            await self._adopt_pending_now()
        except StorageError as exc:
            logger.warning("could not move replayed queue messages (%s); trying again later", exc)

    async def _adopt_pending_now(self) -> None:
        pending = await self.storage.queue_pending()
        keys = self.storage.keys
        for message in pending:
            if (message.topic, message.step) not in self.lanes:
                reason = f"step {message.step!r} no longer takes topic {message.topic!r}"
                logger.warning("queue message %s dead-lettered: %s", message.id, reason)
                await self.storage.queue_dead(attrs.evolve(message, last_error=reason))
                continue
            stream = lane_key(keys.prefix, "qs", message.topic, message.step)
            await self.run_script("moving a replayed message to its queue", "ADOPT",
                                  [keys.pending, keys.pending_order, stream], [message.id, encode_message(message)])

    async def _adopt_loop(self) -> None:
        while True:
            await trio.sleep(max(self.claim_interval, 1.0))
            try:
                pending = self.storage.client.hlen(self.storage.keys.pending)
                if await self.storage._call("checking replayed messages", pending):
                    await self._adopt_pending()
            except StorageError as exc:
                logger.debug("replayed-message check failed: %s", exc)
