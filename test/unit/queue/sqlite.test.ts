import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  isQueueId,
  newQueueId,
  openSqliteSpool,
  SPOOL_FILE,
  type SqliteSpoolOptions,
} from '../../../src/queue/sqlite.ts';
import type { Envelope, RecipientStatus } from '../../../src/queue/types.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'postern-spool-'));
  dirs.push(d);
  return path.join(d, 'queue'); // a directory the spool must create itself
}

function envelope(rcpts: string[] = ['bob@example.org'], extra: Partial<Envelope> = {}): Envelope {
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

/** A clock the test moves by hand. */
function clock(start = '2025-07-01T10:00:00.000Z'): { now: () => Date; advance: (ms: number) => void } {
  let t = Date.parse(start);
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

const RETRY = { initialMs: 60_000, maxMs: 600_000, factor: 2, jitter: 0 };

async function open(dir: string, opts: SqliteSpoolOptions = {}) {
  return openSqliteSpool(dir, { busyTimeoutMs: 200, retry: RETRY, ...opts });
}

function status(address: string, state: RecipientStatus['state'], attempts = 1, extra: Partial<RecipientStatus> = {}) {
  return {
    address,
    state,
    attempts,
    lastReply: null,
    reason: null,
    nextAttemptAt: null,
    updatedAt: '',
    ...extra,
  } satisfies RecipientStatus;
}

describe('SQLite spool', () => {
  it('stores envelope and bytes exactly, in a 0700 directory and a 0600 file', async () => {
    const dir = tmp();
    const c = clock();
    const spool = await open(dir, { now: c.now });
    const bytes = Buffer.concat([
      Buffer.from('Subject: caf\xc3\xa9\r\n\r\n', 'latin1'),
      Buffer.from([0, 1, 0xff, 13, 10]),
    ]);
    const env = envelope(['bob@example.org', 'carol@example.org']);
    const id = await spool.enqueue(env, bytes);
    assert.ok(isQueueId(id), id);
    const m = await spool.get(id);
    assert.ok(m);
    assert.deepEqual(m.envelope, env);
    assert.equal(m.size, bytes.length);
    assert.equal(m.createdAt, '2025-07-01T10:00:00.000Z');
    assert.equal(m.warned, false);
    assert.deepEqual(
      m.recipients.map((r) => [r.address, r.state, r.attempts, r.lastReply]),
      [
        ['bob@example.org', 'queued', 0, null],
        ['carol@example.org', 'queued', 0, null],
      ],
    );
    assert.ok(Buffer.isBuffer(await spool.readMessage(id)));
    assert.deepEqual(await spool.readMessage(id), bytes);
    assert.equal(await spool.get('nonexistent'), null);
    await assert.rejects(spool.readMessage('nonexistent'), { code: 'queue-not-found' });
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(dir, SPOOL_FILE)).mode & 0o777, 0o600);
    assert.equal(spool.integrityCheck(), 'ok');
    await spool.close();
  });

  it('schedules, partially delivers and removes a message once every recipient is final', async () => {
    const c = clock();
    const spool = await open(tmp(), { now: c.now });
    const id = await spool.enqueue(envelope(['a@x.test', 'b@x.test']), Buffer.from('x\r\n'));
    assert.deepEqual(
      (await spool.due(c.now(), 10)).map((m) => m.id),
      [id],
    );
    await spool.updateRecipients(id, [
      status('a@x.test', 'delivered', 1, { lastReply: '250 2.0.0 ok' }),
      status('b@x.test', 'deferred', 1, { lastReply: '451 4.7.5 TLS policy', reason: 'TLS 1.0 only' }),
    ]);
    // b was deferred without a time: the spool applies the backoff (60 s, no jitter).
    assert.deepEqual(await spool.due(c.now(), 10), []);
    let m = await spool.get(id);
    assert.ok(m);
    assert.equal(m.recipients[0]!.state, 'delivered');
    assert.equal(m.recipients[0]!.nextAttemptAt, null);
    assert.equal(m.recipients[1]!.state, 'deferred');
    assert.equal(m.recipients[1]!.reason, 'TLS 1.0 only');
    assert.equal(m.recipients[1]!.nextAttemptAt, '2025-07-01T10:01:00.000Z');
    c.advance(59_999);
    assert.equal((await spool.due(c.now(), 10)).length, 0);
    c.advance(1);
    assert.deepEqual(
      (await spool.due(c.now(), 10)).map((x) => x.id),
      [id],
    );
    // An explicit nextAttemptAt wins over the backoff.
    await spool.updateRecipients(id, [
      status('b@x.test', 'deferred', 2, { nextAttemptAt: '2025-07-01T12:00:00.000Z' }),
    ]);
    m = await spool.get(id);
    assert.equal(m?.recipients[1]!.nextAttemptAt, '2025-07-01T12:00:00.000Z');
    assert.equal(m?.recipients[1].attempts, 2);
    await spool.updateRecipients(id, [status('b@x.test', 'bounced', 3, { lastReply: '550 5.7.1 no' })]);
    assert.equal(await spool.get(id), null);
    await assert.rejects(spool.readMessage(id), { code: 'queue-not-found' });
    assert.deepEqual(await spool.counts(), { queued: 0, deferred: 0, delivered: 0, bounced: 0 });
    await spool.close();
  });

  it('applies an update atomically: an unknown recipient rejects and changes nothing', async () => {
    const spool = await open(tmp());
    const id = await spool.enqueue(envelope(['a@x.test']), Buffer.from('x'));
    await assert.rejects(
      spool.updateRecipients(id, [status('a@x.test', 'delivered'), status('z@x.test', 'delivered')]),
      { code: 'queue-unknown-recipient' },
    );
    assert.equal((await spool.get(id))?.recipients[0]!.state, 'queued');
    await assert.rejects(spool.updateRecipients('nope', [status('a@x.test', 'delivered')]), {
      code: 'queue-not-found',
    });
    await spool.close();
  });

  it('due() is oldest first and honours its limit', async () => {
    const c = clock();
    const spool = await open(tmp(), { now: c.now });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await spool.enqueue(envelope(), Buffer.from(String(i))));
      c.advance(1000);
    }
    assert.deepEqual(
      (await spool.due(c.now(), 3)).map((m) => m.id),
      ids.slice(0, 3),
    );
    // A message queued "in the future" of the asked time is not due yet.
    assert.deepEqual(
      (await spool.due(new Date(Date.parse('2025-07-01T10:00:01.500Z')), 10)).map((m) => m.id),
      ids.slice(0, 2),
    );
    await spool.close();
  });

  it('retryNow makes deferred recipients due now, per message or all', async () => {
    const c = clock();
    const spool = await open(tmp(), { now: c.now });
    const a = await spool.enqueue(envelope(['a@x.test']), Buffer.from('a'));
    const b = await spool.enqueue(envelope(['b@x.test', 'b2@x.test']), Buffer.from('b'));
    await spool.updateRecipients(a, [status('a@x.test', 'deferred', 1)]);
    await spool.updateRecipients(b, [status('b@x.test', 'deferred', 5), status('b2@x.test', 'deferred', 5)]);
    assert.equal((await spool.due(c.now(), 10)).length, 0);
    assert.equal(await spool.retryNow(a), 1);
    assert.deepEqual(
      (await spool.due(c.now(), 10)).map((m) => m.id),
      [a],
    );
    assert.equal(await spool.retryNow(), 3);
    assert.deepEqual(
      (await spool.due(c.now(), 10)).map((m) => m.id),
      [a, b],
    );
    assert.equal(await spool.retryNow('unknown'), 0);
    await spool.close();
  });

  it('counts per state, list filters by state, delete removes message and bytes', async () => {
    const spool = await open(tmp());
    const a = await spool.enqueue(envelope(['a1@x.test', 'a2@x.test']), Buffer.from('a'));
    const b = await spool.enqueue(envelope(['b@x.test']), Buffer.from('b'));
    const c = await spool.enqueue(envelope(['c@x.test']), Buffer.from('c'));
    await spool.updateRecipients(a, [status('a1@x.test', 'delivered'), status('a2@x.test', 'deferred')]);
    await spool.updateRecipients(b, [status('b@x.test', 'deferred')]);
    assert.deepEqual(await spool.counts(), { queued: 1, deferred: 2, delivered: 1, bounced: 0 });
    assert.deepEqual(
      (await spool.list({ state: 'deferred' })).map((m) => m.id),
      [a, b],
    );
    assert.deepEqual(
      (await spool.list({ state: 'queued' })).map((m) => m.id),
      [c],
    );
    assert.deepEqual(
      (await spool.list({ state: 'delivered' })).map((m) => m.id),
      [a],
    );
    assert.deepEqual(
      (await spool.list()).map((m) => m.id),
      [a, b, c],
    );
    assert.deepEqual(
      (await spool.list({ limit: 2 })).map((m) => m.id),
      [a, b],
    );
    assert.equal(await spool.delete(b), true);
    assert.equal(await spool.delete(b), false);
    assert.equal(await spool.get(b), null);
    await assert.rejects(spool.readMessage(b), { code: 'queue-not-found' });
    assert.deepEqual(await spool.counts(), { queued: 1, deferred: 1, delivered: 1, bounced: 0 });
    await spool.close();
  });

  it('reports expired messages and due delay warnings, once', async () => {
    const c = clock();
    const spool = await open(tmp(), { now: c.now, maxLifetimeMs: 10 * 3_600_000, delayWarningMs: 3_600_000 });
    const id = await spool.enqueue(envelope(['a@x.test']), Buffer.from('a'));
    c.advance(2 * 3_600_000);
    // Still only queued, never attempted: no warning about a delay.
    assert.deepEqual(await spool.delayWarningsDue(), []);
    await spool.updateRecipients(id, [status('a@x.test', 'deferred')]);
    assert.deepEqual(
      (await spool.delayWarningsDue()).map((m) => m.id),
      [id],
    );
    await spool.markWarned(id);
    assert.equal((await spool.get(id))?.warned, true);
    assert.deepEqual(await spool.delayWarningsDue(), []);
    assert.deepEqual(await spool.expired(), []);
    c.advance(8 * 3_600_000);
    assert.deepEqual(
      (await spool.expired()).map((m) => m.id),
      [id],
    );
    await spool.close();
  });

  it('keeps everything across close and reopen', async () => {
    const dir = tmp();
    const c = clock();
    let spool = await open(dir, { now: c.now });
    const id = await spool.enqueue(envelope(['a@x.test', 'b@x.test']), Buffer.from('persist me\r\n'));
    await spool.updateRecipients(id, [status('a@x.test', 'delivered', 1, { lastReply: '250 ok' })]);
    await spool.markWarned(id);
    const before = await spool.get(id);
    await spool.close();
    await assert.rejects(spool.get(id), { code: 'queue-closed' });
    await assert.rejects(spool.enqueue(envelope(), Buffer.from('late')), { code: 'queue-closed' });
    spool = await open(dir, { now: c.now });
    assert.deepEqual(await spool.get(id), before);
    assert.equal((await spool.readMessage(id)).toString(), 'persist me\r\n');
    assert.equal(spool.integrityCheck(), 'ok');
    await spool.close();
  });

  it('is single-writer: a second open of the same spool fails with queue-locked until the first closes', async () => {
    const dir = tmp();
    const first = await open(dir);
    await first.enqueue(envelope(), Buffer.from('x'));
    await assert.rejects(open(dir), { code: 'queue-locked' });
    await first.close();
    const second = await open(dir);
    assert.equal((await second.list()).length, 1);
    await second.close();
  });

  it('group commit: 10 000 concurrent enqueues all resolve with unique, valid ids, all stored', async () => {
    const spool = await open(tmp());
    const n = 10_000;
    const ids = await Promise.all(
      Array.from({ length: n }, (_, i) => spool.enqueue(envelope([`r${i}@x.test`]), Buffer.from(`message ${i}\r\n`))),
    );
    assert.equal(new Set(ids).size, n);
    assert.ok(ids.every(isQueueId));
    assert.equal((await spool.counts()).queued, n);
    // Each caller got the id of its own message.
    for (const i of [0, 1, 4999, 9999]) assert.equal((await spool.readMessage(ids[i]!)).toString(), `message ${i}\r\n`);
    await spool.close();
  });

  it('group commit: one failing write in a batch rejects alone; its neighbours commit', async () => {
    const spool = await open(tmp());
    const id = await spool.enqueue(envelope(['a@x.test']), Buffer.from('a'));
    const results = await Promise.allSettled([
      spool.enqueue(envelope(['b@x.test']), Buffer.from('b')),
      spool.updateRecipients(id, [status('nobody@x.test', 'delivered')]),
      spool.enqueue(envelope(['c@x.test']), Buffer.from('c')),
      spool.enqueue({ ...envelope(), recipients: [] }, Buffer.from('no recipients')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'rejected'],
    );
    assert.equal((await spool.list()).length, 3);
    await spool.close();
  });

  it('works without group commit (one transaction per write)', async () => {
    const spool = await open(tmp(), { groupCommit: false });
    const ids = await Promise.all([1, 2, 3].map((i) => spool.enqueue(envelope(), Buffer.from(String(i)))));
    assert.equal(new Set(ids).size, 3);
    await assert.rejects(spool.updateRecipients(ids[0]!, [status('zz@x.test', 'delivered')]), {
      code: 'queue-unknown-recipient',
    });
    await spool.updateRecipients(ids[0]!, [status('bob@example.org', 'delivered')]);
    assert.equal((await spool.list()).length, 2);
    await spool.close();
  });

  it('also runs with the rollback journal (journalMode delete)', async () => {
    const dir = tmp();
    let spool = await open(dir, { journalMode: 'delete' });
    const id = await spool.enqueue(envelope(), Buffer.from('d'));
    await spool.close();
    spool = await open(dir, { journalMode: 'delete' });
    assert.equal((await spool.readMessage(id)).toString(), 'd');
    await spool.close();
  });
});

describe('queue ids', () => {
  it('sort by time, are 20 base32 characters and differ in their random part', () => {
    const a = newQueueId(1_700_000_000_000);
    const b = newQueueId(1_700_000_000_001);
    const c = newQueueId(1_700_000_000_001);
    assert.ok(isQueueId(a) && isQueueId(b) && isQueueId(c));
    assert.ok(a < b);
    assert.equal(b.slice(0, 10), c.slice(0, 10));
    assert.notEqual(b, c);
    assert.ok(newQueueId(Date.parse('2100-01-01')) > newQueueId(Date.parse('2025-01-01')));
    assert.equal(isQueueId('../../etc/passwd'), false);
    assert.equal(isQueueId(a.toUpperCase()), false);
  });
});
