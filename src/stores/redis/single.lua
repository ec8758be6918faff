-- Decides one decision under one rule: what decide.lua does for a batch of that one decision,
-- without the batch layout to parse and with one algorithm instead of all, so that Redis runs a
-- fraction of the code (a caller awaiting each decision sends one decision per call: measured
-- 10-12 µs of Redis CPU per call against 15-24 µs for decide.lua, see docs/benchmarks.md).
-- There is one such script per algorithm, built by decide-script.ts: decide.lua's lines above its
-- `-- @algorithms` line (the locals INF, floor, mode, ttlFloor, pttl, now (from TIME in mode 'T')
-- and the ALGORITHMS table),
-- the algorithm's .lua, then this file.
--
-- ARGV layout (all strings):
--   1, 2  mode and TTL floor, as in decide.lua
--   3-6   the rule spec's numbers: limit (burst for gcra), windowUs, intervalUs, tauUs
--   7     x: the cost, or -(cost + 1) for a peek
--   8     now µs, in mode 'C' only
-- KEYS: the rule's state key.
-- Reply: decide.lua's reply for a batch of this one decision (remaining, resetUs, retryAfterUs;
-- -2 as retryAfterUs and the error message after the numbers when the decision failed).
local name, algo = next(ALGORITHMS)
local sp = { name, tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), algo = algo }
local cost = tonumber(ARGV[7])
local peek = false
if cost < 0 then
  cost = -cost - 1
  peek = true
end
if mode == 'C' then now = tonumber(ARGV[8]) end
local key = KEYS[1]

-- The read under pcall, as decide.lua's decideOne: a state key of the wrong type fails this
-- decision with its message in the reply. Only the read: a closure over the whole decision under
-- pcall cost Redis ~1-2 µs more per call. A Redis error later (the sliding log reads entries
-- during its step) fails the script instead, with the same message, which the store reports as
-- the same STORE_FAILURE (there is no other decision in this call to protect).
local ok, st = pcall(algo.read, key)
if not ok then
  local msg = st
  if type(st) == 'table' then msg = st.err end
  return { 0, 0, -2, tostring(msg) }
end
local al, rem, rst, rty, info = algo.step(sp, st, now, cost)
if al and cost > 0 and not peek then algo.commit(sp, key, st, now, cost, info) end
return { rem, rst, rty }
