/**
 * Helpers for writing profile data by name (as the guidelines print them) while storing it by
 * code point, plus the citations that hold for every profile because they come from RFCs.
 */
import { groupByName } from '../wire/constants.ts';
import { suiteByName } from '../wire/suites.ts';
import type { CertHash, Rating } from './types.ts';

/**
 * Suite table from [IANA name, rating] pairs. An unknown name is a bug in the profile data, so it
 * throws at module load (and therefore in every test run), never at grading time.
 */
export function suiteTable(entries: readonly (readonly [string, Rating])[]): ReadonlyMap<number, Rating> {
  const out = new Map<number, Rating>();
  for (const [name, rating] of entries) {
    const s = suiteByName(name);
    if (s === undefined) throw new Error(`profile data: unknown cipher suite ${name}`);
    out.set(s.code, rating);
  }
  return out;
}

/** Group table keyed by the canonical NAMED_GROUPS name; unknown names throw (profile data bug). */
export function groupTable(entries: readonly (readonly [string, Rating])[]): ReadonlyMap<string, Rating> {
  const out = new Map<string, Rating>();
  for (const [name, rating] of entries) {
    const g = groupByName(name);
    if (g === undefined) throw new Error(`profile data: unknown group ${name}`);
    out.set(g.name, rating);
  }
  return out;
}

/** All names in `names` with one rating: `rated('good', 'A', 'B')`. */
export function rated(rating: Rating, ...names: string[]): [string, Rating][] {
  return names.map((n) => [n, rating]);
}

/** Canonical name of a group as NAMED_GROUPS spells it ('X25519' → 'x25519'); unknown names unchanged. */
export function canonicalGroup(name: string): string {
  return groupByName(name)?.name ?? name;
}

/** The usual certificate-hash scale: SHA-2 passes, SHA-1/MD5/unknown fail. */
export function hashRatings(overrides: Partial<Record<CertHash, Rating>>): Record<CertHash, Rating> {
  return {
    md5: 'insufficient',
    sha1: 'insufficient',
    sha224: 'insufficient',
    sha256: 'good',
    sha384: 'good',
    sha512: 'good',
    intrinsic: 'sufficient',
    unknown: 'insufficient',
    ...overrides,
  };
}

/**
 * Citations for findings that every profile reports because an RFC requires it; each profile's
 * `rules` overrides these with its own table references where it has one.
 */
export const RFC_RULES: Readonly<Record<string, string>> = {
  'protocol-unknown': 'RFC 8446 §4.2.1 (no recognised protocol version was negotiated)',
  'protocol-sslv2': 'RFC 6176 §3 (SSL 2.0 MUST NOT be negotiated)',
  'protocol-sslv3': 'RFC 7568 §3 (SSL 3.0 MUST NOT be used)',
  'protocol-tls1.0': 'RFC 8996 §2 (TLS 1.0 MUST NOT be used)',
  'protocol-tls1.1': 'RFC 8996 §3 (TLS 1.1 MUST NOT be used)',
  'protocol-tls1.2': 'profile does not allow TLS 1.2',
  'protocol-tls1.3': 'profile does not allow TLS 1.3',
  'cipher-export': 'RFC 9325 §4.1 (no suites below 112-bit security, export grade included)',
  'cipher-null': 'RFC 9325 §4.1 (NULL encryption MUST NOT be negotiated)',
  'cipher-anon': 'RFC 5246 Appendix A.5 (anonymous suites give no server authentication)',
  'cipher-rc4': 'RFC 7465 §2 (RC4 MUST NOT be negotiated)',
  'renegotiation-insecure': 'RFC 5746 §3 (renegotiation_info)',
  'compression-enabled': 'RFC 9325 §3.3 (TLS compression SHOULD be disabled; CRIME)',
  'client-renegotiation': 'RFC 9325 §3.5 / RFC 5746 (client-initiated renegotiation)',
  'heartbeat-enabled': 'RFC 6520 (heartbeat extension)',
  'etm-missing': 'RFC 7366 §3 (encrypt_then_mac for CBC suites)',
  'ems-missing': 'RFC 7627 §4 (extended_master_secret)',
  'fallback-scsv-missing': 'RFC 7507 §3 (TLS_FALLBACK_SCSV)',
};
