-- Sliding window counter: port of step.ts. State: '<start µs>:<prev>:<curr>'.

-- The first elapsed time e in [0, W] at which cost fits (port of firstFit in step.ts): the
-- admission test with the same floating-point operations in the same order, stepped from the
-- closed-form guess, which rounding can put 1 µs off either way.
local function slidingWindowFirstFit(prev, curr, cost, W, limit, guess)
  local e = guess
  if e < 0 then e = 0 elseif e > W then e = W end
  while e > 0 do
    local d = e - 1
    if (prev * (W - d)) / W + curr + cost <= limit then e = d else break end
  end
  while e < W and not ((prev * (W - e)) / W + curr + cost <= limit) do e = e + 1 end
  return e
end

ALGORITHMS['sliding-window'] = {
  read = function(key)
    local raw = redis.call('GET', key)
    if not raw then return nil end
    local s, p, c = string.match(raw, '^(%-?%d+):(%d+):(%d+)$')
    return { tonumber(s), tonumber(p), tonumber(c) }
  end,

  step = function(sp, st, now, cost)
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
      retry = start + W + slidingWindowFirstFit(curr, 0, cost, W, limit, math.ceil(W * (1 - (limit - cost) / curr))) - now
    else
      retry = start + slidingWindowFirstFit(prev, curr, cost, W, limit, math.ceil(W * (1 - (limit - curr - cost) / prev))) - now
      if retry < 1 then retry = 1 end
    end
    local rem = floor(limit - estimate)
    if rem < 0 then rem = 0 end
    local reset = start + W - now
    if curr > 0 then reset = start + 2 * W - now end
    return false, rem, reset, retry, nil
  end,

  -- The TTL (two windows) is set when a window begins and kept (KEEPTTL) while it lasts.
  commit = function(sp, key, st, now, cost, info)
    local v = string.format('%d:%d:%d', info[1], info[2], info[3])
    if st ~= nil and st[1] == info[1] then
      redis.call('SET', key, v, 'KEEPTTL')
    else
      redis.call('SET', key, v, 'PX', pttl(info[1] + 2 * sp[3] - now))
    end
  end,
}
