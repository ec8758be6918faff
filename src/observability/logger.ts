/**
 * Structured request logs (pino, one JSON object per line). Every refused request is logged with
 * who, what and which policy; allowed requests are sampled at `sampleRate`. Every string field
 * is capped in length, and pino JSON-escapes control characters, so a hostile value (a newline, an
 * ANSI escape, HTML, a megabyte of text) stays inside its own field on its own line.
 *
 * Filter 429s by consumer:  `jq -c 'select(.status == 429 and .consumer == "alice")' sluice.log`
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { SluiceConfigError } from '../core/errors.js';
import { outcomeOf, type RequestEvent } from './events.js';
import { DroppingDestination, type LogWriteStats } from './log-destination.js';
import { field, MAX_FIELD_LENGTH } from './sanitize.js';

/** Options of {@link createRequestLogger}. */
export interface RequestLoggerOptions {
  /**
   * Where lines go: a stream (`{ write(line) }`), a file path, or a file descriptor.
   * Default: stdout (fd 1). Writes are asynchronous (lines written while a write is in flight are
   * coalesced into the next one) and never wait for a buffer to fill, so a lone 429 shows at once.
   * A path in a missing directory throws SluiceConfigError here. A write that fails (full disk)
   * drops its lines and is counted in `stats`; it never blocks or throws.
   */
  destination?: DestinationStream | string | number;
  /** Share of allowed requests to log, 0..1 (exact: 0.1 logs every 10th). Default 0.01. */
  sampleRate?: number;
  /** Cap on every string field, in characters. Default 256. */
  maxFieldLength?: number;
  /** pino level. Default `info`. */
  level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Use this pino logger instead of building one (the other options except sampling are ignored). */
  logger?: Logger;
}

/** The request logger the observer writes to. */
export interface RequestLogger {
  /** Log one request: always when refused or failed, sampled when allowed. */
  log(event: RequestEvent): void;
  /** Log a free-form line (warnings, webhook failures); strings in `obj` are bounded. */
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
  /** The underlying pino logger. */
  readonly pino: Logger;
  /** Write out buffered lines. */
  flush(): Promise<void>;
  /** Failed writes and dropped lines (zero when a custom stream or logger was given). */
  readonly stats: LogWriteStats;
}

/** Validate the sample rate at construction. */
export function checkSampleRate(rate: unknown, fieldName = 'sampleRate'): number {
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > 1) {
    throw new SluiceConfigError(fieldName, `must be a number from 0 to 1, got ${JSON.stringify(rate)}`);
  }
  return rate;
}

/** Build a {@link RequestLogger}. Options are validated here. */
export function createRequestLogger(options: RequestLoggerOptions = {}): RequestLogger {
  const rate = checkSampleRate(options.sampleRate ?? 0.01);
  const max = options.maxFieldLength ?? MAX_FIELD_LENGTH;
  if (!Number.isInteger(max) || max < 8) throw new SluiceConfigError('maxFieldLength', `must be an integer >= 8, got ${JSON.stringify(max)}`);
  let log: Logger;
  let stats: LogWriteStats = { writeErrors: 0, droppedLines: 0 };
  if (options.logger) {
    log = options.logger;
  } else {
    const dest = options.destination;
    let stream: DestinationStream;
    if (dest === undefined || typeof dest === 'number' || typeof dest === 'string') {
      const d = new DroppingDestination(dest ?? 1);
      stats = d.stats;
      stream = d;
    } else stream = dest;
    log = pino({ level: options.level ?? 'info', base: { service: 'sluice' } }, stream);
  }
  // Exact sampling without randomness: an accumulator that logs each time it passes 1.
  let acc = 0;

  const clean = (obj: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[field(k, 64) ?? k] = typeof v === 'string' ? field(v, max) : v;
    return out;
  };

  return {
    pino: log,
    stats,
    log(e) {
      const outcome = outcomeOf(e);
      if (outcome === 'allowed') {
        if (rate === 0) return;
        acc += rate;
        if (acc < 1) return;
        acc -= 1;
      }
      const d = e.decision;
      const line = {
        event: outcome,
        status: e.status,
        requestId: field(e.requestId, max),
        consumer: field(e.consumer, max),
        tier: field(e.tier, max),
        key: field(e.key, max),
        route: field(e.route, max),
        method: field(e.method, 16),
        path: field(e.path, max),
        ip: field(e.ip, 64),
        policy: field(e.policy, max),
        limit: d?.limit,
        remaining: d?.remaining,
        retryAfterMs: d && !d.allowed && Number.isFinite(d.retryAfterMs) ? d.retryAfterMs : undefined,
        shadow: e.shadow || undefined,
        storeError: field(e.storeError, max),
        durationMs: e.durationMs,
      };
      if (outcome === 'allowed' || outcome === 'shadow_limited') log.info(line, outcome === 'allowed' ? 'request' : 'shadow limited');
      else log.warn(line, outcome === 'limited' ? 'rate limited' : outcome === 'store_error' ? 'store error' : 'request denied');
    },
    warn(obj, msg) {
      log.warn(clean(obj), msg);
    },
    info(obj, msg) {
      log.info(clean(obj), msg);
    },
    flush() {
      return new Promise((resolve) => log.flush(() => resolve()));
    },
  };
}
