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
  address: string;
  state: RecipientState;
  attempts: number;
  /** Last SMTP reply or local reason, with enhanced status code when known. */
  lastReply: string | null;
  /** Plain-words reason for a person, e.g. "the receiving server offered TLS 1.0 only; …". */
  reason: string | null;
  nextAttemptAt: string | null;
  updatedAt: string;
  /**
   * Delivered to a next hop that advertised DSN, with NOTIFY/ORCPT passed on: RFC 3461 §6.2 — the
   * next hop now reports, so postern sends no "delivered"/"relayed" DSN of its own.
   */
  dsnPassedOn?: boolean;
}

/** A message as stored: envelope, status, and the message bytes (headers + body, CRLF, no dot-stuffing). */
export interface QueuedMessage {
  id: string;
  envelope: Envelope;
  recipients: RecipientStatus[];
  createdAt: string;
  /** Delay warning already sent (RFC 3464 "delayed"). */
  warned: boolean;
  size: number;
}

/**
 * Storage interface. The embedded backend is SQLite (node:sqlite) under the state dir; a
 * PostgreSQL backend can implement the same interface for multi-node deployments.
 */
export interface Spool {
  /** Store durably; resolves only after the data is on disk (fsync / committed transaction). */
  enqueue(envelope: Envelope, message: Buffer): Promise<string>;
  get(id: string): Promise<QueuedMessage | null>;
  readMessage(id: string): Promise<Buffer>;
  /** Messages with at least one recipient due at or before `now`, oldest first. */
  due(now: Date, limit: number): Promise<QueuedMessage[]>;
  /** Record results for some recipients; a message whose recipients are all final is removed. */
  updateRecipients(id: string, updates: RecipientStatus[]): Promise<void>;
  markWarned(id: string): Promise<void>;
  /** Oldest first; `state`: messages with at least one recipient in that state; `limit`: at most that many. */
  list(filter?: { state?: RecipientState; limit?: number }): Promise<QueuedMessage[]>;
  delete(id: string): Promise<boolean>;
  /** Make every deferred recipient due now (queue flush / retry); resolves with the number of recipients. */
  retryNow(id?: string): Promise<number>;
  counts(): Promise<Record<RecipientState, number>>;
  close(): Promise<void>;
}
