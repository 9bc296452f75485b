/**
 * Findings an engine result supports without a grading profile: protocol versions, suite classes,
 * certificate defects and STARTTLS failures. Ids are stable: reports, tests and the testbed
 * manifest use them. Profile grading (BSI / NCSC-NL / Mozilla) adds to these in issue 3.
 */
import type { ChainReport } from '../tls/cert/index.ts';
import type { EndpointProbe } from '../tls/probe/index.ts';
import { bsiAllowsSuite } from '../tls/profiles/bsi.ts';
import { formatSuiteCode, suiteByCode } from '../tls/wire/suites.ts';

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';

export interface Finding {
  id: string;
  severity: Severity;
  message: string;
  /** The rule broken, citing its source (e.g. "BSI TR-02102-2 (2025-01) Table 1"). */
  rule?: string;
  evidence?: string[];
}

/** RSA/DSA/DH below this are weak under every profile postern knows (BSI asks 3000, NCSC 3072, Mozilla 2048). */
export const MIN_RSA_BITS = 2048;
export const MIN_EC_BITS = 224;

export function protocolFindings(p: EndpointProbe): Finding[] {
  const out: Finding[] = [];
  const add = (v: 'SSLv2' | 'SSLv3' | 'TLSv1.0' | 'TLSv1.1', id: string, severity: Severity, why: string): void => {
    if (p.protocols[v]) out.push({ id, severity, message: `${v} is accepted: ${why}` });
  };
  add('SSLv2', 'protocol-sslv2', 'critical', 'broken (RFC 6176 prohibits it; DROWN)');
  add('SSLv3', 'protocol-sslv3', 'high', 'broken (RFC 7568 prohibits it; POODLE)');
  add('TLSv1.0', 'protocol-tls1.0', 'medium', 'deprecated by RFC 8996');
  add('TLSv1.1', 'protocol-tls1.1', 'medium', 'deprecated by RFC 8996');
  return out;
}

export function cipherFindings(p: EndpointProbe): Finding[] {
  const out: Finding[] = [];
  const classes: Record<string, { severity: Severity; what: string; codes: string[] }> = {
    'cipher-export': { severity: 'critical', what: 'EXPORT-grade suites (FREAK/Logjam class)', codes: [] },
    'cipher-null': { severity: 'critical', what: 'NULL-encryption suites (no confidentiality)', codes: [] },
    'cipher-anon': { severity: 'high', what: 'anonymous suites (no server authentication)', codes: [] },
    'cipher-rc4': { severity: 'high', what: 'RC4 suites (RFC 7465 prohibits them)', codes: [] },
    'cipher-not-allowed': {
      severity: 'medium',
      what: 'suites outside BSI TR-02102-2 (Table 1 / TLS 1.3 list)',
      codes: [],
    },
  };
  const seen = new Set<string>();
  for (const [version, codes] of Object.entries(p.suites)) {
    for (const code of codes) {
      const s = suiteByCode(code);
      const label = `${version} ${formatSuiteCode(code)} ${s?.name ?? 'unknown'}`;
      const put = (id: string): void => {
        const key = `${id}|${label}`;
        if (seen.has(key)) return;
        seen.add(key);
        classes[id]?.codes.push(label);
      };
      if (s?.export) put('cipher-export');
      if (s?.nullCipher) put('cipher-null');
      if (s?.anon) put('cipher-anon');
      if (s?.cipherFamily === 'RC4') put('cipher-rc4');
      if (!bsiAllowsSuite(version, code)) put('cipher-not-allowed');
    }
  }
  for (const [id, c] of Object.entries(classes)) {
    if (c.codes.length > 0)
      out.push({ id, severity: c.severity, message: `${c.codes.length} ${c.what} accepted`, evidence: c.codes });
  }
  return out;
}

export function certificateFindings(report: ChainReport): Finding[] {
  const out: Finding[] = [];
  const { leaf } = report;
  if (report.validity.expired)
    out.push({ id: 'cert-expired', severity: 'high', message: `certificate expired on ${leaf.notAfter}` });
  if (report.validity.notYetValid)
    out.push({ id: 'cert-not-yet-valid', severity: 'high', message: `certificate not valid before ${leaf.notBefore}` });
  if (leaf.selfSigned)
    out.push({ id: 'cert-self-signed', severity: 'high', message: `self-signed certificate (${leaf.subject})` });
  // A path to a trusted root that fails only because the leaf is out of its validity period is
  // reported once, as cert-expired / cert-not-yet-valid, not again as "untrusted".
  const leafTimeOnly =
    (report.trust.error === 'CERT_HAS_EXPIRED' && report.validity.expired) ||
    (report.trust.error === 'CERT_NOT_YET_VALID' && report.validity.notYetValid);
  if (!report.trust.trusted && !leafTimeOnly)
    out.push({
      id: 'cert-untrusted',
      severity: 'high',
      message: `no path to a trusted root${report.trust.error ? `: ${report.trust.error}` : ''}`,
    });
  if (report.hostname.checked !== null && !report.hostname.matches) {
    out.push({
      id: 'cert-hostname-mismatch',
      severity: 'high',
      message: `certificate does not name ${report.hostname.checked} (names: ${leaf.dnsNames.join(', ') || leaf.commonName || 'none'})`,
    });
  }
  const weakHashes = new Set(['md5', 'sha1']);
  const weakSig = [leaf, ...report.chain.slice(1).filter((c) => !c.selfSigned)].filter((c) =>
    weakHashes.has(c.signatureHash),
  );
  if (weakSig.length > 0) {
    out.push({
      id: 'cert-weak-signature',
      severity: 'high',
      message: `signed with ${weakSig.map((c) => c.signatureAlgorithm).join(', ')}`,
      evidence: weakSig.map((c) => c.subject),
    });
  }
  const weakKey =
    ((leaf.keyType === 'RSA' || leaf.keyType === 'DSA') && leaf.keyBits < MIN_RSA_BITS) ||
    (leaf.keyType === 'EC' && leaf.keyBits < MIN_EC_BITS);
  if (weakKey)
    out.push({ id: 'cert-weak-key', severity: 'high', message: `${leaf.keyType}-${leaf.keyBits} key is too small` });
  return out;
}

export function starttlsFindings(
  p: EndpointProbe,
  commandInjection: { vulnerable: boolean; evidence: string[] } | null,
): Finding[] {
  const out: Finding[] = [];
  const s = p.starttls;
  if (!s) return out;
  if (s.refusedReply !== null)
    out.push({ id: 'starttls-refused', severity: 'high', message: `STARTTLS refused: ${s.refusedReply}` });
  else if (!s.advertised && !s.stripped)
    out.push({
      id: 'starttls-missing',
      severity: 'high',
      message: 'STARTTLS is not offered: mail to this server travels in cleartext',
    });
  if (s.stripped) {
    out.push({
      id: 'starttls-stripped',
      severity: 'high',
      message: 'STARTTLS works but is not advertised (capability stripped): clients will not use it',
    });
  }
  if (s.injectedBytes !== null) {
    out.push({
      id: 'starttls-response-injection',
      severity: 'high',
      message: 'server sent plaintext after its STARTTLS go-ahead (response injection); postern discarded it',
      evidence: [s.injectedBytes],
    });
  }
  if (commandInjection?.vulnerable) {
    out.push({
      id: 'starttls-injection',
      severity: 'critical',
      message: 'plaintext pipelined after STARTTLS is executed inside TLS (CVE-2011-0411 class)',
      evidence: commandInjection.evidence,
    });
  }
  return out;
}
