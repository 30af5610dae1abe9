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

#: The commit of one group, as a Lua function the COMMIT script calls once per group.
#: ``k``: the index of the group's first key in KEYS (meta, items, order, history, groups, turn);
#: ``i``: the index of its first argument in ARGV: epoch, expected offset, new offset, commit
#: timestamp, group id, max events, max age ms, group head (``{"s":stream,"r":group,"p":epoch,"v":[``),
#: n writes, (id, JSON or "" to delete, "1" to move it last or "") * n, n events,
#: (offset or 0, proposed ts, body) * n.
#: Returns the reply and the index of the next group's first argument; appends what it
#: publishes to ``published``. The reply is {1, shift}; {0, stored epoch or "", stored
#: offset, the history entries after the expected offset (or nil when the history cannot
#: cover them)} when the batch lost a race; or {2, ms} when another process holds the
#: group's turn for that long.
COMMIT_GROUP = r"""
local function commit_group(k, i, origin, published)
  local n_writes = tonumber(ARGV[i + 8])
  local first_event = i + 9 + 3 * n_writes
  local n_events = tonumber(ARGV[first_event])
  local next_group = first_event + 1 + 3 * n_events
  local meta_key, items_key, order_key, hist_key = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local epoch, since = ARGV[i], tonumber(ARGV[i + 1])
  local meta = redis.call('HMGET', meta_key, 'epoch', 'offset', 'ts', 'seq')
  local stored_epoch = meta[1]
  local stored_offset = tonumber(meta[2]) or 0
  local stored_ts = tonumber(meta[3]) or 0
  local seq = tonumber(meta[4]) or 0
  local holder = redis.call('GET', KEYS[k + 6])
  if holder and holder ~= origin then
    -- Another process lost the last races and holds the turn: wait for it.
    return {2, redis.call('PTTL', KEYS[k + 6])}, next_group
  end
  if stored_offset ~= since or (stored_epoch and stored_epoch ~= epoch) then
    -- Lost the race: take the turn (if free), so the next attempt cannot be
    -- overtaken again and starve.
    redis.call('SET', KEYS[k + 6], origin, 'NX', 'PX', 50)
    -- Hand back what the caller missed, so it can apply its calls again
    -- without another round trip (and so without starving).
    local missed = false
    if stored_epoch == epoch and stored_offset > since then
      local first = redis.call('LINDEX', hist_key, 0)
      if first and tonumber(string.match(first, '^{"o":(%d+)')) <= since + 1 then
        missed = redis.call('LRANGE', hist_key, since + 1 - tonumber(string.match(first, '^{"o":(%d+)')), -1)
      end
    end
    return {0, stored_epoch or '', stored_offset, missed}, next_group
  end
  local w = i + 9
  for _ = 1, n_writes do
    local id, value, moved = ARGV[w], ARGV[w + 1], ARGV[w + 2]
    w = w + 3
    if value == '' then
      redis.call('HDEL', items_key, id)
      redis.call('ZREM', order_key, id)
    else
      if moved ~= '' then redis.call('ZREM', order_key, id) end
      redis.call('HSET', items_key, id, value)
      if not redis.call('ZSCORE', order_key, id) then
        seq = seq + 1
        redis.call('ZADD', order_key, seq, id)
      end
    end
  end
  local e = first_event + 1
  local shift = 0
  local last_ts = stored_ts
  local entries = {}
  local kept = {}  -- history entries, pushed 500 at a time (Lua's unpack has a limit)
  for n = 1, n_events do
    local offset, ts, body = ARGV[e], tonumber(ARGV[e + 1]), ARGV[e + 2]
    e = e + 3
    if n == 1 and ts <= stored_ts then shift = stored_ts + 1 - ts end
    ts = ts + shift
    last_ts = ts
    local entry = '{"o":' .. offset .. ',"t":' .. string.format('%d', ts) .. ',"e":' .. body .. '}'
    entries[n] = entry
    if offset ~= '0' then
      kept[#kept + 1] = entry
      if #kept == 500 then redis.call('RPUSH', hist_key, unpack(kept)); kept = {} end
    end
  end
  if #kept > 0 then redis.call('RPUSH', hist_key, unpack(kept)) end
  local final_ts = math.max(last_ts, tonumber(ARGV[i + 3]) + shift, stored_ts)
  local max_events = tonumber(ARGV[i + 5])
  if max_events > 0 then redis.call('LTRIM', hist_key, -max_events, -1) else redis.call('DEL', hist_key) end
  local cutoff = final_ts - tonumber(ARGV[i + 6])
  while true do
    local first = redis.call('LINDEX', hist_key, 0)
    if not first or tonumber(string.match(first, '^{"o":%d+,"t":(%d+)')) >= cutoff then break end
    redis.call('LPOP', hist_key)
  end
  if redis.call('HLEN', items_key) > 0 then
    redis.call('SADD', KEYS[k + 5], ARGV[i + 4])
  else
    redis.call('SREM', KEYS[k + 5], ARGV[i + 4])
  end
  redis.call('HSET', meta_key, 'epoch', epoch, 'offset', ARGV[i + 2], 'ts', string.format('%d', final_ts), 'seq', seq)
  redis.call('PERSIST', meta_key)
  if holder then redis.call('DEL', KEYS[k + 6]) end
  if n_events > 0 then
    published[#published + 1] = ARGV[i + 7] .. table.concat(entries, ',') .. ']}'
  end
  return {1, shift}, next_group
end
"""

#: KEYS: six per group, as ``commit_group`` takes them.
#: ARGV: origin, publish command (PUBLISH, or SPUBLISH on a cluster), channel, message head
#: (``{"g":origin,"b":[``), n groups, then each group's arguments as ``commit_group`` takes them.
#: Returns each group's reply, in order. Each group commits or is refused on its own; what
#: the committed ones publish goes out as one message.
COMMIT = COMMIT_GROUP + r"""
local origin = ARGV[1]
local replies = {}
local published = {}
local i = 6
for g = 1, tonumber(ARGV[5]) do
  replies[g], i = commit_group((g - 1) * 6, i, origin, published)
end
if #published > 0 then
  redis.call(ARGV[2], ARGV[3], ARGV[4] .. table.concat(published, ',') .. ']}')
end
return replies
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
