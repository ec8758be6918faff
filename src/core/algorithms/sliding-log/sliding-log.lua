-- Exact sliding log: port of step.ts whose cost in Redis is O(log n) per decision, not O(n).
--
-- State: a list, oldest first, of 24-byte entries struct.pack('<ddd', stamp µs, units, total),
-- <total> being the running sum of the units pushed to the list up to and including that entry
-- (binary: unpacking costs a twentieth of parsing the same numbers from text; doubles hold every
-- µs stamp and count exactly). Stamps never go back (see step.ts), so:
-- - the first live entry (stamp + W > now) is found by a galloping search on stamps from the head
--   (O(log d) probes for d expired entries; d is 0 or 1 on a busy key, since admissions trim);
-- - the live units are total(last) - total(first live) + units(first live): two reads, no scan;
-- - the unit that must expire before a refused request fits is found the same way on totals
--   (the first live entry itself for a refused cost of 1 at the limit);
-- - an admitted decision trims the expired head (each entry is removed once: amortised O(1)).
-- Each probe is one LINDEX, cached for the decision: a decision on a busy key reads the head and
-- the last entry, nothing else.

local SLIDING_LOG_ENTRY = '<ddd'

-- A decision's view of the log is one table: st[i] caches the raw entry i (0-based) as read,
-- st.n the length once asked. Entries are unpacked where used (unpacking is cheaper than a table).
local function slidingLogRaw(st, i)
  local raw = st[i]
  if raw == nil then
    raw = redis.call('LINDEX', st.key, tostring(i))
    st[i] = raw
  end
  return raw
end

local function slidingLogStamp(st, i)
  return (struct.unpack(SLIDING_LOG_ENTRY, slidingLogRaw(st, i)))
end

local function slidingLogTotals(st, i)
  local _, units, total = struct.unpack(SLIDING_LOG_ENTRY, slidingLogRaw(st, i))
  return units, total
end

-- The list's length, asked only when a search goes past its first probe.
local function slidingLogLength(st)
  if st.n == nil then st.n = redis.call('LLEN', st.key) end
  return st.n
end

-- The first index >= from whose entry passes `test(i)` (false then true along the list), the
-- length if none: probes from, from + 1, from + 2, from + 4, ... then a binary search in the
-- last gap.
local function slidingLogSearch(st, from, test)
  if test(from) then return from end
  local n = slidingLogLength(st)
  local lo, hi, step = from + 1, from + 1, 1
  while hi < n and not test(hi) do
    lo = hi + 1
    step = step * 2
    hi = from + step
  end
  if hi > n then hi = n end
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if test(mid) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- Lists written by earlier versions (text entries '<stamp>:<units>') are rewritten once, in
-- place, keeping their expiry, so keys alive across an upgrade keep deciding exactly.
local function slidingLogUpgrade(key)
  local raw = redis.call('LRANGE', key, 0, -1)
  local ttl = redis.call('PTTL', key)
  local out, total = {}, 0
  for i = 1, #raw do
    local t, n = string.match(raw[i], '^(%-?%d+):(%d+)$')
    total = total + tonumber(n)
    out[i] = struct.pack(SLIDING_LOG_ENTRY, tonumber(t), tonumber(n), total)
  end
  redis.call('DEL', key)
  for i = 1, #out, 1000 do
    redis.call('RPUSH', key, unpack(out, i, math.min(i + 999, #out)))
  end
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end

-- Views read during this script run, by key. A batch often holds many decisions on one hot key
-- (most of them refusals, which write nothing): they share one view until a commit changes the
-- list. Nothing else can write the key while the script runs.
local slidingLogViews = {}

ALGORITHMS['sliding-log'] = {
  -- Reads the head and the last entry; the step reads more only when it must search. Indexes go
  -- to redis.call as strings: Lua's number-to-string conversion costs as much as the call.
  read = function(key)
    local view = slidingLogViews[key]
    if view ~= nil then return view end
    local head = redis.call('LINDEX', key, '0')
    if not head then
      view = { key = key, n = 0 }
      slidingLogViews[key] = view
      return view
    end
    if string.match(head, '^%-?%d+:%d+$') then
      slidingLogUpgrade(key)
      head = redis.call('LINDEX', key, '0')
    end
    local st = { key = key }
    st[0] = head
    st.lastTs, st.lastUnits, st.lastTotal = struct.unpack(SLIDING_LOG_ENTRY, redis.call('LINDEX', key, '-1'))
    slidingLogViews[key] = st
    return st
  end,

  step = function(sp, st, now, cost)
    local limit, W = sp[2], sp[3]
    local last = st.lastTs
    -- first = the first live entry's index, or nil when every entry has expired (or none exists).
    local first, count = nil, 0
    if last ~= nil and last + W > now then
      first = slidingLogSearch(st, 0, function(i) return slidingLogStamp(st, i) + W > now end)
      local units, total = slidingLogTotals(st, first)
      count = st.lastTotal - total + units
    end
    if count + cost <= limit then
      -- After a backward clock step, new units are stamped no earlier than the newest entry, so the
      -- log stays sorted.
      local stamp = now
      if last ~= nil and last > now then stamp = last end
      local newest = last
      if cost > 0 then newest = stamp end
      local after = count + cost
      local reset = 0
      if after > 0 and newest ~= nil then reset = newest + W - now end
      -- Entries before `first` are trimmed on commit; with nothing live, the whole list is (and
      -- totals restart from 0: they only need to be consistent within one list).
      local total, trim = 0, -1
      if first ~= nil then
        total = st.lastTotal
        trim = first
      end
      return true, limit - after, reset, 0, { trim, stamp, total }
    end
    local retry = INF
    if cost <= limit then
      -- Refused with cost <= limit means live units exist. The (count + cost - limit)-th oldest
      -- live unit must expire first.
      local units, total = slidingLogTotals(st, first)
      local before = total - units
      local j = count + cost - limit
      local i = slidingLogSearch(st, first, function(k)
        local _, t = slidingLogTotals(st, k)
        return t - before >= j
      end)
      retry = slidingLogStamp(st, i) + W - now
    end
    local reset = 0
    if last ~= nil then reset = last + W - now end
    if reset < 0 then reset = 0 end
    -- A count beyond the limit is an overdraft left by a charge: nothing remains.
    local rem = limit - count
    if count > limit then rem = 0 end
    return false, rem, reset, retry, nil
  end,

  -- Port of slidingLogCharge: the step with the limit lifted, at most limit + 1 units stamped as
  -- one entry (the second result: the units commit pushes). The memory store also drops all but
  -- the newest limit + 1 units (one number each); here older entries cost little and are kept:
  -- both decide the same (see step.ts).
  charge = function(sp, st, now, cost)
    local units = cost
    if units > sp[2] + 1 then units = sp[2] + 1 end
    local _, _, _, _, info = ALGORITHMS['sliding-log'].step(liftLimit(sp), st, now, units)
    return info, units
  end,

  commit = function(sp, key, st, now, cost, info)
    slidingLogViews[key] = nil
    local trim, stamp, total = info[1], info[2], info[3]
    if trim < 0 then
      if st.lastTs ~= nil then redis.call('DEL', key) end
    elseif trim > 0 then
      redis.call('LTRIM', key, tostring(trim), '-1')
    end
    redis.call('RPUSH', key, struct.pack(SLIDING_LOG_ENTRY, stamp, cost, total + cost))
    redis.call('PEXPIRE', key, pttl(stamp + sp[3] - now))
  end,
}
