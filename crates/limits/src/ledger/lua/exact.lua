-- Exact arithmetic on counters, prepended to the scripts that need it. A counter is an integer
-- from 0 to the ceiling (2^63 - 1, Redis's largest) and travels as a decimal string without
-- leading zeros, Redis's own form: Lua's numbers are doubles, exact only up to 2^53, so a
-- counter is never turned into one whole. Sums are Redis's (INCRBY, DECRBY); Lua only compares.
local CEILING = '9223372036854775807'

-- a <= b, for two counters: by length, then by their high digits and their low nine digits,
-- each part small enough to be exact as a double.
local function le(a, b)
  if #a ~= #b then return #a < #b end
  local cut = #a - 9
  if cut <= 0 then return tonumber(a) <= tonumber(b) end
  local ha, hb = tonumber(string.sub(a, 1, cut)), tonumber(string.sub(b, 1, cut))
  if ha ~= hb then return ha < hb end
  return tonumber(string.sub(a, cut + 1)) <= tonumber(string.sub(b, cut + 1))
end

