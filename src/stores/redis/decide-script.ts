/**
 * The Lua script that decides a batch of rate-limit decisions in one call.
 *
 * It is a line-by-line port of src/core/algorithms/{gcra,fixed-window,sliding-window,sliding-log}.ts:
 * the same integer-microsecond arithmetic in the same operation order, so that given the same time
 * a decision is identical field by field to the memory store's (Lua numbers are IEEE doubles like
 * JavaScript's). Keep the two in step when either changes.
 *
 * ARGV layout (all strings):
 *   1  mode: 'T' = read time from Redis TIME once for the batch; 'C' = each decision carries `now`
 *   2  TTL floor in ms, a minimum for every expiry set (0 in TIME mode; see redis-store.ts)
 *   3  S = number of rule specs, then S x 5 fields: algo code (g|f|w|l), limit (burst for gcra),
 *      windowUs, intervalUs (gcra T), tauUs (gcra)
 *   .  R = number of rule sets, then for each: n, then n spec indexes (1-based)
 *   .  then per decision: [set index, only when R > 1], x, [now µs in mode 'C'], where x is the
 *      cost, or -(cost + 1) for a peek (one argument instead of two: this is the hot path)
 * KEYS: per decision, one state key per rule of its set, in order.
 *
 * Reply: a flat array of integers, 3 per rule per decision: remaining, resetUs, retryAfterUs.
 * `allowed` is `retryAfterUs == 0` (every refusal has a positive wait or -1). retryAfterUs is -1
 * for "never" (JavaScript Infinity; Lua cannot send an infinite number through an integer reply).
 * A decision that failed (Redis error while reading its state, e.g. a key of the wrong type) has
 * -2 as its first retryAfterUs; the error messages, in order, follow all the numbers as strings.
 *
 * Expiry: every state key expires when its state stops mattering, so memory stays bounded. Resetting
 * the TTL on every write costs Redis as much as the decision itself, so window states keep their
 * TTL (SET KEEPTTL) while the window is unchanged (the expiry set when the window began is still
 * right), and a GCRA key's expiry is set to the end of the tau-long time grid cell its TAT is in,
 * again only when the TAT moves to a new cell: a GCRA key thus lives at most 2 x tau past its
 * last write instead of exactly until its TAT.
 *
 * Each decision is atomic on its own: its rules commit only when all admit. A refused decision
 * reports its admitting rules as a cost-0 peek, exactly as MemoryStore does.
 */
export const DECIDE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local INF = -1
local floor = math.floor
local mode = ARGV[1]
local ttlFloor = tonumber(ARGV[2])
local nspecs = tonumber(ARGV[3])
local a = 4
local specs = {}
for i = 1, nspecs do
  specs[i] = { ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]) }
  a = a + 5
end
local nsets = tonumber(ARGV[a])
a = a + 1
local sets = {}
for i = 1, nsets do
  local n = tonumber(ARGV[a])
  a = a + 1
  local s = {}
  for j = 1, n do
    s[j] = specs[tonumber(ARGV[a])]
    a = a + 1
  end
  sets[i] = s
end

local function pttl(lifeUs)
  local ms = floor(lifeUs / 1000) + 1
  if ms < ttlFloor then ms = ttlFloor end
  if ms < 1 then ms = 1 end
  return ms
end

-- State readers: nil for a fresh key.
local function readState(sp, key)
  local algo = sp[1]
  if algo == 'l' then
    local raw = redis.call('LRANGE', key, 0, -1)
    local ts, ns = {}, {}
    for i = 1, #raw do
      local t, n = string.match(raw[i], '^(%-?%d+):(%d+)$')
      ts[i] = tonumber(t)
      ns[i] = tonumber(n)
    end
    return { ts, ns }
  end
  local raw = redis.call('GET', key)
  if not raw then return nil end
  if algo == 'g' then return tonumber(raw) end
  if algo == 'f' then
    local s, c = string.match(raw, '^(%-?%d+):(%d+)$')
    return { tonumber(s), tonumber(c) }
  end
  local s, p, c = string.match(raw, '^(%-?%d+):(%d+):(%d+)$')
  return { tonumber(s), tonumber(p), tonumber(c) }
end

