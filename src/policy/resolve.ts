/**
 * The policy chain for one MX host (maddy's policy group, Postfix's DANE + policy maps), pure:
 * the caller does the lookups (TLSA via a validating resolver, the MTA-STS policy via its cache)
 * and this decides what the connection must satisfy. Fixed order, each step can only raise the
 * requirement or take the host out of the running:
 *
 * 1. The local table. `none` ends the chain (an administrator's explicit "no TLS").
 * 2. MTA-STS `enforce` filters MX hosts first (RFC 8461 §4.1): a host its `mx:` patterns do not
 *    list is skipped — even one with valid DANE, unless the MX RRset itself is DNSSEC-validated,
 *    since an attacker who can forge the unsigned MX can point it at their own signed zone.
 * 3. DANE (RFC 7672), when the table level is `dane` or `dane-only`. Secure usable TLSA: the host
 *    is authenticated by TLSA and nothing else (RFC 8461 §2: DANE wins over MTA-STS). Secure
 *    TLSA without a usable record: TLS mandatory (RFC 7672 §2.2), then MTA-STS may still raise it;
 *    under `dane-only` such a host is skipped (mandatory DANE, as Postfix: `tlsa-invalid`).
 *    Bogus or indeterminate lookups: the host is skipped, never downgraded (§2.1.1). No secure
 *    TLSA: `dane-only` skips the host (RFC 8460 `dane-required`); `dane` goes on as `may`.
 * 4. MTA-STS (RFC 8461 §5), when a policy in `enforce` or `testing` mode exists: the certificate
 *    must be PKIX-valid for the MX name (the level is raised to at least `verify`, never lowered,
 *    also over an explicit per-domain entry). In `testing` mode the check only feeds TLS-RPT.
 */
import type { TlsaRecord } from '../dns/dnssec.ts';
import type { ResultType, TlsRptPolicy } from './tlsrpt.ts';
import type { Profile } from '../tls/profiles/types.ts';
import type { DaneState } from './dane/lookup.ts';
import { daneNames } from './dane/lookup.ts';
import { formatTlsa } from './dane/verify.ts';
import { atLeast, requiresTls, wantsDane } from './levels.ts';
import type { TlsLevel } from './levels.ts';
import { mxMatches } from './mta-sts/match.ts';
import type { StsPolicy } from './mta-sts/policy.ts';
import type { PolicyLookup } from './table.ts';

/** A usable MTA-STS policy for the recipient domain (mode enforce or testing). */
export interface StsInput {
  policy: StsPolicy;
  /** The policy text as fetched (TLS-RPT policy-string, RFC 8460 §4.3). */
  text: string;
  /** The `_mta-sts` TXT id the policy belongs to. */
  id: string;
}

export interface HostPolicyInput {
  table: PolicyLookup;
  mxHost: string;
  /** The recipient domain's MX RRset was DNSSEC-validated (secure). */
  mxSecure?: boolean;
  /** Result of the TLSA lookup, or null when none was made (level does not want DANE, no resolver). */
  dane: DaneState | null;
  sts: StsInput | null;
}

/** What TLS-RPT files the session under (RFC 8460 §4.3). */
export interface ReportPolicy extends TlsRptPolicy {
  /** The policy only reports (MTA-STS testing). */
  testing: boolean;
}

export type HostPolicy =
  | {
      kind: 'use';
      /** Enforced for this host: `dane` means TLS required and the chain must match `dane.records`. */
      level: TlsLevel;
      profile: Profile | null;
      source: 'table' | 'dane' | 'mta-sts';
      dane: { records: TlsaRecord[]; names: string[] } | null;
      /** MTA-STS testing: also check `verify` + MX match, report a failure, deliver anyway. */
      stsTesting: { mxCovered: boolean } | null;
      /** Short words for the rule ("DANE: 2 TLSA records for _25._tcp.mx.example.org"). */
      why: string;
      report: ReportPolicy;
    }
  | {
      kind: 'skip';
      /** Plain words for the log and the bounce. */
      reason: string;
      /** Rule head, e.g. "DANE: TLSA lookup bogus". */
      rule: string;
      resultType: ResultType;
      report: ReportPolicy;
    };

function stsReport(sts: StsInput, mxHost: string, testing: boolean): ReportPolicy {
  const pattern = sts.policy.mx.find((p) => mxMatches(p, mxHost));
  return {
    type: 'sts',
    strings: sts.text.split(/\r?\n/).filter((l) => l.trim() !== ''),
    ...(pattern !== undefined ? { mxHost: pattern } : {}),
    testing,
  };
}

const NO_POLICY: ReportPolicy = { type: 'no-policy-found', strings: [], testing: false };

