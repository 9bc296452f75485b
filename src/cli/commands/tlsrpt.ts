/**
 * `postern tlsrpt show`: what the gateway will send as TLS-RPT reports (RFC 8460), read from its
 * store (`tlsrpt.store` of --config, else `<stateDir>/tlsrpt.sqlite`) without writing to it, so it
 * is safe beside a running `serve`. The report metadata comes from the same config the gateway
 * uses, so `--json` prints exactly what it will send.
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../../core/errors.ts';
import type { TlsRptReport, TlsRptReportOptions } from '../../report/tlsrpt/aggregate.ts';
import { isTlsRptDay, TlsRptStore, type TlsRptDeliveryStatus } from '../../report/tlsrpt/store.ts';

export interface TlsRptShowOptions {
  /** State dir of the embedded default (ignored with `config`). */
  stateDir: string;
  /** YAML gateway config: its `tlsrpt.store`, organisation and contact are used. */
  config?: string;
  json?: boolean;
  /** YYYY-MM-DD: that UTC day, whatever its delivery state. Default: every day not yet sent. */
  day?: string;
  /** Only this policy domain. */
  domain?: string;
}

/** What the command writes to and reads (tests pass their own). */
export interface TlsRptShowDeps {
  stdout?: { write(s: string): unknown };
  now?: () => Date;
  /** Store path and report metadata; default: from `config`, else the embedded default for `stateDir`. */
  report?: TlsRptReportOptions;
  storePath?: string;
}

/**
 * The report metadata the gateway sends with (src/gateway/gateway.ts): organisation and contact
 * from `tlsrpt`, report-id prefixed with the host name.
 */
export function tlsRptReportOptionsFromConfig(config: {
  hostname: string;
  tlsrpt: { organization: string; contact: string };
}): TlsRptReportOptions {
  return {
    organizationName: config.tlsrpt.organization,
    contactInfo: config.tlsrpt.contact,
    reportIdPrefix: `${config.hostname}_`,
  };
}

async function resolveTarget(opts: TlsRptShowOptions, deps: TlsRptShowDeps): Promise<[string, TlsRptReportOptions]> {
  if (deps.report !== undefined && deps.storePath !== undefined) return [deps.storePath, deps.report];
  let config: { hostname: string; tlsrpt: { store: string; organization: string; contact: string } };
  if (opts.config !== undefined) {
    const { loadConfig } = await import('../../config/load.ts');
    config = await loadConfig(opts.config);
  } else {
    // embeddedDefaults, not loadEmbeddedConfig: reading reports must not generate a certificate.
    const { embeddedDefaults } = await import('../../config/defaults.ts');
    config = embeddedDefaults(opts.stateDir);
  }
  return [deps.storePath ?? config.tlsrpt.store, deps.report ?? tlsRptReportOptionsFromConfig(config)];
}

/** `postern tlsrpt show [-c FILE | --state-dir DIR] [--json] [--day YYYY-MM-DD] [--domain D]`; returns the exit code. */
export async function tlsrptShowCommand(opts: TlsRptShowOptions, deps: TlsRptShowDeps = {}): Promise<number> {
  const out = deps.stdout ?? process.stdout;
  if (opts.day !== undefined && !isTlsRptDay(opts.day)) {
    throw new UsageError(`--day must be a UTC day as YYYY-MM-DD, got "${opts.day}"`, { hint: 'e.g. --day 2024-03-10' });
  }
  const [file, report] = await resolveTarget(opts, deps);
  if (!existsSync(file)) {
    if (opts.json) out.write('[]\n');
    else out.write(`no TLS-RPT data yet (${file})\n`);
    return 0;
  }
  const store = TlsRptStore.open(file, { readOnly: true, ...(deps.now ? { now: deps.now } : {}) });
  try {
    const reports = store.reports({
      report,
      ...(opts.day !== undefined ? { day: opts.day } : { unsentOnly: true }),
      ...(opts.domain !== undefined ? { policyDomain: opts.domain } : {}),
    });
    if (opts.json) {
      // Exactly the RFC 8460 §4.4 objects that would be sent, one per (day, policy domain).
      out.write(`${JSON.stringify(reports, null, 2)}\n`);
      return 0;
    }
    if (reports.length === 0) {
      out.write(opts.day !== undefined ? `no TLS-RPT data for ${opts.day}\n` : 'nothing to send\n');
      return 0;
    }
    const today = (deps.now?.() ?? new Date()).toISOString().slice(0, 10);
    for (const r of reports) out.write(formatReport(r, store.status(r.policyDomain, dayOf(r)), today));
    return 0;
  } finally {
    store.close();
  }
}

function dayOf(r: TlsRptReport): string {
  return r.start.toISOString().slice(0, 10);
}

function stateLabel(status: TlsRptDeliveryStatus | undefined, day: string, today: string): string {
  if (status === undefined) return day >= today ? 'in progress: the UTC day is not over' : 'due';
  switch (status.state) {
    case 'sent':
      return `sent ${status.updatedAt.toISOString()}`;
    case 'retry':
      return `retry at ${status.retryAt?.toISOString() ?? '?'} (${status.reason ?? ''})`;
    default:
      return `${status.state}: ${status.reason ?? ''}`;
  }
}

/** Human summary of one report: per applied policy, successes, failures by result type. */
function formatReport(r: TlsRptReport, status: TlsRptDeliveryStatus | undefined, today: string): string {
  const json = r.toJSON();
  const day = dayOf(r);
  const lines = [`${day}  ${r.policyDomain}  [${stateLabel(status, day, today)}]  report-id ${json['report-id']}`];
  for (const p of json.policies) {
    const mx = p.policy['mx-host'] === undefined ? '' : `  mx-host ${p.policy['mx-host']}`;
    lines.push(`  policy ${p.policy['policy-type']}${mx}`);
    lines.push(
      `    successful sessions: ${p.summary['total-successful-session-count']}, failed sessions: ${p.summary['total-failure-session-count']}`,
    );
    for (const d of p['failure-details'] ?? []) {
      const ip = d['receiving-ip'] === undefined ? '' : ` [${d['receiving-ip']}]`;
      const code = d['failure-reason-code'] === undefined ? '' : ` (${d['failure-reason-code']})`;
      lines.push(
        `      ${d['failed-session-count']} x ${d['result-type']}  ${d['receiving-mx-hostname']}${ip}  from ${d['sending-mta-ip']}${code}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
