-- Spent: every counter's value, '0' when absent. KEYS: the counters (at least one).
-- Returns {value_1, ...}.
local values = redis.call('MGET', unpack(KEYS))
for i = 1, #KEYS do values[i] = values[i] or '0' end
return values
