/**
 * The Spool contract (src/queue/types.ts) as a test suite every backend runs: call
 * `spoolContract(name, factory)` from a backend's test file (spool-sqlite.test.ts today, a
 * PostgreSQL spool later). The factory gets the test's clock and returns a fresh, empty spool.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Claim, Envelope, NewMessage, RecipientStatus, Spool } from '../../../src/queue/types.ts';

export interface SpoolFactory {
  /** A fresh, empty spool whose enqueue/retryNow read `now`. */
  (now: () => Date): Promise<Spool>;
}

/** A clock the test moves by hand. */
export function testClock(start = '2025-07-01T10:00:00.000Z'): { now: () => Date; advance: (ms: number) => void } {
  let t = Date.parse(start);
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

export function testEnvelope(rcpts: string[] = ['bob@example.org'], extra: Partial<Envelope> = {}): Envelope {
  return {
    mailFrom: 'alice@example.com',
    recipients: rcpts.map((address) => ({ address, dsn: { notify: null, orcpt: `rfc822;${address}` } })),
    size: null,
    body: '8BITMIME',
    smtputf8: false,
    requireTls: true,
    dsnRet: 'HDRS',
    dsnEnvid: 'env-1',
    arrival: {
      listener: 'submission',
      clientAddress: '127.0.0.1',
      clientHelo: 'client.test',
      authUser: 'alice',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256, clientCertSubject: null },
      receivedAt: '2025-07-01T10:00:00.000Z',
    },
    ...extra,
  };
}

/** A recipient result as the queue manager hands it to `complete` (after the schedule settled it). */
export function result(
  id: number,
  address: string,
  state: RecipientStatus['state'],
  extra: Partial<RecipientStatus> = {},
): RecipientStatus {
  return {
    id,
    address,
    state,
    attempts: 1,
    lastReply: null,
    reason: null,
    nextAttemptAt: null,
    updatedAt: '2025-07-01T10:00:00.000Z',
    ...extra,
  };
}

function dsnMail(to = 'alice@example.com', text = 'a report'): NewMessage {
  return {
    envelope: { ...testEnvelope([to]), mailFrom: '', dsnRet: null, dsnEnvid: null },
    message: Buffer.from(`Subject: ${text}\r\n\r\n${text}\r\n`),
  };
}

const LATER = '2025-07-01T11:00:00.000Z';

