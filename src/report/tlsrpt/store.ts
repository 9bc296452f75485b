/**
 * Durable TLS-RPT aggregation (RFC 8460 §4): the counts of {@link TlsRptAggregator}, kept in one
 * SQLite file under the gateway's state dir (`<stateDir>/tlsrpt.sqlite`) so a restart loses no
 * day, plus the delivery state of each (policy domain, UTC day) report.
 *
 * Counting is the aggregator's: rows are keyed with its own tlsRptBucketKey/tlsRptFailureKey, and
 * reports are rendered by replaying the stored totals into a fresh aggregator, in first-seen order.
 *
 * Unlike the queue this file is shared: the gateway writes, `postern tlsrpt show` reads at the same
 * time, so the connection uses normal locking (WAL lets readers run beside the writer). Counts are
 * statistics, not mail: `synchronous = NORMAL` (no fsync per session; WAL keeps the file
 * consistent, a power loss may drop the last few counts).
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { PosternError } from '../../core/errors.ts';
import {
  TlsRptAggregator,
  tlsRptBucketKey,
  tlsRptDay,
  tlsRptFailureKey,
  type TlsRptFailure,
  type TlsRptPolicy,
  type TlsRptReport,
  type TlsRptReportOptions,
  type TlsRptSession,
} from './aggregate.ts';

/** The file name inside the state dir. */
export const TLSRPT_STORE_FILE = 'tlsrpt.sqlite';

/** `<stateDir>/tlsrpt.sqlite`. */
export function tlsRptStorePath(stateDir: string): string {
  return path.join(path.resolve(stateDir), TLSRPT_STORE_FILE);
}

export interface TlsRptStoreOptions {
  /** Injectable clock (tests): default day of a session without `day`, and "now" for pending/prune. */
  now?: () => Date;
  /** Open an existing file without writing to it (the CLI). Fails with `tlsrpt-store-open` if it does not exist. */
  readOnly?: boolean;
  /** Days older than this many days before today are deleted by {@link TlsRptStore.prune} (default 14). */
  retentionDays?: number;
  /** How long to wait for the other process's lock (default 2000 ms). */
  busyTimeoutMs?: number;
}

/** Delivery state of one report. `retry` is the only non-final one. */
export type TlsRptDeliveryState = 'sent' | 'skipped' | 'retry' | 'failed';

/** What happened when a report was (to be) sent; recorded by {@link TlsRptStore.markSent}. */
export type TlsRptOutcome =
  /** Delivered to every rua (mailto: handed to the queue; https: 2xx). */
  | { state: 'sent'; delivered?: string[] }
  /** Not sent and never will be: no TLS-RPT record, an invalid one, nothing to send. */
  | { state: 'skipped'; reason: string }
  /** Some rua failed; try again at `retryAt`. `delivered` lists the URIs already done. */
  | { state: 'retry'; reason: string; retryAt: Date; delivered?: string[] }
  /** Gave up (RFC 8460 §5.5: retries SHOULD stop after 24 hours). */
  | { state: 'failed'; reason: string; delivered?: string[] };

export interface TlsRptDeliveryStatus {
  policyDomain: string;
  day: string;
  state: TlsRptDeliveryState;
  reason: string | null;
  /** rua URIs the report already reached. */
  delivered: string[];
  attempts: number;
  firstAttemptAt: Date;
  retryAt: Date | null;
  updatedAt: Date;
}

/** A finished day's report that is due: never attempted, or a retry whose time has come. */
export interface TlsRptDue {
  policyDomain: string;
  day: string;
  /** Present when an earlier attempt was made. */
  status?: TlsRptDeliveryStatus;
}

export interface TlsRptReportQuery {
  report: TlsRptReportOptions;
  /** Only finished UTC days: days that ended before this instant (i.e. day < the UTC day of `before`). */
  before?: Date;
  /** Only this UTC day (YYYY-MM-DD). */
  day?: string;
  /** Only this policy domain. */
  policyDomain?: string;
  /** Leave out reports whose delivery reached a final state (sent, skipped, failed). */
  unsentOnly?: boolean;
}

