"""Item expiries and idempotency records on Redis: their keys, their Lua, their reads.

Both must change atomically with the group's batch (an expiry that
outlived its item, or a record whose change was lost, would break
"exactly once"), so they are written by the script that commits it: a
batch that carries expiries, records or deletes runs ``COMMIT_WITH_RECORDS``,
which calls the commit script's own ``commit_group`` for its one group and
then changes them, reading its arguments after the group's and its keys
after the group's six. It goes as a call of its own, outside the
multi-group ``COMMIT``; a batch with none of them takes the plain path,
which pays nothing for this.

Where each thing lives (``<group>`` is the group's usual ``<len>:<stream>:<group>``):

- ``<prefix>:ttl:<group>``: sorted set, item id -> expiry (ms).
- ``<prefix>:expiry:<len>:<stream>``: sorted set, group id -> its earliest
  expiry; what the sweeper polls. It is kept exact by the script (the
  group's first expiry after the batch, or no entry), the same way
  ``<prefix>:groups:<stream>`` is kept, and lives beside it.
- ``<prefix>:idem:<group>``: hash, key -> the first result (JSON).
- ``<prefix>:idem-by-expiry:<group>``: sorted set, key -> when it expires;
  trimmed by time and by count (at most ``max_records``, the newest).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import orjson

from ..base import GroupCommit
from . import scripts
from .keys import Keys

__all__ = ["COMMIT_WITH_RECORDS", "RecordKeys", "expiry_index", "extra_args", "extra_keys", "needs_records"]

#: One group's commit (``scripts.COMMIT_GROUP``) and, when it lands, the changes of its
#: expiries and records. KEYS: the group's six, then ttl, the stream's expiry index, records,
#: records by expiry. ARGV: origin, publish command, channel, message head (as ``COMMIT``
#: takes them), the group's arguments (as ``commit_group`` takes them), then: n expiries,
#: (id, ms or "" to clear) * n, n records, (key, expires at, JSON) * n, max records, now (ms).
#: A deleted item's expiry goes with it. Returns the group's reply, as ``COMMIT`` does.
COMMIT_WITH_RECORDS = scripts.COMMIT_GROUP + r"""
local published = {}
local reply, i = commit_group(0, 5, ARGV[1], published)
if reply[1] ~= 1 then return reply end
local w = 5 + 9
for _ = 1, tonumber(ARGV[5 + 8]) do
  if ARGV[w + 1] == '' then redis.call('ZREM', KEYS[7], ARGV[w]) end
  w = w + 3
end
local n_expiries = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_expiries do
  if ARGV[i + 1] == '' then
    redis.call('ZREM', KEYS[7], ARGV[i])
  else
    redis.call('ZADD', KEYS[7], ARGV[i + 1], ARGV[i])
  end
  i = i + 2
end
local first = redis.call('ZRANGE', KEYS[7], 0, 0, 'WITHSCORES')
if first[1] then
  redis.call('ZADD', KEYS[8], first[2], ARGV[5 + 4])
else
  redis.call('ZREM', KEYS[8], ARGV[5 + 4])
end
local n_records = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_records do
  if redis.call('HSETNX', KEYS[9], ARGV[i], ARGV[i + 2]) == 1 then
    redis.call('ZADD', KEYS[10], ARGV[i + 1], ARGV[i])
  end
  i = i + 3
end
if n_records > 0 then
  local max_records, now = tonumber(ARGV[i]), ARGV[i + 1]
  local gone = redis.call('ZRANGEBYSCORE', KEYS[10], '-inf', now, 'LIMIT', 0, 1000)
  local over = redis.call('ZCARD', KEYS[10]) - #gone - max_records
  if over > 0 then
    for _, key in ipairs(redis.call('ZRANGE', KEYS[10], #gone, #gone + over - 1)) do gone[#gone + 1] = key end
  end
  for c = 1, #gone, 500 do
    local chunk = {unpack(gone, c, math.min(c + 499, #gone))}
    redis.call('HDEL', KEYS[9], unpack(chunk))
    redis.call('ZREM', KEYS[10], unpack(chunk))
  end
end
if #published > 0 then
  redis.call(ARGV[2], ARGV[3], ARGV[4] .. table.concat(published, ',') .. ']}')
end
return reply
"""

#: KEYS: ttl. ARGV: now. The group's items due at ``now``, soonest first.
EXPIRED_ITEMS = r"""
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
"""

#: KEYS: records. ARGV: now, keys... Returns {key, JSON} pairs of the records still valid.
#: The hash holds the JSON; the sorted set the expiry (both are changed only together).
IDEMPOTENCY_GET = r"""
local found = {}
for k = 2, #ARGV do
  local at = redis.call('ZSCORE', KEYS[2], ARGV[k])
  if at and tonumber(at) > tonumber(ARGV[1]) then
    found[#found + 1] = ARGV[k]
    found[#found + 1] = redis.call('HGET', KEYS[1], ARGV[k])
  end
end
return found
"""

#: KEYS: the stream's expiry index. ARGV: now, limit. Groups with an item due at ``now``.
EXPIRY_DUE = r"""
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
"""

#: KEYS: the stream's expiry index. The earliest expiry (as a string), or nil.
EXPIRY_NEXT = r"""
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if first[1] then return first[2] end
return false
"""

#: Registered with the commit scripts (by name).
ALL = {"COMMIT_WITH_RECORDS": COMMIT_WITH_RECORDS, "EXPIRED_ITEMS": EXPIRED_ITEMS,
       "IDEMPOTENCY_GET": IDEMPOTENCY_GET, "EXPIRY_DUE": EXPIRY_DUE, "EXPIRY_NEXT": EXPIRY_NEXT}


@attrs.frozen(slots=True)
class RecordKeys:
    ttl: str
    records: str
    records_by_expiry: str

    @classmethod
    def of(cls, keys: Keys, stream: str, group: str) -> RecordKeys:
        return cls(
            ttl=keys._group("ttl", stream, group),
            records=keys._group("idem", stream, group),
            records_by_expiry=keys._group("idem-by-expiry", stream, group),
        )


def expiry_index(keys: Keys, stream: str) -> str:
    """The stream's sorted set of group id -> earliest expiry (beside ``groups:<stream>``)."""
    return f"{keys.prefix}:expiry:{len(stream)}:{stream}"


def needs_records(commit: GroupCommit) -> bool:
    """Whether the batch must run the extended script: expiries, records, or a delete."""
    return bool(commit.expiries or commit.records or any(value is None for _, value in commit.writes))


def extra_keys(keys: Keys, stream: str, group: str) -> list[str]:
    record_keys = RecordKeys.of(keys, stream, group)
    return [record_keys.ttl, expiry_index(keys, stream), record_keys.records, record_keys.records_by_expiry]


def extra_args(commit: GroupCommit) -> list[Any]:
    """``COMMIT_WITH_RECORDS``'s own arguments, after the group's."""
    args: list[Any] = [len(commit.expiries)]
    for item_id, at in commit.expiries.items():
        args += (item_id, "" if at is None else at)
    args.append(len(commit.records))
    for record in commit.records:
        args += (record.key, record.expires_at, orjson.dumps(record.result))
    args += (commit.max_records, commit.timestamp)
    return args


def decode_found(flat: Sequence[bytes]) -> dict[str, Any]:
    return {flat[n].decode(): orjson.loads(flat[n + 1]) for n in range(0, len(flat), 2)}
