/**
 * Which DANE state applies to one MX host (RFC 7672 §2.1–2.2): the DNSSEC status of its address
 * records, then of its TLSA records, decide between authenticated TLS (usable TLSA), mandatory but
 * unauthenticated TLS (secure TLSA with nothing usable), pre-DANE behaviour (insecure or securely
 * denied), and not using the host at all (bogus or indeterminate: never a downgrade, §2.1.1).
 */
import type { DnssecAnswer, DnssecResolver, TlsaRecord } from '../../dns/dnssec.ts';
import { classifyTlsa } from './verify.ts';
import type { TlsaUsability } from './verify.ts';

export type DaneState =
  | { kind: 'dane'; base: string; records: TlsaRecord[]; unusable: TlsaUsability['unusable']; all: TlsaRecord[] }
  /** Secure TLSA RRset with no usable record: TLS mandatory, unauthenticated (RFC 7672 §2.2). */
  | { kind: 'encrypt-only'; base: string; unusable: TlsaUsability['unusable']; all: TlsaRecord[] }
  | { kind: 'none'; base: string; why: 'resolver-not-validating' | 'insecure-address' | 'insecure-tlsa' | 'no-tlsa' }
  /** The MX host must not be used; never downgrade (RFC 7672 §2.1.1). */
  | { kind: 'failed'; base: string; status: 'bogus' | 'indeterminate'; detail: string };

function canon(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

function failed(base: string, a: DnssecAnswer<unknown>, what: string): DaneState {
  const status = a.status === 'bogus' ? 'bogus' : 'indeterminate';
  return { kind: 'failed', base, status, detail: `${what} ${a.qname}: ${a.detail ?? status}` };
}

/** A secure answer that proves there is no TLSA RRset (NODATA or NXDOMAIN, RFC 7672 §2.2). */
function securelyAbsent(a: DnssecAnswer<TlsaRecord>): boolean {
  return a.status === 'secure' && (a.rcode === 'NXDOMAIN' || a.records.length === 0);
}

function fromTlsa(base: string, a: DnssecAnswer<TlsaRecord>): DaneState {
  if (a.status === 'bogus' || a.status === 'indeterminate') return failed(base, a, 'TLSA lookup for');
  if (a.status === 'insecure') return { kind: 'none', base, why: 'insecure-tlsa' };
  if (securelyAbsent(a)) return { kind: 'none', base, why: 'no-tlsa' };
  const all = [...a.records];
  const { usable, unusable } = classifyTlsa(all);
  if (usable.length === 0) return { kind: 'encrypt-only', base, unusable, all };
  return { kind: 'dane', base, records: usable, unusable, all };
}

/**
 * Look up the DANE state of `host` for TCP `port` (RFC 7672 §2.2.2). Addresses first: TLSA records
 * only count for a host whose address records are secure. The TLSA base domain is the
 * CNAME-expanded host name when that expansion is secure, else (or when the expanded name has no
 * TLSA records) the name as given. Never throws for DNS trouble; that is a `failed` state.
 */
export async function lookupDane(resolver: DnssecResolver, host: string, port: number): Promise<DaneState> {
  const original = canon(host);
  // Without a resolver whose AD bit is trusted nothing is ever secure (RFC 7672 §2.1).
  if (!resolver.validating) return { kind: 'none', base: original, why: 'resolver-not-validating' };

  const addr = await resolver.addresses(original);
  if (addr.status === 'bogus' || addr.status === 'indeterminate') return failed(original, addr, 'address lookup for');
  if (addr.status === 'insecure') return { kind: 'none', base: original, why: 'insecure-address' };

  // Secure addresses: the whole CNAME chain validated, so the expanded name may be the base.
  const expanded = canon(addr.canonicalName);
  if (expanded !== original && expanded !== '') {
    const atExpanded = await resolver.tlsa(expanded, port);
    if (atExpanded.status === 'bogus' || atExpanded.status === 'indeterminate')
      return failed(expanded, atExpanded, 'TLSA lookup for');
    // TLSA records at the expanded name win; otherwise try the original name (RFC 7672 §2.2.2).
    // An insecure answer there cannot add authentication, so it is treated as "none here".
    if (atExpanded.status === 'secure' && !securelyAbsent(atExpanded)) return fromTlsa(expanded, atExpanded);
  }
  return fromTlsa(original, await resolver.tlsa(original, port));
}

/**
 * Reference identifiers for DANE-TA(2) name checks (RFC 7672 §3.2.2): the TLSA base domain first,
 * then the MX host name when it differs (CNAME expansion).
 */
export function daneNames(state: DaneState, mxHost: string): string[] {
  const base = canon(state.base);
  const mx = canon(mxHost);
  return mx === base || mx === '' ? [base] : [base, mx];
}