const SCHEMA_VERSION = 1;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS policy (
  id INTEGER PRIMARY KEY,
  day TEXT NOT NULL,
  domain TEXT NOT NULL,
  policy_key TEXT NOT NULL,
  policy TEXT NOT NULL,
  success INTEGER NOT NULL DEFAULT 0,
  UNIQUE (day, domain, policy_key)
);
CREATE TABLE IF NOT EXISTS failure (
  id INTEGER PRIMARY KEY,
  policy_id INTEGER NOT NULL REFERENCES policy(id) ON DELETE CASCADE,
  detail_key TEXT NOT NULL,
  detail TEXT NOT NULL,
  count INTEGER NOT NULL,
  UNIQUE (policy_id, detail_key)
);
CREATE TABLE IF NOT EXISTS delivery (
  day TEXT NOT NULL,
  domain TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('sent', 'skipped', 'retry', 'failed')),
  reason TEXT,
  delivered TEXT NOT NULL DEFAULT '[]',
  attempts INTEGER NOT NULL,
  first_attempt_at INTEGER NOT NULL,
  retry_at INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (day, domain)
);
`;

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const DAY_MS = 86_400_000;

/** Checks a YYYY-MM-DD day string names a real calendar day. */
export function isTlsRptDay(day: string): boolean {
  if (!DAY_RE.test(day)) return false;
  const t = Date.parse(`${day}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === day;
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

interface PolicyRow {
  id: number;
  day: string;
  domain: string;
  policy: string;
  success: number;
}
interface FailureRow {
  policy_id: number;
  detail: string;
  count: number;
}
interface DeliveryRow {
  day: string;
  domain: string;
  state: TlsRptDeliveryState;
  reason: string | null;
  delivered: string;
  attempts: number;
  first_attempt_at: number;
  retry_at: number | null;
  updated_at: number;
}

/** Stored failure fields (camelCase, as TlsRptFailure) so replay goes through the aggregator's own API. */
type StoredFailure = Pick<
  TlsRptFailure,
  | 'resultType'
  | 'sendingMtaIp'
  | 'receivingMxHostname'
  | 'receivingMxHelo'
  | 'receivingIp'
  | 'additionalInformation'
  | 'failureReasonCode'
>;

