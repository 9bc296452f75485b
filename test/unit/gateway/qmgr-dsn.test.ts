/**
 * The DSNs the queue manager sends, with a scripted delivery step: results and the DSNs they
 * cause are stored in one step; RFC 3461 NOTIFY and RET are honoured; a report about mail that
 * arrived unauthenticated from outside the trusted networks returns headers only (backscatter);
 * RFC 3461 §5.2.1/§5.2.2: no own report when the next hop took NOTIFY, "relayed" when it could not.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { PosternEvent } from '../../../src/core/events.ts';
import type { DeliveryDeps } from '../../../src/delivery/deliver.ts';
import type { DnsClient } from '../../../src/dns/resolver.ts';
import { QueueManager } from '../../../src/gateway/qmgr.ts';
import type { QueueManagerOptions } from '../../../src/gateway/qmgr.ts';
import { PolicyTable } from '../../../src/policy/table.ts';
import { createSchedule } from '../../../src/queue/schedule.ts';
import { openSqliteSpool } from '../../../src/queue/sqlite.ts';
import type { Envelope, QueuedMessage, RecipientStatus, Spool } from '../../../src/queue/types.ts';
import { testClock } from '../queue/spool-contract.ts';
import { testEnvelope } from '../../helpers/queued.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const noDns: DnsClient = {
  mx: () => Promise.reject(new Error('no DNS in this test')),
  mxLookup: () => Promise.reject(new Error('no DNS in this test')),
  addresses: () => Promise.reject(new Error('no DNS in this test')),
  txt: () => Promise.reject(new Error('no DNS in this test')),
  srv: () => Promise.reject(new Error('no DNS in this test')),
  servers: [],
};

const BODY = Buffer.from(
  'Subject: secret plans\r\nMessage-ID: <m1@client.test>\r\n\r\nthe body only the sender should see\r\n',
);

function envelope(o: Partial<Envelope> & { notify?: Envelope['recipients'][number]['dsn']['notify'] } = {}): Envelope {
  const { notify = null, ...rest } = o;
  const base = testEnvelope('victim@third.test', ['rcpt@dest.test'], {
    notify,
    clientAddress: '198.51.100.7',
    clientHelo: 'client.test',
    receivedAt: '2025-07-01T10:00:00.000Z',
  });
  return { ...base, ...rest };
}

type Outcome = Pick<RecipientStatus, 'state' | 'lastReply'> & { dsnPassedOn?: boolean };

interface Harness {
  spool: Spool;
  qmgr: QueueManager;
  events: PosternEvent[];
  clock: ReturnType<typeof testClock>;
  /** Messages in the spool other than `id`: the DSNs. */
  others(id: string): Promise<Array<{ msg: QueuedMessage; text: string }>>;
  close(): Promise<void>;
}

async function harness(
  outcome: Outcome,
  o: Partial<QueueManagerOptions> = {},
  wrap?: (s: Spool) => Spool,
): Promise<Harness> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qmgr-dsn-'));
  dirs.push(dir);
  const clock = testClock();
  const raw = await openSqliteSpool(path.join(dir, 'queue'), { now: clock.now });
  const spool = wrap ? wrap(raw) : raw;
  const events: PosternEvent[] = [];
  const deps: DeliveryDeps = {
    dns: noDns,
    policy: new PolicyTable({ default: { level: 'may', profile: null } }),
    routes: {},
    heloName: 'relay.test',
    now: clock.now,
  };
  const qmgr = new QueueManager(spool, deps, {
    hostname: 'relay.test',
    concurrency: 4,
    pollMs: 60_000,
    schedule: createSchedule(),
    log: pino({ level: 'silent' }),
    events: { emit: (e) => void events.push(e) },
    deliver: async (msg) =>
      msg.recipients.map((r) => ({
        ...r,
        ...outcome,
        attempts: r.attempts + 1,
        reason: 'scripted',
        nextAttemptAt: null,
        updatedAt: clock.now().toISOString(),
      })),
    ...o,
  });
  return {
    spool,
    qmgr,
    events,
    clock,
    others: async (id) => {
      const out: Array<{ msg: QueuedMessage; text: string }> = [];
      for (const msg of await raw.list()) {
        if (msg.id !== id) out.push({ msg, text: (await raw.readMessage(msg.id)).toString('latin1') });
      }
      return out;
    },
    close: async () => {
      await qmgr.stop();
      await raw.close();
    },
  };
}

