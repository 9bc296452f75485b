/**
 * Reloads the users file in a running server when it changes, so `postern user add|passwd|remove`
 * takes effect at once (no SIGHUP).
 *
 * The directory is watched, not the file: every rewrite is an atomic rename (core/fs.ts), which
 * replaces the inode a file watch would be attached to; a directory watch sees the new name
 * arrive. Events are debounced (one rewrite produces several: temp file, lock file, rename) and
 * filtered to the file's own name. A file that does not parse keeps the users already loaded.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { EventSink } from '../../core/events.ts';
import { warnLooseMode } from '../../core/fs.ts';
import { loadUsers } from './file.ts';
import type { UserStore } from './store.ts';

export interface UsersWatcher {
  close(): void;
}

/**
 * Watches `path` (through its directory) and calls `onLoad` with the reloaded store after each
 * change, `onError` when the new file cannot be loaded (the caller keeps the old store) or the
 * directory cannot be watched. Loads run one at a time; a change during a load triggers another.
 */
export function watchUsers(
  path: string,
  opts: { onLoad(store: UserStore): void; onError(err: unknown): void; debounceMs?: number },
): UsersWatcher {
  const name = basename(path);
  const debounceMs = opts.debounceMs ?? 100;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  const reload = (): void => {
    timer = null;
    running = running.then(async () => {
      if (closed) return;
      try {
        const store = await loadUsers(path, { allowMissing: true });
        if (!closed) opts.onLoad(store);
      } catch (e) {
        if (!closed) opts.onError(e);
      }
    });
  };
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_type, file) => {
      // Some platforms give no name; then any change in the directory counts.
      if (file !== null && file !== name) return;
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(reload, debounceMs);
      timer.unref();
    });
    watcher.on('error', (e) => opts.onError(e));
  } catch (e) {
    opts.onError(e);
  }
  return {
    close() {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      watcher?.close();
    },
  };
}

/**
 * {@link watchUsers} for `postern serve`: each reload is an `admin.users-reloaded` event (and an
 * `admin.file-mode` one when the new file is readable by others), each failure an
 * `admin.users-reload-failed` one; null when there is no users file.
 */
export function watchUsersFile(
  path: string | null,
  events: EventSink,
  onLoad: (store: UserStore) => void,
): UsersWatcher | null {
  if (path === null) return null;
  return watchUsers(path, {
    onLoad: (store) => {
      onLoad(store);
      events.emit({ event: 'admin.users-reloaded', file: path, users: store.size });
      void warnLooseMode(path, 'users', events);
    },
    onError: (e) =>
      events.emit({
        event: 'admin.users-reload-failed',
        file: path,
        error: e instanceof Error ? e.message : String(e),
      }),
  });
}
