/**
 * What postern offers in its outbound ClientHello. The offer is wide (TLS 1.0 and up, legacy
 * suites at @SECLEVEL=0) because the decision is made AFTER the handshake, by decide() and
 * tls/evaluate on what was negotiated: a TLS 1.0 session is better than cleartext under `may`,
 * and under a profile it yields a precise reason ("negotiated TLS 1.0 (protocol-tls1.0)")
 * instead of an opaque handshake failure. Nothing is sent before the decision, so the width
 * costs no security. With a profile, what it allows is listed FIRST (suites by rating, its groups
 * before any others), so a server that can comply is steered to a compliant session: OpenSSL
 * servers follow the client's order by default.
 */
import { DEFAULT_CIPHERS } from 'node:tls';
import type { HandshakeOptions } from './handshake.ts';
import type { Profile, Rating } from './profiles/types.ts';
import { suiteByCode } from './wire/suites.ts';

/**
 * The ClientHello settings the offer decides: a subset of the engine's HandshakeOptions, so any
 * TLS client (smtp/client's STARTTLS, a future tunnel) can spread it into its own options.
 */
export type TlsClientOffer = Pick<HandshakeOptions, 'minVersion' | 'ciphers' | 'ciphersuites' | 'groups'>;

/** TLS SupportedGroups names (tls/wire NAMED_GROUPS) → OpenSSL group names. */
const OPENSSL_GROUPS: Readonly<Record<string, string>> = {
  secp256r1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
  x25519: 'X25519',
  x448: 'X448',
  brainpoolp256r1: 'brainpoolP256r1',
  brainpoolp384r1: 'brainpoolP384r1',
  brainpoolp512r1: 'brainpoolP512r1',
  brainpoolp256r1tls13: 'brainpoolP256r1tls13',
  brainpoolp384r1tls13: 'brainpoolP384r1tls13',
  brainpoolp512r1tls13: 'brainpoolP512r1tls13',
  ffdhe2048: 'ffdhe2048',
  ffdhe3072: 'ffdhe3072',
  ffdhe4096: 'ffdhe4096',
  ffdhe6144: 'ffdhe6144',
  ffdhe8192: 'ffdhe8192',
  x25519mlkem768: 'X25519MLKEM768',
  secp256r1mlkem768: 'SecP256r1MLKEM768',
  secp384r1mlkem1024: 'SecP384r1MLKEM1024',
};

/** TLS 1.3 suites OpenSSL implements (an unknown name would make the whole list fail). */
const OPENSSL_TLS13 = new Set([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_CCM_SHA256',
  'TLS_AES_128_CCM_8_SHA256',
]);

/** OpenSSL 3.5's default groups, as fallbacks after a profile's own. */
const DEFAULT_GROUPS = ['X25519MLKEM768', 'X25519', 'P-256', 'P-384', 'P-521', 'X448', 'ffdhe2048', 'ffdhe3072'];

const RATING_ORDER: readonly Rating[] = ['good', 'sufficient', 'phase-out'];

function allowedInOrder(table: ReadonlyMap<number, Rating>): number[] {
  const out: number[] = [];
  for (const rating of RATING_ORDER) {
    const same = [...table].filter(([, r]) => r === rating).map(([code]) => code);
    // Within one rating, AEAD before CBC (RFC 7525 §4.2 prefers AEAD suites).
    same.sort((a, b) => Number(suiteByCode(a)?.cbc === true) - Number(suiteByCode(b)?.cbc === true));
    out.push(...same);
  }
  return out;
}

function unique(list: string[]): string[] {
  return [...new Set(list.filter((s) => s !== ''))];
}

/** The ClientHello shape for a delivery under `profile` (or none). */
export function tlsClientOffer(profile: Profile | null): TlsClientOffer {
  const defaults = DEFAULT_CIPHERS.split(':');
  const def13 = defaults.filter((c) => c.startsWith('TLS_'));
  const def12 = defaults.filter((c) => !c.startsWith('TLS_'));
  const base: TlsClientOffer = {
    minVersion: 'TLSv1',
    // TLS 1.0/1.1 need SHA-1 signatures, which OpenSSL 3 refuses above security level 0.
    ciphers: [...def12, '@SECLEVEL=0'].join(':'),
    ciphersuites: def13.join(':'),
  };
  if (profile === null) return base;
  const p13 = allowedInOrder(profile.suites.tls13)
    .map((c) => suiteByCode(c)?.name)
    .filter((n): n is string => n !== undefined && OPENSSL_TLS13.has(n));
  const p12 = allowedInOrder(profile.suites.tls12)
    .map((c) => suiteByCode(c)?.openssl)
    .filter((n): n is string => typeof n === 'string' && n !== '');
  const groups: string[] = [];
  for (const rating of RATING_ORDER) {
    for (const [name, r] of profile.groups) {
      const o = OPENSSL_GROUPS[name.toLowerCase()];
      if (r === rating && o !== undefined) groups.push(o);
    }
  }
  // '?' = skip a group this OpenSSL does not know instead of failing (OpenSSL ≥ 3.3).
  const groupList = unique([...groups, ...DEFAULT_GROUPS]).map((g) => `?${g}`);
  return {
    ...base,
    ciphers: [...unique([...p12, ...def12]), '@SECLEVEL=0'].join(':'),
    ciphersuites: unique([...p13, ...def13]).join(':'),
    groups: groupList.join(':'),
  };
}
