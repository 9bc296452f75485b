/**
 * Scanner view of DANE for SMTP (RFC 7672) per MX host: the TLSA RRset in presentation form, its
 * DNSSEC status, what a DANE-aware sender does with it, whether the chain each scanned address
 * served matches, and whether the host is ready for a key or certificate rollover (RFC 7671 §8).
 * Pure: mail-policy.ts does the DNSSEC lookups; matching uses src/policy/dane/verify.ts, the same
 * code the gateway enforces with.
 */
import type { DnssecAnswer, DnssecStatus, TlsaRecord } from '../dns/dnssec.ts';
import type { DaneState } from '../policy/dane/lookup.ts';
import { classifyTlsa, formatTlsa, tlsaAssociation, verifyDane } from '../policy/dane/verify.ts';
import type { Finding } from './findings.ts';
import type { DaneAddressReport, DaneHostReport, DaneRecordReport, DaneRollover } from './report.ts';

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type {
  DaneAddressReport,
  DaneHostReport,
  DaneHostState,
  DaneRecordReport,
  DaneReport,
  DaneRollover,
} from './report.ts';

export interface DaneHostInput {
  mxHost: string;
  port: number;
  /** What lookupDane decided: the sender's view, shared with the gateway. */
  state: DaneState;
  /** The MX host's address answer (for its DNSSEC status). */
  addresses: DnssecAnswer<string>;
  /** The TLSA answer at the state's base domain; null when not looked up (address lookup failed). */
  tlsa: DnssecAnswer<TlsaRecord> | null;
  /** Reference identifiers for DANE-TA(2) name checks (RFC 7672 §3.2.2). */
  names: string[];
  /** Scanned endpoints of this host: the chains each address served (DER, leaf first); [] = no TLS. */
  endpoints: Array<{ address: string; chains: Buffer[][] }>;
  now: Date;
}

const FAILED: ReadonlySet<DnssecStatus> = new Set(['bogus', 'indeterminate']);

function sameRecord(a: TlsaRecord, b: TlsaRecord): boolean {
  return a.usage === b.usage && a.selector === b.selector && a.matchingType === b.matchingType && a.data.equals(b.data);
}

/** Does `r`'s association data equal that of some certificate in some chain (at any depth)? */
function matchesAnyCert(r: TlsaRecord, chains: readonly Buffer[][]): boolean {
  return chains.some((chain) =>
    chain.some((der) => {
      try {
        return tlsaAssociation(der, r.selector, r.matchingType).equals(r.data);
      } catch {
        return false;
      }
    }),
  );
}

/**
 * Rollover readiness (definition in DaneRollover). Only records that authenticate every served
 * chain on every address count as "current"; a duplicate of a current record is not a "next".
 */
export function daneRollover(
  usable: readonly TlsaRecord[],
  chains: readonly Buffer[][],
  names: readonly string[],
  now: Date,
): DaneRollover {
  if (chains.length === 0)
    return { ready: false, basis: null, reason: 'no certificate chain was captured, so readiness cannot be judged' };
  const current = usable.filter((r) => chains.every((chain) => verifyDane({ records: [r], chain, names, now }).ok));
  if (current.length === 0)
    return { ready: false, basis: null, reason: 'no usable TLSA record matches the certificate served now' };
  const next = usable.filter((r) => !matchesAnyCert(r, chains) && !current.some((c) => sameRecord(c, r)));
  if (next.length > 0)
    return {
      ready: true,
      basis: 'current+next',
      reason: `${current.length} record(s) match the served certificate and ${next.length} more (${next.map(formatTlsa).map(short).join(', ')}) are pre-published for the next one (RFC 7671 §8.1)`,
    };
  if (current.some((r) => r.usage === 3) && current.some((r) => r.usage === 2))
    return {
      ready: true,
      basis: 'ee+ta',
      reason:
        'a DANE-EE and a DANE-TA record both match: a new key under the same CA, or the same key under a new CA, keeps one of them matching',
    };
  return {
    ready: false,
    basis: null,
    reason: `every usable record describes the certificate served now: replacing its key${current.some((r) => r.usage === 2) ? ' or issuer' : ''} breaks DANE unless the record for the next one is published first, at least two TTLs ahead (RFC 7671 §8.1)`,
  };
}

function short(s: string): string {
  return s.length > 48 ? `${s.slice(0, 40)}…` : s;
}

