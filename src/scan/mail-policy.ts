/**
 * The mail-domain policies a sender consults before it trusts an MX: DANE (RFC 7672), MTA-STS
 * (RFC 8461) and where to report failures, TLS-RPT (RFC 8460). This module does the lookups and
 * the policy fetch, then hands the outcomes to the pure assessors in dane.ts, mta-sts.ts and
 * tlsrpt.ts. It runs after the MX endpoints were scanned, because DANE and MTA-STS are judged
 * against the certificates those endpoints actually served. DNS or HTTP trouble becomes report
 * fields and findings, never exceptions.
 */
import { isIP } from 'node:net';
import type { DnssecResolver, DnssecStatus } from '../dns/dnssec.ts';
import { DnsError } from '../dns/resolver.ts';
import type { DnsClient } from '../dns/resolver.ts';
import { daneNames, lookupDane } from '../policy/dane/lookup.ts';
import { fetchStsPolicy } from '../policy/mta-sts/fetch.ts';
import type { StsFetchResult } from '../policy/mta-sts/fetch.ts';
import { assessDaneHost } from './dane.ts';
import type { DomainPlan } from './domain.ts';
import type { Finding } from './findings.ts';
import { assessMtaSts } from './mta-sts.ts';
import { assessTlsRpt } from './tlsrpt.ts';
import type { TxtLookup } from './tlsrpt.ts';
import type { DaneReport, EndpointReport, MailPolicyReport } from './report.ts';

export interface MailPolicyOptions {
  /** For TXT lookups and the policy host's address (the same client the plan used). */
  dns: DnsClient;
  /** For DNSSEC status (MX, addresses, TLSA). */
  resolver: DnssecResolver;
  /**
   * Trust anchors (PEM) for the MTA-STS policy host. As for the endpoints' certificate checks
   * (ScanOptions.ca), when given they replace the Mozilla store shipped with Node.
   */
  ca?: string[];
  /** Bound on the policy fetch (default 10 000 ms). */
  timeoutMs?: number;
  now?: Date;
  /** Port of the MTA-STS policy host; test setups only (the protocol fixes 443, RFC 8461 §3.3). */
  mtaStsPort?: number;
  /**
   * INSECURE: fetch the policy from a host that resolves to a non-public address (refused by
   * default, as senders on the internet could not reach it either; see net/https.ts). Tests.
   */
  allowPrivateAddresses?: boolean;
}

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type { MailPolicyReport } from './report.ts';

async function txtLookup(dns: DnsClient, name: string): Promise<TxtLookup> {
  try {
    return { kind: 'records', txt: await dns.txt(name) };
  } catch (e) {
    if (e instanceof DnsError && !e.temporary) return { kind: 'none' };
    return { kind: 'failed', reason: e instanceof Error ? e.message : String(e) };
  }
}

function decodeChains(r: EndpointReport): Buffer[][] {
  return (r.certificateChains ?? []).map((chain) => chain.map((b64) => Buffer.from(b64, 'base64')));
}

/**
 * Checks DANE, MTA-STS and TLS-RPT for a planned mail domain, given the reports of its scanned
 * endpoints. Returns null when there is nothing to check (MX not among the services, a null MX,
 * or no MX host at all).
 */
export async function checkMailPolicies(
  plan: DomainPlan,
  reports: readonly EndpointReport[],
  opts: MailPolicyOptions,
): Promise<MailPolicyReport | null> {
  if (!plan.services.includes('mx') || plan.nullMx || plan.mx.length === 0) return null;
  const now = opts.now ?? new Date();
  const domain = plan.domain;
  const byKey = new Map(reports.map((r) => [`${r.url} ${r.address}`, r]));
  const mxEndpoints = plan.endpoints.flatMap((ep) => {
    const r = byKey.get(`${ep.url} ${ep.address}`);
    return ep.role === 'mx' && r ? [{ ep, r }] : [];
  });
  const findings: Finding[] = [];

  // DANE: one lookup chain per MX host (addresses, then TLSA at the base lookupDane picks).
  const { resolver } = opts;
  const portOf = (host: string): number => plan.endpoints.find((e) => e.role === 'mx' && e.mxHost === host)?.port ?? 25;
  const [mxAnswer, hostResults] = await Promise.all([
    resolver.mx(domain).catch(() => null),
    Promise.all(
      // An address literal as MX is already a planning problem (mx-unresolvable); no DANE there.
      plan.mx
        .filter((mxHost) => isIP(mxHost) === 0)
        .map(async (mxHost) => {
          const port = portOf(mxHost);
          try {
            const [state, addresses] = await Promise.all([
              lookupDane(resolver, mxHost, port),
              resolver.addresses(mxHost),
            ]);
            // The TLSA answer is looked up again for the report (cheap: the resolver caches it), also
            // where a sender would not: records that are published but ignored are worth showing.
            const addressFailed = addresses.status === 'bogus' || addresses.status === 'indeterminate';
            const tlsa = addressFailed ? null : await resolver.tlsa(state.base, port);
            return assessDaneHost({
              mxHost,
              port,
              state,
              addresses,
              tlsa,
              names: daneNames(state, mxHost),
              endpoints: mxEndpoints
                .filter((m) => m.ep.mxHost === mxHost)
                .map((m) => ({ address: m.r.address, chains: decodeChains(m.r) })),
              now,
            });
          } catch (e) {
            // The resolver throws only for arguments it refuses (e.g. a malformed name from DNS).
            return {
              report: null,
              findings: [
                {
                  id: 'policy-lookup-failed',
                  severity: 'low' as const,
                  message: `DANE lookups for MX ${mxHost} failed: ${e instanceof Error ? e.message : String(e)}`,
                },
              ],
            };
          }
        }),
    ),
  ]);
  const mxStatus: DnssecStatus | null = mxAnswer?.status ?? null;
  const dane: DaneReport = {
    mxStatus,
    validatingResolver: resolver.validating,
    hosts: hostResults.flatMap((h) => (h.report ? [h.report] : [])),
  };
  if (!resolver.validating)
    findings.push({
      id: 'dane-not-checked',
      severity: 'info',
      message: `DANE not checked: the DNS server ${resolver.server} is not trusted to validate DNSSEC (only a resolver on loopback is, unless --trust-ad is given; RFC 7672 §2.1)`,
    });
  for (const h of hostResults) findings.push(...h.findings);

  // MTA-STS: the record, then the policy (also when the record is broken, to say what a sender
  // with a cached policy would enforce), then coverage and MX certificates.
  const [stsRecord, rptRecord] = await Promise.all([
    txtLookup(opts.dns, `_mta-sts.${domain}`),
    txtLookup(opts.dns, `_smtp._tls.${domain}`),
  ]);
  const hasStsRecord =
    stsRecord.kind === 'records' && stsRecord.txt.some((chunks) => chunks.join('').startsWith('v=STSv1'));
  let fetched: StsFetchResult | null = null;
  if (hasStsRecord)
    fetched = await fetchStsPolicy(domain, {
      dns: opts.dns,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.mtaStsPort === undefined ? {} : { port: opts.mtaStsPort }),
      ...(opts.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
    });
  const sts = assessMtaSts({
    domain,
    record: stsRecord,
    fetch: fetched,
    mxHosts: plan.mx,
    endpoints: mxEndpoints.map((m) => ({ mxHost: m.ep.mxHost ?? m.ep.host, report: m.r })),
  });
  findings.push(...sts.findings);

  const rpt = assessTlsRpt(domain, rptRecord);
  findings.push(...rpt.findings);

  return { dane, mtaSts: sts.report, tlsRpt: rpt.report, findings };
}
