-- netban stats: sum the fields of several hashes (one per day of a window) and return the
-- members with the largest sums, largest first (ties by member), as a flat array
-- {member, sum, member, sum, ...}. ARGV[1] is how many to return; 0 returns them all.
-- Summing here sends the client the head of the list, not every day's every member; it is
-- cheaper than ZUNIONSTORE, which builds a sorted set of every member first.
local limit = tonumber(ARGV[1])
local sums = {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    local m = flat[i]
    sums[m] = (sums[m] or 0) + tonumber(flat[i + 1])
  end
end
local function before(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end
local rows = {}
if limit <= 0 then
  for m, n in pairs(sums) do rows[#rows + 1] = { m, n } end
  table.sort(rows, before)
else
  -- Keep the best `limit` in order, by insertion: limit is small (at most 100).
  for m, n in pairs(sums) do
    local row = { m, n }
    local len = #rows
    if len < limit or before(row, rows[len]) then
      local pos = len + 1
      while pos > 1 and before(row, rows[pos - 1]) do
        rows[pos] = rows[pos - 1]
        pos = pos - 1
      end
      rows[pos] = row
      if #rows > limit then rows[#rows] = nil end
    end
  end
end
local out = {}
for _, r in ipairs(rows) do
  out[#out + 1] = r[1]
  out[#out + 1] = string.format('%d', r[2])
end
return out
