/**
 * Config file watching. Editors save by writing in place or by renaming a new file over the old
 * one (which ends a watch on the file itself), so the directory is watched and events are
 * filtered by name, then debounced: one reload per burst of writes.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

/** Call `onChange` (debounced by `delayMs`) when `file` changes. Returns a function that stops watching. */
export function watchConfig(file: string, onChange: () => void, log: { warn(msg: string, f?: Record<string, unknown>): void }, delayMs = 150): () => void {
  const full = resolve(file);
  const name = basename(full);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(full), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed.toString() !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(onChange, delayMs);
    });
    watcher.on('error', (err) => log.warn('config watch failed; SIGHUP still reloads', { error: String(err) }));
  } catch (err) {
    log.warn('cannot watch the config file; SIGHUP still reloads', { error: String(err) });
  }
  return () => {
    if (timer) clearTimeout(timer);
    watcher?.close();
  };
}
