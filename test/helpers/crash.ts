/**
 * Evidence for crash tests of where a SIGKILL landed. A kill "during start-up" is only a claim
 * unless something shows which phase the process was in; these helpers derive it from what the
 * operating system and the spool files show, without any hook in the code under test:
 * - the process has the spool database open (Linux /proc/PID/fd), sampled before the kill;
 * - the spool's open has committed: `openSqliteSpool` ends by writing `{"pid":PID,…}` into the
 *   meta table in its first transaction, so the bytes `"pid":PID,` are in the database or its WAL
 *   after the commit and nowhere before it (SQLite stores short TEXT values verbatim in the page).
 * A kill with the file open and no owner row written happened inside `openSqliteSpool`: opening
 * the database, SQLite's WAL recovery of the previous run's log, the schema transaction.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { SPOOL_FILE } from '../../src/queue/sqlite.ts';

/** The phase a kill landed in, from the evidence above (and the caller's own ready marker). */
export type KillPhase = 'before-spool' | 'opening-spool' | 'after-spool' | 'serving';

/** Whether process `pid` has `file` open (false once it has exited or when /proc is unreadable). */
export function hasOpen(pid: number, file: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  // Newest (highest) descriptors first: a file just opened is usually among them.
  fds.sort((a, b) => Number(b) - Number(a));
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return true;
    } catch {
      // The fd closed between readdir and readlink.
    }
  }
  return false;
}

/**
 * Busy-polls (synchronously, so no event-loop turn separates seeing the file from the kill) until
 * `pid` has the spool database of `queueDir` open, then SIGKILLs it. Returns whether the file was
 * seen open; gives up and kills anyway after `maxIterations` polls.
 */
export function killWhenSpoolOpen(kill: () => void, pid: number, queueDir: string, maxIterations = 2_000_000): boolean {
  const file = join(queueDir, SPOOL_FILE);
  for (let i = 0; i < maxIterations; i++) {
    if (hasOpen(pid, file)) {
      kill();
      return true;
    }
  }
  kill();
  return false;
}

/** Whether the spool in `queueDir` holds the owner row of process `pid` (its open committed). */
export function ownerWritten(queueDir: string, pid: number): boolean {
  const needle = Buffer.from(`"pid":${pid},`);
  for (const f of [SPOOL_FILE, `${SPOOL_FILE}-wal`]) {
    try {
      if (readFileSync(join(queueDir, f)).includes(needle)) return true;
    } catch {
      // No WAL (clean close, or never opened).
    }
  }
  return false;
}

/** Bytes in the spool's WAL: > 0 before a start means that start has a log to recover. */
export function walBytes(queueDir: string): number {
  try {
    return statSync(join(queueDir, `${SPOOL_FILE}-wal`)).size;
  } catch {
    return 0;
  }
}

/** Classifies a kill from the evidence gathered around it. */
export function killPhase(e: { sawSpoolOpen: boolean; ownerWritten: boolean; ready: boolean }): KillPhase {
  if (e.ready) return 'serving';
  if (e.ownerWritten) return 'after-spool';
  return e.sawSpoolOpen ? 'opening-spool' : 'before-spool';
}

/**
 * Holds a POSIX write lock on SQLite's shared-lock byte range of the spool database (SHARED_FIRST
 * = 0x40000002, 510 bytes: sqlite3 os_unix.c), from a python3 helper, since node has no fcntl. A
 * process opening the spool meanwhile cannot take its first shared lock: it waits inside
 * `openSqliteSpool` for up to its busy timeout, so a kill then lands inside the open for certain,
 * on any load. The database file must exist. `release()` drops the lock.
 */
export async function holdSpoolLock(queueDir: string): Promise<{ release(): Promise<void> }> {
  const script = [
    'import fcntl, os, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR)',
    'fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, 0)',
    "print('locked', flush=True)",
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script, join(queueDir, SPOOL_FILE)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      if (s.includes('locked')) resolve();
    });
    child.on('error', reject);
    void exited.then(() => reject(new Error(`the lock helper exited: ${err}`)));
  });
  return {
    release: async () => {
      child.stdin.end();
      await exited;
    },
  };
}