/** Durable per-day TLS-RPT counts and report delivery state (see the module comment). */
export class TlsRptStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #now: () => Date;
  readonly #retentionDays: number;
  readonly #readOnly: boolean;
  #stmts: Map<string, StatementSync> = new Map();

  private constructor(db: DatabaseSync, file: string, opts: TlsRptStoreOptions) {
    this.#db = db;
    this.path = file;
    this.#now = opts.now ?? (() => new Date());
    this.#retentionDays = opts.retentionDays ?? 14;
    this.#readOnly = opts.readOnly ?? false;
  }

  /**
   * Open (creating if needed, mode 0600) the store at `file`, or an in-memory one for ':memory:'.
   * Errors: `tlsrpt-store-open`, `tlsrpt-store-schema` (a newer postern wrote it).
   */
  static open(file: string, opts: TlsRptStoreOptions = {}): TlsRptStore {
    const retention = opts.retentionDays ?? 14;
    if (!Number.isSafeInteger(retention) || retention < 1) {
      throw new PosternError('tlsrpt-store-retention', `retentionDays must be a positive integer, got ${retention}`);
    }
    const memory = file === ':memory:';
    const full = memory ? file : path.resolve(file);
    if (!memory && opts.readOnly && !existsSync(full)) {
      throw new PosternError('tlsrpt-store-open', `no TLS-RPT data at ${full}`, {
        hint: 'the gateway creates it once it has delivered mail; check --state-dir',
      });
    }
    if (!memory && !opts.readOnly) {
      const dir = path.dirname(full);
      try {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        // The counts name the sites we talk to: owner-only, like the rest of the state dir.
        closeSync(openSync(full, 'a', 0o600));
        chmodSync(full, 0o600);
      } catch (e) {
        throw new PosternError('tlsrpt-store-open', `cannot create the TLS-RPT store ${full}: ${errMsg(e)}`, {
          hint: 'choose a writable state directory',
          cause: e,
        });
      }
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(full, {
        readOnly: opts.readOnly ?? false,
        timeout: opts.busyTimeoutMs ?? 2000,
        enableForeignKeyConstraints: true,
      });
    } catch (e) {
      throw new PosternError('tlsrpt-store-open', `cannot open the TLS-RPT store ${full}: ${errMsg(e)}`, { cause: e });
    }
    try {
      const v = db.prepare('PRAGMA user_version').get() as { user_version: number } | undefined;
      const version = v?.user_version ?? 0;
      if (version > SCHEMA_VERSION) {
        throw new PosternError('tlsrpt-store-schema', `TLS-RPT store ${full} has a newer schema (${version})`, {
          hint: 'run the postern version that created it, or move the file aside',
        });
      }
      if (!opts.readOnly) {
        db.exec('PRAGMA journal_mode = WAL');
        db.exec('PRAGMA synchronous = NORMAL');
        db.exec('BEGIN IMMEDIATE');
        db.exec(SCHEMA);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.exec('COMMIT');
      } else if (version === 0) {
        throw new PosternError('tlsrpt-store-open', `${full} is not a TLS-RPT store`);
      }
    } catch (e) {
      try {
        db.close();
      } catch {
        /* already failing */
      }
      if (e instanceof PosternError) throw e;
      throw new PosternError('tlsrpt-store-open', `cannot open the TLS-RPT store ${full}: ${errMsg(e)}`, { cause: e });
    }
    return new TlsRptStore(db, full, opts);
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) this.#stmts.set(sql, (s = this.#db.prepare(sql)));
    return s;
  }

  #tx<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  #writable(): void {
    if (this.#readOnly) throw new PosternError('tlsrpt-store-readonly', 'the TLS-RPT store was opened read-only');
  }

  /** Count one successful TLS session (one call per session attempt, as TlsRptAggregator.recordSuccess). */
  recordSuccess(session: TlsRptSession): void {
    this.#writable();
    const k = tlsRptBucketKey(session, this.#now);
    this.#stmt(
      `INSERT INTO policy (day, domain, policy_key, policy, success) VALUES (?, ?, ?, ?, 1)
       ON CONFLICT (day, domain, policy_key) DO UPDATE SET success = success + 1`,
    ).run(k.day, k.policyDomain, k.policyKey, JSON.stringify(k.policy));
  }

  /** Count one failed TLS session; identical details are merged (as TlsRptAggregator.recordFailure). */
  recordFailure(failure: TlsRptFailure): void {
    this.#writable();
    const { key } = tlsRptFailureKey(failure); // validates the result type before anything is written
    const k = tlsRptBucketKey(failure, this.#now);
    const stored: StoredFailure = {
      resultType: failure.resultType,
      sendingMtaIp: failure.sendingMtaIp,
      receivingMxHostname: failure.receivingMxHostname,
    };
    if (failure.receivingMxHelo !== undefined) stored.receivingMxHelo = failure.receivingMxHelo;
    if (failure.receivingIp !== undefined) stored.receivingIp = failure.receivingIp;
    if (failure.additionalInformation !== undefined) stored.additionalInformation = failure.additionalInformation;
    if (failure.failureReasonCode !== undefined) stored.failureReasonCode = failure.failureReasonCode;
    this.#tx(() => {
      const row = this.#stmt(
        `INSERT INTO policy (day, domain, policy_key, policy, success) VALUES (?, ?, ?, ?, 0)
         ON CONFLICT (day, domain, policy_key) DO UPDATE SET success = success RETURNING id`,
      ).get(k.day, k.policyDomain, k.policyKey, JSON.stringify(k.policy)) as { id: number } | undefined;
      if (!row) throw new PosternError('tlsrpt-store', 'policy row not returned');
      this.#stmt(
        `INSERT INTO failure (policy_id, detail_key, detail, count) VALUES (?, ?, ?, 1)
         ON CONFLICT (policy_id, detail_key) DO UPDATE SET count = count + 1`,
      ).run(row.id, key, JSON.stringify(stored));
    });
  }

  /** UTC days (YYYY-MM-DD) with data, sorted. */
  days(): string[] {
    const rows = this.#stmt('SELECT DISTINCT day FROM policy ORDER BY day').all() as Array<{ day: string }>;
    return rows.map((r) => r.day);
  }

  /**
   * Reports rebuilt from the stored counts, sorted by day then policy domain; each is exactly what
   * a TlsRptAggregator fed the same sessions would produce.
   */
  reports(q: TlsRptReportQuery): TlsRptReport[] {
    if (q.day !== undefined && !isTlsRptDay(q.day)) {
      throw new PosternError('tlsrpt-day', `"${q.day}" is not a YYYY-MM-DD day`);
    }
    const where: string[] = [];
    const args: string[] = [];
    if (q.before !== undefined) {
      where.push('p.day < ?');
      args.push(tlsRptDay(q.before));
    }
    if (q.day !== undefined) {
      where.push('p.day = ?');
      args.push(q.day);
    }
    if (q.policyDomain !== undefined) {
      where.push('p.domain = ?');
      args.push(q.policyDomain.trim().toLowerCase().replace(/\.$/, ''));
    }
    if (q.unsentOnly) {
      where.push(
        "NOT EXISTS (SELECT 1 FROM delivery d WHERE d.day = p.day AND d.domain = p.domain AND d.state <> 'retry')",
      );
    }
    const cond = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const policies = this.#db
      .prepare(`SELECT p.id, p.day, p.domain, p.policy, p.success FROM policy p ${cond} ORDER BY p.id`)
      .all(...args) as unknown as PolicyRow[];
    if (policies.length === 0) return [];
    const failures = this.#db
      .prepare(
        `SELECT f.policy_id, f.detail, f.count FROM failure f JOIN policy p ON p.id = f.policy_id ${cond} ORDER BY f.id`,
      )
      .all(...args) as unknown as FailureRow[];

    // Replay in first-seen order: policies[] and failure-details keep the aggregator's order.
    const agg = new TlsRptAggregator();
    const byId = new Map<number, TlsRptSession>();
    for (const p of policies) {
      const session: TlsRptSession = {
        policyDomain: p.domain,
        policy: JSON.parse(p.policy) as TlsRptPolicy,
        day: new Date(`${p.day}T00:00:00Z`),
      };
      byId.set(p.id, session);
      agg.recordSuccess(session, p.success);
    }
    for (const f of failures) {
      const session = byId.get(f.policy_id);
      if (!session) continue;
      agg.recordFailure({ ...session, ...(JSON.parse(f.detail) as StoredFailure) }, f.count);
    }
    const out: TlsRptReport[] = [];
    for (const day of agg.days()) out.push(...agg.reports(new Date(`${day}T00:00:00Z`), q.report));
    return out;
  }

  /**
   * Finished days (before the current UTC day) whose report is due: never attempted, or in
   * `retry` with its time come. Sorted by day, then policy domain.
   */
  pending(opts: { now?: Date } = {}): TlsRptDue[] {
    const now = opts.now ?? this.#now();
    const rows = this.#stmt(
      `SELECT DISTINCT p.day, p.domain FROM policy p
       LEFT JOIN delivery d ON d.day = p.day AND d.domain = p.domain
       WHERE p.day < ? AND (d.state IS NULL OR (d.state = 'retry' AND d.retry_at <= ?))
       ORDER BY p.day, p.domain`,
    ).all(tlsRptDay(now), now.getTime()) as Array<{ day: string; domain: string }>;
    return rows.map((r) => {
      const status = this.status(r.domain, r.day);
      return status ? { policyDomain: r.domain, day: r.day, status } : { policyDomain: r.domain, day: r.day };
    });
  }

  /** The recorded delivery state of one report, if any attempt was recorded. */
  status(policyDomain: string, day: string): TlsRptDeliveryStatus | undefined {
    const r = this.#stmt('SELECT * FROM delivery WHERE domain = ? AND day = ?').get(policyDomain, day) as
      DeliveryRow | undefined;
    return r ? toStatus(r) : undefined;
  }

  /** Every recorded delivery state, sorted by day then policy domain. */
  statuses(): TlsRptDeliveryStatus[] {
    const rows = this.#stmt('SELECT * FROM delivery ORDER BY day, domain').all() as unknown as DeliveryRow[];
    return rows.map(toStatus);
  }

  /** Record the outcome of an attempt to send the report for (policy domain, UTC day). */
  markSent(policyDomain: string, day: string, outcome: TlsRptOutcome): void {
    this.#writable();
    if (!isTlsRptDay(day)) throw new PosternError('tlsrpt-day', `"${day}" is not a YYYY-MM-DD day`);
    const domain = policyDomain.trim().toLowerCase().replace(/\.$/, '');
    const now = this.#now().getTime();
    const reason = outcome.state === 'sent' ? null : outcome.reason;
    const retryAt = outcome.state === 'retry' ? outcome.retryAt.getTime() : null;
    if (retryAt !== null && Number.isNaN(retryAt)) throw new PosternError('tlsrpt-day', 'invalid retryAt');
    const delivered = outcome.state === 'skipped' ? [] : (outcome.delivered ?? []);
    this.#stmt(
      `INSERT INTO delivery (day, domain, state, reason, delivered, attempts, first_attempt_at, retry_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)
       ON CONFLICT (day, domain) DO UPDATE SET state = excluded.state, reason = excluded.reason,
         delivered = excluded.delivered, attempts = attempts + 1, retry_at = excluded.retry_at,
         updated_at = excluded.updated_at`,
    ).run(day, domain, outcome.state, reason, JSON.stringify([...new Set(delivered)]), now, retryAt, now);
  }

  /**
   * Delete every day older than the retention period (default 14 days before today), whatever
   * its delivery state: a report that old is no longer worth sending. Returns the days deleted.
   */
  prune(): number {
    this.#writable();
    const cutoff = tlsRptDay(new Date(this.#now().getTime() - this.#retentionDays * DAY_MS));
    return this.#tx(() => {
      const n = this.#stmt('SELECT COUNT(DISTINCT day) AS n FROM policy WHERE day < ?').get(cutoff) as { n: number };
      this.#stmt('DELETE FROM failure WHERE policy_id IN (SELECT id FROM policy WHERE day < ?)').run(cutoff);
      this.#stmt('DELETE FROM policy WHERE day < ?').run(cutoff);
      this.#stmt('DELETE FROM delivery WHERE day < ?').run(cutoff);
      return n.n;
    });
  }

  close(): void {
    this.#stmts.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}

function toStatus(r: DeliveryRow): TlsRptDeliveryStatus {
  let delivered: string[] = [];
  try {
    const v: unknown = JSON.parse(r.delivered);
    if (Array.isArray(v)) delivered = v.filter((x): x is string => typeof x === 'string');
  } catch {
    /* a damaged column means "nothing delivered yet": at worst a duplicate report */
  }
  return {
    policyDomain: r.domain,
    day: r.day,
    state: r.state,
    reason: r.reason,
    delivered,
    attempts: r.attempts,
    firstAttemptAt: new Date(r.first_attempt_at),
    retryAt: r.retry_at === null ? null : new Date(r.retry_at),
    updatedAt: new Date(r.updated_at),
  };
}
