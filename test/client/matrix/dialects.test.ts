/**
 * sluice/client, unconfigured, against local servers answering in GitHub's, Discord's, X/Twitter's,
 * Shopify's and RingCentral's dialects, and a penalty box that restarts on every request sent
 * during it (servers/dialects.ts says what each sends).
 */
import { describe } from 'vitest';
import { dialectRows } from './rows.js';
import { specifyRows } from './spec.js';

describe('client matrix: API dialects (quota headers)', () => specifyRows(dialectRows));
