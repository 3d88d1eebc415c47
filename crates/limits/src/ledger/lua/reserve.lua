-- Reserve: add the amount to every counter if each counter with a limit stays at or under it,
-- or to none, naming the first counter (in the order given) that refuses.
-- KEYS[i]: counter i. ARGV[1]: the amount; ARGV[2]: the most a counter may hold for the amount
-- to be added without passing the ceiling ('-': the amount alone passes it); then per counter
-- i, ARGV[2 * i + 1]: the most it may hold for the amount to fit under its limit ('' for a
-- soft counter, '-' when the amount alone exceeds the limit), and ARGV[2 * i + 2]: when to
-- forget it, in ms since the epoch ('' never).
-- Returns {'1', before_1, after_1, ...}, or {'0', i, before_i} for the counter that refused.
local amount, headroom = ARGV[1], ARGV[2]

for i = 1, #KEYS do
  local room = ARGV[2 * i + 1]
  if room ~= '' then
    local value = redis.call('GET', KEYS[i]) or '0'
    if room == '-' or not le(value, room) then return {'0', tostring(i), value} end
  end
end

local out = {'1'}
for i = 1, #KEYS do
  local at = ARGV[2 * i + 2]
  -- Read again rather than reuse the check's value: a counter given twice took its first share.
  local before = redis.call('GET', KEYS[i]) or '0'
  if headroom ~= '-' and le(before, headroom) then
    redis.call('INCRBY', KEYS[i], amount)
  else
    -- Saturate rather than overflow (INCRBY would fail half-way through the counters).
    redis.call('SET', KEYS[i], CEILING, 'KEEPTTL')
  end
  out[#out + 1] = before
  out[#out + 1] = redis.call('GET', KEYS[i])
  -- After reading the value: an expiry already past deletes the key at once.
  if at ~= '' then redis.call('PEXPIREAT', KEYS[i], at) end
end
return out
