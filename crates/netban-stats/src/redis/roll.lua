-- netban stats: the rolling 30-day lists (see redis/mod.rs): per list (1 offenders,
-- 2 networks, 3 asns) a sorted set holding the sums of the 30 days ending ARGV[1]. Moving
-- the window by less than 30 days subtracts the days that leave it; a first use or a longer
-- jump rebuilds it from the window's days. Bans of days inside the window are added by
-- record.lua as they are recorded. Returns {through, member, sum, ...}: the head of list
-- ARGV[2] (0: none) when the window ends on ARGV[1], else just `through`.
-- KEYS[1] through (day number); then per list, 61 keys: the sorted set, the 30 window days'
-- hashes (oldest first), the hashes of the 30 days before the window (oldest first).
-- ARGV[1] the window's last day number, ARGV[2] the list to return, ARGV[3] how many (-1 all).
local to = tonumber(ARGV[1])
local through = tonumber(redis.call('GET', KEYS[1]) or '-1')
local function add(hash, zset, sign)
  local flat = redis.call('HGETALL', hash)
  for j = 1, #flat, 2 do redis.call('ZINCRBY', zset, sign * tonumber(flat[j + 1]), flat[j]) end
end
if to > through then
  for l = 0, 2 do
    local base = 1 + l * 61
    local zset = KEYS[base + 1]
    if through < 0 or to - through >= 30 then
      redis.call('DEL', zset)
      for i = 1, 30 do add(KEYS[base + 1 + i], zset, 1) end
    else
      -- Leaving: days through-29 .. to-30; day d is entry d - (to - 59) + 1 of the "before" keys.
      for d = through - 29, to - 30 do
        add(KEYS[base + 31 + d - (to - 59) + 1], zset, -1)
      end
      redis.call('ZREMRANGEBYSCORE', zset, '-inf', 0)
    end
  end
  redis.call('SET', KEYS[1], to)
  through = to
end
local out = { tostring(through) }
local list = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
if list > 0 and through == to and limit ~= 0 then
  local stop = limit - 1
  if limit < 0 then stop = -1 end
  local head = redis.call('ZREVRANGE', KEYS[1 + (list - 1) * 61 + 1], 0, stop, 'WITHSCORES')
  for _, v in ipairs(head) do out[#out + 1] = v end
end
return out
