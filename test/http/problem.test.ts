/** The one problem module: every problem body Sluice sends takes its title from one table. */
import { describe, expect, it } from 'vitest';
import { problem, shortProblemBody } from '../../src/http/problem.js';

const trace = { requestId: 'r', timestamp: '2026-01-01T00:00:00.000Z', buildId: 'b' };

describe('problem bodies', () => {
  it.each([
    [429, 'Too Many Requests'],
    [403, 'Forbidden'],
    [404, 'Not Found'],
    [413, 'Content Too Large'],
    [431, 'Request Header Fields Too Large'],
    [502, 'Bad Gateway'],
    [504, 'Gateway Timeout'],
  ])('%i is titled "%s" in full and short bodies alike', (status, title) => {
    expect(problem(status, 'd', '/x', trace)).toEqual({ type: `https://httpproblems.com/http-status/${status}`, title, status, detail: 'd', instance: '/x', trace });
    expect(JSON.parse(shortProblemBody(status, 'd'))).toEqual({ type: `https://httpproblems.com/http-status/${status}`, title, status, detail: 'd' });
  });
  it('an unknown status is titled "Error"', () => {
    expect(problem(599, 'd', '/', trace).title).toBe('Error');
  });
});
