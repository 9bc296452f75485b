/**
 * Scanner view of a domain's MTA-STS deployment (RFC 8461): the `_mta-sts` TXT record, the policy
 * file, whether the policy's `mx` patterns cover every MX host, and whether each MX presents a
 * certificate a policy-honouring sender accepts (RFC 8461 §4.2: PKIX-valid for the MX name). Pure:
 * mail-policy.ts does the lookups and the fetch and hands over the outcomes.
 */
import type { StsFetchResult } from '../policy/mta-sts/fetch.ts';
import { policyCovers } from '../policy/mta-sts/match.ts';
import type { StsMode, StsPolicy } from '../policy/mta-sts/policy.ts';
import { parseStsRecord } from '../policy/mta-sts/record.ts';
import type { Finding, Severity } from './findings.ts';
import type { TxtLookup } from './tlsrpt.ts';
import type { EndpointReport, MtaStsMxHost, MtaStsReport, MxTlsResultType } from './report.ts';

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type { MtaStsMxAddress, MtaStsMxHost, MtaStsReport, MxTlsResultType, StsPolicyResultType } from './report.ts';

export interface MtaStsInput {
  domain: string;
  record: TxtLookup;
  /** null when the policy was not fetched (no record). */
  fetch: StsFetchResult | null;
  /** MX host names in preference order. */
  mxHosts: string[];
  /** The endpoint reports of the MX hosts, matched by `host`. */
  endpoints: Array<{ mxHost: string; report: EndpointReport }>;
}

/** The policy URL of RFC 8461 §3.3. */
export function stsPolicyUrl(domain: string): string {
  return `https://mta-sts.${domain}/.well-known/mta-sts.txt`;
}

/**
 * Would a sender enforcing MTA-STS accept this MX endpoint (RFC 8461 §4.2: STARTTLS, a
 * certificate chaining to a trusted root, naming the MX host, within its validity)? Uses the
 * checks the scan already made on the first chain the server sent.
 */
export function mxCertificateVerdict(r: EndpointReport): {
  certValid: boolean | null;
  failure: MxTlsResultType | null;
} {
  if (r.starttls && !r.starttls.offered) return { certValid: false, failure: 'starttls-not-supported' };
  const c = r.certificate;
  if (!c)
    return r.reachable ? { certValid: false, failure: 'starttls-not-supported' } : { certValid: null, failure: null };
  const has = (id: string): boolean => r.findings.some((f) => f.id === id);
  if (has('cert-expired') || has('cert-not-yet-valid')) return { certValid: false, failure: 'certificate-expired' };
  if (!c.trusted) return { certValid: false, failure: 'certificate-not-trusted' };
  if (c.hostnameMatches !== true) return { certValid: false, failure: 'certificate-host-mismatch' };
  return { certValid: true, failure: null };
}

function modeSeverity(mode: StsMode | null, enforce: Severity, testing: Severity): Severity | null {
  return mode === 'enforce' ? enforce : mode === 'testing' ? testing : null;
}

/**
 * Assesses MTA-STS for a domain. Findings: `mta-sts-missing` (info), `mta-sts-invalid` (medium:
 * record or policy broken or unreachable, with the RFC 8460 result type), `mta-sts-cert-invalid`
 * (the policy host's certificate, medium; an MX certificate, high in enforce mode, low in testing),
 * `mta-sts-mx-not-covered` (high in enforce, low in testing), `mta-sts-testing` (info).
 */
