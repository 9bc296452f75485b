/**
 * The SQLite spool: the Spool contract (spool-contract.ts), plus what only a file-backed store
 * has — file modes, durability across reopen, the single-writer lock, group commit, the journal
 * modes and in-place schema migration of an older queue database.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import {
  isQueueId,
  newQueueId,
  openSqliteSpool,
  SCHEMA_VERSION,
  SPOOL_FILE,
  type SqliteSpoolOptions,
} from '../../../src/queue/sqlite.ts';
import { result, spoolContract, testClock, testEnvelope } from './spool-contract.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'postern-spool-'));
  dirs.push(d);
  return path.join(d, 'queue'); // a directory the spool must create itself
}

async function open(dir: string, opts: SqliteSpoolOptions = {}) {
  return openSqliteSpool(dir, { busyTimeoutMs: 200, ...opts });
}

spoolContract('SQLite (group commit)', (now) => open(tmp(), { now }));
spoolContract('SQLite (one transaction per write)', (now) => open(tmp(), { now, groupCommit: false }));

describe('SQLite spool', () => {
  it('lives in a 0700 directory and a 0600 file, and is sound', async () => {
    const dir = tmp();
    const spool = await open(dir);
    await spool.enqueue(testEnvelope(), Buffer.from('x'));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(path.join(dir, SPOOL_FILE)).mode & 0o777, 0o600);
    assert.equal(spool.integrityCheck(), 'ok');
    assert.equal(spool.schemaVersion(), SCHEMA_VERSION);
    await spool.close();
  });

  it('keeps everything across close and reopen; a reopen frees the claims of the dead owner', async () => {
    const dir = tmp();
    const c = testClock();
    let spool = await open(dir, { now: c.now });
    const id = await spool.enqueue(testEnvelope(['a@x.test', 'b@x.test']), Buffer.from('persist me\r\n'));
    const [m] = await spool.claim(c.now(), 1);
    await spool.complete(m!.claim, {
      recipients: [result(0, 'a@x.test', 'delivered', { lastReply: '250 ok' })],
      warned: true,
    });
    await spool.claim(c.now(), 1); // held when the "process" goes away
    const before = await spool.get(id);
    await spool.close();
    spool = await open(dir, { now: c.now });
    assert.deepEqual(await spool.get(id), before);
    assert.equal((await spool.readMessage(id)).toString(), 'persist me\r\n');
    assert.deepEqual(
      (await spool.claim(c.now(), 1)).map((x) => x.id),
      [id],
      'claimable at once, not after the lease would have lapsed',
    );
    assert.equal(spool.integrityCheck(), 'ok');
    await spool.close();
  });

  it('migrates a version-1 queue database in place: its mail survives and can be delivered', async () => {
    const dir = tmp();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A database exactly as the version-1 code wrote it (schema and rows).
    const db = new DatabaseSync(path.join(dir, SPOOL_FILE));
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
      CREATE TABLE messages (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, created_at TEXT NOT NULL,
        envelope TEXT NOT NULL, size INTEGER NOT NULL, warned INTEGER NOT NULL DEFAULT 0) STRICT;
      CREATE INDEX messages_created ON messages (created_ms);
      CREATE TABLE message_data (id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE, data BLOB NOT NULL) STRICT;
      CREATE TABLE recipients (msg_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE, idx INTEGER NOT NULL,
        address TEXT NOT NULL, state TEXT NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'bounced')),
        attempts INTEGER NOT NULL DEFAULT 0, last_reply TEXT, reason TEXT, next_ms INTEGER, updated_at TEXT NOT NULL,
        PRIMARY KEY (msg_id, idx)) STRICT;
      CREATE INDEX recipients_due ON recipients (next_ms) WHERE state IN ('queued', 'deferred');
      PRAGMA user_version = 1;
    `);
    const ms = Date.parse('2025-07-01T09:00:00.000Z');
    const id = newQueueId(ms);
    const env = testEnvelope(['a@x.test', 'b@x.test']);
    db.prepare('INSERT INTO messages (id, created_ms, created_at, envelope, size) VALUES (?, ?, ?, ?, ?)').run(
      id,
      ms,
      new Date(ms).toISOString(),
      JSON.stringify(env),
      3,
    );
    db.prepare('INSERT INTO message_data (id, data) VALUES (?, ?)').run(id, Buffer.from('old'));
    const rcpt = db.prepare(
      'INSERT INTO recipients (msg_id, idx, address, state, attempts, next_ms, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    rcpt.run(id, 0, 'a@x.test', 'delivered', 1, null, '2025-07-01T09:01:00.000Z');
    rcpt.run(id, 1, 'b@x.test', 'deferred', 1, ms, '2025-07-01T09:01:00.000Z');
    db.close();

    const c = testClock();
    const spool = await open(dir, { now: c.now });
    assert.equal(spool.schemaVersion(), SCHEMA_VERSION);
    const m = await spool.get(id);
    assert.deepEqual(m?.envelope, env);
    assert.deepEqual(
      m?.recipients.map((r) => [r.id, r.address, r.state]),
      [
        [0, 'a@x.test', 'delivered'],
        [1, 'b@x.test', 'deferred'],
      ],
    );
    const [claimed] = await spool.claim(c.now(), 10);
    assert.equal(claimed?.id, id);
    assert.equal((await spool.readMessage(id)).toString(), 'old');
    const done = await spool.complete(claimed.claim, { recipients: [result(1, 'b@x.test', 'delivered')] });
    assert.equal(done.removed, true);
    assert.equal(spool.integrityCheck(), 'ok');
    await spool.close();
    // And it opens again at the new version without re-running the migration.
    const again = await open(dir);
    assert.equal(again.schemaVersion(), SCHEMA_VERSION);
    await again.close();
  });

  it('refuses a database from a newer postern', async () => {
    const dir = tmp();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(path.join(dir, SPOOL_FILE));
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    await assert.rejects(open(dir), { code: 'queue-schema' });
  });

  it('is single-writer: a second open of the same spool fails with queue-locked until the first closes', async () => {
    const dir = tmp();
    const first = await open(dir);
    await first.enqueue(testEnvelope(), Buffer.from('x'));
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
      Array.from({ length: n }, (_, i) =>
        spool.enqueue(testEnvelope([`r${i}@x.test`]), Buffer.from(`message ${i}\r\n`)),
      ),
    );
    assert.equal(new Set(ids).size, n);
    assert.ok(ids.every(isQueueId));
    assert.equal((await spool.counts()).queued, n);
    // Each caller got the id of its own message.
    for (const i of [0, 1, 4999, 9999]) assert.equal((await spool.readMessage(ids[i]!)).toString(), `message ${i}\r\n`);
    await spool.close();
  });

  it('group commit: one failing write in a batch rejects alone; its neighbours commit', async () => {
    const c = testClock();
    const spool = await open(tmp(), { now: c.now });
    await spool.enqueue(testEnvelope(['a@x.test']), Buffer.from('a'));
    const [m] = await spool.claim(c.now(), 1);
    const results = await Promise.allSettled([
      spool.enqueue(testEnvelope(['b@x.test']), Buffer.from('b')),
      spool.complete(m!.claim, { recipients: [result(5, 'nobody@x.test', 'delivered')] }),
      spool.enqueue(testEnvelope(['c@x.test']), Buffer.from('c')),
      spool.enqueue({ ...testEnvelope(), recipients: [] }, Buffer.from('no recipients')),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled', 'rejected'],
    );
    assert.equal((await spool.list()).length, 3);
    await spool.close();
  });

  it('also runs with the rollback journal (journalMode delete)', async () => {
    const dir = tmp();
    let spool = await open(dir, { journalMode: 'delete' });
    const id = await spool.enqueue(testEnvelope(), Buffer.from('d'));
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
