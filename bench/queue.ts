/**
 * Queue enqueue throughput: 4 KiB messages into the SQLite spool, each acknowledged only after its
 * COMMIT (fsync) returned. Compares journal modes and group commit on/off, with `concurrency`
 * enqueue calls in flight (as many SMTP sessions would have). Usage:
 *   node bench/queue.ts [--count N] [--concurrency C] [--dir /path/on/the/real/disk]
 * Prints one line per configuration: messages/s and p50/p99 acknowledgement latency.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openSqliteSpool, type SqliteSpoolOptions } from '../src/queue/sqlite.ts';
import type { Envelope } from '../src/queue/types.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    dir: { type: 'string', default: os.tmpdir() },
  },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);

const envelope: Envelope = {
  mailFrom: 'sender@example.org',
  recipients: [{ address: 'rcpt@example.net', dsn: { notify: null, orcpt: null } }],
  size: 4096,
  body: '7BIT',
  smtputf8: false,
  requireTls: false,
  dsnRet: null,
  dsnEnvid: null,
  arrival: {
    listener: 'mx',
    clientAddress: '127.0.0.1',
    clientHelo: 'bench',
    authUser: null,
    tls: null,
    receivedAt: new Date().toISOString(),
  },
};
const message = Buffer.alloc(4096, 'x');

async function run(name: string, opts: SqliteSpoolOptions, inFlight: number): Promise<void> {
  const dir = mkdtempSync(path.join(values.dir, 'postern-qbench-'));
  const spool = await openSqliteSpool(dir, opts);
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  async function worker(): Promise<void> {
    while (next < count) {
      next++;
      const s = performance.now();
      await spool.enqueue(envelope, message);
      lat.push(performance.now() - s);
    }
  }
  await Promise.all(Array.from({ length: inFlight }, () => worker()));
  const secs = (performance.now() - t0) / 1000;
  await spool.close();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  const q = (p: number): string => (lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0).toFixed(2);
  console.log(
    `${name.padEnd(44)} ${(count / secs).toFixed(0).padStart(7)} msg/s   p50 ${q(0.5)} ms   p99 ${q(0.99)} ms`,
  );
}

console.log(`${count} x 4 KiB, ${concurrency} in flight, dir ${values.dir}`);
await run('wal+FULL, no group commit, 1 in flight', { groupCommit: false }, 1);
await run(`wal+FULL, no group commit, ${concurrency} in flight`, { groupCommit: false }, concurrency);
await run(`wal+FULL, group commit 0 ms, ${concurrency} in flight`, { groupCommit: { windowMs: 0 } }, concurrency);
await run(`wal+FULL, group commit 1 ms, ${concurrency} in flight`, { groupCommit: { windowMs: 1 } }, concurrency);
await run('wal+FULL, group commit 0 ms, 1 in flight', { groupCommit: { windowMs: 0 } }, 1);
await run('wal+FULL, group commit 1 ms, 1 in flight', { groupCommit: { windowMs: 1 } }, 1);
await run(
  `delete+EXTRA, no group commit, ${concurrency} in flight`,
  { groupCommit: false, journalMode: 'delete' },
  concurrency,
);
await run(
  `delete+EXTRA, group commit 1 ms, ${concurrency} in flight`,
  { groupCommit: { windowMs: 1 }, journalMode: 'delete' },
  concurrency,
);
