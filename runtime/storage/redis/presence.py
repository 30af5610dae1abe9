"""Presence on Redis: every process's entries of every group, with heartbeated expiry.

Each process writes only its own entries: one hash field per (process,
identity) in the group's presence hash, holding that process's count and
data for the identity. A process is alive while its deadline in the
processes' sorted set is in the future (Redis's own clock, so processes
need not agree on time); every write and every heartbeat moves it on by
``ttl``. Reads count only the fields of live processes, so a process killed
with -9 stops counting at its deadline whatever else happens; the next
heartbeat of any survivor then *reaps* it (deletes its fields, group by
group, from the set of groups it wrote) and publishes each group it
touched, so the survivors recompute and send ``presence_leave``.

Bound: a dead process's entries stop counting at most ``ttl`` after its last
heartbeat, and are reaped and announced within one more ``interval``:
``ttl + interval`` = 10 + 3 s by default, inside the 15 s the contract
promises. A process that was only slow (a pause longer than ``ttl``) and got
reaped sees it at its next heartbeat and writes its entries again.

Keys (``<group>`` is the group's usual ``<len>:<stream>:<group>``, built by
`Keys` so a change of layout moves these too):

- ``<prefix>:pres:<group>``: hash, ``<origin>\\n<identity>`` -> ``{"c": count, "d": data, "t": joined ms}``;
- ``<prefix>:pres-procs``: sorted set, origin -> deadline (ms, Redis time);
- ``<prefix>:pres-of:<origin>``: set of the presence hashes the origin has fields in (what reaping visits);
- ``<prefix>:pres-ev``: pub/sub channel, a message ``[stream, group]`` per change.

The dynamic keys a reap visits are read from a set inside the script, which a
single Redis allows and Redis Cluster would not: on a cluster, presence needs
its hashes under one hash tag (the ``cluster`` work's key layout).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from ...errors import StorageError

if TYPE_CHECKING:
    from .storage import RedisStorage

__all__ = ["PresenceRecords", "OriginEntry"]

logger = logging.getLogger("runtime.storage")

_ERRORS = (RedisError, TimeoutError, OSError)

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

#: KEYS: presence hash, processes, origin's groups. ARGV: origin, ttl ms, channel, message,
#: then (field, value or "" to delete) pairs; a trailing "last" drops the hash from the origin's set.
_PUT = _NOW + r"""
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
local i = 5
while i + 1 <= #ARGV do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
if ARGV[i] == 'last' then redis.call('SREM', KEYS[3], KEYS[1]) else redis.call('SADD', KEYS[3], KEYS[1]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

#: KEYS: presence hash, processes. Returns the live fields, flat (field, value, ...).
_READ = _NOW + r"""
local flat = redis.call('HGETALL', KEYS[1])
local live, out = {}, {}
for i = 1, #flat, 2 do
  local origin = string.match(flat[i], '^([^\n]*)\n')
  if origin then
    if live[origin] == nil then
      local deadline = redis.call('ZSCORE', KEYS[2], origin)
      live[origin] = deadline ~= false and tonumber(deadline) > now
    end
    if live[origin] then out[#out + 1] = flat[i] out[#out + 1] = flat[i + 1] end
  end
end
return out
"""

#: KEYS: processes. ARGV: origin, ttl ms. Moves the origin's deadline on; returns
#: [1 if it had lapsed (reaped or never written), the lapsed origins of others...].
_HEARTBEAT = _NOW + r"""
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
local lapsed = (deadline == false or tonumber(deadline) <= now) and 1 or 0
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local out = {lapsed}
for _, origin in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do out[#out + 1] = origin end
return out
"""

#: KEYS: processes, the dead origin's groups. ARGV: origin, channel. Deletes its fields if its
#: deadline is still past (it may have come back), publishes each group; returns how many.
_REAP = _NOW + r"""
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if deadline ~= false and tonumber(deadline) > now then return 0 end
local prefix = ARGV[1] .. '\n'
local groups = redis.call('SMEMBERS', KEYS[2])
for _, hash in ipairs(groups) do
  for _, field in ipairs(redis.call('HKEYS', hash)) do
    if string.sub(field, 1, #prefix) == prefix then redis.call('HDEL', hash, field) end
  end
  redis.call('PUBLISH', ARGV[2], cjson.encode({'hash', hash}))
end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return #groups
"""


@attrs.frozen
class OriginEntry:
    """One process's share of an identity in a group."""

    count: int
    data: Any
    joined: int


class PresenceRecords:
    """The presence records of one `RedisStorage`; the registry (streams/presence.py) drives it.

    ``ttl`` and ``interval`` (seconds) are attributes so a test can shorten them.
    """

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self.ttl = 10.0
        self.interval = 3.0
        prefix = storage.keys.prefix
        self.procs_key = f"{prefix}:pres-procs"
        self.channel = f"{prefix}:pres-ev"
        self._scripts: dict[str, Any] = {}
        #: presence hash name -> (stream, group), for the reaper's messages (which know only the hash)
        self._hashes: dict[str, tuple[str, str]] = {}

    @property
    def origin(self) -> str:
        return self.storage.origin

    def hash_key(self, stream: str, group: str) -> str:
        key = self.storage.keys._group("pres", stream, group)  # the layout every group key follows (keys.py)
        self._hashes[key] = (stream, group)
        return key

    def forget(self, stream: str, group: str) -> None:
        """The group is no longer watched here: its reap messages may be ignored."""
        self._hashes.pop(self.storage.keys._group("pres", stream, group), None)

    def _groups_key(self, origin: str) -> str:
        return f"{self.storage.keys.prefix}:pres-of:{origin}"

    def _script(self, name: str, source: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.storage.client.register_script(source)
        return script

    async def _call(self, what: str, awaitable: Any) -> Any:
        try:
            with trio.fail_after(self.storage.timeout):
                return await awaitable
        except _ERRORS as exc:
            raise StorageError(f"Redis at {self.storage.where}: {what}: {exc!r}") from exc

    async def put(self, stream: str, group: str, entries: Mapping[str, OriginEntry | None], *, last: bool) -> None:
        """Write this process's entries of ``group`` (None deletes one); ``last``: it has none left."""
        args: list[Any] = [self.origin, int(self.ttl * 1000), self.channel, orjson.dumps([stream, group])]
        for identity, entry in entries.items():
            field = f"{self.origin}\n{identity}"
            value = b"" if entry is None else orjson.dumps({"c": entry.count, "d": entry.data, "t": entry.joined})
            args += (field, value)
        if last:
            args.append("last")
        keys = [self.hash_key(stream, group), self.procs_key, self._groups_key(self.origin)]
        await self._call(f"writing the presence of {stream}/{group}",
                         self._script("PUT", _PUT)(keys=keys, args=args))

    async def read(self, stream: str, group: str) -> dict[str, list[OriginEntry]]:
        """Every live process's entries of ``group``: identity -> their shares."""
        flat = await self._call(f"reading the presence of {stream}/{group}", self._script("READ", _READ)(
            keys=[self.hash_key(stream, group), self.procs_key], args=[]))
        shares: dict[str, list[OriginEntry]] = {}
        for field, value in zip(flat[::2], flat[1::2]):
            _, _, identity = field.decode().partition("\n")
            record = orjson.loads(value)
            shares.setdefault(identity, []).append(OriginEntry(int(record["c"]), record.get("d"), int(record["t"])))
        return shares

    async def heartbeat(self) -> tuple[bool, list[str]]:
        """Move our deadline on; (whether ours had lapsed, the other origins whose deadline passed)."""
        reply = await self._call("presence heartbeat", self._script("HEARTBEAT", _HEARTBEAT)(
            keys=[self.procs_key], args=[self.origin, int(self.ttl * 1000)]))
        return bool(int(reply[0])), [origin.decode() for origin in reply[1:] if origin.decode() != self.origin]

    async def reap(self, origin: str) -> int:
        """Delete a dead process's entries and announce each group it was in."""
        reply = await self._call("reaping presence", self._script("REAP", _REAP)(
            keys=[self.procs_key, self._groups_key(origin)], args=[origin, self.channel]))
        return int(reply)

    async def withdraw(self) -> None:
        """Clean exit: our deadline goes now, and a reap of ourselves announces every group."""
        await self._call("leaving presence", self.storage.client.zadd(self.procs_key, {self.origin: 0}))
        await self.reap(self.origin)

    async def listen(self, changed: Callable[..., None], *,
                     task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Call ``changed(stream, group)`` for each published change, ``changed(None)`` after a reconnect.

        Reconnects with backoff; reports started once subscribed (or after the first failure).
        """
        started = False
        delay = 0.1
        while True:
            try:
                pubsub = self.storage.client.pubsub(ignore_subscribe_messages=True, retry_policy=NoRetryPolicy())
                async with pubsub:
                    await pubsub.subscribe(self.channel)
                    if not started:
                        started = True
                        task_status.started()
                    else:
                        changed(None)  # we may have missed changes while away: recompute everything
                    delay = 0.1
                    while True:
                        message = await pubsub.get_message()
                        if message is None or message["type"] != "message":
                            continue
                        self._dispatch(message["data"], changed)
            except* _ERRORS as failure:  # (coredis raises from its own task group: a group)
                if not started:
                    started = True
                    task_status.started()
                logger.warning("lost the presence feed at %s (%r); reconnecting in %.1f s",
                               self.storage.where, failure.exceptions[0], delay)
            await trio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _dispatch(self, data: Any, changed: Callable[..., None]) -> None:
        try:
            decoded = orjson.loads(data)
            if decoded[0] == "hash":  # from a reap, which knows the hash only
                where = self._hashes.get(decoded[1])
                if where is not None:
                    changed(*where)
            else:
                changed(str(decoded[0]), str(decoded[1]))
        except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
            logger.error("ignoring a malformed presence message %r", data)