export function assessMtaSts(input: MtaStsInput): { report: MtaStsReport; findings: Finding[] } {
  const { domain } = input;
  const findings: Finding[] = [];
  const name = `_mta-sts.${domain}`;
  const record: MtaStsReport['record'] = { name, found: false, valid: false, id: null, reason: null };
  const url = stsPolicyUrl(domain);

  if (input.record.kind === 'failed') {
    record.found = null;
    record.reason = input.record.reason;
    findings.push({
      id: 'policy-lookup-failed',
      severity: 'low',
      message: `TXT lookup of ${name} failed: ${input.record.reason}; MTA-STS could not be checked`,
    });
  } else {
    const txt = input.record.kind === 'records' ? input.record.txt : [];
    const candidates = txt.map((c) => c.join('')).filter((t) => t.startsWith('v=STSv1'));
    record.found = candidates.length > 0;
    if (record.found) {
      const parsed = parseStsRecord(txt);
      record.valid = parsed.ok;
      if (parsed.ok) record.id = parsed.id;
      else {
        record.reason = parsed.reason;
        // RFC 8461 §3.1: without exactly one valid record a sender without a cached policy
        // treats the domain as having none; no RFC 8460 result type is ever reported for it.
        findings.push({
          id: 'mta-sts-invalid',
          severity: 'medium',
          message: `the MTA-STS record at ${name} is invalid (${parsed.reason}): senders without a cached policy treat ${domain} as having no MTA-STS (RFC 8461 §3.1)`,
          evidence: candidates,
        });
      }
    } else {
      findings.push({
        id: 'mta-sts-missing',
        severity: 'info',
        message: `no MTA-STS record at ${name}: senders that do not use DANE have no way to require authenticated TLS to ${domain} (RFC 8461)`,
      });
    }
  }

  let policy: MtaStsReport['policy'] = null;
  let mode: StsMode | null = null;
  let sts: StsPolicy | null = null;
  const f = input.fetch;
  if (f) {
    if (f.ok) {
      sts = f.policy;
      mode = record.valid ? f.policy.mode : null;
      policy = {
        url,
        fetched: true,
        valid: true,
        mode: f.policy.mode,
        maxAge: f.policy.maxAge,
        mx: f.policy.mx,
        resultType: null,
        reason: null,
      };
    } else {
      policy = {
        url,
        fetched: f.error !== 'sts-policy-fetch-error' && f.error !== 'sts-webpki-invalid',
        valid: false,
        mode: null,
        maxAge: null,
        mx: [],
        resultType: f.error,
        reason: f.reason,
      };
      if (f.error === 'sts-webpki-invalid')
        findings.push({
          id: 'mta-sts-cert-invalid',
          severity: 'medium',
          message: `the certificate of mta-sts.${domain} is not valid (${f.reason}): senders cannot fetch the policy (RFC 8461 §3.3; RFC 8460 result type sts-webpki-invalid)`,
          evidence: [`result-type: ${f.error}`, url],
        });
      else
        findings.push({
          id: 'mta-sts-invalid',
          severity: 'medium',
          message: `${f.error === 'sts-policy-fetch-error' ? 'the MTA-STS policy could not be fetched' : 'the MTA-STS policy is invalid'} (${f.reason}): senders without a cached policy deliver as if ${domain} had none (RFC 8461 §5; RFC 8460 result type ${f.error})`,
          evidence: [`result-type: ${f.error}`, url],
        });
    }
  }

  // A valid policy with a broken record still says what a sender with a cached policy enforces,
  // so coverage and certificates are checked whenever a policy was read.
  const effectiveMode = mode ?? sts?.mode ?? null;
  const why =
    effectiveMode === 'enforce'
      ? 'in enforce mode senders MUST NOT deliver to it (RFC 8461 §5)'
      : 'in testing mode senders deliver anyway and report the failure (RFC 8461 §5)';
  const mx: MtaStsMxHost[] = input.mxHosts.map((host) => {
    const addresses = input.endpoints
      .filter((e) => e.mxHost === host)
      .map((e) => ({ address: e.report.address, ...mxCertificateVerdict(e.report) }));
    return { host, covered: sts ? policyCovers(sts, host) : null, addresses };
  });
  if (sts) {
    const uncovered = mx.filter((m) => m.covered === false).map((m) => m.host);
    const sev = modeSeverity(effectiveMode, 'high', 'low');
    if (uncovered.length > 0 && sev)
      findings.push({
        id: 'mta-sts-mx-not-covered',
        severity: sev,
        message: `MX ${uncovered.join(', ')} not matched by the MTA-STS policy's mx patterns (${sts.mx.join(', ') || 'none'}): ${why}`,
        evidence: uncovered,
      });
    const bad = mx.flatMap((m) =>
      m.addresses
        .filter((a) => a.certValid === false)
        .map((a) => `${m.host} [${a.address}]: ${a.failure ?? 'invalid'}`),
    );
    const certSev = modeSeverity(effectiveMode, 'high', 'low');
    if (bad.length > 0 && certSev)
      findings.push({
        id: 'mta-sts-cert-invalid',
        severity: certSev,
        message: `${bad.length} MX endpoint(s) would fail MTA-STS validation (STARTTLS with a certificate PKIX-valid for the MX name, RFC 8461 §4.2): ${why}`,
        evidence: bad,
      });
    if (effectiveMode === 'testing')
      findings.push({
        id: 'mta-sts-testing',
        severity: 'info',
        message: `the MTA-STS policy of ${domain} is in testing mode: failures are reported but mail is still delivered without authenticated TLS`,
      });
  }
  return { report: { record, policy, mx }, findings };
}