-- Each step returns allowed, remaining, resetUs, retryUs, commit-info (only when allowed).
local function gcra(sp, tat, now, cost)
  local burst, T, tau = sp[2], sp[4], sp[5]
  local base = now
  if tat ~= nil and tat >= now then base = tat end
  local newTat = base + T * cost
  local allowAt = newTat - tau
  if allowAt <= now then
    return true, floor((now + tau - newTat) / T), newTat - now, 0, newTat
  end
  local rem = floor((now + tau - base) / T)
  if rem < 0 then rem = 0 end
  local retry = allowAt - now
  if cost > burst then retry = INF end
  return false, rem, base - now, retry, nil
end

local function fixedWindow(sp, st, now, cost)
  local limit, W = sp[2], sp[3]
  local start = floor(now / W) * W
  -- A clock that stepped back into an earlier window keeps counting in the stored (later) window.
  if st ~= nil and st[1] > start then start = st[1] end
  local count = 0
  if st ~= nil and st[1] == start then count = st[2] end
  local reset = start + W - now
  if count + cost <= limit then
    local after = count + cost
    local r = reset
    if after == 0 then r = 0 end
    return true, limit - after, r, 0, { start, after }
  end
  local retry = reset
  if cost > limit then retry = INF end
  return false, limit - count, reset, retry, nil
end

-- The first elapsed time e in [0, W] at which cost fits (port of firstFit in sliding-window.ts): the
-- admission test with the same floating-point operations in the same order, stepped from the
-- closed-form guess, which rounding can put 1 µs off either way.
local function firstFit(prev, curr, cost, W, limit, guess)
  local e = guess
  if e < 0 then e = 0 elseif e > W then e = W end
  while e > 0 do
    local d = e - 1
    if (prev * (W - d)) / W + curr + cost <= limit then e = d else break end
  end
  while e < W and not ((prev * (W - e)) / W + curr + cost <= limit) do e = e + 1 end
  return e
end

local function slidingWindow(sp, st, now, cost)
  local limit, W = sp[2], sp[3]
  local start = floor(now / W) * W
  -- A clock that stepped back before the stored window keeps using the stored window.
  if st ~= nil and st[1] > start then start = st[1] end
  local prev, curr = 0, 0
  if st ~= nil then
    if st[1] == start then
      prev = st[2]
      curr = st[3]
    elseif st[1] == start - W then
      prev = st[3]
    end
  end
  local elapsed = 0
  if now > start then elapsed = now - start end
  local estimate = (prev * (W - elapsed)) / W + curr
  if estimate + cost <= limit then
    local after = curr + cost
    local rem = floor(limit - estimate - cost)
    if rem < 0 then rem = 0 end
    local reset = 0
    if after > 0 then reset = start + 2 * W - now elseif prev > 0 then reset = start + W - now end
    return true, rem, reset, 0, { start, prev, after }
  end
  local retry
  if cost > limit then
    retry = INF
  elseif curr + cost > limit then
    retry = start + W + firstFit(curr, 0, cost, W, limit, math.ceil(W * (1 - (limit - cost) / curr))) - now
  else
    retry = start + firstFit(prev, curr, cost, W, limit, math.ceil(W * (1 - (limit - curr - cost) / prev))) - now
    if retry < 1 then retry = 1 end
  end
  local rem = floor(limit - estimate)
  if rem < 0 then rem = 0 end
  local reset = start + W - now
  if curr > 0 then reset = start + 2 * W - now end
  return false, rem, reset, retry, nil
end

local function slidingLog(sp, st, now, cost)
  local limit, W = sp[2], sp[3]
  local ts, ns = st[1], st[2]
  local nr = #ts
  local first = 1
  while first <= nr and ts[first] + W <= now do first = first + 1 end
  local count = 0
  for i = first, nr do count = count + ns[i] end
  if count + cost <= limit then
    local last = ts[nr]
    -- After a backward clock step, new units are stamped no earlier than the newest entry, so the
    -- log stays sorted.
    local stamp = now
    if last ~= nil and last > now then stamp = last end
    local newest = last
    if cost > 0 then newest = stamp end
    local after = count + cost
    local reset = 0
    if after > 0 and newest ~= nil then reset = newest + W - now end
    return true, limit - after, reset, 0, { first - 1, stamp }
  end
  local retry = INF
  if cost <= limit then
    -- The (count + cost - limit)-th oldest live unit must expire first.
    local j = count + cost - limit
    local acc = 0
    for i = first, nr do
      acc = acc + ns[i]
      if acc >= j then
        retry = ts[i] + W - now
        break
      end
    end
  end
  local reset = 0
  if nr > 0 then reset = ts[nr] + W - now end
  if reset < 0 then reset = 0 end
  return false, limit - count, reset, retry, nil
