-- Quota: port of step.ts and period.ts (monthly periods port src/core/calendar.ts: the civil-date
-- conversions are Howard Hinnant's days_from_civil / civil_from_days, exact for every UTC date).
-- State: '<anchor µs>:<period start µs>:<count>'.
-- Spec: sp[2] limit, sp[3] windowUs (the fixed period), sp[4] 1 for monthly periods,
-- sp[5] the calendar or billing anchor in µs, -1 in first-api-call mode.
do
  local DAY = 86400000

  local function daysFromCivil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * ((m + 9) % 12) + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
  end

  local function civilFromDays(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp + 3
    if mp >= 10 then m = mp - 9 end
    local y = yoe + era * 400
    if m <= 2 then y = y + 1 end
    return y, m, d
  end

  -- y, m (1-12), d, time of day (ms) of an epoch-ms instant.
  local function civil(t)
    local days = floor(t / DAY)
    local y, m, d = civilFromDays(days)
    return y, m, d, t - days * DAY
  end

  -- calendar.ts addMonths: the anchor moved by k months, its day clamped to the month's length.
  local function addMonths(anchor, k)
    local ay, am, ad, tod = civil(anchor)
    local total = ay * 12 + (am - 1) + k
    local y = floor(total / 12)
    local m = total - y * 12 + 1
    local nextY, nextM = y, m + 1
    if nextM == 13 then nextY, nextM = y + 1, 1 end
    local dim = daysFromCivil(nextY, nextM, 1) - daysFromCivil(y, m, 1)
    if ad > dim then ad = dim end
    return daysFromCivil(y, m, ad) * DAY + tod
  end

  -- The period containing now (µs) for an anchor (µs, a whole ms): start, end in µs.
  local function period(sp, anchor, now)
    if sp[4] == 1 then
      local a, n = anchor / 1000, floor(now / 1000)
      local ay, am = civil(a)
      local ny, nm = civil(n)
      local index = (ny - ay) * 12 + (nm - am)
      if addMonths(a, index) > n then index = index - 1 end
      return addMonths(a, index) * 1000, addMonths(a, index + 1) * 1000
    end
    local len = sp[3]
    local k = floor((now - anchor) / len)
    return anchor + k * len, anchor + (k + 1) * len
  end

  ALGORITHMS['quota'] = {
    read = function(key)
      local raw = redis.call('GET', key)
      if not raw then return nil end
      local a, s, c = string.match(raw, '^(%-?%d+):(%-?%d+):(%d+)$')
      return { tonumber(a), tonumber(s), tonumber(c) }
    end,

    step = function(sp, st, now, cost)
      local limit = sp[2]
      local anchor = sp[5]
      if anchor < 0 then
        if st ~= nil then anchor = st[1] else anchor = floor(now / 1000) * 1000 end
      end
      local same = st ~= nil and st[1] == anchor
      local start, finish = period(sp, anchor, now)
      -- A clock that stepped back into an earlier period keeps counting in the stored (later) one.
      if same and st[2] > start then start, finish = period(sp, anchor, st[2]) end
      local count = 0
      if same and st[2] == start then count = st[3] end
      local reset = finish - now
      if count + cost <= limit then
        local after = count + cost
        local r = reset
        if after == 0 then r = 0 end
        return true, limit - after, r, 0, { anchor, start, after, finish }
      end
      local retry = reset
      if cost > limit then retry = INF end
      -- A count beyond the limit is an overdraft left by a charge: nothing remains.
      local rem = limit - count
      if count > limit then rem = 0 end
      return false, rem, reset, retry, nil
    end,

    commit = function(sp, key, st, now, cost, info)
      redis.call('SET', key, string.format('%d:%d:%d', info[1], info[2], info[3]), 'PX', pttl(info[4] - now))
    end,
  }
end
