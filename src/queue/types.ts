/**
 * The queue is the only hand-off between receiving and delivering (Postfix's model): smtpd writes
 * a message and its envelope durably, the delivery side reads it. These types are the contract
 * between src/smtp/server (producer), src/queue (storage) and src/delivery (consumer).
 */

// moved: import these from '../core/envelope.ts' (shim kept while the issue 9 branches merge; delete after).
import type { Envelope } from '../core/envelope.ts';
export type { ArrivalInfo, Envelope, EnvelopeRecipient, RecipientDsn } from '../core/envelope.ts';

export type RecipientState = 'queued' | 'deferred' | 'delivered' | 'bounced';

/** Per-recipient delivery status, kept as data in the queue (temporary vs permanent decided once). */
export interface RecipientStatus {
  /**
   * The recipient's id within its message: its position in `envelope.recipients` (0-based), so
   * `envelope.recipients[id]` is its RCPT TO. Updates address recipients by id, never by address:
   * one message can list the same address twice.
   */
  id: number;
  address: string;
  state: RecipientState;
  attempts: number;
  /** Last SMTP reply or local reason, with enhanced status code when known. */
  lastReply: string | null;
  /** Plain-words reason for a person, e.g. "the receiving server offered TLS 1.0 only; …". */
  reason: string | null;
  /**
   * When to try again ('queued'/'deferred'); null for final states. Computed above the storage
   * (src/queue/schedule.ts `Schedule`): a spool stores it and never invents a backoff.
   */
  nextAttemptAt: string | null;
  updatedAt: string;
  /**
   * Delivered to a next hop that advertised DSN, with NOTIFY/ORCPT passed on: RFC 3461 §5.2.1 — the
   * next hop now reports, so postern sends no "delivered"/"relayed" DSN of its own. Set by
   * delivery; anything else delivered went to a hop without DSN and gets "relayed" (§5.2.2).
   */
  dsnPassedOn?: boolean;
}

/** A message as stored: envelope, status, and the message bytes (headers + body, CRLF, no dot-stuffing). */
export interface QueuedMessage {
  id: string;
  envelope: Envelope;
  /** One per envelope recipient, in envelope order (`recipients[i].id === i`). */
  recipients: RecipientStatus[];
  createdAt: string;
  /** Delay warning already sent (RFC 3464 "delayed"). */
  warned: boolean;
  size: number;
}

/**
 * Proof that a caller holds a message: only the holder of the current claim can complete it.
 * `token` is unique per claim; `leaseUntil` is when the claim lapses and the message may be claimed
 * again (a node that died mid-delivery does not hold its mail for ever).
 */
export interface Claim {
  id: string;
  token: string;
  leaseUntil: string;
}

/** A message handed to one worker by `Spool.claim`. */
export interface ClaimedMessage extends QueuedMessage {
  claim: Claim;
}

/**
 * Which messages `Spool.claim` hands out. The cut-off times are computed above the storage
 * (src/queue/schedule.ts), so every backend applies the same lifetimes.
 * - `due`: a recipient queued or deferred with `nextAttemptAt` ≤ now (delivery);
 * - `expired`: created at or before `createdBefore` with a recipient not yet final (bounce them);
 * - `delay-warning`: created at or before `createdBefore`, not warned, a recipient deferred.
 */
export type ClaimSelect =
  { kind: 'due' } | { kind: 'expired'; createdBefore: Date } | { kind: 'delay-warning'; createdBefore: Date };

export interface ClaimOptions {
  /** Default `{ kind: 'due' }`. */
  select?: ClaimSelect;
  /** How long the claim holds (default 10 minutes). */
  leaseMs?: number;
}

/** A message to enqueue as part of a completion (a DSN caused by the results). */
export interface NewMessage {
  envelope: Envelope;
  message: Buffer;
}

