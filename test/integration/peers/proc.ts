import { execFile, spawn } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { PosternError } from '../../../src/core/errors.ts';

/** Result of a finished command; `code` is null when it was killed by a signal. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command (no shell) with a timeout; never throws for a non-zero exit, only for spawn errors. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
        cwd: opts.cwd,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number' && err.signal == null && !err.killed) {
          reject(new PosternError('peer-exec-failed', `cannot run ${cmd}: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/**
 * Run a command that daemonizes (`postfix start`, `dovecot`) with its output sent to `outFile`
 * and resolve when the command itself exits. Pipes are avoided on purpose: the forked daemons
 * inherit them, which delays both `close` and (measured with Postfix's `master -w`) the exit.
 */
export async function runStarter(
  cmd: string,
  args: readonly string[],
  outFile: string,
  timeoutMs = 60_000,
): Promise<RunResult> {
  const out = await open(outFile, 'a', 0o600);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', out.fd, out.fd] });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new PosternError('peer-exec-failed', `cannot run ${cmd}: ${e.message}`, { cause: e }));
      });
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const text = await readFile(outFile, 'utf8').catch(() => '');
    return { code, stdout: text, stderr: text };
  } finally {
    await out.close();
  }
}

/** Like run(), but throws PosternError('peer-command-failed') on a non-zero exit. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new PosternError(
      'peer-command-failed',
      `${cmd} ${args.join(' ')} exited ${String(r.code)}: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`,
    );
  }
  return r;
}

/** True while `pid` exists and is not a zombie (an exited child nobody reaped yet counts as gone). */
export async function pidAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised comm (which may itself contain spaces or parens).
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Read a daemon pid file (Postfix pads its pid with spaces). */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const n = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(n) && n > 1 ? n : null;
  } catch {
    return null;
  }
}

/**
 * A daemon writes its pid file after the starter process has already exited 0; under load that
 * takes a moment, so poll for it (up to `timeoutMs`) instead of reading once.
 */
export async function waitForPidFile(path: string, timeoutMs = 5000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = await readPidFile(path);
    if (pid !== null || Date.now() >= deadline) return pid;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Poll until `pid` is gone or `timeoutMs` passes; returns whether it is gone. */
export async function waitPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await pidAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !(await pidAlive(pid));
}

/** Process group id of `pid`, or null if it is gone. */
export async function pgidOf(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number.parseInt(rest[2] ?? '', 10); // state ppid pgrp …
    return Number.isInteger(pgid) ? pgid : null;
  } catch {
    return null;
  }
}

/** Live (non-zombie) pids whose process group is `pgid`, read from /proc. */
export async function groupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if ((await pgidOf(pid)) === pgid && (await pidAlive(pid))) out.push(pid);
  }
  return out;
}

/**
 * Stop a daemon we started that leads its own process group (Postfix and Dovecot masters call
 * setsid): SIGTERM the leader, wait for the whole group to exit, SIGKILL the group if it will not.
 */
export async function stopDaemon(pid: number, timeoutMs = 10_000): Promise<void> {
  const ownGroup = (await pgidOf(pid)) === pid;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const left = ownGroup ? await groupMembers(pid) : (await pidAlive(pid)) ? [pid] : [];
    if (left.length === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  await killDaemon(pid);
}

/**
 * Force-stop a daemon we started: SIGKILL its process group when the daemon leads its own group
 * (Postfix master and Dovecot master both call setsid, so the group is exactly that instance),
 * else only the pid itself. Never touches other processes.
 */
export async function killDaemon(pid: number): Promise<void> {
  const pgid = await pgidOf(pid);
  try {
    if (pgid === pid) process.kill(-pid, 'SIGKILL');
    else process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  await waitPidGone(pid, 2000);
}

/** Daemons still running when the test process exits get SIGTERM (sync; 'exit' allows no awaits). */
const liveDaemons = new Set<number>();
let exitHookInstalled = false;

export function trackDaemon(pid: number): void {
  liveDaemons.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of liveDaemons) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          // gone
        }
      }
    });
  }
}

export function untrackDaemon(pid: number): void {
  liveDaemons.delete(pid);
}
