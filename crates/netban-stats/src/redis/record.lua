-- netban stats: count one host's batch of bans exactly once (see redis/write.rs).
-- KEYS[1] mark hash (host -> last id), KEYS[2] seen hash (host -> last ban time),
-- KEYS[3] asorg hash (asn -> organisation), KEYS[4] days zset (day -> day number),
-- KEYS[5] the rolling window's last day, KEYS[6] / KEYS[7] / KEYS[8] the rolling 30-day
-- offenders / networks / asns sorted sets (roll.lua), then 8 keys per day of the batch: counts, asns, hosts, targets (HLL), offenders, tinfo,
-- networks, ninfo.
-- ARGV[1] host, ARGV[2] number of days, then per day: name, number, expire-at (unix s),
-- then per event (ascending id): id, at, day index (1-based), target, jail, country, asn
-- ('' when unknown), org, network.
-- Events at or below the host's mark were counted before and are skipped: a retried batch
-- changes nothing. The script runs atomically, so counts and the mark move together.
local host = ARGV[1]
local ndays = tonumber(ARGV[2])
local top = tonumber(redis.call('HGET', KEYS[1], host) or '0')
local through = tonumber(redis.call('GET', KEYS[5]) or '-1')
local last_at = tonumber(redis.call('HGET', KEYS[2], host) or '0')
local days = {}
local i = 3
for d = 1, ndays do
  days[d] = { name = ARGV[i], num = ARGV[i + 1], exp = ARGV[i + 2], used = false }
  i = i + 3
end
local function newer(old, at)
  if not old then return true end
  local t = tonumber(string.match(old, '^(%-?%d+)'))
  return t == nil or t <= at
end
local applied, dups = 0, 0
while i + 8 <= #ARGV do
  local id, at, di = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local target, jail, country = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local asn, org, network = ARGV[i + 6], ARGV[i + 7], ARGV[i + 8]
  i = i + 9
  if id <= top then
    dups = dups + 1
  else
    top = id
    applied = applied + 1
    local k = 8 + (di - 1) * 8
    local asnkey = 'unknown'
    if asn ~= '' then asnkey = 'AS' .. asn end
    redis.call('HINCRBY', KEYS[k + 1], 't', 1)
    redis.call('HINCRBY', KEYS[k + 1], 'c:' .. country, 1)
    redis.call('HINCRBY', KEYS[k + 1], 'j:' .. jail, 1)
    redis.call('HINCRBY', KEYS[k + 2], asnkey, 1)
    redis.call('HINCRBY', KEYS[k + 3], 'h:' .. host, 1)
    redis.call('HINCRBY', KEYS[k + 3], 'hj:' .. host .. '\t' .. jail, 1)
    redis.call('PFADD', KEYS[k + 4], target)
    redis.call('HINCRBY', KEYS[k + 5], target, 1)
    if newer(redis.call('HGET', KEYS[k + 6], target), at) then
      redis.call('HSET', KEYS[k + 6], target, at .. '\t' .. country .. '\t' .. asnkey .. '\t' .. jail)
    end
    redis.call('HINCRBY', KEYS[k + 7], network, 1)
    if newer(redis.call('HGET', KEYS[k + 8], network), at) then
      redis.call('HSET', KEYS[k + 8], network, at .. '\t' .. country .. '\t' .. asnkey)
    end
    local num = tonumber(days[di].num)
    if through >= 0 and num <= through and num > through - 30 then
      redis.call('ZINCRBY', KEYS[6], 1, target)
      redis.call('ZINCRBY', KEYS[7], 1, network)
      redis.call('ZINCRBY', KEYS[8], 1, asnkey)
    end
    if asn ~= '' and org ~= '' then redis.call('HSET', KEYS[3], asn, org) end
    if at > last_at then last_at = at end
    days[di].used = true
  end
end
for d = 1, ndays do
  if days[d].used then
    local k = 8 + (d - 1) * 8
    for j = 1, 8 do redis.call('EXPIREAT', KEYS[k + j], days[d].exp) end
    redis.call('ZADD', KEYS[4], days[d].num, days[d].name)
  end
end
if applied > 0 then
  redis.call('HSET', KEYS[1], host, top)
  redis.call('HSET', KEYS[2], host, last_at)
end
return { applied, dups }
