-- Seed: set the counter unless it exists.
-- KEYS[1]: the counter. ARGV[1]: the value (at most the ceiling); ARGV[2]: when to forget it,
-- in ms since the epoch ('' never). Returns 1 when set, 0 when the counter existed.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
