"""The Lua scripts: every change to a group is one of these, so it is atomic in Redis.

Why scripts and not WATCH/MULTI: a script runs alone, so the compare-and-set
on (epoch, offset), the timestamp stamping, the item writes, the history
append and the publish to other processes happen as one step that no other
client can interleave with, in one round trip, and never need a retry loop
on the Redis side.

Item JSON is built and read by Python only; the scripts pass it through as
strings (Redis's cjson would turn ``[]`` into ``{}`` and round floats to 14
digits). History entries start with ``{"o":<offset>,"t":<timestamp>,`` so
the scripts can read those two numbers with a pattern.
"""

from __future__ import annotations

__all__ = ["ALL", "STORE_ORDERED"]

#: KEYS: meta, items, order, history, groups, turn.
#: ARGV: epoch, expected offset, new offset, commit timestamp, group id,
#: max events, max age ms, channel, publish head (``{"g":origin,"p":epoch,"v":[``),
#: origin, n writes, (id, JSON or "" to delete, "1" to move it last or "") * n,
#: n events, (offset or 0, proposed ts, body) * n.
#: Returns {1, shift}; {0, stored epoch or "", stored offset, the history entries after
#: the expected offset (or nil when the history cannot cover them)} when the batch lost a
#: race; or {2, ms} when another process holds the group's turn for that long.
COMMIT = r"""
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'ts', 'seq')
local stored_epoch = meta[1]
local stored_offset = tonumber(meta[2]) or 0
local stored_ts = tonumber(meta[3]) or 0
local seq = tonumber(meta[4]) or 0
local since = tonumber(ARGV[2])
local holder = redis.call('GET', KEYS[6])
if holder and holder ~= ARGV[10] then
  -- Another process lost the last races and holds the turn: wait for it.
  return {2, redis.call('PTTL', KEYS[6])}
end
if stored_offset ~= since or (stored_epoch and stored_epoch ~= ARGV[1]) then
  -- Lost the race: take the turn (if free), so the next attempt cannot be
  -- overtaken again and starve.
  redis.call('SET', KEYS[6], ARGV[10], 'NX', 'PX', 50)
  -- Lost the race: hand back what the caller missed, so it can apply its
  -- calls again without another round trip (and so without starving).
  local missed = false
  if stored_epoch == ARGV[1] and stored_offset > since then
    local first = redis.call('LINDEX', KEYS[4], 0)
    if first and tonumber(string.match(first, '^{"o":(%d+)')) <= since + 1 then
      missed = redis.call('LRANGE', KEYS[4], since + 1 - tonumber(string.match(first, '^{"o":(%d+)')), -1)
    end
  end
  return {0, stored_epoch or '', stored_offset, missed}
end
local i = 12
for _ = 1, tonumber(ARGV[11]) do
  local id, value, moved = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  if value == '' then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  else
    if moved ~= '' then redis.call('ZREM', KEYS[3], id) end
    redis.call('HSET', KEYS[2], id, value)
    if not redis.call('ZSCORE', KEYS[3], id) then
      seq = seq + 1
      redis.call('ZADD', KEYS[3], seq, id)
    end
  end
end
local n_events = tonumber(ARGV[i])
i = i + 1
local shift = 0
local last_ts = stored_ts
local entries = {}
local kept = {}  -- history entries, pushed 500 at a time (Lua's unpack has a limit)
for e = 1, n_events do
  local offset, ts, body = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  if e == 1 and ts <= stored_ts then shift = stored_ts + 1 - ts end
  ts = ts + shift
  last_ts = ts
  local entry = '{"o":' .. offset .. ',"t":' .. string.format('%d', ts) .. ',"e":' .. body .. '}'
  entries[e] = entry
  if offset ~= '0' then
    kept[#kept + 1] = entry
    if #kept == 500 then redis.call('RPUSH', KEYS[4], unpack(kept)); kept = {} end
  end
end
if #kept > 0 then redis.call('RPUSH', KEYS[4], unpack(kept)) end
local final_ts = math.max(last_ts, tonumber(ARGV[4]) + shift, stored_ts)
local max_events = tonumber(ARGV[6])
if max_events > 0 then redis.call('LTRIM', KEYS[4], -max_events, -1) else redis.call('DEL', KEYS[4]) end
local cutoff = final_ts - tonumber(ARGV[7])
while true do
  local first = redis.call('LINDEX', KEYS[4], 0)
  if not first or tonumber(string.match(first, '^{"o":%d+,"t":(%d+)')) >= cutoff then break end
  redis.call('LPOP', KEYS[4])
end
if redis.call('HLEN', KEYS[2]) > 0 then
  redis.call('SADD', KEYS[5], ARGV[5])
else
  redis.call('SREM', KEYS[5], ARGV[5])
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'offset', ARGV[3], 'ts', string.format('%d', final_ts), 'seq', seq)
redis.call('PERSIST', KEYS[1])
if holder then redis.call('DEL', KEYS[6]) end
if n_events > 0 then
  redis.call('PUBLISH', ARGV[8], ARGV[9] .. table.concat(entries, ',') .. ']}')
end
return {1, shift}
"""

