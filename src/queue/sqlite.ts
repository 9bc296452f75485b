/**
 * The embedded queue backend: one SQLite database (node:sqlite, built into Node 24) under the
 * state dir. Durability: WAL with `synchronous = FULL`, so a COMMIT returns only after the WAL is
 * fsync'ed; `enqueue` resolves after that COMMIT (the "250 only after it is on disk").
 * Writes from concurrent callers are group-committed: calls arriving within a short window share
 * one transaction and one fsync, and each caller is resolved after that COMMIT. A batch of only
 * delivery-status writes skips its own fsync (synchronous = NORMAL for that COMMIT; the next
 * durable commit's fsync covers it): after a power loss a message may be delivered twice, never
 * lost (`syncStatusUpdates`; bench/mta-relay.ts: +15 % relay throughput, interleaved A/B runs).
 *
 * Why WAL + FULL rather than the rollback journal: a WAL commit is one append + one fsync; a
 * DELETE-mode commit writes and syncs the journal, the database, and (for the commit to survive
 * power loss, since the journal's unlink is the commit point) the directory: synchronous = EXTRA.
 * Measured with bench/queue.ts (4 KiB messages, ext4 on a VM disk, noisy 2-core host): without
 * group commit WAL did 1.3–2.9 k msg/s vs DELETE 0.8–1.0 k; with group commit and 32 writers in
 * flight WAL did 7–10 k msg/s, DELETE 5.6–7.7 k. Both modes remain selectable (`journalMode`).
 *
 * Single writer: the connection runs in `locking_mode = EXCLUSIVE` and writes on open, so it holds
 * SQLite's own file lock for its lifetime; a second process (or a second open in this process)
 * fails with `queue-locked` instead of sharing the file. The OS drops the lock when the owner dies
 * (even on SIGKILL), so there is no stale lock file to clean up. `postern queue` talks to the
 * running server's admin API, never to the database.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { PosternError } from '../core/errors.ts';
import type {
  Claim,
  ClaimedMessage,
  ClaimOptions,
  Completion,
  CompletionResult,
  Envelope,
  QueueAges,
  QueuedMessage,
  RecipientState,
  Spool,
} from './types.ts';

export interface SqliteSpoolOptions {
  /** Injectable clock (tests): arrival time of enqueued messages, retryNow's "now". */
  now?: () => Date;
  /**
   * Group commit (default on, windowMs 0, maxBatch 256). windowMs 0 commits on the next event-loop
   * turn: everything that arrived while the previous commit blocked shares the next one, and a lone
   * write pays no extra wait (bench/queue.ts: a 1 ms timer cost 4x at one writer, gained nothing at
   * 32). `false`: every write is its own transaction and fsync, committed inside the call.
   */
  groupCommit?: { windowMs?: number; maxBatch?: number } | false;
  /** 'wal' (default, one fsync per commit) or 'delete' (rollback journal, synchronous = EXTRA). */
  journalMode?: 'wal' | 'delete';
  /** How long to wait for a lock held by someone else before failing with `queue-locked` (default 3000). */
  busyTimeoutMs?: number;
  /**
   * WAL only. false (default): a transaction holding only delivery-status writes
   * (`complete` without DSNs, `claim`, `release`) commits without its own fsync; the next durable commit's
   * fsync covers it (the WAL is replayed as a prefix, so order is kept). A power loss can then
   * forget the most recent delivery results and deliver those messages again, never lose one;
   * enqueue, delete and retry stay fsync'ed. Postfix likewise does not sync the unlink that
   * records a delivery. true: every write transaction is fsync'ed.
   */
  syncStatusUpdates?: boolean;
}

/** The SQLite spool: the Spool contract plus what only a file-backed store has. */
export interface SqliteSpool extends Spool {
  /** Path of the database file. */
  readonly file: string;
  /** `PRAGMA integrity_check` result: 'ok' when the file is sound. */
  integrityCheck(): string;
  /** The database's schema version (`PRAGMA user_version`). */
  schemaVersion(): number;
}

