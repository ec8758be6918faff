-- GCRA: port of step.ts (same integer-microsecond arithmetic, same operation order).
-- State: the TAT in µs as one little-endian double, struct.pack('<d', tat): unpacking and packing
-- cost a fraction of tonumber and string.format on the decimal text, and a double holds every µs
-- TAT exactly. Keys written by earlier versions hold the decimal text; they are still read (a
-- packed double never consists of ASCII digits: its top byte is its exponent, 0x3F-0x43 for any
-- TAT from 1 µs to 2^64 µs).
local GCRA_STATE = '<d'

ALGORITHMS['gcra'] = {
  read = function(key)
    local raw = redis.call('GET', key)
    if not raw then return nil end
    -- The packed form's last byte (its exponent's top byte) is never a digit: test that first,
    -- since matching the text pattern on every read cost Redis ~1 µs per decision.
    local last = string.byte(raw, 8)
    if #raw == 8 and (last < 48 or last > 57) then return (struct.unpack(GCRA_STATE, raw)) end
    if string.match(raw, '^%-?%d+$') then return tonumber(raw) end
    return (struct.unpack(GCRA_STATE, raw))
  end,

  step = function(sp, tat, now, cost)
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
  end,

  -- Port of gcraCharge: the TAT after forcing cost units in, at most 2e15 µs past now
  -- (MAX_CHARGE_AHEAD_US; never lowered).
  charge = function(sp, tat, now, cost)
    local base = now
    if tat ~= nil and tat >= now then base = tat end
    local cap = now + 2e15
    if base > cap then cap = base end
    local newTat = base + sp[4] * cost
    if newTat > cap then newTat = cap end
    return newTat
  end,

  -- The expiry is the end of the tau-long time grid cell the TAT is in, set only when the TAT
  -- moves to a new cell (KEEPTTL otherwise): resetting a TTL on every write costs Redis as much
  -- as the decision. A key thus lives at most 2 x tau past its last write.
  commit = function(sp, key, tat, now, cost, newTat)
    local G = sp[5]
    local cell = floor(newTat / G)
    if tat ~= nil and floor(tat / G) == cell then
      redis.call('SET', key, struct.pack(GCRA_STATE, newTat), 'KEEPTTL')
    else
      redis.call('SET', key, struct.pack(GCRA_STATE, newTat), 'PX', pttl((cell + 1) * G - now))
    end
  end,
}