end

local function step(sp, st, now, cost)
  local algo = sp[1]
  if algo == 'g' then return gcra(sp, st, now, cost) end
  if algo == 'f' then return fixedWindow(sp, st, now, cost) end
  if algo == 'w' then return slidingWindow(sp, st, now, cost) end
  return slidingLog(sp, st, now, cost)
end

-- Write the state of an admitted decision. st is the state read before (nil when fresh).
local function commit(sp, key, st, now, cost, info)
  local algo = sp[1]
  if algo == 'g' then
    local G = sp[5]
    local cell = floor(info / G)
    if st ~= nil and floor(st / G) == cell then
      redis.call('SET', key, string.format('%d', info), 'KEEPTTL')
    else
      redis.call('SET', key, string.format('%d', info), 'PX', pttl((cell + 1) * G - now))
    end
  elseif algo == 'f' then
    local v = string.format('%d:%d', info[1], info[2])
    if st ~= nil and st[1] == info[1] then
      redis.call('SET', key, v, 'KEEPTTL')
    else
      redis.call('SET', key, v, 'PX', pttl(info[1] + sp[3] - now))
    end
  elseif algo == 'w' then
    local v = string.format('%d:%d:%d', info[1], info[2], info[3])
    if st ~= nil and st[1] == info[1] then
      redis.call('SET', key, v, 'KEEPTTL')
    else
      redis.call('SET', key, v, 'PX', pttl(info[1] + 2 * sp[3] - now))
    end
  else
    if info[1] > 0 then redis.call('LPOP', key, info[1]) end
    redis.call('RPUSH', key, string.format('%d:%d', info[2], cost))
    redis.call('PEXPIRE', key, pttl(info[2] + sp[3] - now))
  end
end

local now
if mode == 'T' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local out = {}

-- One decision: reads first, then writes only if every rule admits. Run under pcall so that a
-- failing decision (a state key of the wrong type) fails alone: its reads failed before any write.
local function decideOne(set, k, cost, peek, now, o)
  local n = #set
  if n == 1 then
    local sp, key = set[1], KEYS[k]
    local st = readState(sp, key)
    local al, rem, rst, rty, info = step(sp, st, now, cost)
    if al and cost > 0 and not peek then commit(sp, key, st, now, cost, info) end
    out[o + 1] = rem
    out[o + 2] = rst
    out[o + 3] = rty
    return
  end
  local states, al, rem, rst, rty, info = {}, {}, {}, {}, {}, {}
  local all = true
  for i = 1, n do
    local sp = set[i]
    local st = readState(sp, KEYS[k + i - 1])
    states[i] = st
    al[i], rem[i], rst[i], rty[i], info[i] = step(sp, st, now, cost)
    if not al[i] then all = false end
  end
  if all then
    if cost > 0 and not peek then
      for i = 1, n do commit(set[i], KEYS[k + i - 1], states[i], now, cost, info[i]) end
    end
  else
    -- Refused: admitting rules are reported as they stand (nothing was taken from them).
    for i = 1, n do
      if al[i] then al[i], rem[i], rst[i], rty[i] = step(set[i], states[i], now, 0) end
    end
  end
  for i = 1, n do
    out[o + 1] = rem[i]
    out[o + 2] = rst[i]
    out[o + 3] = rty[i]
    o = o + 3
  end
end

local errors = {}
local o = 0
local k = 1
local nargv = #ARGV
local oneSet = sets[1]
if nsets ~= 1 then oneSet = nil end
while a <= nargv do
  local set = oneSet
  if set == nil then
    set = sets[tonumber(ARGV[a])]
    a = a + 1
  end
  local cost = tonumber(ARGV[a])
  local peek = false
  if cost < 0 then
    cost = -cost - 1
    peek = true
  end
  a = a + 1
  if mode == 'C' then
    now = tonumber(ARGV[a])
    a = a + 1
  end
  local n = #set
  local ok, err = pcall(decideOne, set, k, cost, peek, now, o)
  if not ok then
    for i = 1, 3 * n do out[o + i] = 0 end
    out[o + 3] = -2
    local msg = err
    if type(err) == 'table' then msg = err.err end
    errors[#errors + 1] = tostring(msg)
  end
  o = o + 3 * n
  k = k + n
end
for i = 1, #errors do out[o + i] = errors[i] end
return out
`;