/** Decide what applies to one MX host. Pure. */
export function resolveHostPolicy(input: HostPolicyInput): HostPolicy {
  const { table, mxHost, dane, sts } = input;
  const tableUse = (why: string, report: ReportPolicy = NO_POLICY): HostPolicy => ({
    kind: 'use',
    level: table.level,
    profile: table.profile,
    source: 'table',
    dane: null,
    stsTesting: null,
    why,
    report,
  });
  if (table.level === 'none') return tableUse('table: none');

  const enforce = sts !== null && sts.policy.mode === 'enforce' ? sts : null;
  const covered = sts !== null && sts.policy.mx.some((p) => mxMatches(p, mxHost));
  if (enforce !== null && !covered && !(input.mxSecure === true && dane?.kind === 'dane')) {
    return {
      kind: 'skip',
      rule: `MTA-STS enforce: ${mxHost} not in the policy`,
      reason: `the MTA-STS policy of the domain (id ${enforce.id}, mode enforce) lists ${enforce.policy.mx.join(', ')}, which does not cover the MX host ${mxHost}; an MX record the domain's policy does not name may have been injected (RFC 8461 §4.1)`,
      resultType: 'validation-failure',
      report: stsReport(enforce, mxHost, false),
    };
  }

  let fallback: TlsLevel = table.level;
  let fallbackWhy: string | null = null;
  let fallbackReport: ReportPolicy = NO_POLICY;
  if (wantsDane(table.level)) {
    const d = dane;
    if (d !== null && d.kind === 'dane') {
      const tlsa = d.all.map(formatTlsa);
      return {
        kind: 'use',
        level: 'dane',
        profile: table.profile,
        source: 'dane',
        dane: { records: d.records, names: daneNames(d, mxHost) },
        stsTesting: null,
        why: `DANE: ${d.records.length} usable TLSA record${d.records.length === 1 ? '' : 's'} at _25._tcp.${d.base}`,
        report: { type: 'tlsa', strings: tlsa, mxHost, testing: false },
      };
    }
    if (d !== null && d.kind === 'failed') {
      return {
        kind: 'skip',
        rule: `DANE: TLSA lookup for ${d.base} ${d.status}`,
        reason: `the DNSSEC lookup of the TLSA records for ${d.base} was ${d.status === 'bogus' ? 'bogus (signatures do not validate: an attack or a broken zone)' : 'inconclusive'} (${d.detail}); the MX host ${mxHost} is not used rather than sending without DANE (RFC 7672 §2.1.1)`,
        resultType: 'dnssec-invalid',
        report: { type: 'tlsa', strings: [], mxHost, testing: false },
      };
    }
    if (d !== null && d.kind === 'encrypt-only' && table.level === 'dane-only') {
      // `dane-only` is mandatory DANE authentication: records that exist but cannot authenticate
      // are no better than none (Postfix smtp_tls_policy.c dane_incompat(): DANE_UNUSABLE under
      // dane-only is TLS_LEV_INVALID, "TLSA records unusable", 4.7.5).
      return {
        kind: 'skip',
        rule: `DANE required: TLSA records for ${mxHost} unusable`,
        reason: `the policy requires DANE (dane-only) but the DNSSEC-validated TLSA records at _25._tcp.${d.base} are all unusable for SMTP (${d.unusable.map((u) => u.why).join('; ')}), so they cannot authenticate ${mxHost} (RFC 7672 §3.1.3)`,
        resultType: 'tlsa-invalid',
        report: { type: 'tlsa', strings: d.all.map(formatTlsa), mxHost, testing: false },
      };
    }
    if (d !== null && d.kind === 'encrypt-only') {
      // RFC 7672 §2.2: TLS required, not authenticated; MTA-STS below may still raise it.
      fallback = 'encrypt';
      fallbackWhy = `DANE: secure TLSA at ${d.base} but no usable record (RFC 7672 §2.2: TLS required, not authenticated)`;
      fallbackReport = { type: 'tlsa', strings: d.all.map(formatTlsa), mxHost, testing: false };
    } else if (table.level === 'dane-only') {
      const why = d === null ? 'no DNSSEC-validating resolver is configured' : noneWords(d);
      return {
        kind: 'skip',
        rule: `DANE required: no secure TLSA for ${mxHost}`,
        reason: `the policy requires DANE (dane-only) but ${mxHost} has no DNSSEC-validated TLSA records (${why})`,
        resultType: 'dane-required',
        report: { type: 'tlsa', strings: [], mxHost, testing: false },
      };
    } else {
      fallback = 'may';
      fallbackWhy = `DANE not available (${d === null ? 'no lookup' : noneWords(d)}): may`;
    }
  }

  if (sts !== null && sts.policy.mode !== 'none') {
    if (sts.policy.mode === 'testing') {
      return {
        kind: 'use',
        level: fallback,
        profile: requiresTls(fallback) ? table.profile : null,
        source: 'table',
        dane: null,
        stsTesting: { mxCovered: covered },
        why: `MTA-STS testing (id ${sts.id}): checked and reported, not enforced`,
        report: stsReport(sts, mxHost, true),
      };
    }
    const level: TlsLevel = atLeast(fallback, 'verify') ? fallback : 'verify';
    return {
      kind: 'use',
      level,
      profile: table.profile,
      source: 'mta-sts',
      dane: null,
      stsTesting: null,
      why: `MTA-STS enforce (id ${sts.id}): ${mxHost} listed, certificate must be valid for it`,
      report: stsReport(sts, mxHost, false),
    };
  }
  if (fallbackWhy !== null) {
    return {
      kind: 'use',
      level: fallback,
      profile: requiresTls(fallback) ? table.profile : null,
      source: fallback === 'encrypt' ? 'dane' : 'table',
      dane: null,
      stsTesting: null,
      why: fallbackWhy,
      report: fallbackReport,
    };
  }
  return tableUse(`table: ${table.matched}`);
}

function noneWords(d: DaneState): string {
  if (d.kind !== 'none') return d.kind;
  if (d.why === 'resolver-not-validating') return 'the resolver is not trusted to validate DNSSEC';
  if (d.why === 'insecure-address') return `the address records of ${d.base} are not DNSSEC-signed`;
  if (d.why === 'insecure-tlsa') return `the TLSA records at ${d.base} are not DNSSEC-signed`;
  return `${d.base} publishes no TLSA records`;
}