const FINAL: ReadonlySet<RecipientState> = new Set(['delivered', 'bounced']);
const STATES: readonly RecipientState[] = ['queued', 'deferred', 'delivered', 'bounced'];
/** Default lease of a claim: longer than any one delivery attempt takes. */
export const DEFAULT_LEASE_MS = 10 * 60_000;
export const SPOOL_FILE = 'queue.sqlite';

/** Version 1: the first schema. Created as is, then brought up to date by MIGRATIONS. */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  envelope TEXT NOT NULL,
  size INTEGER NOT NULL,
  warned INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS messages_created ON messages (created_ms);
CREATE TABLE IF NOT EXISTS message_data (
  id TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
  data BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS recipients (
  msg_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  address TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'bounced')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_reply TEXT,
  reason TEXT,
  next_ms INTEGER,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (msg_id, idx)
) STRICT;
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (next_ms) WHERE state IN ('queued', 'deferred');
`;

/**
 * MIGRATIONS[i] takes a database from version i+1 to i+2, in place, inside the opening
 * transaction: an old queue opens and keeps its mail (test/unit/queue/spool-sqlite.test.ts).
 */
const MIGRATIONS: readonly string[] = [
  // 2: claims (a lease per message, for the claim/complete contract), RFC 3461 §5.2.1 pass-on,
  // and messages.next_ms = the earliest next_ms of its open recipients (NULL: none open), so a
  // claim reads the first due messages from one index instead of every open recipient.
  `ALTER TABLE messages ADD COLUMN claim_token TEXT;
   ALTER TABLE messages ADD COLUMN lease_ms INTEGER;
   ALTER TABLE messages ADD COLUMN next_ms INTEGER;
   ALTER TABLE recipients ADD COLUMN dsn_passed_on INTEGER;
   UPDATE messages SET next_ms = (SELECT min(r.next_ms) FROM recipients r
     WHERE r.msg_id = messages.id AND r.state IN ('queued', 'deferred'));
   CREATE INDEX messages_due ON messages (next_ms, created_ms) WHERE next_ms IS NOT NULL;`,
];
/** The schema this code writes. */
export const SCHEMA_VERSION = 1 + MIGRATIONS.length;

interface MessageRow {
  id: string;
  created_ms: number;
  created_at: string;
  envelope: string;
  size: number;
  warned: number;
  claim_token: string | null;
}
interface RecipientRow {
  idx: number;
  address: string;
  state: string;
  attempts: number;
  last_reply: string | null;
  reason: string | null;
  next_ms: number | null;
  updated_at: string;
  dsn_passed_on: number | null;
}

interface Job {
  /** Must be on disk before the caller hears of it (false: delivery-status updates). */
  durable: boolean;
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

const MSG_COLS = 'id, created_ms, created_at, envelope, size, warned, claim_token';

/* eslint-disable @typescript-eslint/require-await -- node:sqlite is synchronous; the Spool methods below are async only so that a throw (closed queue, SQLite error) becomes a rejection, as the contract promises. */
/**
 * Open (creating if needed) the spool in `dir` (mode 0700, database file 0600). Fails with
 * `queue-locked` when another process owns it, `queue-open` when the file cannot be opened.
 */
export async function openSqliteSpool(dir: string, opts: SqliteSpoolOptions = {}): Promise<SqliteSpool> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // A queue holds other people's mail: never readable by anyone but the owner.
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  const file = path.join(dir, SPOOL_FILE);
  // Create the file ourselves so it is 0600 from the start; SQLite gives the WAL the same mode.
  closeSync(openSync(file, 'a', 0o600));
  fsyncDir(dir);
  const timeout = opts.busyTimeoutMs ?? 3000;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file, { timeout, enableForeignKeyConstraints: true });
  } catch (e) {
    throw new PosternError('queue-open', `cannot open the queue database ${file}: ${errMsg(e)}`, { cause: e });
  }
  try {
    // EXCLUSIVE must be set before the first read so WAL keeps its index in heap memory (no -shm
    // file) and the lock, once taken by the first write below, is held until close.
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    const mode = opts.journalMode ?? 'wal';
    db.exec(`PRAGMA journal_mode = ${mode === 'wal' ? 'WAL' : 'DELETE'}`);
    // WAL: FULL syncs the WAL on every commit, which makes the commit durable. DELETE: the commit
    // point is the journal's unlink, so the directory must be synced too, which only EXTRA does.
    db.exec(`PRAGMA synchronous = ${mode === 'wal' ? 'FULL' : 'EXTRA'}`);
    db.exec('PRAGMA journal_size_limit = 67108864');
    db.exec('BEGIN IMMEDIATE');
    const v = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
    const found = v?.user_version ?? 0;
    if (found > SCHEMA_VERSION) {
      db.exec('ROLLBACK');
      throw new PosternError('queue-schema', `queue database ${file} has a newer schema (${found})`, {
        hint: 'run the postern version that created it, or move the spool aside',
      });
    }
    // A new file (version 0) gets version 1 and then every migration, like an old database.
    db.exec(SCHEMA_V1);
    for (let ver = Math.max(found, 1); ver < SCHEMA_VERSION; ver++) db.exec(MIGRATIONS[ver - 1]!);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    // This connection holds the exclusive lock, so whoever held claims before is gone: their
    // messages are due again now rather than when the leases would lapse.
    db.exec('UPDATE messages SET claim_token = NULL, lease_ms = NULL WHERE claim_token IS NOT NULL');
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('owner', ?)").run(
      JSON.stringify({ pid: process.pid, openedAt: new Date().toISOString() }),
    );
    db.exec('COMMIT');
  } catch (e) {
    try {
      db.close();
    } catch {
      /* already failing */
    }
    if (e instanceof PosternError) throw e;
    const m = errMsg(e);
    if (/locked|busy/i.test(m)) {
      throw new PosternError('queue-locked', `the queue ${file} is in use by another process`, {
        hint: 'one postern serve owns a spool; use `postern queue` (admin API) to inspect it',
        cause: e,
      });
    }
    throw new PosternError('queue-open', `cannot open the queue database ${file}: ${m}`, { cause: e });
  }
  return new SqliteSpoolImpl(db, file, opts);
}

class SqliteSpoolImpl implements SqliteSpool {
  readonly file: string;
  readonly #db: DatabaseSync;
  readonly #now: () => Date;
  readonly #group: { windowMs: number; maxBatch: number } | null;
  readonly #s: Record<
    | 'insMsg'
    | 'insData'
    | 'insRcpt'
    | 'getMsg'
    | 'getRcpts'
    | 'getData'
    | 'updRcpt'
    | 'delMsg'
    | 'warn'
    | 'claimDue'
    | 'claimExpired'
    | 'claimWarn'
    | 'setClaim'
    | 'endClaim'
    | 'settle'
    | 'renew'
    | 'nextOne'
    | 'nextDeferred'
    | 'listAll'
    | 'listState'
    | 'retryAll'
    | 'retryOne'
    | 'counts'
    | 'ageAll'
    | 'ageOlder'
    | 'savepoint'
    | 'release'
    | 'rollbackTo',
    StatementSync
  >;
  #pending: Job[] = [];
  #timer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  #closed = false;
  /** WAL and not syncStatusUpdates: status-only transactions may skip their fsync. */
  readonly #relaxStatus: boolean;

  constructor(db: DatabaseSync, file: string, opts: SqliteSpoolOptions) {
    this.#db = db;
    this.file = file;
    this.#now = opts.now ?? (() => new Date());
    this.#relaxStatus = (opts.journalMode ?? 'wal') === 'wal' && opts.syncStatusUpdates !== true;
    this.#group =
      opts.groupCommit === false
        ? null
        : {
            windowMs: Math.max(0, opts.groupCommit?.windowMs ?? 0),
            maxBatch: Math.max(1, opts.groupCommit?.maxBatch ?? 256),
          };
    const p = (sql: string): StatementSync => db.prepare(sql);
    const open = "state IN ('queued', 'deferred')";
    // A message is claimable when nobody holds it, or its holder's lease has lapsed.
    const free = '(claim_token IS NULL OR lease_ms <= ?)';
    this.#s = {
      insMsg: p('INSERT INTO messages (id, created_ms, created_at, envelope, size, next_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      insData: p('INSERT INTO message_data (id, data) VALUES (?, ?)'),
      insRcpt: p(
        "INSERT INTO recipients (msg_id, idx, address, state, next_ms, updated_at) VALUES (?, ?, ?, 'queued', ?, ?)",
      ),
      getMsg: p(`SELECT ${MSG_COLS} FROM messages WHERE id = ?`),
      getRcpts: p(
        'SELECT idx, address, state, attempts, last_reply, reason, next_ms, updated_at, dsn_passed_on FROM recipients WHERE msg_id = ? ORDER BY idx',
      ),
      getData: p('SELECT data FROM message_data WHERE id = ?'),
      updRcpt: p(
        'UPDATE recipients SET state = ?, attempts = ?, last_reply = ?, reason = ?, next_ms = ?, updated_at = ?, dsn_passed_on = ? WHERE msg_id = ? AND idx = ?',
      ),
      delMsg: p('DELETE FROM messages WHERE id = ?'),
      warn: p('UPDATE messages SET warned = 1 WHERE id = ?'),
      // Longest due first: for new mail that is oldest first (next_ms = arrival); a retry queues
      // behind mail that has been waiting longer. One range of messages_due, read up to the limit.
      claimDue: p(
        `SELECT ${MSG_COLS} FROM messages INDEXED BY messages_due
         WHERE next_ms IS NOT NULL AND next_ms <= ? AND ${free}
         ORDER BY next_ms, created_ms LIMIT ?`,
      ),
      // Open recipients ⇔ next_ms IS NOT NULL (an open state always has a time, see complete).
      claimExpired: p(
        `SELECT ${MSG_COLS} FROM messages WHERE created_ms <= ? AND next_ms IS NOT NULL AND ${free}
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      claimWarn: p(
        `SELECT ${MSG_COLS} FROM messages m WHERE created_ms <= ? AND warned = 0 AND ${free} AND EXISTS
           (SELECT 1 FROM recipients r WHERE r.msg_id = m.id AND r.state = 'deferred')
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      setClaim: p('UPDATE messages SET claim_token = ?, lease_ms = ? WHERE id = ?'),
      endClaim: p('UPDATE messages SET claim_token = NULL, lease_ms = NULL WHERE id = ? AND claim_token = ?'),
      renew: p('UPDATE messages SET lease_ms = ? WHERE id = ? AND claim_token = ?'),
      settle: p('UPDATE messages SET next_ms = ?, claim_token = NULL, lease_ms = NULL WHERE id = ?'),
      listAll: p(`SELECT ${MSG_COLS} FROM messages ORDER BY created_ms, rowid LIMIT ? OFFSET ?`),
      listState: p(
        `SELECT ${MSG_COLS} FROM messages WHERE id IN
           (SELECT msg_id FROM recipients WHERE state = ?)
         ORDER BY created_ms, rowid LIMIT ? OFFSET ?`,
      ),
      retryAll: p("UPDATE recipients SET next_ms = ? WHERE state = 'deferred'"),
      retryOne: p("UPDATE recipients SET next_ms = ? WHERE state = 'deferred' AND msg_id = ?"),
      // Re-derive messages.next_ms after a retry: of one message, or of every one with a deferred recipient.
      nextOne: p(
        `UPDATE messages SET next_ms = (SELECT min(r.next_ms) FROM recipients r
           WHERE r.msg_id = messages.id AND r.${open}) WHERE id = ?`,
      ),
      nextDeferred: p(
        `UPDATE messages SET next_ms = (SELECT min(r.next_ms) FROM recipients r
           WHERE r.msg_id = messages.id AND r.${open})
         WHERE id IN (SELECT msg_id FROM recipients WHERE state = 'deferred')`,
      ),
      counts: p('SELECT state, count(*) AS n FROM recipients GROUP BY state'),
      ageAll: p('SELECT count(*) AS n, min(created_ms) AS oldest FROM messages'),
      ageOlder: p('SELECT count(*) AS n FROM messages WHERE created_ms <= ?'),
      savepoint: p('SAVEPOINT job'),
      release: p('RELEASE job'),
      rollbackTo: p('ROLLBACK TO job'),
    };
  }

  enqueue(envelope: Envelope, message: Buffer): Promise<string> {
    if (envelope.recipients.length === 0) {
      return Promise.reject(new PosternError('queue-invalid', 'a message needs at least one recipient'));
    }
    // Serialised now, so a caller mutating its envelope after the call cannot change what is stored.
    const envJson = JSON.stringify(envelope);
    const addresses = envelope.recipients.map((r) => r.address);
    return this.#write(true, () => this.#insert(envJson, addresses, message));
  }

  /** The rows of one new message (inside a transaction). */
  #insert(envJson: string, addresses: string[], message: Buffer): string {
    const now = this.#now();
    const ms = now.getTime();
    const iso = now.toISOString();
    let id = newQueueId(ms);
    for (let tries = 0; ; tries++) {
      try {
        this.#s.insMsg.run(id, ms, iso, envJson, message.length, ms);
        break;
      } catch (e) {
        // 50 random bits make a collision astronomically rare; a retry makes it harmless.
        if (tries < 3 && /UNIQUE|constraint/i.test(errMsg(e))) id = newQueueId(ms);
        else throw e;
      }
    }
    this.#s.insData.run(id, message);
    addresses.forEach((a, i) => this.#s.insRcpt.run(id, i, a, ms, iso));
    return id;
  }

  async get(id: string): Promise<QueuedMessage | null> {
    this.#open();
    const row = this.#s.getMsg.get(id) as MessageRow | undefined;
    return row ? this.#toMessage(row) : null;
  }

  async readMessage(id: string): Promise<Buffer> {
    this.#open();
    const row = this.#s.getData.get(id) as { data: Uint8Array } | undefined;
    if (!row) throw new PosternError('queue-not-found', `no queued message ${id}`);
    return Buffer.from(row.data.buffer, row.data.byteOffset, row.data.byteLength);
  }

  claim(now: Date, limit: number, opts: ClaimOptions = {}): Promise<ClaimedMessage[]> {
    const select = opts.select ?? { kind: 'due' };
    const leaseMs = Math.max(1, opts.leaseMs ?? DEFAULT_LEASE_MS);
    const n = clampLimit(limit);
    const ms = now.getTime();
    // A claim is not durable: after a crash the reopened spool clears every claim anyway.
    return this.#write(false, () => {
      const rows = (select.kind === 'due'
        ? this.#s.claimDue.all(ms, ms, n)
        : select.kind === 'expired'
          ? this.#s.claimExpired.all(select.createdBefore.getTime(), ms, n)
          : this.#s.claimWarn.all(select.createdBefore.getTime(), ms, n)) as unknown as MessageRow[];
      const leaseUntil = new Date(ms + leaseMs);
      return rows.map((row): ClaimedMessage => {
        const token = randomBytes(16).toString('hex');
        this.#s.setClaim.run(token, leaseUntil.getTime(), row.id);
        return { ...this.#toMessage(row), claim: { id: row.id, token, leaseUntil: leaseUntil.toISOString() } };
      });
    });
  }

  complete(claim: Claim, completion: Completion): Promise<CompletionResult> {
    const updates = completion.recipients.map((u) => ({ ...u }));
    // Serialised now, like enqueue: the caller may reuse its objects.
    const dsns = (completion.dsns ?? []).map((d) => ({
      envJson: JSON.stringify(d.envelope),
      addresses: d.envelope.recipients.map((r) => r.address),
      message: d.message,
    }));
    const warned = completion.warned === true;
    return this.#write(dsns.length > 0, () => {
      const msg = this.#s.getMsg.get(claim.id) as MessageRow | undefined;
      if (!msg) throw new PosternError('queue-not-found', `no queued message ${claim.id}`);
      if (msg.claim_token !== claim.token) {
        throw new PosternError('queue-lease-lost', `the claim on ${claim.id} lapsed and was taken over`);
      }
      const rows = this.#s.getRcpts.all(claim.id) as unknown as RecipientRow[];
      const ms0 = this.#now().getTime();
      const now = new Date(ms0).toISOString();
      for (const u of updates) {
        if (!STATES.includes(u.state)) throw new PosternError('queue-invalid', `unknown recipient state ${u.state}`);
        const row = Number.isInteger(u.id) ? rows[u.id] : undefined;
        if (!row || row.idx !== u.id) {
          throw new PosternError('queue-unknown-recipient', `message ${claim.id} has no recipient #${u.id}`);
        }
        // The id decides; a different address means the caller mixed up its recipients.
        if (row.address !== u.address) {
          throw new PosternError(
            'queue-invalid',
            `recipient #${u.id} of ${claim.id} is ${row.address}, not ${u.address}`,
          );
        }
        let next: number | null = null;
        if (!FINAL.has(u.state)) {
          // The schedule above the storage decides when; the spool refuses to guess.
          next = u.nextAttemptAt === null ? NaN : Date.parse(u.nextAttemptAt);
          if (!Number.isFinite(next)) {
            throw new PosternError('queue-invalid', `recipient #${u.id} is ${u.state} without a nextAttemptAt`);
          }
        }
        const passed = u.dsnPassedOn === undefined ? null : u.dsnPassedOn ? 1 : 0;
        this.#s.updRcpt.run(
          u.state,
          u.attempts,
          u.lastReply,
          u.reason,
          next,
          u.updatedAt || now,
          passed,
          claim.id,
          row.idx,
        );
        row.state = u.state;
        row.next_ms = next;
      }
      if (warned) this.#s.warn.run(claim.id);
      const dsnIds = dsns.map((d) => {
        if (d.addresses.length === 0) throw new PosternError('queue-invalid', 'a DSN needs at least one recipient');
        return this.#insert(d.envJson, d.addresses, d.message);
      });
      // Every recipient final: nothing left to deliver, the message leaves the queue. Otherwise
      // the message is due when its earliest open recipient is, and no longer claimed.
      const open = rows.filter((r) => !FINAL.has(r.state as RecipientState));
      const removed = open.length === 0;
      if (removed) this.#s.delMsg.run(claim.id);
      else this.#s.settle.run(Math.min(...open.map((r) => r.next_ms ?? ms0)), claim.id);
      return { dsnIds, removed };
    });
  }

  renew(claim: Claim, now: Date, leaseMs: number): Promise<Claim> {
    const until = now.getTime() + Math.max(1, leaseMs);
    return this.#write(false, () => {
      if (Number(this.#s.renew.run(until, claim.id, claim.token).changes) === 0) {
        if (!this.#s.getMsg.get(claim.id)) throw new PosternError('queue-not-found', `no queued message ${claim.id}`);
        throw new PosternError('queue-lease-lost', `the claim on ${claim.id} lapsed and was taken over`);
      }
      return { ...claim, leaseUntil: new Date(until).toISOString() };
    });
  }

  release(claim: Claim): Promise<void> {
    return this.#write(false, () => {
      this.#s.endClaim.run(claim.id, claim.token);
    });
  }

  async list(filter: { state?: RecipientState; limit?: number; offset?: number } = {}): Promise<QueuedMessage[]> {
    this.#open();
    const limit = clampLimit(filter.limit ?? Number.MAX_SAFE_INTEGER);
    const offset = clampLimit(filter.offset ?? 0);
    const rows = filter.state ? this.#s.listState.all(filter.state, limit, offset) : this.#s.listAll.all(limit, offset);
    return this.#rows(rows);
  }

  delete(id: string): Promise<boolean> {
    return this.#write(true, () => Number(this.#s.delMsg.run(id).changes) > 0);
  }

  retryNow(id?: string): Promise<number> {
    return this.#write(true, () => {
      const ms = this.#now().getTime();
      const r = id === undefined ? this.#s.retryAll.run(ms) : this.#s.retryOne.run(ms, id);
      if (Number(r.changes) > 0) {
        if (id === undefined) this.#s.nextDeferred.run();
        else this.#s.nextOne.run(id);
      }
      return Number(r.changes);
    });
  }

  async counts(): Promise<Record<RecipientState, number>> {
    this.#open();
    const out: Record<RecipientState, number> = { queued: 0, deferred: 0, delivered: 0, bounced: 0 };
    for (const r of this.#s.counts.all() as unknown as Array<{ state: RecipientState; n: number }>) {
      if (r.state in out) out[r.state] = r.n;
    }
    return out;
  }

  async ages(now: Date, agesMs: readonly number[]): Promise<QueueAges> {
    this.#open();
    const all = this.#s.ageAll.get() as { n: number; oldest: number | null };
    return {
      messages: all.n,
      oldestCreatedAt: all.oldest === null ? null : new Date(all.oldest).toISOString(),
      olderThan: agesMs.map((a) => (this.#s.ageOlder.get(now.getTime() - a) as { n: number }).n),
    };
  }

  integrityCheck(): string {
    this.#open();
    const rows = this.#db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).join('; ');
  }

  schemaVersion(): number {
    this.#open();
    return (this.#db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#clearTimer();
    while (this.#pending.length > 0) this.#flush();
    this.#closed = true;
    this.#db.close();
  }

  // --- writes -------------------------------------------------------------------------------

  /**
   * Run `fn` inside a transaction; resolve with its result after the COMMIT returned (for a
   * `durable` write, or whenever #relaxStatus is off: after its fsync).
   */
  #write<T>(durable: boolean, fn: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new PosternError('queue-closed', 'the queue is closed'));
    if (!this.#group) {
      try {
        this.#setRelaxed(!durable);
        this.#db.exec('BEGIN IMMEDIATE');
        let v: T;
        try {
          v = fn();
        } catch (e) {
          this.#db.exec('ROLLBACK');
          throw e;
        }
        this.#db.exec('COMMIT');
        return Promise.resolve(v);
      } catch (e) {
        this.#rollbackQuietly();
        return Promise.reject(asQueueError(e));
      } finally {
        this.#setRelaxed(false);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ durable, run: fn, resolve: resolve as (v: unknown) => void, reject });
      if (this.#pending.length >= this.#group!.maxBatch) {
        this.#clearTimer();
        this.#timer = setImmediate(() => this.#flushAll());
      } else if (this.#timer === null) {
        const w = this.#group!.windowMs;
        this.#timer = w === 0 ? setImmediate(() => this.#flushAll()) : setTimeout(() => this.#flushAll(), w);
      }
    });
  }

  #flushAll(): void {
    this.#timer = null;
    if (this.#closed) return;
    this.#flush();
    if (this.#pending.length > 0) this.#timer = setImmediate(() => this.#flushAll());
  }

  /** One transaction for up to maxBatch jobs; each job in a savepoint so one failure stays its own. */
  #flush(): void {
    const batch = this.#pending.splice(0, this.#group?.maxBatch ?? this.#pending.length);
    if (batch.length === 0) return;
    const results: Array<{ ok: true; v: unknown } | { ok: false; e: unknown }> = [];
    try {
      this.#setRelaxed(!batch.some((j) => j.durable));
      this.#db.exec('BEGIN IMMEDIATE');
      for (const job of batch) {
        this.#s.savepoint.run();
        try {
          const v = job.run();
          this.#s.release.run();
          results.push({ ok: true, v });
        } catch (e) {
          this.#s.rollbackTo.run();
          this.#s.release.run();
          results.push({ ok: false, e });
        }
      }
      this.#db.exec('COMMIT');
    } catch (e) {
      // BEGIN or COMMIT failed (I/O error, disk full): nothing of this batch is stored.
      this.#rollbackQuietly();
      const err = asQueueError(e);
      for (const job of batch) job.reject(err);
      return;
    } finally {
      this.#setRelaxed(false);
    }
    batch.forEach((job, i) => {
      const r = results[i]!;
      if (r.ok) job.resolve(r.v);
      else job.reject(asQueueError(r.e));
    });
  }

  #relaxed = false;

  /**
   * WAL + synchronous = NORMAL: the COMMIT appends to the WAL without fsync; the next FULL commit's
   * fsync makes it durable too. Set outside a transaction only (SQLite ignores it inside one).
   */
  #setRelaxed(on: boolean): void {
    const want = on && this.#relaxStatus;
    if (want === this.#relaxed) return;
    this.#db.exec(`PRAGMA synchronous = ${want ? 'NORMAL' : 'FULL'}`);
    this.#relaxed = want;
  }

  #rollbackQuietly(): void {
    try {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
    } catch {
      /* the original error is what matters */
    }
  }

  #clearTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer as NodeJS.Timeout);
    clearImmediate(this.#timer as NodeJS.Immediate);
    this.#timer = null;
  }

  // --- reads --------------------------------------------------------------------------------

  #open(): void {
    if (this.#closed) throw new PosternError('queue-closed', 'the queue is closed');
  }

  #rows(rows: unknown[]): QueuedMessage[] {
    return (rows as MessageRow[]).map((r) => this.#toMessage(r));
  }

  #toMessage(row: MessageRow): QueuedMessage {
    const rcpts = this.#s.getRcpts.all(row.id) as unknown as RecipientRow[];
    return {
      id: row.id,
      envelope: JSON.parse(row.envelope) as Envelope,
      recipients: rcpts.map((r) => ({
        id: r.idx,
        address: r.address,
        state: r.state as RecipientState,
        attempts: r.attempts,
        lastReply: r.last_reply,
        reason: r.reason,
        nextAttemptAt:
          r.next_ms === null || FINAL.has(r.state as RecipientState) ? null : new Date(r.next_ms).toISOString(),
        updatedAt: r.updated_at,
        ...(r.dsn_passed_on === null ? {} : { dsnPassedOn: r.dsn_passed_on !== 0 }),
      })),
      createdAt: row.created_at,
      warned: row.warned !== 0,
      size: row.size,
    };
  }
}

