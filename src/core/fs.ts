/**
 * Atomic file replacement, the one way postern rewrites a file that must never be seen half
 * written (the users file, the generated private key and certificate, the admin token, MTA-STS
 * cache entries).
 *
 * The sequence is the classic one (and what Postfix's `postmap`/`postalias` and SQLite's journal
 * rely on): write a temp file in the SAME directory (rename is only atomic within one file
 * system), fsync it so its data is on disk before its name is, rename it over the target, then
 * fsync the directory so the rename itself survives a crash (POSIX leaves a directory entry in
 * the page cache otherwise). The temp name is unique per call (pid + random), opened with O_EXCL,
 * so concurrent writers never share or clobber a temp file, and a symlink planted at a guessable
 * name cannot redirect the write.
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { EventSink } from './events.ts';

/** Mode for files holding secrets (keys, password hashes, tokens): owner read/write only. */
export const SECRET_MODE = 0o600;

/** The temp file name used for `path` (exported for tests: it always starts with `.<name>.`). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replaces `path` with `data` atomically: unique temp file in the same directory (created with
 * `mode`, then chmod'ed to it so the umask cannot widen or narrow it), fsync, rename, fsync of
 * the directory. On any failure the temp file is removed and the original error is rethrown
 * (the target is then untouched). Pass {@link SECRET_MODE} for secrets.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode: number }): Promise<void> {
  const tmp = tempPathFor(path);
  let created = false;
  try {
    const fh = await open(tmp, 'wx', opts.mode);
    created = true;
    try {
      await fh.writeFile(data);
      await fh.chmod(opts.mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    created = false;
    await syncDir(dirname(path));
  } catch (e) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Creates `path` with `data` only if it does not exist yet, atomically: the complete, synced temp
 * file is hard-linked to the name (link(2) fails with EEXIST instead of replacing), so two
 * processes creating the same file at once end with one complete version, and the loser learns
 * it lost. Resolves true when this call created the file, false when it already existed.
 */
export async function createFileExclusive(
  path: string,
  data: string | Uint8Array,
  opts: { mode: number },
): Promise<boolean> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'wx', opts.mode);
  try {
    try {
      await fh.writeFile(data);
      await fh.chmod(opts.mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
    await syncDir(dirname(path));
    return true;
  } finally {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/** fsync a directory, so entries created or renamed in it are durable (POSIX: fsync(2) on the dir fd). */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Group/world access bits of a file mode, or null when only the owner has access. Used for the
 * "readable by others" warnings on private keys, the users file and the admin tokens.
 */
export function looseMode(mode: number): string | null {
  return (mode & 0o077) === 0 ? null : (mode & 0o777).toString(8).padStart(4, '0');
}

/** Reports a secret file that group or others may read (typed `admin.file-mode`, with the fix). */
export async function warnLooseMode(
  path: string,
  kind: 'private-key' | 'users' | 'admin-token',
  events: EventSink,
): Promise<void> {
  const st = await stat(path).catch(() => null);
  const mode = st === null ? null : looseMode(st.mode);
  if (mode !== null) events.emit({ event: 'admin.file-mode', file: path, kind, mode, fix: `chmod 600 ${path}` });
}