const BOUNCE: Outcome = { state: 'bounced', lastReply: '550 5.1.1 no such user' };
const DELIVERED: Outcome = { state: 'delivered', lastReply: '250 2.0.0 ok' };

async function bounceOf(env: Envelope, o: Partial<QueueManagerOptions> = {}): Promise<string> {
  const h = await harness(BOUNCE, o);
  try {
    const id = await h.spool.enqueue(env, BODY);
    await h.qmgr.pass();
    const dsns = await h.others(id);
    assert.equal(dsns.length, 1, 'one bounce');
    assert.equal(dsns[0]!.msg.envelope.mailFrom, '');
    assert.deepEqual(
      dsns[0]!.msg.envelope.recipients.map((r) => r.address),
      [env.mailFrom],
    );
    return dsns[0]!.text;
  } finally {
    await h.close();
  }
}

describe('QueueManager DSNs: what a bounce returns (backscatter defence)', () => {
  it('mail that arrived unauthenticated from outside the trusted networks bounces with headers only', async () => {
    const text = await bounceOf(envelope());
    assert.match(text, /^Content-Type: text\/rfc822-headers/m);
    assert.match(text, /^Subject: secret plans/m, 'the headers are returned');
    assert.ok(
      !text.includes('the body only the sender should see'),
      'the body is not sent to a possibly forged sender',
    );
    assert.ok(!/message\/rfc822/.test(text));
  });

  it('the sender asking RET=FULL gets the full message back', async () => {
    const text = await bounceOf(envelope({ dsnRet: 'FULL' }));
    assert.match(text, /^Content-Type: message\/rfc822/m);
    assert.ok(text.includes('the body only the sender should see'));
  });

  it('authenticated mail, and mail from a trusted network, get the full message back', async () => {
    const auth = envelope();
    auth.arrival = { ...auth.arrival, listener: 'submission', authUser: 'victim@third.test' };
    assert.ok((await bounceOf(auth)).includes('the body only the sender should see'));
    const fromLan = await bounceOf(envelope(), { trustedClient: (a) => a.clientAddress === '198.51.100.7' });
    assert.ok(fromLan.includes('the body only the sender should see'));
    // RET=HDRS from a known sender is still honoured.
    const hdrs = { ...auth, dsnRet: 'HDRS' as const };
    assert.ok(!(await bounceOf(hdrs)).includes('the body only the sender should see'));
  });
});

describe('QueueManager DSNs: success reports (RFC 3461 §5.2.1, §5.2.2)', () => {
  it('NOTIFY=SUCCESS passed on to a DSN-capable next hop: postern sends no report of its own', async () => {
    const h = await harness({ ...DELIVERED, dsnPassedOn: true });
    try {
      const id = await h.spool.enqueue(envelope({ notify: ['SUCCESS'] }), BODY);
      await h.qmgr.pass();
      assert.equal(await h.spool.get(id), null, 'delivered: the message left the queue');
      assert.deepEqual(await h.others(id), [], 'no "delivered" DSN next to the next hop\'s own');
      assert.ok(!h.events.some((e) => e.event === 'qmgr.dsn'));
    } finally {
      await h.close();
    }
  });

  it('NOTIFY=SUCCESS relayed to a next hop without DSN: one "relayed" report, not "delivered"', async () => {
    const h = await harness({ ...DELIVERED, dsnPassedOn: false });
    try {
      const id = await h.spool.enqueue(envelope({ notify: ['SUCCESS', 'FAILURE'] }), BODY);
      await h.qmgr.pass();
      const dsns = await h.others(id);
      assert.equal(dsns.length, 1);
      assert.match(dsns[0]!.text, /^Action: relayed\r$/m);
      assert.ok(!/^Action: delivered/m.test(dsns[0]!.text));
      const ev = h.events.find((e) => e.event === 'qmgr.dsn');
      assert.deepEqual(ev, {
        event: 'qmgr.dsn',
        msgId: id,
        dsnId: dsns[0]!.msg.id,
        action: 'relayed',
        recipients: ['rcpt@dest.test'],
      });
    } finally {
      await h.close();
    }
  });

  it('no success report without NOTIFY=SUCCESS', async () => {
    const h = await harness({ ...DELIVERED, dsnPassedOn: false });
    try {
      const id = await h.spool.enqueue(envelope(), BODY);
      await h.qmgr.pass();
      assert.deepEqual(await h.others(id), []);
    } finally {
      await h.close();
    }
  });
});

