/**
 * Where request-log lines go: a file or file descriptor written asynchronously, one write in flight
 * at a time (lines arriving meanwhile are joined into the next write), with a bounded backlog.
 *
 * Why not pino's own destination (sonic-boom): on a write error (ENOSPC on a full disk, EIO) it
 * keeps the failed bytes and retries them forever, and its exit hook retries synchronously in a
 * loop, so a full log volume wedged the whole gateway (no answers, SIGTERM ignored). Here a failed
 * write is counted and its lines dropped; lines that would grow the backlog past `maxBufferBytes`
 * are dropped and counted too. Logging never blocks and never throws into the request path.
 */
import { accessSync, constants, openSync, statSync, write } from 'node:fs';
import { dirname } from 'node:path';
import { SluiceConfigError } from '../core/errors.js';

/** Counts of what could not be written. */
export interface LogWriteStats {
  /** Writes that failed (each drops the lines it carried). */
  writeErrors: number;
  /** Lines dropped (failed writes, or a full backlog). */
  droppedLines: number;
}

/**
 * Check at startup (and in `sluice check`) that `path` can be written: an existing writable file,
 * or a new file in an existing writable directory. Throws SluiceConfigError naming `field`.
 */
export function checkLogDestination(path: string, field = 'observability.logs.destination'): void {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st !== undefined) {
      if (st.isDirectory()) throw new SluiceConfigError(field, `"${path}" is a directory`);
      accessSync(path, constants.W_OK);
      return;
    }
    const dir = dirname(path);
    const d = statSync(dir, { throwIfNoEntry: false });
    if (d === undefined || !d.isDirectory()) throw new SluiceConfigError(field, `directory "${dir}" does not exist`);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    if (err instanceof SluiceConfigError) throw err;
    throw new SluiceConfigError(field, `"${path}" is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** A pino destination that drops what it cannot write. */
export class DroppingDestination {
  readonly stats: LogWriteStats = { writeErrors: 0, droppedLines: 0 };
  private readonly fd: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private writing = false;
  private waiters: (() => void)[] = [];

  /**
   * @param dest a file path (opened for appending now: a bad path throws SluiceConfigError here) or a file descriptor.
   * @param onError called once per failed write (metrics); must not throw.
   */
  constructor(
    dest: string | number,
    private readonly onError: (err: NodeJS.ErrnoException) => void = () => {},
    private readonly maxBufferBytes = 8 * 1024 * 1024,
  ) {
    if (typeof dest === 'number') {
      this.fd = dest;
    } else {
      checkLogDestination(dest);
      // Kept open for the life of the process (the gateway's log, like pino's own destination).
      this.fd = openSync(dest, 'a');
    }
  }

  /** pino calls this with one serialised line. */
  write(line: string): boolean {
    if (this.pendingBytes + line.length > this.maxBufferBytes) {
      this.stats.droppedLines++;
      return false;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.writing) this.next();
    return true;
  }

  private next(): void {
    if (this.pending.length === 0) {
      this.writing = false;
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
      return;
    }
    this.writing = true;
    const lines = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const buf = Buffer.from(lines.join(''), 'utf8');
    this.writeAll(buf, 0, lines.length, 0);
  }

  private writeAll(buf: Buffer, offset: number, count: number, busy: number): void {
    write(this.fd, buf, offset, buf.length - offset, null, (err, n) => {
      if (err) {
        // A non-blocking pipe that is momentarily full: wait a little, a bounded number of times.
        if ((err.code === 'EAGAIN' || err.code === 'EBUSY') && busy < 50) {
          setTimeout(() => this.writeAll(buf, offset, count, busy + 1), 10).unref();
          return;
        }
        this.stats.writeErrors++;
        this.stats.droppedLines += count;
        try {
          this.onError(err);
        } catch {
          // Counting must not break logging.
        }
        this.next();
        return;
      }
      if (offset + n < buf.length) this.writeAll(buf, offset + n, count, busy);
      else this.next();
    });
  }

  /** Resolve (call back) once everything written so far was written or dropped. */
  flush(cb?: (err?: Error) => void): void {
    if (!this.writing) cb?.();
    else this.waiters.push(() => cb?.());
  }
}
