/**
 * Spec: the request log's destination drops what it cannot write instead of retrying forever
 * (`/dev/full` stands in for a full disk), and refuses paths that cannot be written at all.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SluiceConfigError } from '../../src/core/errors.js';
import { checkLogDestination, DroppingDestination } from '../../src/observability/log-destination.js';

const flushed = (d: DroppingDestination) => new Promise<void>((r) => d.flush(() => r()));

describe('DroppingDestination', () => {
  it('writes lines to a file in order', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-dest-')), 'a.log');
    const d = new DroppingDestination(file);
    for (let i = 0; i < 100; i++) d.write(`line ${i}\n`);
    await flushed(d);
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toEqual(Array.from({ length: 100 }, (_, i) => `line ${i}`));
    expect(d.stats).toEqual({ writeErrors: 0, droppedLines: 0 });
  });

  it('on a full disk every line is dropped and counted, flush still resolves, and onError hears each failure', async () => {
    const errors: string[] = [];
    const d = new DroppingDestination('/dev/full', (e) => errors.push(e.code ?? ''));
    d.write('a\n');
    await flushed(d);
    d.write('b\n');
    d.write('c\n');
    await flushed(d);
    expect(d.stats.droppedLines).toBe(3);
    expect(d.stats.writeErrors).toBe(errors.length);
    expect(errors.every((c) => c === 'ENOSPC')).toBe(true);
  });

  it('lines beyond the backlog bound are dropped without being queued', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-dest-')), 'b.log');
    const d = new DroppingDestination(file, undefined, 20);
    expect(d.write('first-line\n')).toBe(true); // written at once: the backlog is empty again
    expect(d.write('012345678\n')).toBe(true); // backlog 10 of 20 bytes
    expect(d.write('012345678\n')).toBe(true); // 20 of 20
    expect(d.write('012345678\n')).toBe(false); // would be 30: dropped
    await flushed(d);
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
    expect(d.stats.droppedLines).toBe(1);
  });
});

describe('checkLogDestination', () => {
  it.each([
    ['/nonexistent-sluice-dir/x.log', /directory "\/nonexistent-sluice-dir" does not exist/],
    [tmpdir(), /is a directory/],
  ])('%s is refused', (path, msg) => {
    expect(() => checkLogDestination(path)).toThrow(SluiceConfigError);
    expect(() => checkLogDestination(path)).toThrow(msg);
  });

  it('a new file in a writable directory and a writable device pass', () => {
    expect(() => checkLogDestination(join(mkdtempSync(join(tmpdir(), 'sluice-dest-')), 'new.log'))).not.toThrow();
    expect(() => checkLogDestination('/dev/full')).not.toThrow();
  });
});