describe('QueueManager DSNs: none wanted', () => {
  it('NOTIFY=NEVER: a bounce sends no DSN, and the message leaves the queue', async () => {
    const h = await harness(BOUNCE);
    try {
      const id = await h.spool.enqueue(envelope({ notify: 'NEVER' }), BODY);
      await h.qmgr.pass();
      assert.equal(await h.spool.get(id), null);
      assert.deepEqual(await h.others(id), []);
    } finally {
      await h.close();
    }
  });

  it('the null sender: no bounce of a bounce, reported as qmgr.dsn-dropped', async () => {
    const h = await harness(BOUNCE);
    try {
      const id = await h.spool.enqueue(envelope({ mailFrom: '' }), BODY);
      await h.qmgr.pass();
      assert.deepEqual(await h.others(id), []);
      assert.ok(h.events.some((e) => e.event === 'qmgr.dsn-dropped' && e.msgId === id));
    } finally {
      await h.close();
    }
  });
});

describe('QueueManager: results and their DSNs in one step', () => {
  it('when storing the results fails, no DSN was queued and the message is still there to retry', async () => {
    let failures = 1;
    const h = await harness(BOUNCE, {}, (s) => {
      // The backend fails the step (disk full, lost lease …) after the bounce was planned.
      const wrapped: Spool = Object.create(s) as Spool;
      wrapped.complete = (claim, c) => (failures-- > 0 ? Promise.reject(new Error('disk full')) : s.complete(claim, c));
      wrapped.claim = s.claim.bind(s);
      wrapped.release = s.release.bind(s);
      wrapped.readMessage = s.readMessage.bind(s);
      wrapped.enqueue = s.enqueue.bind(s);
      wrapped.get = s.get.bind(s);
      return wrapped;
    });
    try {
      const id = await h.spool.enqueue(envelope(), BODY);
      await h.qmgr.pass();
      assert.deepEqual(await h.others(id), [], 'no DSN without the results that caused it');
      assert.equal((await h.spool.get(id))?.recipients[0]!.state, 'queued', 'still queued');
      assert.ok(h.events.some((e) => e.event === 'qmgr.deliver-error' && e.msgId === id && e.err === 'disk full'));
      // Given back, so the next pass bounces it once, with exactly one DSN.
      await h.qmgr.pass();
      assert.equal(await h.spool.get(id), null);
      assert.equal((await h.others(id)).length, 1);
    } finally {
      await h.close();
    }
  });
});

describe('QueueManager: delay warning and expiry', () => {
  it('warns once after 4 h of deferral, and bounces with the last temporary status after 5 days', async () => {
    const h = await harness({ state: 'deferred', lastReply: '451 4.7.5 TLS policy not met' });
    try {
      const id = await h.spool.enqueue(envelope(), BODY);
      await h.qmgr.pass();
      assert.equal((await h.spool.get(id))?.recipients[0]!.state, 'deferred');
      assert.deepEqual(await h.others(id), []);
      h.clock.advance(4 * 3_600_000 + 1);
      await h.qmgr.pass();
      let dsns = await h.others(id);
      assert.equal(dsns.length, 1, 'one delay warning');
      assert.match(dsns[0]!.text, /^Action: delayed\r$/m);
      assert.match(dsns[0]!.text, /^Will-Retry-Until: Sun, 06 Jul 2025 10:00:00 \+0000\r$/m);
      assert.equal((await h.spool.get(id))?.warned, true);
      h.clock.advance(3_600_000);
      await h.qmgr.pass();
      assert.equal((await h.others(id)).length, 1, 'warned once only');
      // 5 days after arrival (the delay warning itself, queued 4 h later, has not expired yet).
      h.clock.advance(5 * 86_400_000 - 5 * 3_600_000);
      await h.qmgr.pass();
      assert.equal(await h.spool.get(id), null, 'expired: the message left the queue');
      dsns = await h.others(id);
      assert.equal(dsns.length, 2);
      const bounce = dsns.find((d) => /^Action: failed\r$/m.test(d.text));
      assert.ok(bounce, 'a failure report');
      // The temporary failure that kept it queued, still 4.x.x (RFC 3464 §2.3.4), and the lifetime in words.
      assert.match(bounce.text, /^Status: 4\.7\.5\r$/m);
      assert.match(bounce.text, /gave up after 5 days in the queue/);
      assert.ok(h.events.some((e) => e.event === 'qmgr.expired' && e.msgId === id));
    } finally {
      await h.close();
    }
  });
});
