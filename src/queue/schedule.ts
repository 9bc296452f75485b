/**
 * Retry schedule and the one temporary-vs-permanent mapping the queue, delivery and DSNs share
 * (STYLE.md §4: decided in one place, stored as data).
 */
import { replyClass, replyStatus } from '../smtp/protocol/reply-class.ts';
import type { ReplyClass } from '../smtp/protocol/reply-class.ts';

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
