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
import {
  DEFAULT_DELAY_WARNING_MS,
  DEFAULT_MAX_LIFETIME_MS,
  delayWarningDue,
  isExpired,
  nextAttempt,
  type RetryOptions,
} from './schedule.ts';
import type { Envelope, QueuedMessage, RecipientState, RecipientStatus, Spool } from './types.ts';

export interface SqliteSpoolOptions {
  /** Injectable clock (tests). */
  now?: () => Date;
  /** Backoff used when a recipient is deferred without an explicit `nextAttemptAt`. */
  retry?: Partial<RetryOptions>;
  /** Age after which `expired()` reports a message (default 5 days). */
  maxLifetimeMs?: number;
  /** Age after which `delayWarningsDue()` reports a message once (default 4 h; 0 disables). */
  delayWarningMs?: number;
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
   * (`updateRecipients`, `markWarned`) commits without its own fsync; the next durable commit's
   * fsync covers it (the WAL is replayed as a prefix, so order is kept). A power loss can then
   * forget the most recent delivery results and deliver those messages again, never lose one;
   * enqueue, delete and retry stay fsync'ed. Postfix likewise does not sync the unlink that
   * records a delivery. true: every write transaction is fsync'ed.
   */
  syncStatusUpdates?: boolean;
}

/** The SQLite spool: the Spool contract plus the sweeps the delivery side needs. */
export interface SqliteSpool extends Spool {
  /** Path of the database file. */
  readonly file: string;
  /** Messages older than maxLifetimeMs that still have undelivered recipients: bounce them. */
  expired(now?: Date, limit?: number): Promise<QueuedMessage[]>;
  /** Messages past delayWarningMs, not yet warned, with a deferred recipient: send "delayed". */
  delayWarningsDue(now?: Date, limit?: number): Promise<QueuedMessage[]>;
  /** `PRAGMA integrity_check` result: 'ok' when the file is sound. */
  integrityCheck(): string;
}

const FINAL: ReadonlySet<RecipientState> = new Set(['delivered', 'bounced']);
const STATES: readonly RecipientState[] = ['queued', 'deferred', 'delivered', 'bounced'];
const SCHEMA_VERSION = 1;
export const SPOOL_FILE = 'queue.sqlite';

