-- Reserve: check every rule of every key, then take from all of them, or from none.
-- KEYS[i]: one rule's key. ARGV[1]: the lease id; ARGV[2]: the lease in microseconds;
-- then per rule i, from ARGV[3 + 3 * (i - 1)]: kind ('r' rate, 'c' concurrency), limit, cost.
-- A rate key is a hash {l = level, t = microseconds}: a leaky bucket draining `limit` units
-- per minute (src/bucket.rs does the same arithmetic for the memory backend). A concurrency
-- key is a sorted set of lease ids scored by their expiry.
-- Returns {1, remaining_1, reset_us_1, ...} (0, 0 for concurrency rules), or
-- {0, i, retry} where retry is microseconds, -1 (never) or -2 (when a slot frees).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = 60000000
local epsilon = 1e-9
local lease_id = ARGV[1]
local lease = tonumber(ARGV[2])
local levels = {}

for i = 1, #KEYS do
  local base = 3 * i
  local kind, limit, cost = ARGV[base], tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if kind == 'r' then
    if cost > limit then return {0, i, -1} end
    local s = redis.call('HMGET', KEYS[i], 'l', 't')
    local level = tonumber(s[1]) or 0
    local at = tonumber(s[2]) or now
    if now > at then level = math.max(0, level - (now - at) * limit / window) end
    local over = level + cost - limit
    if over > epsilon then return {0, i, math.ceil(over * window / limit)} end
    levels[i] = level
  else
    if limit == 0 then return {0, i, -1} end
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) >= limit then return {0, i, -2} end
  end
end

local out = {1}
for i = 1, #KEYS do
  local base = 3 * i
  local limit, cost = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2])
  if ARGV[base] == 'r' then
    local level = levels[i] + cost
    local drain = 0
    if limit > 0 then drain = math.ceil(level * window / limit) end
    redis.call('HSET', KEYS[i], 'l', string.format('%.17g', level), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(drain / 1000) + 1000)
    out[#out + 1] = math.max(0, math.floor(limit - level + epsilon))
    out[#out + 1] = drain
  else
    redis.call('ZADD', KEYS[i], now + lease, lease_id)
    redis.call('PEXPIRE', KEYS[i], math.ceil(lease / 1000) + 1000)
    out[#out + 1] = 0
    out[#out + 1] = 0
  end
end
return out
