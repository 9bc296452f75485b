/**
 * Outbound TLS security levels, ordered like Postfix's `TLS_LEV_*` (src/tls/tls.h: "numerical
 * order of levels is critical"). Code asks the predicates below instead of comparing names, so a
 * new level only needs a rank here.
 *
 * `dane` and `dane-only` sit between encrypt and verify as in Postfix (ENCRYPT < FPRINT <
 * HALF_DANE < DANE < DANE_ONLY < VERIFY). As a table entry they ask for DANE (RFC 7672); the
 * resolver (policy/resolve.ts) turns them into what applies to one MX host: `dane` when secure
 * usable TLSA records exist (TLS required, authenticated by TLSA), else `may` (for `dane`) or a
 * deferral (for `dane-only`). MTA-STS (RFC 8461) is not a level: it raises a level to `verify`.
 */
import { UsageError } from '../core/errors.ts';

/** All levels, weakest first. */
export const TLS_LEVELS = ['none', 'may', 'encrypt', 'dane', 'dane-only', 'verify', 'secure'] as const;
export type TlsLevel = (typeof TLS_LEVELS)[number];

const RANK: Readonly<Record<TlsLevel, number>> = {
  none: 0,
  may: 10,
  encrypt: 20,
  dane: 30,
  'dane-only': 45,
  verify: 50,
  secure: 60,
};

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

/** A table level that asks for DANE lookups (RFC 7672). */
export function wantsDane(level: TlsLevel): boolean {
  return level === 'dane' || level === 'dane-only';
}

/** Is `s` a level name? */
export function isTlsLevel(s: string): s is TlsLevel {
  return (TLS_LEVELS as readonly string[]).includes(s);
}

/** Parse a level from config; unknown names are a UsageError. */
export function parseLevel(s: string): TlsLevel {
  const v = s.trim().toLowerCase();
  if (isTlsLevel(v)) return v;
  if (v === 'mta-sts') {
    throw new UsageError(`'mta-sts' is not a level: MTA-STS applies by itself to domains that publish a policy`, {
      hint: `set mtaSts.enabled in the config; levels are ${TLS_LEVELS.join(', ')}`,
    });
  }
  throw new UsageError(`unknown TLS level '${s}'`, { hint: `use one of ${TLS_LEVELS.join(', ')}` });
}
