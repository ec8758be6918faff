-- Exact sliding log: port of step.ts whose cost in Redis is O(log n) per decision, not O(n).
--
-- State: a list, oldest first, of entries '<stamp µs>:<units>:<total>', <total> being the running
-- sum of the units pushed to the list up to and including that entry. Stamps never go back (see
-- step.ts), so:
-- - the first live entry (stamp + W > now) is found by a binary search on stamps, usually at
--   the head at once;
-- - the live units are total(last) - total(first live) + units(first live): two reads, no scan;
-- - the unit that must expire before a refused request fits is found by a binary search on
--   totals;
-- - an admitted decision trims the expired head (each entry is removed once: amortised O(1)).
-- Each probe is one LINDEX, cached for the decision.

local function slidingLogParse(raw)
  local t, n, total = string.match(raw, '^(%-?%d+):(%d+):(%d+)$')
  if t == nil then return nil end
  return { tonumber(t), tonumber(n), tonumber(total) }
end

local function slidingLogEntry(st, i)
  local e = st.cache[i]
  if e == nil then
    e = slidingLogParse(redis.call('LINDEX', st.key, i))
    st.cache[i] = e
  end
  return e
end

-- The first index in [lo, hi) whose entry passes `test` (false then true along the list); hi if none.
local function slidingLogSearch(st, lo, hi, test)
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if test(slidingLogEntry(st, mid)) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- Lists written before the running totals ('<stamp>:<units>' entries) are rewritten once, in place,
-- keeping their expiry, so keys alive across an upgrade keep deciding exactly.
local function slidingLogUpgrade(key)
  local raw = redis.call('LRANGE', key, 0, -1)
  local ttl = redis.call('PTTL', key)
  local out, total = {}, 0
  for i = 1, #raw do
    local t, n = string.match(raw[i], '^(%-?%d+):(%d+)$')
    total = total + tonumber(n)
    out[i] = string.format('%s:%s:%d', t, n, total)
  end
  redis.call('DEL', key)
  for i = 1, #out, 1000 do
    redis.call('RPUSH', key, unpack(out, i, math.min(i + 999, #out)))
  end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end

ALGORITHMS['sliding-log'] = {
  read = function(key)
    local n = redis.call('LLEN', key)
    local st = { key = key, n = n, cache = {} }
    if n > 0 then
      local head = slidingLogParse(redis.call('LINDEX', key, 0))
      if head == nil then
        slidingLogUpgrade(key)
        head = slidingLogParse(redis.call('LINDEX', key, 0))
      end
      st.cache[0] = head
    end
    return st
  end,

  step = function(sp, st, now, cost)
    local limit, W = sp[2], sp[3]
    local n = st.n
    local first, count, lastE = n, 0, nil
    if n > 0 then
      lastE = slidingLogEntry(st, n - 1)
      if slidingLogEntry(st, 0)[1] + W > now then
        first = 0
      else
        first = slidingLogSearch(st, 1, n, function(e) return e[1] + W > now end)
      end
      if first < n then
        local f = slidingLogEntry(st, first)
        count = lastE[3] - f[3] + f[2]
      end
    end
    if count + cost <= limit then
      local last = nil
      if lastE ~= nil then last = lastE[1] end
      -- After a backward clock step, new units are stamped no earlier than the newest entry, so the
      -- log stays sorted.
      local stamp = now
      if last ~= nil and last > now then stamp = last end
      local newest = last
      if cost > 0 then newest = stamp end
      local after = count + cost
      local reset = 0
      if after > 0 and newest ~= nil then reset = newest + W - now end
      -- Totals restart from 0 when every entry has expired (they only need to be consistent
      -- within one list).
      local total = 0
      if first < n then total = lastE[3] end
      return true, limit - after, reset, 0, { first, stamp, total }
    end
    local retry = INF
    if cost <= limit then
      -- Refused with cost <= limit means live units exist. The (count + cost - limit)-th oldest
      -- live unit must expire first.
      local f = slidingLogEntry(st, first)
      local before = f[3] - f[2]
      local j = count + cost - limit
      local i = slidingLogSearch(st, first, n, function(e) return e[3] - before >= j end)
      retry = slidingLogEntry(st, i)[1] + W - now
    end
    local reset = 0
    if n > 0 then reset = lastE[1] + W - now end
    if reset < 0 then reset = 0 end
    return false, limit - count, reset, retry, nil
  end,

  commit = function(sp, key, st, now, cost, info)
    local first, stamp, total = info[1], info[2], info[3]
    if first > 0 then redis.call('LTRIM', key, first, -1) end
    redis.call('RPUSH', key, string.format('%d:%d:%d', stamp, cost, total + cost))
    redis.call('PEXPIRE', key, pttl(stamp + sp[3] - now))
  end,
}