const B32 = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case: ASCII order = value order

/**
 * A queue id: 10 base32 digits of the millisecond clock (sortable by arrival) + 10 digits (50 bits)
 * from the CSPRNG (not guessable, unique in practice), e.g. `01jz8m3q7k4f9x2cvb6t`. Within one
 * millisecond the order is random; the spool orders by arrival (rowid) itself.
 */
export function newQueueId(ms: number = Date.now()): string {
  let t = Math.max(0, Math.floor(ms));
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = B32[t % 32]! + head;
    t = Math.floor(t / 32);
  }
  const rnd = randomBytes(7);
  let bits = 0n;
  for (const b of rnd) bits = (bits << 8n) | BigInt(b);
  let tail = '';
  for (let i = 0; i < 10; i++) {
    tail += B32[Number(bits & 31n)]!;
    bits >>= 5n;
  }
  return head + tail;
}

/** Queue ids are exactly what newQueueId makes; use this to validate ids from the admin API. */
export function isQueueId(s: string): boolean {
  return /^[0-9a-hjkmnp-tv-z]{20}$/.test(s);
}

function fsyncDir(dir: string): void {
  // The directory entry of a newly created file is durable only after the directory is synced.
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    /* some filesystems refuse fsync on directories; SQLite syncs its own journal's directory */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function clampLimit(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.min(Math.floor(n), Number.MAX_SAFE_INTEGER) : 0;
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function asQueueError(e: unknown): PosternError {
  if (e instanceof PosternError) return e;
  return new PosternError('queue-io', `queue database error: ${errMsg(e)}`, { cause: e });
}
