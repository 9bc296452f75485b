/**
 * The one rule for "did it work, and if not, is it worth trying again?" of an SMTP reply, shared
 * by the outbound client (src/smtp/client), delivery (src/delivery/outcome.ts), the queue
 * (src/queue/schedule.ts) and DSNs (RFC 3464 `Status`). Pure.
 *
 * RFC 5321 §4.2.1: the first digit of the 3-digit reply code decides — 2xx/3xx positive, 4xx
 * transient, 5xx permanent — as Postfix does (smtp_proto.c looks only at the reply code). The
 * enhanced status code (RFC 3463) refines the reason; it never overrides the reply code. RFC 3463
 * §2: a server whose enhanced class contradicts its reply code ("550 4.7.1") is wrong; the reply
 * code still decides, and the enhanced code is not used as is: the DSN `Status` takes the reply's
 * class with the enhanced subject and detail ("5.7.1"), or the generic `X.0.0` when the enhanced
 * code is missing or malformed.
 */

export type ReplyClass = 'success' | 'temporary' | 'permanent';

/** An RFC 3463 §2 status code, split: class "." subject "." detail (1-3 digits each). */
export interface EnhancedCode {
  cls: 2 | 4 | 5;
  subject: number;
  detail: number;
}

// RFC 3463 §2: class = "2" / "4" / "5"; subject = 1*3digit; detail = 1*3digit.
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})$/;

/** Parse an enhanced status code ("5.7.1"); null when it is not one (RFC 3463 §2 syntax). */
export function parseEnhanced(text: string | null | undefined): EnhancedCode | null {
  if (text === null || text === undefined) return null;
  const m = ENHANCED.exec(text.trim());
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return null;
  return { cls: Number(m[1]) as 2 | 4 | 5, subject: Number(m[2]), detail: Number(m[3]) };
}

/**
 * The class of a reply, from its 3-digit code alone (RFC 5321 §4.2.1). A code outside 200-599 or
 * not an integer is 'temporary': a deferral can be corrected by a later attempt, a bounce cannot.
 */
export function replyClass(code: number): ReplyClass {
  if (!Number.isInteger(code) || code < 200 || code > 599) return 'temporary';
  const first = Math.floor(code / 100);
  // A 2xx means the server took responsibility (RFC 5321 §4.2.1); 3xx is a positive intermediate.
  if (first === 2 || first === 3) return 'success';
  return first === 5 ? 'permanent' : 'temporary';
}

/** Is this a 2xx completion reply (RFC 5321 §4.2.1)? (3xx is positive but not a completion.) */
export function isCompletion(code: number): boolean {
  return Number.isInteger(code) && code >= 200 && code <= 299;
}

/**
 * The RFC 3464 `Status` of a reply: the reply's class (from the reply code) with the subject and
 * detail of its enhanced code when that parses ("550 4.7.1" → "5.7.1", RFC 3463 §2), else the
 * class's generic code "2.0.0" / "4.0.0" / "5.0.0".
 */
export function replyStatus(code: number, enhanced?: string | null): string {
  const cls = replyClass(code);
  const digit = cls === 'success' ? 2 : cls === 'temporary' ? 4 : 5;
  const e = parseEnhanced(enhanced);
  return e === null ? `${digit}.0.0` : `${digit}.${e.subject}.${e.detail}`;
}

/** The enhanced code at the start of a reply text ("5.7.1 Relaying denied" → "5.7.1"), or null. */
export function enhancedOf(text: string): string | null {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(text);
  return m?.[1] ?? null;
}
