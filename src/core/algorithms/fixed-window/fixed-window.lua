-- Fixed window: port of step.ts. State: '<start µs>:<count>'.
ALGORITHMS['fixed-window'] = {
  read = function(key)
    local raw = redis.call('GET', key)
    if not raw then return nil end
    local s, c = string.match(raw, '^(%-?%d+):(%d+)$')
    return { tonumber(s), tonumber(c) }
  end,

  step = function(sp, st, now, cost)
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
    -- A count beyond the limit is an overdraft left by a charge: nothing remains.
    local rem = limit - count
    if count > limit then rem = 0 end
    return false, rem, reset, retry, nil
  end,

  -- The TTL is set when a window begins and kept (KEEPTTL) while it lasts.
  commit = function(sp, key, st, now, cost, info)
    local v = string.format('%d:%d', info[1], info[2])
    if st ~= nil and st[1] == info[1] then
      redis.call('SET', key, v, 'KEEPTTL')
    else
      redis.call('SET', key, v, 'PX', pttl(info[1] + sp[3] - now))
    end
  end,
}