#: KEYS: meta, items, order, history. ARGV: proposed epoch, TTL (s) of a group with no commit.
#: Returns {epoch, offset, ts, ordered ids, flat id/JSON pairs, history entries}.
LOAD = r"""
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'ts')
return {meta[1], tonumber(meta[2]) or 0, tonumber(meta[3]) or 0,
        redis.call('ZRANGE', KEYS[3], 0, -1), redis.call('HGETALL', KEYS[2]),
        redis.call('LRANGE', KEYS[4], 0, -1)}
"""

#: KEYS: meta. ARGV: proposed epoch, count, now (ms), TTL (s) of a group with no commit.
#: Returns {epoch, offset, last reserved (or current) ts}.
RESERVE = r"""
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'ts')
local ts = tonumber(meta[3]) or 0
local count = tonumber(ARGV[2])
if count > 0 then
  ts = math.max(tonumber(ARGV[3]), ts + 1) + count - 1
  redis.call('HSET', KEYS[1], 'ts', string.format('%d', ts))
end
return {meta[1], tonumber(meta[2]) or 0, ts}
"""

#: KEYS: meta, history. ARGV: epoch, offset.
#: Returns the entries after offset, or nil when the history cannot cover them.
EVENTS_AFTER = r"""
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset')
local offset = tonumber(meta[2]) or 0
local since = tonumber(ARGV[2])
if meta[1] ~= ARGV[1] or since > offset then return false end
if since == offset then return {} end
local first = redis.call('LINDEX', KEYS[2], 0)
if not first then return false end
local first_offset = tonumber(string.match(first, '^{"o":(%d+)'))
if first_offset > since + 1 then return false end
return redis.call('LRANGE', KEYS[2], since + 1 - first_offset, -1)
"""

#: A Lua function the queue scripts share: store ``value`` under ``id`` in the
#: hash ``values``, keeping the order in which ids were first stored (a
#: replaced id keeps its place) in the sorted set ``order``.
STORE_ORDERED = r"""
local function store_ordered(values, order, sequence, id, value)
  redis.call('HSET', values, id, value)
  if not redis.call('ZSCORE', order, id) then
    redis.call('ZADD', order, redis.call('INCR', sequence), id)
  end
end
"""

#: KEYS: pending, pending order, sequence. ARGV: id, JSON. A replaced id keeps its place.
QUEUE_PUT = STORE_ORDERED + r"""
store_ordered(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: pending, pending order, dead, dead order, sequence. ARGV: id, JSON.
QUEUE_DEAD = STORE_ORDERED + r"""
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
store_ordered(KEYS[3], KEYS[4], KEYS[5], ARGV[1], ARGV[2])
return 1
"""

#: KEYS: dead, dead order. ARGV: id. Returns the JSON, or nil.
QUEUE_TAKE_DEAD = r"""
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return value
"""

#: Every script by name, registered once per client.
ALL = {
    "COMMIT": COMMIT, "LOAD": LOAD, "RESERVE": RESERVE, "EVENTS_AFTER": EVENTS_AFTER,
    "QUEUE_PUT": QUEUE_PUT, "QUEUE_DEAD": QUEUE_DEAD, "QUEUE_TAKE_DEAD": QUEUE_TAKE_DEAD,
}
