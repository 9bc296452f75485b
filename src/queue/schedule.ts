/**
 * Retry schedule and the one temporary-vs-permanent mapping the queue, delivery and DSNs share
 * (STYLE.md §4: decided in one place, stored as data).
 */
import { replyClass, replyStatus } from '../smtp/protocol/reply-class.ts';
import type { ReplyClass } from '../smtp/protocol/reply-class.ts';
import type { RecipientStatus } from './types.ts';

export interface RetryOptions {
  /** First retry delay (default 5 min). */
  initialMs: number;
  /** Upper bound of any delay, jitter included (default 1 h). */
  maxMs: number;
  /** Growth per attempt (default 2). */
  factor: number;
  /** Relative jitter, 0..0.5 (default 0.1 = ±10 %), so deferred mail does not retry in lockstep. */
  jitter?: number;
}

export const DEFAULT_RETRY: Readonly<Required<RetryOptions>> = Object.freeze({
  initialMs: 5 * 60_000,
  maxMs: 60 * 60_000,
  factor: 2,
  jitter: 0.1,
});

/** Default maximum time in the queue before a bounce (Postfix `maximal_queue_lifetime` = 5d). */
export const DEFAULT_MAX_LIFETIME_MS = 5 * 24 * 3_600_000;
/** Default age at which one delay warning is sent (Postfix `delay_warning_time` = 4h). */
export const DEFAULT_DELAY_WARNING_MS = 4 * 3_600_000;

/**
 * When to try again after `attempts` failed attempts (1 = the first failure): initialMs ·
 * factor^(attempts-1), capped at maxMs, then ±jitter — the result never exceeds maxMs and never
 * drops below half of initialMs.
 */
export function nextAttempt(
  attempts: number,
  now: Date,
  opts: Partial<RetryOptions> = {},
  random: () => number = Math.random,
): Date {
  const o = { ...DEFAULT_RETRY, ...opts };
  const jitter = Math.min(Math.max(o.jitter, 0), 0.5);
  const n = Math.max(1, Math.floor(Number.isFinite(attempts) ? attempts : 1));
  // Exponent capped so factor^n cannot overflow to Infinity for absurd attempt counts.
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(Math.max(o.factor, 1), Math.min(n - 1, 64)));
  const r = Math.min(Math.max(random(), 0), 1);
  const jittered = base * (1 + jitter * (2 * r - 1));
  const delay = Math.round(Math.min(o.maxMs, Math.max(o.initialMs / 2, jittered)));
  return new Date(now.getTime() + delay);
}

/** True once a message has been queued longer than `maxLifetimeMs` (default 5 days): bounce it. */
export function isExpired(
  createdAt: Date | string,
  now: Date,
  maxLifetimeMs: number = DEFAULT_MAX_LIFETIME_MS,
): boolean {
  return now.getTime() - toMs(createdAt) >= maxLifetimeMs;
}

/** True when a delay warning (RFC 3464 Action: delayed) is due: old enough and not yet sent. */
export function delayWarningDue(
  createdAt: Date | string,
  now: Date,
  warned: boolean,
  delayWarningMs: number = DEFAULT_DELAY_WARNING_MS,
): boolean {
  return !warned && delayWarningMs > 0 && now.getTime() - toMs(createdAt) >= delayWarningMs;
}

export type { ReplyClass } from '../smtp/protocol/reply-class.ts';
/** Options of the queue's one schedule (config `queue.retry`, `queue.maxLifetimeMs`, `queue.delayWarningMs`). */
export interface ScheduleOptions {
  retry?: Partial<RetryOptions>;
  /** Default 5 days. */
  maxLifetimeMs?: number;
  /** Default 4 h; 0 disables delay warnings. */
  delayWarningMs?: number;
  /** Jitter source (tests). */
  random?: () => number;
}

/**
 * Backoff and lifetimes, computed in one place above the storage: the queue manager asks the
 * schedule, and hands the spool absolute times (`nextAttemptAt`, `createdBefore`) only. A spool
 * backend therefore cannot drift from another in when it retries or gives up.
 */
export interface Schedule {
  readonly maxLifetimeMs: number;
  readonly delayWarningMs: number;
  /** The status as the spool must store it: final states lose `nextAttemptAt`; open ones get one. */
  settle(r: RecipientStatus, now: Date): RecipientStatus;
  /** Messages created at or before this time have outlived `maxLifetimeMs`. */
  expiredBefore(now: Date): Date;
  /** Messages created at or before this time are due a delay warning; null when warnings are off. */
  warnBefore(now: Date): Date | null;
  /** When the queue gives up on a message created at `createdAt` (RFC 3464 §2.3.9 Will-Retry-Until). */
  retryUntil(createdAt: Date | string): Date;
}

/** The schedule for `opts` (defaults: Postfix's 5 days lifetime, 4 h delay warning). */
export function createSchedule(opts: ScheduleOptions = {}): Schedule {
  const retry = opts.retry ?? {};
  const maxLifetimeMs = opts.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS;
  const delayWarningMs = opts.delayWarningMs ?? DEFAULT_DELAY_WARNING_MS;
  const random = opts.random ?? Math.random;
  return {
    maxLifetimeMs,
    delayWarningMs,
    settle(r, now) {
      if (r.state === 'delivered' || r.state === 'bounced') return { ...r, nextAttemptAt: null };
      const given = r.nextAttemptAt === null ? NaN : Date.parse(r.nextAttemptAt);
      if (Number.isFinite(given)) return r;
      const next = r.state === 'deferred' ? nextAttempt(r.attempts, now, retry, random) : now;
      return { ...r, nextAttemptAt: next.toISOString() };
    },
    expiredBefore: (now) => new Date(now.getTime() - maxLifetimeMs),
    warnBefore: (now) => (delayWarningMs > 0 ? new Date(now.getTime() - delayWarningMs) : null),
    retryUntil: (createdAt) => new Date(toMs(createdAt) + maxLifetimeMs),
  };
}

/**
 * Temporary or permanent, from an SMTP reply (RFC 5321 §4.2.1): the reply code decides, as
 * Postfix does; an enhanced code whose class contradicts it (RFC 3463 §2: "550 4.7.1") does not
 * change the class. One rule with the SMTP client: src/smtp/protocol/reply-class.ts.
 */
export function classifyReply(code: number, enhanced?: string | null): ReplyClass {
  void enhanced; // kept in the signature: callers pass what they have, the reply code decides
  return replyClass(code);
}

/**
 * The RFC 3464 `Status` for a reply: the reply's class with the enhanced subject and detail
 * ("550 4.7.1" → "5.7.1", RFC 3463 §2), or the class's generic `X.0.0` when there is none.
 */
export function dsnStatus(code: number, enhanced?: string | null): string {
  return replyStatus(code, enhanced);
}

function toMs(d: Date | string): number {
  return typeof d === 'string' ? Date.parse(d) : d.getTime();
}
