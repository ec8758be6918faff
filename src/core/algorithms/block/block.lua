-- Block (penalty box with escalation): port of step.ts. State: '<until µs>:<length µs>'.
-- Spec (see index.ts redisSpec): sp[2] multiplier, sp[3] first block µs, sp[4] longest block µs,
-- sp[5] reset period µs (0: never escalates).
ALGORITHMS['block'] = {
  read = function(key)
    local raw = redis.call('GET', key)
    if not raw then return nil end
    local u, l = string.match(raw, '^(%-?%d+):(%d+)$')
    return { tonumber(u), tonumber(l) }
  end,

  step = function(sp, st, now, cost)
    if st ~= nil and st[1] > now then
      local left = st[1] - now
      return false, 0, left, left, nil
    end
    if cost == 0 then return true, 1, 0, 0, nil end
    local len = sp[3]
    if st ~= nil and now - st[1] < sp[5] then
      len = floor(st[2] * sp[2])
      if len > sp[4] then len = sp[4] end
      -- Never below the first length (a reload may have lengthened it since the last block).
      if len < sp[3] then len = sp[3] end
    end
    return true, 0, len, 0, { now + len, len }
  end,

  -- Port of charge in index.ts: a running block stands, otherwise one starts as a consume would.
  charge = function(sp, st, now, cost)
    if st ~= nil and st[1] > now then return { st[1], st[2] } end
    local _, _, _, _, info = ALGORITHMS['block'].step(sp, st, now, cost)
    return info
  end,

  -- Kept until the reset period after the block has passed: until then it decides the next length.
  commit = function(sp, key, st, now, cost, info)
    redis.call('SET', key, string.format('%d:%d', info[1], info[2]), 'PX', pttl(info[1] + sp[5] - now))
  end,
}