const SCHEMA = `
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

interface MessageRow {
  id: string;
  created_ms: number;
  created_at: string;
  envelope: string;
  size: number;
  warned: number;
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
}

interface Job {
  /** Must be on disk before the caller hears of it (false: delivery-status updates). */
  durable: boolean;
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

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
    db.exec(SCHEMA);
    const v = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
    if ((v?.user_version ?? 0) > SCHEMA_VERSION) {
      db.exec('ROLLBACK');
      throw new PosternError('queue-schema', `queue database ${file} has a newer schema (${v?.user_version})`, {
        hint: 'run the postern version that created it, or move the spool aside',
      });
    }
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
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
  readonly #retry: Partial<RetryOptions>;
  readonly #maxLifetimeMs: number;
  readonly #delayWarningMs: number;
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
    | 'due'
    | 'expired'
    | 'warnDue'
    | 'listAll'
    | 'listState'
    | 'retryAll'
    | 'retryOne'
    | 'counts'
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
    this.#retry = opts.retry ?? {};
    this.#maxLifetimeMs = opts.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS;
    this.#delayWarningMs = opts.delayWarningMs ?? DEFAULT_DELAY_WARNING_MS;
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
    this.#s = {
      insMsg: p('INSERT INTO messages (id, created_ms, created_at, envelope, size) VALUES (?, ?, ?, ?, ?)'),
      insData: p('INSERT INTO message_data (id, data) VALUES (?, ?)'),
      insRcpt: p(
        "INSERT INTO recipients (msg_id, idx, address, state, next_ms, updated_at) VALUES (?, ?, ?, 'queued', ?, ?)",
      ),
      getMsg: p('SELECT id, created_ms, created_at, envelope, size, warned FROM messages WHERE id = ?'),
      getRcpts: p(
        'SELECT idx, address, state, attempts, last_reply, reason, next_ms, updated_at FROM recipients WHERE msg_id = ? ORDER BY idx',
      ),
      getData: p('SELECT data FROM message_data WHERE id = ?'),
      updRcpt: p(
        'UPDATE recipients SET state = ?, attempts = ?, last_reply = ?, reason = ?, next_ms = ?, updated_at = ? WHERE msg_id = ? AND idx = ?',
      ),
      delMsg: p('DELETE FROM messages WHERE id = ?'),
      warn: p('UPDATE messages SET warned = 1 WHERE id = ?'),
      due: p(
        `SELECT id, created_ms, created_at, envelope, size, warned FROM messages WHERE id IN
           (SELECT msg_id FROM recipients WHERE ${open} AND next_ms <= ?)
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      expired: p(
        `SELECT id, created_ms, created_at, envelope, size, warned FROM messages WHERE created_ms <= ? AND id IN
           (SELECT msg_id FROM recipients WHERE ${open})
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      warnDue: p(
        `SELECT id, created_ms, created_at, envelope, size, warned FROM messages WHERE warned = 0 AND created_ms <= ? AND id IN
           (SELECT msg_id FROM recipients WHERE state = 'deferred')
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      listAll: p(
        'SELECT id, created_ms, created_at, envelope, size, warned FROM messages ORDER BY created_ms, rowid LIMIT ?',
      ),
      listState: p(
        `SELECT id, created_ms, created_at, envelope, size, warned FROM messages WHERE id IN
           (SELECT msg_id FROM recipients WHERE state = ?)
         ORDER BY created_ms, rowid LIMIT ?`,
      ),
      retryAll: p("UPDATE recipients SET next_ms = ? WHERE state = 'deferred'"),
      retryOne: p("UPDATE recipients SET next_ms = ? WHERE state = 'deferred' AND msg_id = ?"),
      counts: p('SELECT state, count(*) AS n FROM recipients GROUP BY state'),
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
    return this.#write(true, () => {
      const now = this.#now();
      const ms = now.getTime();
      const iso = now.toISOString();
      let id = newQueueId(ms);
      for (let tries = 0; ; tries++) {
        try {
          this.#s.insMsg.run(id, ms, iso, envJson, message.length);
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
    });
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

  async due(now: Date, limit: number): Promise<QueuedMessage[]> {
    this.#open();
    return this.#rows(this.#s.due.all(now.getTime(), clampLimit(limit)));
  }

  updateRecipients(id: string, updates: RecipientStatus[]): Promise<void> {
    const copy = updates.map((u) => ({ ...u }));
    return this.#write(false, () => {
      if (!this.#s.getMsg.get(id)) throw new PosternError('queue-not-found', `no queued message ${id}`);
      const rows = this.#s.getRcpts.all(id) as unknown as RecipientRow[];
      const now = this.#now();
      for (const u of copy) {
        if (!STATES.includes(u.state)) throw new PosternError('queue-invalid', `unknown recipient state ${u.state}`);
        // Duplicate addresses are possible; prefer the first one still open.
        const row =
          rows.find((r) => r.address === u.address && !FINAL.has(r.state as RecipientState)) ??
          rows.find((r) => r.address === u.address);
        if (!row) throw new PosternError('queue-unknown-recipient', `message ${id} has no recipient ${u.address}`);
        let next: number | null = null;
        if (!FINAL.has(u.state)) {
          const given = u.nextAttemptAt === null ? NaN : Date.parse(u.nextAttemptAt);
          if (Number.isFinite(given)) next = given;
          else if (u.state === 'deferred') next = nextAttempt(u.attempts, now, this.#retry).getTime();
          else next = now.getTime();
        }
        this.#s.updRcpt.run(
          u.state,
          u.attempts,
          u.lastReply,
          u.reason,
          next,
          u.updatedAt || now.toISOString(),
          id,
          row.idx,
        );
        row.state = u.state;
      }
      // Every recipient final: nothing left to deliver, the message leaves the queue.
      if (rows.every((r) => FINAL.has(r.state as RecipientState))) this.#s.delMsg.run(id);
    });
  }

  markWarned(id: string): Promise<void> {
    return this.#write(false, () => {
      this.#s.warn.run(id);
    });
  }

  async list(filter: { state?: RecipientState; limit?: number } = {}): Promise<QueuedMessage[]> {
    this.#open();
    const limit = clampLimit(filter.limit ?? Number.MAX_SAFE_INTEGER);
    const rows = filter.state ? this.#s.listState.all(filter.state, limit) : this.#s.listAll.all(limit);
    return this.#rows(rows);
  }

  delete(id: string): Promise<boolean> {
    return this.#write(true, () => Number(this.#s.delMsg.run(id).changes) > 0);
  }

  retryNow(id?: string): Promise<number> {
    return this.#write(true, () => {
      const ms = this.#now().getTime();
      const r = id === undefined ? this.#s.retryAll.run(ms) : this.#s.retryOne.run(ms, id);
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

  async expired(now: Date = this.#now(), limit = 1000): Promise<QueuedMessage[]> {
    this.#open();
    const rows = this.#rows(this.#s.expired.all(now.getTime() - this.#maxLifetimeMs, clampLimit(limit)));
    return rows.filter((m) => isExpired(m.createdAt, now, this.#maxLifetimeMs));
  }

  async delayWarningsDue(now: Date = this.#now(), limit = 1000): Promise<QueuedMessage[]> {
    this.#open();
    if (this.#delayWarningMs <= 0) return [];
    const rows = this.#rows(this.#s.warnDue.all(now.getTime() - this.#delayWarningMs, clampLimit(limit)));
    return rows.filter((m) => delayWarningDue(m.createdAt, now, m.warned, this.#delayWarningMs));
  }

  integrityCheck(): string {
    this.#open();
    const rows = this.#db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>;
    return rows.map((r) => r.integrity_check).join('; ');
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
        address: r.address,
        state: r.state as RecipientState,
        attempts: r.attempts,
        lastReply: r.last_reply,
        reason: r.reason,
        nextAttemptAt:
          r.next_ms === null || FINAL.has(r.state as RecipientState) ? null : new Date(r.next_ms).toISOString(),
        updatedAt: r.updated_at,
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
