#!/usr/bin/env node
/** The `sluice` command. */
import { createLimiter } from '../index.js';

async function demo(): Promise<void> {
  const limiter = createLimiter({
    limits: [
      { name: 'per-second', limit: 5, windowMs: 1000, burst: 5 },
      { name: 'per-minute', limit: 20, windowMs: 60_000, algorithm: 'sliding-window' },
    ],
  });
  console.log('sluice demo: 5/s (burst 5) AND 20/min for key "demo-user"; 8 requests in a burst:\n');
  for (let i = 1; i <= 8; i++) {
    const d = await limiter.consume('demo-user');
    console.log(
      `  #${i} ${d.allowed ? 'admitted' : 'REFUSED '}  remaining=${d.remaining}  ` +
        (d.allowed ? '' : `retry-after=${Math.ceil(d.retryAfterMs / 1000)}s  (by ${d.policy})`),
    );
  }
}

const command = process.argv[2] ?? 'demo';
if (command === 'demo' || command === 'start') {
  await demo();
} else {
  console.error(`unknown command "${command}"`);
  process.exit(2);
}
