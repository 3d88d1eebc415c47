-- Adjust: add a signed delta to every counter, never below zero nor past the ceiling. A zero
-- delta, or a refund to an absent counter, writes nothing: the counter stays absent.
-- KEYS[i]: counter i. ARGV[1]: the delta's sign, '+' or '-'; ARGV[2]: its size; ARGV[3]: for
-- '+', the most a counter may hold for the size to be added without passing the ceiling; then
-- per counter i, ARGV[3 + i]: when to forget it, in ms since the epoch ('' never).
-- Returns {before_1, after_1, ...}.
local sign, size, headroom = ARGV[1], ARGV[2], ARGV[3]

local out = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  local before = value or '0'
  local after = before
  local wrote = false
  if sign == '+' and size ~= '0' then
    if le(before, headroom) then
      redis.call('INCRBY', KEYS[i], size)
    else
      redis.call('SET', KEYS[i], CEILING, 'KEEPTTL')
    end
    wrote = true
  elseif sign == '-' and value then
    if le(size, value) then
      redis.call('DECRBY', KEYS[i], size)
    else
      redis.call('SET', KEYS[i], '0', 'KEEPTTL')
    end
    wrote = true
  end
  if wrote then
    after = redis.call('GET', KEYS[i])
    local at = ARGV[3 + i]
    if at ~= '' then redis.call('PEXPIREAT', KEYS[i], at) end
  end
  out[#out + 1] = before
  out[#out + 1] = after
end
return out
