import type { AlgorithmDefinition } from '../algorithm.js';
import { MAX_LIMIT } from '../limits.js';
import { luaFile } from '../lua.js';
import { quotaCodec } from './codec.js';
import { periodOf } from './period.js';
import { quota, quotaCharge, type QuotaState } from './step.js';

export { quota, quotaCharge, type QuotaState } from './step.js';
export { compileQuota, PERIOD_MS, QUOTA_ANCHOR_MODES, type QuotaAnchorMode, type QuotaOptions, type QuotaSpec } from './options.js';
export { periodOf, type Period } from './period.js';

const lua = luaFile(new URL('./quota.lua', import.meta.url));

/** Quota: an allowance per calendar period (hourly, daily, weekly, monthly) or fixed period. */
export const quotaAlgorithm = {
  name: 'quota',
  aliases: [],
  maxLimit: MAX_LIMIT,
  burst: false,
  numericDeadline: false,
  step: quota,
  charge: quotaCharge,
  deadAt: (s, rule) => periodOf(rule, s.anchor, s.start).end,
  codec: quotaCodec,
  get lua() {
    return lua();
  },
} as const satisfies AlgorithmDefinition<QuotaState>;
