/**
 * Scanner view of a domain's TLS-RPT record (RFC 8460 §3): is `_smtp._tls.<domain>` published and
 * does it parse. Pure: the lookup happens in mail-policy.ts and hands over the TXT RRset.
 */
import { parseTlsRptRecord } from '../report/tlsrpt/record.ts';
import type { Finding } from './findings.ts';
import type { TlsRptReport } from './report.ts';

/** What the TXT lookup of `_smtp._tls.<domain>` gave. */
export type TxtLookup =
  | { kind: 'records'; txt: string[][] }
  /** NXDOMAIN or NODATA: the name has no TXT records. */
  | { kind: 'none' }
  /** SERVFAIL, timeout, …: nothing is known. */
  | { kind: 'failed'; reason: string };

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type { TlsRptReport } from './report.ts';

const TLSRPT_RE = /^v[ \t]*=[ \t]*TLSRPTv1(?![0-9A-Za-z])/;

/** Assesses the `_smtp._tls` TXT RRset of `domain`; findings `tlsrpt-missing`, `tlsrpt-invalid`. */
export function assessTlsRpt(domain: string, lookup: TxtLookup): { report: TlsRptReport; findings: Finding[] } {
  const name = `_smtp._tls.${domain}`;
  if (lookup.kind === 'failed') {
    return {
      report: { name, found: null, valid: false, rua: [], reason: lookup.reason },
      findings: [
        {
          id: 'policy-lookup-failed',
          severity: 'low',
          message: `TXT lookup of ${name} failed: ${lookup.reason}; TLS-RPT could not be checked`,
        },
      ],
    };
  }
  const txt = lookup.kind === 'records' ? lookup.txt : [];
  const found = txt.some((chunks) => TLSRPT_RE.test(chunks.join('')));
  if (!found) {
    return {
      report: { name, found: false, valid: false, rua: [], reason: null },
      findings: [
        {
          id: 'tlsrpt-missing',
          severity: 'info',
          message: `no TLS-RPT record at ${name}: sending MTAs cannot report TLS or policy failures to ${domain} (RFC 8460)`,
        },
      ],
    };
  }
  const parsed = parseTlsRptRecord(txt);
  if (!parsed.ok) {
    return {
      report: { name, found: true, valid: false, rua: [], reason: parsed.reason },
      findings: [
        {
          id: 'tlsrpt-invalid',
          severity: 'low',
          message: `the TLS-RPT record at ${name} is invalid (${parsed.reason}): senders treat ${domain} as not implementing TLS-RPT (RFC 8460 §3)`,
          evidence: txt.map((chunks) => chunks.join('')),
        },
      ],
    };
  }
  return {
    report: { name, found: true, valid: true, rua: parsed.rua.map((r) => r.uri), reason: null },
    findings: [],
  };
}