/** Everything one delivery attempt (or expiry, or delay warning) changes, applied in one step. */
export interface Completion {
  /**
   * New status of some recipients, addressed by `id` (its `address` must match, as a check).
   * Non-final states need `nextAttemptAt`.
   */
  recipients: RecipientStatus[];
  /** DSNs the results cause, enqueued in the same transaction as the results. */
  dsns?: NewMessage[];
  /** Record that the delay warning went out. */
  warned?: boolean;
}

export interface CompletionResult {
  /** Queue ids of the enqueued `dsns`, in order. */
  dsnIds: string[];
  /** Every recipient final: the message left the queue. */
  removed: boolean;
}

/** Messages by age, for metrics (bounds chosen by the caller). */
export interface QueueAges {
  messages: number;
  /** Arrival of the oldest message still queued; null when the queue is empty. */
  oldestCreatedAt: string | null;
  /** `olderThan[i]`: messages created before `now - agesMs[i]`. */
  olderThan: number[];
}

/**
 * Storage contract of the queue. The embedded backend is SQLite (src/queue/sqlite.ts); a PostgreSQL
 * backend shared by several nodes implements the same contract (claims are leases a node takes with
 * `SELECT … FOR UPDATE SKIP LOCKED`; `complete` is one transaction). test/unit/queue/spool-contract.ts
 * is the suite every backend runs.
 *
 * The storage decides nothing about time: backoff, lifetimes and warning ages come from
 * src/queue/schedule.ts above it, as `nextAttemptAt` and `createdBefore` values.
 */
export interface Spool {
  /** Store durably; resolves only after the data is on disk (fsync / committed transaction). */
  enqueue(envelope: Envelope, message: Buffer): Promise<string>;
  get(id: string): Promise<QueuedMessage | null>;
  readMessage(id: string): Promise<Buffer>;
  /**
   * Claim up to `limit` messages matching `opts.select` and not already claimed under a live
   * lease. `due`: longest due first (by the earliest `nextAttemptAt`, which for new mail is its
   * arrival, then by arrival); `expired`, `delay-warning`: oldest first. A claimed message is not handed out again until its claim is completed,
   * released or has lapsed.
   */
  claim(now: Date, limit: number, opts?: ClaimOptions): Promise<ClaimedMessage[]>;
  /**
   * Apply recipient results, enqueue the DSNs they cause and set `warned`, all or nothing, and end
   * the claim. A message whose recipients are all final leaves the queue. Rejects with
   * `queue-not-found` (deleted meanwhile), `queue-lease-lost` (the claim lapsed and someone else
   * holds the message), `queue-unknown-recipient` or `queue-invalid`; then nothing was changed.
   * Durable when it enqueues DSNs; otherwise a backend may defer the fsync (a result lost to a
   * power cut means one more delivery, never a lost message).
   */
  complete(claim: Claim, completion: Completion): Promise<CompletionResult>;
  /**
   * Extend a claim still held to `now + leaseMs` (a long delivery keeps its message). Rejects with
   * `queue-lease-lost` when someone else holds it now, `queue-not-found` when it was deleted.
   */
  renew(claim: Claim, now: Date, leaseMs: number): Promise<Claim>;
  /** Give a claim back unchanged (e.g. the attempt could not run); a lapsed claim is a no-op. */
  release(claim: Claim): Promise<void>;
  /**
   * Oldest first; `state`: messages with at least one recipient in that state; `offset`/`limit`:
   * one page of that order.
   */
  list(filter?: { state?: RecipientState; limit?: number; offset?: number }): Promise<QueuedMessage[]>;
  /** Remove a message, claimed or not; its holder's `complete` then fails with `queue-not-found`. */
  delete(id: string): Promise<boolean>;
  /** Make every deferred recipient due now (queue flush / retry); resolves with the number of recipients. */
  retryNow(id?: string): Promise<number>;
  /** Recipients of queued messages, by state. */
  counts(): Promise<Record<RecipientState, number>>;
  /** Messages by age at `now`, for each bound in `agesMs`. */
  ages(now: Date, agesMs: readonly number[]): Promise<QueueAges>;
  close(): Promise<void>;
}
