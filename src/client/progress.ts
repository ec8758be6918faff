/**
 * A small terminal progress bar for batch jobs, fed by the client's events. On a TTY it redraws one
 * line; elsewhere (CI logs, files) it prints a line every 10 % so logs stay readable.
 */
import type { ClientEventName, ClientEvents } from './events.js';

/** Options of {@link progressBar}. */
export interface ProgressBarOptions {
  /** Calls expected in the batch. */
  total: number;
  /** Where to draw. Default `process.stderr`. */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Characters of the bar. Default 30. */
  width?: number;
  /** Text before the bar. */
  label?: string;
  /** Least time between redraws on a TTY. Default 100 ms. */
  intervalMs?: number;
}

/** Counters of a batch, updated from events. */
export interface ProgressCounts {
  done: number;
  ok: number;
  failed: number;
  throttled: number;
  retried: number;
}

export interface ProgressBar {
  readonly counts: Readonly<ProgressCounts>;
  /** The current line (without control characters). */
  render(): string;
  /** Draw the final line and stop listening. */
  stop(): void;
}

/** Attach a progress bar to a client (anything with `on`). */
export function progressBar(
  client: { on<K extends ClientEventName>(name: K, fn: (e: ClientEvents[K]) => void): () => void },
  options: ProgressBarOptions,
): ProgressBar {
  const total = Math.max(0, Math.floor(options.total));
  const stream = options.stream ?? process.stderr;
  const width = options.width ?? 30;
  const tty = stream.isTTY === true;
  const interval = options.intervalMs ?? 100;
  const start = Date.now();
  const counts: ProgressCounts = { done: 0, ok: 0, failed: 0, throttled: 0, retried: 0 };
  let lastDraw = 0;
  let lastDecile = -1;
  let stopped = false;

  const render = (): string => {
    const finished = counts.done + counts.failed;
    const frac = total === 0 ? 1 : Math.min(1, finished / total);
    const filled = Math.round(frac * width);
    const secs = (Date.now() - start) / 1000;
    const rate = secs > 0 ? finished / secs : 0;
    const eta = rate > 0 && finished < total ? `${Math.ceil((total - finished) / rate)}s` : '-';
    const label = options.label ? `${options.label} ` : '';
    return (
      `${label}[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${finished}/${total} ` +
      `ok ${counts.ok} failed ${counts.failed} throttled ${counts.throttled} retried ${counts.retried} ` +
      `${(rate * 60).toFixed(0)}/min eta ${eta}`
    );
  };
  const draw = (force = false) => {
    if (stopped) return;
    const finished = counts.done + counts.failed;
    if (tty) {
      const now = Date.now();
      if (!force && now - lastDraw < interval) return;
      lastDraw = now;
      stream.write(`\r${render()}\x1b[K`);
    } else {
      const decile = total === 0 ? 10 : Math.floor((finished / total) * 10);
      if (!force && decile === lastDecile) return;
      lastDecile = decile;
      stream.write(`${render()}\n`);
    }
  };
  const offs = [
    client.on('done', (e) => {
      counts.done++;
      if (e.status < 400) counts.ok++;
      draw(counts.done + counts.failed === total);
    }),
    client.on('failed', () => {
      counts.failed++;
      draw(counts.done + counts.failed === total);
    }),
    client.on('throttled', () => {
      counts.throttled++;
      draw();
    }),
    client.on('retried', () => {
      counts.retried++;
      draw();
    }),
  ];
  return {
    counts,
    render,
    stop() {
      if (stopped) return;
      if (tty) stream.write(`\r${render()}\x1b[K\n`);
      else if (lastDecile !== 10) stream.write(`${render()}\n`);
      stopped = true;
      for (const off of offs) off();
    },
  };
}
