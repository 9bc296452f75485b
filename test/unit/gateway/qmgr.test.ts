/**
 * QueueManager's outbound connection cache: consecutive messages to one destination go over one
 * SMTP session (as Postfix's scache does), and stop() QUITs the idle session. A loopback sink
 * counts connections and messages.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { DeliveryDeps } from '../../../src/delivery/deliver.ts';
import type { DnsClient } from '../../../src/dns/resolver.ts';
import { describeDuration, QueueManager } from '../../../src/gateway/qmgr.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { createSchedule } from '../../../src/queue/schedule.ts';
import { openSqliteSpool } from '../../../src/queue/sqlite.ts';
import type { Envelope } from '../../../src/queue/types.ts';
import { startSmtpSink } from '../../helpers/smtp-sink.ts';
import { testEnvelope } from '../../helpers/queued.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function envelope(rcpt: string, notify: Envelope['recipients'][number]['dsn']['notify'] = null): Envelope {
  return testEnvelope('alice@example.com', [rcpt], { notify, clientHelo: 'client.test' });
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const noDns: DnsClient = {
  mx: () => Promise.reject(new Error('no DNS in this test')),
  mxLookup: () => Promise.reject(new Error('no DNS in this test')),
  addresses: () => Promise.reject(new Error('no DNS in this test')),
  txt: () => Promise.reject(new Error('no DNS in this test')),
  srv: () => Promise.reject(new Error('no DNS in this test')),
  servers: [],
};

describe('QueueManager connection reuse', () => {
  it('sends consecutive messages to one destination over one session and QUITs it on stop', async () => {
    // Plain SMTP (no STARTTLS), PIPELINING only: the scriptable sink counts connections and QUITs.
    const sink = await startSmtpSink({ hostname: 'sink.test', extensions: ['PIPELINING'] });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qmgr-'));
    dirs.push(dir);
    const spool = await openSqliteSpool(path.join(dir, 'queue'));
    const deps: DeliveryDeps = {
      dns: noDns,
      policy: new PolicyTable({ default: { level: 'may', profile: null } }),
      routes: { 'dest.test': `127.0.0.1:${sink.port}` },
      heloName: 'relay.test',
      now: () => new Date(),
    };
    const qmgr = new QueueManager(spool, deps, {
      hostname: 'relay.test',
      concurrency: 4,
      pollMs: 50,
      schedule: createSchedule({ maxLifetimeMs: 86_400_000 }),
      log: pino({ level: 'silent' }),
    });
    qmgr.start();
    try {
      const body = Buffer.from('Subject: t\r\n\r\nhello\r\n');
      for (let i = 1; i <= 3; i++) {
        await spool.enqueue(envelope(`r${i}@dest.test`), body);
        qmgr.kick();
        await until(`message ${i} at the sink`, () => sink.messages.length === i);
        // Delivered: every recipient final, so the message leaves the queue.
        await until(`message ${i} leaving the queue`, async () => (await spool.list()).length === 0);
      }
      assert.equal(sink.connections, 1, 'three messages, one after the other, share one cached session');
      assert.equal(sink.quits, 0, 'the idle session stays open while the manager runs');
    } finally {
      await qmgr.stop();
      await spool.close();
    }
    await until('QUIT of the cached session on stop', () => sink.quits === 1, 3000);
    await sink.close();
  });
});

describe('QueueManager success reports with the real delivery step (RFC 3461 §5.2.1, §5.2.2)', () => {
  for (const dsn of [true, false]) {
    it(`NOTIFY=SUCCESS to a next hop ${dsn ? 'with' : 'without'} DSN: ${dsn ? 'passed on, no own report' : 'one "relayed" report'}`, async () => {
      const sink = await startSmtpSink({
        hostname: 'sink.test',
        extensions: dsn ? ['PIPELINING', 'DSN'] : ['PIPELINING'],
      });
      const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qmgr-'));
      dirs.push(dir);
      const spool = await openSqliteSpool(path.join(dir, 'queue'));
      const qmgr = new QueueManager(
        spool,
        {
          dns: noDns,
          policy: new PolicyTable({ default: { level: 'may', profile: null } }),
          routes: { 'dest.test': `127.0.0.1:${sink.port}` },
          heloName: 'relay.test',
          now: () => new Date(),
        },
        {
          hostname: 'relay.test',
          concurrency: 2,
          pollMs: 60_000,
          schedule: createSchedule(),
          log: pino({ level: 'silent' }),
        },
      );
      try {
        const id = await spool.enqueue(envelope('r@dest.test', ['SUCCESS']), Buffer.from('Subject: t\r\n\r\nhi\r\n'));
        await qmgr.pass();
        assert.equal(sink.messages.length, 1);
        assert.equal(await spool.get(id), null, 'delivered');
        const rcpt = sink.commands.find((c) => /^RCPT /i.test(c)) ?? '';
        const left = await spool.list();
        if (dsn) {
          assert.match(rcpt, /NOTIFY=SUCCESS/, 'NOTIFY passed on to the DSN-capable next hop');
          assert.deepEqual(left, [], 'the next hop reports; postern does not');
        } else {
          assert.doesNotMatch(rcpt, /NOTIFY/);
          assert.equal(left.length, 1);
          assert.match((await spool.readMessage(left[0]!.id)).toString(), /^Action: relayed\r$/m);
        }
      } finally {
        await qmgr.stop();
        await spool.close();
        await sink.close();
      }
    });
  }
});

it('describes queue lifetimes in words for bounce texts', () => {
  assert.equal(describeDuration(5 * 86_400_000), '5 days');
  assert.equal(describeDuration(86_400_000), '1 day');
  assert.equal(describeDuration(90 * 60_000), '1.5 hours');
  assert.equal(describeDuration(20 * 60_000), '20 minutes');
  assert.equal(describeDuration(1500), '1.5 seconds');
  assert.equal(describeDuration(10), '10 ms');
});
