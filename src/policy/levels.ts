/**
 * Outbound TLS security levels, ordered like Postfix's `TLS_LEV_*` (src/tls/tls.h: "numerical
 * order of levels is critical"). Code asks the predicates below instead of comparing names, so a
 * new level only needs a rank here.
 *
 * Ranks leave gaps for issue 5: `dane` (30) and `mta-sts` (40) sit between encrypt and verify
 * (Postfix: ENCRYPT < FPRINT < HALF_DANE < DANE < DANE_ONLY < VERIFY), `dane-only` (45).
 */
import { UsageError } from '../core/errors.ts';

/** Levels implemented today, weakest first. */
export const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify', 'secure'] as const;
export type TlsLevel = (typeof TLS_LEVELS)[number];

/** Levels reserved for DANE (RFC 7672) and MTA-STS (RFC 8461); accepted by nothing yet. */
export const RESERVED_LEVELS = ['dane', 'dane-only', 'mta-sts'] as const;

const RANK: Readonly<Record<TlsLevel, number>> = { none: 0, may: 10, encrypt: 20, verify: 50, secure: 60 };

/** Numeric rank of a level (higher = stricter). */
export function levelRank(level: TlsLevel): number {
  return RANK[level];
}

/** Negative when `a` is weaker than `b`, 0 when equal. */
export function compareLevels(a: TlsLevel, b: TlsLevel): number {
  return RANK[a] - RANK[b];
}

/** Is `level` at least as strict as `min`? */
export function atLeast(level: TlsLevel, min: TlsLevel): boolean {
  return RANK[level] >= RANK[min];
}

/** STARTTLS is attempted whenever the server offers it (every level except `none`). */
export function attemptsTls(level: TlsLevel): boolean {
  return RANK[level] >= RANK.may;
}

/** Mail must never go in cleartext (encrypt and above; Postfix TLS_REQUIRED). */
export function requiresTls(level: TlsLevel): boolean {
  return RANK[level] >= RANK.encrypt;
}

/**
 * The server must be authenticated by its certificate (verify and above; Postfix
 * TLS_MUST_MATCH). RFC 8689 §4.1 REQUIRETLS needs such a next hop.
 */
export function requiresAuth(level: TlsLevel): boolean {
  return RANK[level] >= RANK.verify;
}

/** Is `s` an implemented level name? */
export function isTlsLevel(s: string): s is TlsLevel {
  return (TLS_LEVELS as readonly string[]).includes(s);
}

/** Parse a level from config; reserved (issue 5) and unknown names are a UsageError. */
export function parseLevel(s: string): TlsLevel {
  const v = s.trim().toLowerCase();
  if (isTlsLevel(v)) return v;
  if ((RESERVED_LEVELS as readonly string[]).includes(v)) {
    throw new UsageError(`TLS level '${s}' is not implemented yet`, { hint: `use one of ${TLS_LEVELS.join(', ')}` });
  }
  throw new UsageError(`unknown TLS level '${s}'`, { hint: `use one of ${TLS_LEVELS.join(', ')}` });
}
