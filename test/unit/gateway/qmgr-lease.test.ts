/**
 * QueueManager and claim leases (the multi-node case of a shared spool): a slow delivery keeps its
 * message by renewing the lease; once a lease has lapsed and another node took the message, the
 * old holder's results are refused instead of being stored twice. Clock and delivery are scripted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { pino } from 'pino';
import type { PosternEvent } from '../../../src/core/events.ts';
import type { DeliveryDeps } from '../../../src/delivery/deliver.ts';
import type { DnsClient } from '../../../src/dns/resolver.ts';
import { QueueManager } from '../../../src/gateway/qmgr.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { createSchedule } from '../../../src/queue/schedule.ts';
import { openSqliteSpool } from '../../../src/queue/sqlite.ts';
import { testClock, testEnvelope } from '../queue/spool-contract.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const noDns = new Proxy({} as DnsClient, {
  get: (_t, k) => (k === 'servers' ? [] : () => Promise.reject(new Error('no DNS in this test'))),
});

it('renews the lease of a slow delivery; a lapsed lease taken over elsewhere refuses the old results', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qmgr-lease-'));
  dirs.push(dir);
  const clock = testClock();
  const spool = await openSqliteSpool(path.join(dir, 'q'), { now: clock.now });
  const events: PosternEvent[] = [];
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  let finish!: () => void;
  const gate = new Promise<void>((r) => (finish = r));
  const deps: DeliveryDeps = {
    dns: noDns,
    policy: new PolicyTable({ default: { level: 'may', profile: null } }),
    routes: {},
    heloName: 'relay.test',
    now: clock.now,
  };
  const qmgr = new QueueManager(spool, deps, {
    hostname: 'relay.test',
    concurrency: 2,
    pollMs: 60_000,
    leaseMs: 60_000,
    schedule: createSchedule(),
    log: pino({ level: 'silent' }),
    events: { emit: (e) => void events.push(e) },
    deliver: async (msg) => {
      started();
      await gate;
      return msg.recipients.map((r) => ({ ...r, state: 'delivered' as const, attempts: 1, nextAttemptAt: null }));
    },
  });
  try {
    const id = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('x'));
    const pass = qmgr.pass();
    await running;
    // 50 s in: renewed for another 60 s, so "another node" at 70 s finds nothing to take.
    clock.advance(50_000);
    await qmgr.renewLeases();
    clock.advance(20_000);
    assert.deepEqual(await spool.claim(clock.now(), 1), [], 'the slow delivery keeps its message');
    // Now no renewal: at 2 min 20 s the lease has lapsed and the other node takes the message.
    clock.advance(70_000);
    const [other] = await spool.claim(clock.now(), 1);
    assert.equal(other?.id, id);
    finish();
    await pass;
    assert.ok(
      events.some((e) => e.event === 'qmgr.deliver-error' && e.msgId === id && /lapsed/.test(e.err)),
      'the stale holder is told, and stores nothing',
    );
    assert.equal((await spool.get(id))?.recipients[0]!.state, 'queued', 'the new holder decides');
    await spool.complete(other.claim, { recipients: [] });
  } finally {
    await qmgr.stop();
    await spool.close();
  }
});
