/**
 * Shared bits of the benchmarks: child-process timing, medians, and rewriting one marked section
 * of docs/benchmarks.md so each benchmark owns its table and re-running it replaces, not appends.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BENCH_DOC = fileURLToPath(new URL('../docs/benchmarks.md', import.meta.url));

export interface TimedRun {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  timedOut: boolean;
}

/**
 * Runs a command (no shell) in its own process group and measures wall time from spawn to exit.
 * On timeout the whole group is killed (testssl.sh forks openssl and sleep children).
 */
export function timedRun(
  cmd: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    child.stdout.on('data', (b: Buffer) => {
      if ((outLen += b.length) < 64 * 1024 * 1024) out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 10_000) err.push(b);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, opts.timeoutMs ?? 600_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        wallMs: performance.now() - t0,
        timedOut,
      });
    });
  });
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** True when `cmd` is an executable in one of the usual system directories. */
export function haveCommand(cmd: string): boolean {
  return ['/usr/bin', '/usr/sbin', '/bin', '/usr/local/bin'].some((d) => existsSync(`${d}/${cmd}`));
}

const DOC_HEAD = `# Benchmarks

Timing lives here, never in tests. Each benchmark measures postern against a peer in the same run
on the same machine and reports ratios, because absolute numbers move with the machine.

## How to run

As root (the peers need it), after installing the Debian peers once:

\`\`\`sh
export PATH=$PWD/node_modules/.bin:$PATH   # Node 24 from devDependencies
bash scripts/install-peers.sh              # postfix, testssl.sh, sslscan, …
node bench/scan.ts        # postern vs sslscan vs testssl.sh on one loopback Postfix (~3–5 min)
node bench/scan-bulk.ts   # 500 loopback testbed endpoints (~1–2 min)
node bench/testbed-start.ts
node bench/mta-relay.ts   # smtp-source → postern / Postfix → sink (~10–20 min)
node bench/smtp-sessions.ts   # 1,000 concurrent SMTP sessions: server RSS, accept latency (~1 min)
\`\`\`

Each run rewrites its own section below (between its markers) with the numbers it measured.
`;

/** Replace (or append) the section between `<!-- bench:NAME -->` markers in docs/benchmarks.md. */
export async function writeDocSection(name: string, body: string): Promise<void> {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  let doc = existsSync(BENCH_DOC) ? await readFile(BENCH_DOC, 'utf8') : DOC_HEAD;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) doc = doc.slice(0, i) + block + doc.slice(j + end.length);
  else doc = `${doc.trimEnd()}\n\n${block}\n`;
  await writeFile(BENCH_DOC, doc);
}

export function fmtS(ms: number): string {
  return (ms / 1000).toFixed(2);
}
