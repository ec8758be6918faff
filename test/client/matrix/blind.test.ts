/**
 * sluice/client, unconfigured, against servers that send no quota: real nginx `limit_req` (bare
 * 429, and with `Retry-After: 1`), `Retry-After` alone as an HTTP-date or as decimal seconds, and
 * a bare 429. The client has to find the rate from the refusals.
 */
import { describe } from 'vitest';
import { blindRows } from './rows.js';
import { specifyRows } from './spec.js';

describe('client matrix: no quota headers', () => specifyRows(blindRows));
