-- Settle: charge or refund the token keys by the difference between the actual tokens and
-- the estimate, and free this reservation's lease in the concurrency keys.
-- KEYS[i]: one rule's key. ARGV[1]: the lease id; ARGV[2]: tokens actual - estimate;
-- then per rule i, from ARGV[3 + 2 * (i - 1)]: kind ('t' tokens, 'c' concurrency), limit.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = 60000000
local lease_id = ARGV[1]
local delta = tonumber(ARGV[2])

for i = 1, #KEYS do
  local base = 1 + 2 * i
  local kind, limit = ARGV[base], tonumber(ARGV[base + 1])
  if kind == 't' then
    local s = redis.call('HMGET', KEYS[i], 'l', 't')
    local level = tonumber(s[1]) or 0
    local at = tonumber(s[2]) or now
    if now > at and limit > 0 then level = math.max(0, level - (now - at) * limit / window) end
    level = math.max(0, level + delta)
    local drain = 0
    if limit > 0 then drain = math.ceil(level * window / limit) end
    redis.call('HSET', KEYS[i], 'l', string.format('%.17g', level), 't', string.format('%d', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(drain / 1000) + 1000)
  else
    redis.call('ZREM', KEYS[i], lease_id)
  end
end
return 1