/** Register the contract's tests for one backend. */
export function spoolContract(name: string, factory: SpoolFactory): void {
  describe(`Spool contract: ${name}`, () => {
    async function fresh(): Promise<{ spool: Spool; clock: ReturnType<typeof testClock> }> {
      const clock = testClock();
      return { spool: await factory(clock.now), clock };
    }
    async function claimOne(spool: Spool, now: Date): Promise<Claim> {
      const [m] = await spool.claim(now, 1);
      assert.ok(m, 'a message to claim');
      return m.claim;
    }

    it('stores envelope and bytes exactly; recipients get ids in envelope order', async () => {
      const { spool } = await fresh();
      try {
        const bytes = Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), Buffer.from([0, 1, 0xff, 13, 10])]);
        const env = testEnvelope(['bob@example.org', 'carol@example.org', 'bob@example.org']);
        const id = await spool.enqueue(env, bytes);
        const m = await spool.get(id);
        assert.ok(m);
        assert.deepEqual(m.envelope, env);
        assert.equal(m.size, bytes.length);
        assert.equal(m.createdAt, '2025-07-01T10:00:00.000Z');
        assert.equal(m.warned, false);
        assert.deepEqual(
          m.recipients.map((r) => [r.id, r.address, r.state, r.attempts]),
          [
            [0, 'bob@example.org', 'queued', 0],
            [1, 'carol@example.org', 'queued', 0],
            [2, 'bob@example.org', 'queued', 0],
          ],
        );
        assert.deepEqual(await spool.readMessage(id), bytes);
        assert.equal(await spool.get('00000000000000000000'), null);
        await assert.rejects(spool.readMessage('00000000000000000000'), { code: 'queue-not-found' });
        await assert.rejects(spool.enqueue({ ...env, recipients: [] }, bytes), { code: 'queue-invalid' });
      } finally {
        await spool.close();
      }
    });

    it('claims due messages oldest first, up to the limit', async () => {
      const { spool, clock } = await fresh();
      try {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          ids.push(await spool.enqueue(testEnvelope(), Buffer.from(String(i))));
          clock.advance(1000);
        }
        // At 10:00:01.5 only the first two exist "yet".
        const early = await spool.claim(new Date(Date.parse('2025-07-01T10:00:01.500Z')), 10);
        assert.deepEqual(
          early.map((m) => m.id),
          ids.slice(0, 2),
        );
        const next = await spool.claim(clock.now(), 2);
        assert.deepEqual(
          next.map((m) => m.id),
          ids.slice(2, 4),
        );
        for (const m of next) assert.equal(m.claim.id, m.id);
      } finally {
        await spool.close();
      }
    });

    it('claims the longest-due first: a retry takes its turn by the time it became due', async () => {
      const { spool, clock } = await fresh();
      try {
        const a = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
        const [m] = await spool.claim(clock.now(), 1);
        await spool.complete(m!.claim, {
          recipients: [result(0, 'a@x.test', 'deferred', { nextAttemptAt: '2025-07-01T10:10:00.000Z' })],
        });
        clock.advance(5 * 60_000);
        const b = await spool.enqueue(testEnvelope(['b@x.test']), Buffer.from('b')); // due since 10:05
        clock.advance(15 * 60_000);
        const order: string[] = [];
        for (let i = 0; i < 2; i++) order.push(...(await spool.claim(clock.now(), 1)).map((x) => x.id));
        assert.deepEqual(order, [b, a]);
      } finally {
        await spool.close();
      }
    });

    it('claims are exclusive: concurrent claimers get disjoint messages, a held message is not handed out', async () => {
      const { spool, clock } = await fresh();
      try {
        for (let i = 0; i < 6; i++) await spool.enqueue(testEnvelope(), Buffer.from(String(i)));
        const [a, b] = await Promise.all([spool.claim(clock.now(), 4), spool.claim(clock.now(), 4)]);
        const ids = [...a, ...b].map((m) => m.id);
        assert.equal(ids.length, 6, 'every message claimed once');
        assert.equal(new Set(ids).size, 6, 'no message claimed twice');
        assert.deepEqual(await spool.claim(clock.now(), 10), []);
        assert.equal(new Set([...a, ...b].map((m) => m.claim.token)).size, 6, 'one token per claim');
      } finally {
        await spool.close();
      }
    });

    it('a lapsed lease can be taken over; the old holder can then no longer complete', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
        const [first] = await spool.claim(clock.now(), 1, { leaseMs: 60_000 });
        assert.ok(first);
        assert.equal(first.claim.leaseUntil, '2025-07-01T10:01:00.000Z');
        clock.advance(59_999);
        assert.deepEqual(await spool.claim(clock.now(), 1), [], 'the lease still holds');
        clock.advance(1);
        const [second] = await spool.claim(clock.now(), 1);
        assert.equal(second?.id, id, 'the lapsed claim is taken over');
        await assert.rejects(spool.complete(first.claim, { recipients: [result(0, 'a@x.test', 'delivered')] }), {
          code: 'queue-lease-lost',
        });
        assert.equal((await spool.get(id))?.recipients[0]!.state, 'queued', 'the stale completion changed nothing');
        const done = await spool.complete(second.claim, { recipients: [result(0, 'a@x.test', 'delivered')] });
        assert.deepEqual(done, { dsnIds: [], removed: true });
      } finally {
        await spool.close();
      }
    });

    it('renew keeps a claim past its first lease; a claim someone else took cannot be renewed', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
        const [m] = await spool.claim(clock.now(), 1, { leaseMs: 60_000 });
        clock.advance(50_000);
        const renewed = await spool.renew(m!.claim, clock.now(), 60_000);
        assert.equal(renewed.leaseUntil, '2025-07-01T10:01:50.000Z');
        assert.equal(renewed.token, m!.claim.token);
        clock.advance(20_000); // past the first lease, within the renewed one
        assert.deepEqual(await spool.claim(clock.now(), 1), [], 'still held');
        clock.advance(60_000);
        const [other] = await spool.claim(clock.now(), 1);
        assert.equal(other?.id, id, 'lapsed after the renewed lease');
        await assert.rejects(spool.renew(m!.claim, clock.now(), 60_000), { code: 'queue-lease-lost' });
        await spool.delete(id);
        await assert.rejects(spool.renew(other.claim, clock.now(), 60_000), { code: 'queue-not-found' });
      } finally {
        await spool.close();
      }
    });

    it('release gives a claim back; a stale release does nothing', async () => {
      const { spool, clock } = await fresh();
      try {
        await spool.enqueue(testEnvelope(), Buffer.from('a'));
        const c1 = await claimOne(spool, clock.now());
        await spool.release(c1);
        const c2 = await claimOne(spool, clock.now());
        await spool.release(c1); // c1 is no longer the claim: c2 keeps holding
        assert.deepEqual(await spool.claim(clock.now(), 1), []);
        await spool.release(c2);
        assert.equal((await spool.claim(clock.now(), 1)).length, 1);
      } finally {
        await spool.close();
      }
    });

    it('complete stores per-recipient results; deferred ones come back at their nextAttemptAt; all final removes', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test', 'b@x.test']), Buffer.from('x\r\n'));
        const c = await claimOne(spool, clock.now());
        const r = await spool.complete(c, {
          recipients: [
            result(0, 'a@x.test', 'delivered', { lastReply: '250 2.0.0 ok', dsnPassedOn: true }),
            result(1, 'b@x.test', 'deferred', {
              lastReply: '451 4.7.5 TLS',
              reason: 'TLS 1.0 only',
              nextAttemptAt: LATER,
            }),
          ],
        });
        assert.deepEqual(r, { dsnIds: [], removed: false });
        const m = await spool.get(id);
        assert.ok(m);
        assert.deepEqual(
          m.recipients.map((x) => [x.id, x.state, x.lastReply, x.nextAttemptAt]),
          [
            [0, 'delivered', '250 2.0.0 ok', null],
            [1, 'deferred', '451 4.7.5 TLS', LATER],
          ],
        );
        assert.equal(m.recipients[0]!.dsnPassedOn, true);
        assert.equal(m.recipients[1]!.reason, 'TLS 1.0 only');
        assert.deepEqual(await spool.counts(), { queued: 0, deferred: 1, delivered: 1, bounced: 0 });
        // Not due before its time, due at it.
        assert.deepEqual(await spool.claim(new Date(Date.parse(LATER) - 1), 1), []);
        const c2 = await claimOne(spool, new Date(LATER));
        assert.deepEqual(
          await spool.complete(c2, { recipients: [result(1, 'b@x.test', 'bounced', { attempts: 2 })] }),
          { dsnIds: [], removed: true },
        );
        assert.equal(await spool.get(id), null);
        await assert.rejects(spool.readMessage(id), { code: 'queue-not-found' });
        assert.deepEqual(await spool.counts(), { queued: 0, deferred: 0, delivered: 0, bounced: 0 });
      } finally {
        await spool.close();
      }
    });

    it('the storage computes no backoff: an open state without nextAttemptAt is refused', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('x'));
        const c = await claimOne(spool, clock.now());
        await assert.rejects(spool.complete(c, { recipients: [result(0, 'a@x.test', 'deferred')] }), {
          code: 'queue-invalid',
        });
        assert.equal((await spool.get(id))?.recipients[0]!.state, 'queued');
      } finally {
        await spool.close();
      }
    });

    it('addresses recipients by id: the same address twice is two recipients', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['dup@x.test', 'dup@x.test']), Buffer.from('x'));
        const c = await claimOne(spool, clock.now());
        await spool.complete(c, {
          recipients: [result(1, 'dup@x.test', 'bounced', { lastReply: '550 5.1.1 no' })],
        });
        const m = await spool.get(id);
        assert.deepEqual(
          m?.recipients.map((r) => [r.id, r.state]),
          [
            [0, 'queued'],
            [1, 'bounced'],
          ],
        );
        const c2 = await claimOne(spool, clock.now());
        await assert.rejects(
          spool.complete(c2, {
            recipients: [result(0, 'dup@x.test', 'delivered'), result(7, 'dup@x.test', 'delivered')],
          }),
          { code: 'queue-unknown-recipient' },
        );
        assert.equal((await spool.get(id))?.recipients[0]!.state, 'queued', 'nothing of the failed update stuck');
        // An id with another recipient's address is a caller's mix-up, refused.
        await assert.rejects(spool.complete(c2, { recipients: [result(0, 'other@x.test', 'delivered')] }), {
          code: 'queue-invalid',
        });
      } finally {
        await spool.close();
      }
    });

    it('complete is atomic with the DSNs it enqueues: a failure in the middle leaves nothing half-done', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test', 'b@x.test']), Buffer.from('original\r\n'));
        const c = await claimOne(spool, clock.now());
        const bad: NewMessage = { ...dsnMail(), envelope: { ...dsnMail().envelope, recipients: [] } };
        // Recipient updates first, one good DSN, then one that cannot be stored.
        await assert.rejects(
          spool.complete(c, {
            recipients: [result(0, 'a@x.test', 'bounced'), result(1, 'b@x.test', 'bounced')],
            dsns: [dsnMail(), bad],
            warned: true,
          }),
          { code: 'queue-invalid' },
        );
        const m = await spool.get(id);
        assert.ok(m, 'the message is still queued');
        assert.deepEqual(
          m.recipients.map((r) => r.state),
          ['queued', 'queued'],
        );
        assert.equal(m.warned, false);
        assert.deepEqual(
          (await spool.list()).map((x) => x.id),
          [id],
          'no DSN was stored',
        );
        // The claim is still held by the caller, who can retry the whole step.
        assert.deepEqual(await spool.claim(clock.now(), 1), []);
        const ok = await spool.complete(c, {
          recipients: [result(0, 'a@x.test', 'bounced'), result(1, 'b@x.test', 'bounced')],
          dsns: [dsnMail('alice@example.com', 'first'), dsnMail('other@example.com', 'second')],
        });
        assert.equal(ok.removed, true);
        assert.equal(ok.dsnIds.length, 2);
        assert.equal((await spool.readMessage(ok.dsnIds[0]!)).toString(), 'Subject: first\r\n\r\nfirst\r\n');
        const second = await spool.get(ok.dsnIds[1]!);
        assert.equal(second?.envelope.mailFrom, '');
        assert.deepEqual(
          second?.recipients.map((r) => [r.id, r.address, r.state]),
          [[0, 'other@example.com', 'queued']],
        );
        assert.equal(await spool.get(id), null);
        // The DSNs are ordinary queued mail, due now.
        assert.deepEqual(
          (await spool.claim(clock.now(), 10)).map((x) => x.id),
          ok.dsnIds,
        );
      } finally {
        await spool.close();
      }
    });

    it('delete works on a claimed message; its holder then cannot complete it (and no DSN is stored)', async () => {
      const { spool, clock } = await fresh();
      try {
        const id = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('x'));
        const c = await claimOne(spool, clock.now());
        assert.equal(await spool.delete(id), true);
        assert.equal(await spool.delete(id), false);
        await assert.rejects(spool.complete(c, { recipients: [result(0, 'a@x.test', 'bounced')], dsns: [dsnMail()] }), {
          code: 'queue-not-found',
        });
        assert.deepEqual(await spool.list(), []);
        await spool.release(c); // harmless
      } finally {
        await spool.close();
      }
    });

    it('retryNow makes deferred recipients due now, per message or all', async () => {
      const { spool, clock } = await fresh();
      try {
        const a = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
        const b = await spool.enqueue(testEnvelope(['b@x.test', 'b2@x.test']), Buffer.from('b'));
        for (const m of await spool.claim(clock.now(), 10)) {
          await spool.complete(m.claim, {
            recipients: m.recipients.map((r) => result(r.id, r.address, 'deferred', { nextAttemptAt: LATER })),
          });
        }
        assert.deepEqual(await spool.claim(clock.now(), 10), []);
        assert.equal(await spool.retryNow(a), 1);
        const got = await spool.claim(clock.now(), 10);
        assert.deepEqual(
          got.map((m) => m.id),
          [a],
        );
        for (const m of got) await spool.release(m.claim);
        assert.equal(await spool.retryNow(), 3);
        assert.deepEqual(
          (await spool.claim(clock.now(), 10)).map((m) => m.id),
          [a, b],
        );
        assert.equal(await spool.retryNow('00000000000000000000'), 0);
      } finally {
        await spool.close();
      }
    });

    it('hands out expired messages and due delay warnings by the cut-offs given; warned is set once', async () => {
      const { spool, clock } = await fresh();
      try {
        const old = await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
        clock.advance(3_600_000);
        const young = await spool.enqueue(testEnvelope(['b@x.test']), Buffer.from('b'));
        const cut = new Date(Date.parse('2025-07-01T10:30:00.000Z'));
        // Never attempted: expired yes (a pending recipient), delay warning no (nothing deferred).
        assert.deepEqual(
          await spool.claim(clock.now(), 10, { select: { kind: 'delay-warning', createdBefore: cut } }),
          [],
        );
        const exp = await spool.claim(clock.now(), 10, { select: { kind: 'expired', createdBefore: cut } });
        assert.deepEqual(
          exp.map((m) => m.id),
          [old],
        );
        await spool.release(exp[0]!.claim);
        for (const m of await spool.claim(clock.now(), 10)) {
          await spool.complete(m.claim, {
            recipients: [result(0, m.recipients[0]!.address, 'deferred', { nextAttemptAt: LATER })],
          });
        }
        const warn = await spool.claim(clock.now(), 10, { select: { kind: 'delay-warning', createdBefore: cut } });
        assert.deepEqual(
          warn.map((m) => m.id),
          [old],
        );
        await spool.complete(warn[0]!.claim, { recipients: [], dsns: [dsnMail()], warned: true });
        assert.equal((await spool.get(old))?.warned, true);
        assert.equal((await spool.get(young))?.warned, false);
        assert.deepEqual(
          await spool
            .claim(clock.now(), 10, { select: { kind: 'delay-warning', createdBefore: clock.now() } })
            .then((ms) => ms.map((m) => m.id)),
          [young],
          'warned once: only the other message is still due a warning',
        );
      } finally {
        await spool.close();
      }
    });

    it('lists oldest first, by state, one page at a time; counts by state; ages for metrics', async () => {
      const { spool, clock } = await fresh();
      try {
        const a = await spool.enqueue(testEnvelope(['a1@x.test', 'a2@x.test']), Buffer.from('a'));
        clock.advance(60_000);
        const b = await spool.enqueue(testEnvelope(['b@x.test']), Buffer.from('b'));
        clock.advance(60_000);
        const c = await spool.enqueue(testEnvelope(['c@x.test']), Buffer.from('c'));
        for (const m of await spool.claim(clock.now(), 2)) {
          await spool.complete(m.claim, {
            recipients:
              m.id === a
                ? [result(0, 'a1@x.test', 'delivered'), result(1, 'a2@x.test', 'deferred', { nextAttemptAt: LATER })]
                : [result(0, 'b@x.test', 'deferred', { nextAttemptAt: LATER })],
          });
        }
        assert.deepEqual(await spool.counts(), { queued: 1, deferred: 2, delivered: 1, bounced: 0 });
        const ids = async (f: Parameters<Spool['list']>[0]): Promise<string[]> =>
          (await spool.list(f)).map((m) => m.id);
        assert.deepEqual(await ids({}), [a, b, c]);
        assert.deepEqual(await ids({ state: 'deferred' }), [a, b]);
        assert.deepEqual(await ids({ state: 'queued' }), [c]);
        assert.deepEqual(await ids({ state: 'delivered' }), [a]);
        assert.deepEqual(await ids({ limit: 2 }), [a, b]);
        assert.deepEqual(await ids({ limit: 2, offset: 2 }), [c]);
        assert.deepEqual(await ids({ state: 'deferred', limit: 1, offset: 1 }), [b]);
        assert.deepEqual(await ids({ offset: 3 }), []);
        clock.advance(30_000); // a: 150 s old, b: 90 s, c: 30 s
        assert.deepEqual(await spool.ages(clock.now(), [60_000, 120_000, 3_600_000]), {
          messages: 3,
          oldestCreatedAt: '2025-07-01T10:00:00.000Z',
          olderThan: [2, 1, 0],
        });
        await spool.delete(a);
        await spool.delete(b);
        await spool.delete(c);
        assert.deepEqual(await spool.ages(clock.now(), [0]), { messages: 0, oldestCreatedAt: null, olderThan: [0] });
      } finally {
        await spool.close();
      }
    });

    it('refuses work after close', async () => {
      const { spool, clock } = await fresh();
      const id = await spool.enqueue(testEnvelope(), Buffer.from('x'));
      await spool.close();
      await assert.rejects(spool.get(id), { code: 'queue-closed' });
      await assert.rejects(spool.enqueue(testEnvelope(), Buffer.from('late')), { code: 'queue-closed' });
      await assert.rejects(spool.claim(clock.now(), 1), { code: 'queue-closed' });
      await spool.close(); // idempotent
    });
  });
}