/** Assesses one MX host. Findings are returned separately so the caller can aggregate them. */
export function assessDaneHost(input: DaneHostInput): { report: DaneHostReport; findings: Finding[] } {
  const { mxHost, port, state, addresses, tlsa, names, now } = input;
  const tlsaName = tlsa?.qname ?? `_${port}._tcp.${state.base}`;
  // Records as published (insecure ones included, to show what senders ignore); none from a
  // bogus or indeterminate answer, which carries no data.
  const records: TlsaRecord[] =
    state.kind === 'dane' || state.kind === 'encrypt-only'
      ? state.all
      : tlsa !== null && !FAILED.has(tlsa.status)
        ? tlsa.records
        : [];
  const { usable, unusable } = classifyTlsa(records);
  const allChains = input.endpoints.flatMap((e) => e.chains);
  // DNS gives an RRset in any order; sorted, the same zone always yields the same report.
  const recordReports: DaneRecordReport[] = records
    .map((r) => {
      const bad = unusable.find((u) => u.record === r);
      return {
        record: formatTlsa(r),
        usable: bad === undefined,
        unusableReason: bad?.why ?? null,
        matchesServed: matchesAnyCert(r, allChains),
      };
    })
    .sort((a, b) => (a.record < b.record ? -1 : a.record > b.record ? 1 : 0));
  // Senders authenticate only with secure usable records; others are shown but not checked.
  const checkable = state.kind === 'dane';
  const addressReports: DaneAddressReport[] = input.endpoints.map((ep) => {
    if (!checkable) return { address: ep.address, match: null, matched: null, reason: null };
    if (ep.chains.length === 0)
      return {
        address: ep.address,
        match: null,
        matched: null,
        reason: 'no certificate chain was captured (no TLS session)',
      };
    const verdicts = ep.chains.map((chain) => verifyDane({ records: usable, chain, names, now }));
    const failedAt = verdicts.findIndex((v) => !v.ok);
    if (failedAt >= 0) {
      const which = ep.chains.length > 1 ? `chain ${failedAt + 1} of ${ep.chains.length}: ` : '';
      return {
        address: ep.address,
        match: false,
        matched: null,
        reason: `${which}${verdicts[failedAt]?.reason ?? ''}`,
      };
    }
    const first = verdicts[0];
    return {
      address: ep.address,
      match: true,
      matched: first?.matched ? formatTlsa(first.matched.record) : null,
      reason: first?.reason ?? null,
    };
  });

  const findings: Finding[] = [];
  const fallback = 'senders fall back to opportunistic TLS, which an active attacker can strip or intercept';
  switch (state.kind) {
    case 'failed':
      findings.push({
        id: 'dane-dnssec-bogus',
        severity: 'critical',
        message: `DNSSEC validation for MX ${mxHost} is ${state.status} (${state.detail}): DANE-aware senders must not downgrade, so they skip ${mxHost} or defer mail (RFC 7672 §2.1.1)`,
        evidence: [`${mxHost}: address records ${addresses.status}, TLSA ${tlsa?.status ?? 'not looked up'}`],
      });
      break;
    case 'none': {
      let why: string;
      let severity: Finding['severity'] = 'info';
      if (state.why === 'resolver-not-validating') break; // reported once per domain by the caller
      if (state.why === 'insecure-address') {
        why =
          records.length > 0
            ? `TLSA records exist at ${tlsaName} but the address records of ${mxHost} are not DNSSEC-signed (${addresses.status}), so senders never look for them (RFC 7672 §2.2.2)`
            : `${mxHost} is not in a DNSSEC-signed zone (address records ${addresses.status}); DANE needs DNSSEC first`;
        if (records.length > 0) severity = 'low';
      } else if (state.why === 'insecure-tlsa') {
        why =
          records.length > 0
            ? `the TLSA records at ${tlsaName} are not DNSSEC-validated (insecure), so senders ignore them (RFC 7672 §2.2)`
            : `the TLSA name ${tlsaName} is in an unsigned zone (insecure)`;
        severity = records.length > 0 ? 'low' : 'info';
      } else {
        // A signed zone with no TLSA: DANE is one record away.
        why = `${mxHost} is in a DNSSEC-signed zone but publishes no TLSA records at ${tlsaName}`;
        severity = 'low';
      }
      findings.push({ id: 'dane-missing', severity, message: `no DANE for MX ${mxHost}: ${why}; ${fallback}` });
      break;
    }
    case 'encrypt-only':
      findings.push({
        id: 'dane-unusable-records',
        severity: 'medium',
        message: `every TLSA record at ${tlsaName} is unusable for SMTP: DANE senders require TLS but cannot authenticate ${mxHost} (RFC 7672 §2.2, §3.1.3)`,
        evidence: state.unusable.map((u) => `${short(formatTlsa(u.record))}: ${u.why}`),
      });
      break;
    case 'dane':
      if (state.unusable.length > 0)
        findings.push({
          id: 'dane-unusable-records',
          severity: 'medium',
          message: `${state.unusable.length} of ${state.all.length} TLSA records at ${tlsaName} are unusable for SMTP and ignored by senders (RFC 7672 §3.1.3)`,
          evidence: state.unusable.map((u) => `${short(formatTlsa(u.record))}: ${u.why}`),
        });
      break;
  }
  const mismatched = addressReports.filter((a) => a.match === false);
  if (mismatched.length > 0) {
    findings.push({
      id: 'dane-mismatch',
      severity: 'critical',
      message: `the certificate MX ${mxHost} serves on ${mismatched.map((a) => a.address).join(', ')} matches none of its usable TLSA records: DANE senders refuse to deliver and mail is deferred (RFC 7672 §2.2, §3)`,
      evidence: mismatched.map((a) => `${a.address}: ${a.reason ?? ''}`),
    });
  }
  let rollover: DaneRollover | null = null;
  if (checkable) {
    rollover = daneRollover(usable, allChains, names, now);
    if (!rollover.ready && mismatched.length === 0 && allChains.length > 0)
      findings.push({
        id: 'dane-rollover-not-ready',
        severity: 'info',
        message: `MX ${mxHost} is not ready for a certificate or key change: ${rollover.reason}`,
      });
  }
  return {
    report: {
      mxHost,
      port,
      tlsaName,
      addressStatus: addresses.status,
      tlsaStatus: tlsa?.status ?? null,
      state: state.kind,
      records: recordReports,
      addresses: addressReports,
      rollover,
      detail: state.kind === 'failed' ? state.detail : null,
    },
    findings,
  };
}
