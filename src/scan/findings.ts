/**
 * Findings that do not depend on a grading profile: certificate trust, validity and name, and
 * STARTTLS failures. Everything a profile decides (versions, suites, groups, key sizes,
 * signature hashes, TLS features) comes from src/tls/evaluate.ts — the same engine the gateway
 * enforces with. Ids are stable: reports, tests and the testbed manifest use them.
 */
import type { ChainReport } from '../tls/cert/index.ts';
import type { EndpointProbe } from '../tls/probe/index.ts';
import type { ProbeError } from '../tls/probe/types.ts';
import type { Severity } from '../tls/evaluate.ts';

export type { Severity };

export interface Finding {
  id: string;
  severity: Severity;
  message: string;
  /** The rule broken, citing its source (e.g. "BSI TR-02102-2 (2025-01) Table 1"). */
  rule?: string;
  /** When the finding only matters in some setting (e.g. mandatory TLS on a port-25 MX). */
  context?: string;
  evidence?: string[];
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

/** The endpoint's total time budget: how long it was, and whether it ran out. */
export interface EndpointBudget {
  ms: number;
  expired: () => boolean;
}

/**
 * `server-too-slow`: a connection whose greeting and capabilities overran their budget
 * (`net-too-slow`), or an endpoint whose whole budget ran out. The evidence says what was slow
 * and after how long; the rest of the report holds only what was learnt before.
 */
export function tooSlowFindings(errors: ProbeError[], slowStart: string | null, budget: EndpointBudget): Finding[] {
  const evidence: string[] = [];
  if (slowStart !== null) evidence.push(slowStart);
  for (const e of errors) if (e.code === 'net-too-slow') evidence.push(`${e.phase}: ${e.message}`);
  const expired = budget.expired();
  if (expired) {
    const cut = [...new Set(errors.filter((e) => e.code === 'aborted').map((e) => e.phase))];
    evidence.push(
      `endpoint budget of ${budget.ms} ms (--endpoint-timeout) ran out${cut.length ? `; not finished: ${cut.join(', ')}` : ''}`,
    );
  }
  if (evidence.length === 0) return [];
  return [
    {
      id: 'server-too-slow',
      severity: 'medium',
      message: expired
        ? `scan stopped after ${budget.ms} ms: the server answers too slowly to be probed in time; results are incomplete (--endpoint-timeout waits longer)`
        : 'the server took too long to send its greeting and capabilities; results may be incomplete',
      evidence,
    },
  ];
}
