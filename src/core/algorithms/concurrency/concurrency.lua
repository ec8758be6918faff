-- The concurrency limiter (port of step.ts).
--
-- State: one hash per key, field = lease id, value = '<cost>:<expiresUs>'. Expired leases are
-- dropped on every call; the key's PEXPIRE follows the latest live lease, so a crashed holder
-- leaks nothing.
--
-- KEYS[1] the lease hash. ARGV: op ('A' acquire | 'R' release), now µs or '' (Redis TIME),
-- TTL floor ms, limit, leaseUs, cost, lease id.
-- Reply (acquire): { allowed 1|0, remaining, resetUs, retryAfterUs (-1 = never) }; release: {}.
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local ttlFloor = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local leaseUs = tonumber(ARGV[5])
local cost = tonumber(ARGV[6])
local leaseId = ARGV[7]

local raw = redis.call('HGETALL', key)
local held, latest = 0, 0
local live = {}
local dead = {}
for i = 1, #raw, 2 do
  local id = raw[i]
  local c, e = string.match(raw[i + 1], '^(%d+):(%-?%d+)$')
  c = tonumber(c)
  e = tonumber(e)
  if e > now and not (op == 'R' and id == leaseId) then
    held = held + c
    live[#live + 1] = { e, c }
    if e > latest then latest = e end
  else
    dead[#dead + 1] = id
  end
end
for i = 1, #dead, 1000 do
  redis.call('HDEL', key, unpack(dead, i, math.min(i + 999, #dead)))
end

local function expire(last)
  if last > now then
    local ms = math.floor((last - now) / 1000) + 1
    if ms < ttlFloor then ms = ttlFloor end
    redis.call('PEXPIRE', key, ms)
  end
end

if op == 'R' then
  expire(latest)
  return {}
end

if held + cost <= limit then
  local reset = 0
  if cost > 0 then
    local exp = now + leaseUs
    redis.call('HSET', key, leaseId, string.format('%d:%d', cost, exp))
    if exp > latest then latest = exp end
    reset = leaseUs
  elseif latest > now then
    reset = latest - now
  end
  expire(latest)
  return { 1, limit - held - cost, reset, 0 }
end
expire(latest)
local reset = 0
if latest > now then reset = latest - now end
-- Retry when enough leases will have expired for cost to fit, taking them in order of expiry.
local retry = -1
if cost <= limit then
  table.sort(live, function(x, y) return x[1] < y[1] end)
  local units, freed = held + cost - limit, 0
  for i = 1, #live do
    freed = freed + live[i][2]
    if freed >= units then
      retry = live[i][1] - now
      break
    end
  end
end
return { 0, limit - held, reset, retry }
