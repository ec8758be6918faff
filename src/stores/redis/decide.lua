-- Decides a batch of rate-limit decisions in one call. The algorithms are not here: each lives in
-- src/core/algorithms/<name>/<name>.lua and is spliced in at the `@algorithms` line below when
-- the store starts (decide-script.ts), so a new algorithm needs no change to this file.
--
-- An algorithm's Lua registers itself as
--   ALGORITHMS['<name>'] = {
--     read = function(key) -> state (nil for a fresh key; may raise, e.g. a key of the wrong type),
--     step = function(sp, state, now, cost) -> allowed, remaining, resetUs, retryUs, info,
--     commit = function(sp, key, state, now, cost, info),  -- writes state and expiry when admitted
--     charge = function(sp, state, now, cost) -> info[, units],  -- optional: what commit writes for
--                       -- a charge, `cost` more units past the limit if need be (commit gets `units`
--                       -- as its cost when given: the sliding log stamps at most limit + 1); without
--                       -- it, the info of the step under liftLimit(sp) (port of the window
--                       -- algorithms' charge in step.ts)
--   }
-- a line-by-line port of its step.ts: the same integer-microsecond arithmetic in the same operation
-- order, so that given the same time a decision is identical field by field to the memory store's
-- (Lua numbers are IEEE doubles like JavaScript's). retryUs is INF (-1) for "never". It may use
-- the locals INF, floor, pttl(lifeUs) (a PEXPIRE in ms, never below the TTL floor) and
-- liftLimit(sp) (the spec with no limit: port of liftLimit in step.ts) defined here.
-- `sp` is a rule spec: { name, limit (burst for gcra), windowUs, intervalUs, tauUs }.
--
-- ARGV layout (all strings):
--   1  mode: 'T' = read time from Redis TIME once for the batch; 'C' = each decision carries `now`
--   2  TTL floor in ms, a minimum for every expiry set (0 in TIME mode; see redis-store.ts)
--   3  S = number of rule specs, then S x 5 fields (the spec above)
--   .  R = number of rule sets, then for each: n, then n spec indexes (1-based)
--   .  then per decision: [set index, only when R > 1], x, [now µs in mode 'C'], where x is the
--      cost, or -(cost + 1) for a peek (one argument instead of two: this is the hot path), or
--      'c<cost>' for a charge (Store.charge: every rule takes cost more units unconditionally,
--      and reports its state after the charge as a cost-0 step sees it, with retryAfterUs 0)
-- KEYS: per decision, one state key per rule of its set, in order.
--
-- Reply: a flat array of integers, 3 per rule per decision: remaining, resetUs, retryAfterUs.
-- `allowed` is `retryAfterUs == 0` (every refusal has a positive wait or -1). A decision that failed
-- (Redis error while reading its state) has -2 as its first retryAfterUs; the error messages, in
-- order, follow all the numbers as strings.
--
-- Each decision is atomic on its own: its rules commit only when all admit. A refused decision
-- reports its admitting rules as a cost-0 peek, exactly as MemoryStore does.
if redis.replicate_commands then redis.replicate_commands() end
local INF = -1
local floor = math.floor
local mode = ARGV[1]
local ttlFloor = tonumber(ARGV[2])

local function pttl(lifeUs)
  local ms = floor(lifeUs / 1000) + 1
  if ms < ttlFloor then ms = ttlFloor end
  if ms < 1 then ms = 1 end
  return ms
end

-- The spec with no limit (port of liftLimit in step.ts): a window algorithm's step under it admits
-- any cost, so its info is what commit writes for a charge. Made once per spec.
local function liftLimit(sp)
  local l = sp.lifted
  if l == nil then
    l = { sp[1], math.huge, sp[3], sp[4], sp[5], algo = sp.algo }
    sp.lifted = l
  end
  return l
end

-- Time for the whole call in mode 'T' (in mode 'C' each decision sets it from its ARGV).
local now
if mode == 'T' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local ALGORITHMS = {}
-- @algorithms

local nspecs = tonumber(ARGV[3])
local a = 4
local specs = {}
for i = 1, nspecs do
  local name = ARGV[a]
  local algo = ALGORITHMS[name]
  if algo == nil then return redis.error_reply('unknown rate-limit algorithm ' .. name) end
  specs[i] = { name, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), algo = algo }
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

local out = {}

-- One decision: reads first, then writes only if every rule admits. Run under pcall so that a
-- failing decision (a state key of the wrong type) fails alone: its reads failed before any write.
local function decideOne(set, k, cost, peek, now, o)
  local n = #set
  if n == 1 then
    local sp, key = set[1], KEYS[k]
    local algo = sp.algo
    local st = algo.read(key)
    local al, rem, rst, rty, info = algo.step(sp, st, now, cost)
    if al and cost > 0 and not peek then algo.commit(sp, key, st, now, cost, info) end
    out[o + 1] = rem
    out[o + 2] = rst
    out[o + 3] = rty
    return
  end
  local states, al, rem, rst, rty, info = {}, {}, {}, {}, {}, {}
  local all = true
  for i = 1, n do
    local sp = set[i]
    local st = sp.algo.read(KEYS[k + i - 1])
    states[i] = st
    al[i], rem[i], rst[i], rty[i], info[i] = sp.algo.step(sp, st, now, cost)
    if not al[i] then all = false end
  end
  if all then
    if cost > 0 and not peek then
      for i = 1, n do set[i].algo.commit(set[i], KEYS[k + i - 1], states[i], now, cost, info[i]) end
    end
  else
    -- Refused: admitting rules are reported as they stand (nothing was taken from them).
    for i = 1, n do
      if al[i] then al[i], rem[i], rst[i], rty[i] = set[i].algo.step(set[i], states[i], now, 0) end
    end
  end
  for i = 1, n do
    out[o + 1] = rem[i]
    out[o + 2] = rst[i]
    out[o + 3] = rty[i]
    o = o + 3
  end
end

-- One charge: all reads first (a read may raise, as in decideOne), then every rule takes `cost`
-- more units, past its limit if need be. Each rule reports its state after the charge as a cost-0
-- step sees it (remaining 0 while overdrawn), with retryAfterUs 0: a charge is never refused.
local function chargeOne(set, k, cost, peek, now, o)
  local n = #set
  local states = {}
  for i = 1, n do states[i] = set[i].algo.read(KEYS[k + i - 1]) end
  for i = 1, n do
    local sp, key = set[i], KEYS[k + i - 1]
    local algo = sp.algo
    local st = states[i]
    if cost > 0 then
      local info, units
      if algo.charge ~= nil then
        info, units = algo.charge(sp, st, now, cost)
      else
        local _
        _, _, _, _, info = algo.step(liftLimit(sp), st, now, cost)
      end
      algo.commit(sp, key, st, now, units or cost, info)
      st = algo.read(key)
    end
    local _, rem, rst = algo.step(sp, st, now, 0)
    out[o + 1] = rem
    out[o + 2] = rst
    out[o + 3] = 0
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
  local x = ARGV[a]
  local cost = tonumber(x)
  local peek = false
  local one = decideOne
  if cost == nil then
    cost = tonumber(string.sub(x, 2))
    one = chargeOne
  elseif cost < 0 then
    cost = -cost - 1
    peek = true
  end
  a = a + 1
  if mode == 'C' then
    now = tonumber(ARGV[a])
    a = a + 1
  end
  local n = #set
  local ok, err = pcall(one, set, k, cost, peek, now, o)
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
