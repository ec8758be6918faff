/**
 * Config file watching. Editors save by writing in place or by renaming a new file over the old
 * one (which ends a watch on the file itself), and Kubernetes updates a ConfigMap volume by
 * swapping a symlink (`..data` renamed onto a new `..<timestamp>` directory), so no event ever
 * names the config file. So the file's directory is watched, and the directory of the file the
 * path resolves to (it may sit elsewhere), and every event counts; after a debounce the file is
 * read and the reload runs only when its content changed, so unrelated files in the directory
 * cost a read and nothing more.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** Digest of the file's content as it resolves now (undefined: unreadable, e.g. mid-swap). */
function fingerprint(file: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch {
    return undefined;
  }
}

function realDir(file: string): string | undefined {
  try {
    return dirname(realpathSync(file));
  } catch {
    return undefined;
  }
}

/** Call `onChange` (debounced by `delayMs`) when the content behind `file` changes. Returns a function that stops watching. */
export function watchConfig(file: string, onChange: () => void, log: { warn(msg: string, f?: Record<string, unknown>): void }, delayMs = 150): () => void {
  const full = resolve(file);
  let last = fingerprint(full);
  let timer: NodeJS.Timeout | undefined;
  const watchers = new Map<string, FSWatcher>();
  let stopped = false;

  const fire = () => {
    timer = undefined;
    if (stopped) return;
    arm();
    const now = fingerprint(full);
    if (now === undefined || now === last) return;
    last = now;
    onChange();
  };
  const onEvent = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, delayMs);
  };
  /** Watch the file's directory and its resolved target's directory (re-resolved after every swap). */
  const arm = () => {
    const dirs = new Set([dirname(full)]);
    const target = realDir(full);
    if (target !== undefined) dirs.add(target);
    for (const [d, w] of watchers) {
      if (!dirs.has(d)) {
        w.close();
        watchers.delete(d);
      }
    }
    for (const d of dirs) {
      if (watchers.has(d)) continue;
      try {
        const w = watch(d, { persistent: false }, onEvent);
        w.on('error', (err) => {
          // A target directory removed by a swap ends its watch; the next event re-arms.
          w.close();
          watchers.delete(d);
          if (d === dirname(full)) log.warn('config watch failed; SIGHUP still reloads', { error: String(err) });
        });
        watchers.set(d, w);
      } catch (err) {
        if (d === dirname(full)) log.warn('cannot watch the config file; SIGHUP still reloads', { error: String(err) });
      }
    }
  };
  arm();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    for (const w of watchers.values()) w.close();
    watchers.clear();
  };
}
