/**
 * The admin endpoint in-process over a real SQLite spool holding one deferred message, for the
 * admin security tests (test/security/admin-*.test.ts): raw HTTP requests with any Host, Origin,
 * Content-Type and Authorization, and what changed afterwards (the message's next attempt, kicks,
 * typed events).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { PosternEvent } from '../../src/core/events.ts';
import { adminTokens, startAdmin } from '../../src/gateway/admin.ts';
import type { AdminServer, AdminTokens } from '../../src/gateway/admin.ts';
import { createMetrics } from '../../src/gateway/metrics.ts';
import { openSqliteSpool } from '../../src/queue/sqlite.ts';
import type { SqliteSpool } from '../../src/queue/sqlite.ts';
import { queuedMessage } from './queued.ts';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 request to 127.0.0.1:port with exactly the given headers (Host included). */
export function httpRequest(
  port: number,
  o: { method: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method, path: o.path, headers: o.headers ?? {}, setHost: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

export interface TestAdmin {
  port: number;
  /** The Host header a legitimate client sends. */
  host: string;
  tokens: AdminTokens;
  tokenFile: string;
  metricsTokenFile: string;
  spool: SqliteSpool;
  /** The deferred message and the time of its next attempt (in the future). */
  id: string;
  nextAttemptAt: string;
  kicks: () => number;
  events: PosternEvent[];
  /** The message's next attempt now (unchanged = not flushed/retried). */
  nextAttempt(): Promise<string | null>;
  close(): Promise<void>;
}

const NOW = new Date('2026-12-04T18:00:00Z');

/** `now`: the clock of the refusal log bound (default: the real one). */
export async function startTestAdmin(o: { now?: () => number } = {}): Promise<TestAdmin> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-admin-'));
  const spool = await openSqliteSpool(join(dir, 'queue'), { now: () => NOW });
  const m = queuedMessage('x', ['rcpt@far.example'], Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  const id = await spool.enqueue(m.envelope, Buffer.from('Subject: x\r\n\r\nbody\r\n'));
  const nextAttemptAt = new Date(NOW.getTime() + 3_600_000).toISOString();
  // Defer it through the spool's own contract: claim, then complete with a future retry time.
  const [claimed] = await spool.claim(NOW, 1);
  if (claimed === undefined) throw new Error('test admin: the enqueued message was not claimable');
  await spool.complete(claimed.claim, {
    recipients: claimed.recipients.map((r) => ({
      ...r,
      state: 'deferred' as const,
      attempts: 1,
      lastReply: '451 4.4.1 try later',
      reason: 'the receiving server asked to try later',
      nextAttemptAt,
      updatedAt: NOW.toISOString(),
    })),
  });
  const events: PosternEvent[] = [];
  const sink = { emit: (e: PosternEvent) => void events.push(e) };
  const tokenFile = join(dir, 'queue', 'admin.token');
  const metricsTokenFile = join(dir, 'metrics.token');
  const tokens = await adminTokens({ tokenFile, metricsTokenFile }, sink);
  let kicks = 0;
  const admin: AdminServer = await startAdmin({
    address: '127.0.0.1',
    port: 0,
    spool,
    metrics: createMetrics(),
    tokens,
    kick: () => void kicks++,
    log: pino({ level: 'silent' }),
    events: sink,
    ...(o.now ? { now: o.now } : {}),
  });
  return {
    port: admin.address.port,
    host: `127.0.0.1:${admin.address.port}`,
    tokens,
    tokenFile,
    metricsTokenFile,
    spool,
    id,
    nextAttemptAt,
    kicks: () => kicks,
    events,
    nextAttempt: async () => (await spool.get(id))?.recipients[0]?.nextAttemptAt ?? null,
    async close() {
      await admin.close();
      await spool.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
