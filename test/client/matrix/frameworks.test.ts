/**
 * sluice/client, unconfigured, against rate limiters we did not write: Express 5 +
 * express-rate-limit 8 in each header mode, Fastify 5 + @fastify/rate-limit in both, and Sluice's
 * own gateway. Each allows 5 calls per 1 s and sends its quota headers.
 */
import { describe } from 'vitest';
import { frameworkRows } from './rows.js';
import { specifyRows } from './spec.js';

describe('client matrix: framework rate limiters (quota headers)', () => specifyRows(frameworkRows));
