/**
 * One `postern scan` run: expand the targets (mail domains through MX/SRV planning, URLs through
 * DNS), scan every endpoint (4 at once, one politeness limiter for all, each within its time
 * budget), judge DANE, MTA-STS and TLS-RPT for mail domains, and return the report with its exit
 * code. The CLI parses arguments, calls {@link runScan} and prints; nothing here writes output.
 */
import { PosternError, UsageError } from '../core/errors.ts';
import { createDnssecResolver } from '../dns/dnssec.ts';
import type { DnssecResolver } from '../dns/dnssec.ts';
import { createDnsClient } from '../dns/resolver.ts';
import type { DnsClient } from '../dns/resolver.ts';
import { ConnectionLimiter } from '../tls/probe/limiter.ts';
import type { Profile } from '../tls/profiles/types.ts';
import { isDomainTarget, parseServices, planDomain, resolveWith, summarizeDomain } from './domain.ts';
import type { DomainPlan, DomainSummary } from './domain.ts';
import { checkMailPolicies } from './mail-policy.ts';
import type { MailPolicyReport } from './mail-policy.ts';
import { scanEndpoint } from './scan.ts';
import type { EndpointReport, ScanReport } from './scan.ts';
import { parseTarget, resolveTarget } from './target.ts';
import type { ResolvedTarget } from './target.ts';

/** Exit codes of `postern scan` (docs/user-guide.md). */
export const SCAN_EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3 } as const;
export type ScanExit = (typeof SCAN_EXIT)[keyof typeof SCAN_EXIT];

export interface ScanRunOptions {
  /** Mail domains (example.org) or endpoints (smtp://host, host:port). */
  targets: string[];
  profile: Profile;
  /** Extra trust anchors (PEM); when given they replace the Mozilla store (see ScanOptions.ca). */
  ca?: string[];
  /** Name every certificate must match (default: each target's host). */
  name?: string;
  /** Resolve through these servers instead of the system resolver. */
  dnsServers?: string[];
  /**
   * Trust the AD bit of a DNS server that is not on loopback (DANE). Off by default: an AD bit is
   * only worth something over a path nobody can tamper with (RFC 7672 §2.1, RFC 6698 §4.1).
   */
  trustAd?: boolean;
  /** For mail-domain targets: "mx,submission,imap,pop3". */
  services: string;
  maxConnPerIp: number;
  /** Per network step. */
  timeoutMs: number;
  /** Total per endpoint (default DEFAULT_ENDPOINT_TIMEOUT_MS); see ScanOptions.endpointTimeoutMs. */
  endpointTimeoutMs?: number;
  injectionTest: boolean;
  /** Progress lines (the CLI writes them to stderr when there is more than one endpoint). */
  progress?: (line: string) => void;
  now?: () => Date;
}

export interface ScanRun {
  report: ScanReport;
  exitCode: ScanExit;
}

interface Job {
  target: ResolvedTarget;
  /** Name the certificate must match. */
  name: string;
  plan: DomainPlan | null;
}

/** Expands targets into endpoints: mail domains through MX/SRV planning, URLs through DNS. */
async function expandTargets(opts: ScanRunOptions, dns: DnsClient): Promise<{ jobs: Job[]; plans: DomainPlan[] }> {
  const services = parseServices(opts.services);
  const jobs: Job[] = [];
  const plans: DomainPlan[] = [];
  for (const input of opts.targets) {
    if (isDomainTarget(input)) {
      const plan = await planDomain(input, services, dns);
      plans.push(plan);
      for (const ep of plan.endpoints) jobs.push({ target: ep, name: opts.name ?? ep.name, plan });
      continue;
    }
    const t = parseTarget(input);
    let resolved: ResolvedTarget[];
    try {
      resolved = opts.dnsServers ? await resolveWith(t, dns) : await resolveTarget(t);
    } catch (e) {
      throw new PosternError(
        'dns-failed',
        `cannot resolve ${t.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { hint: 'check the host name, give an IP address, or use --dns-server' },
      );
    }
    for (const r of resolved) jobs.push({ target: r, name: opts.name ?? t.host, plan: null });
  }
  return { jobs, plans };
}

/** Exit code for a finished report: unreachable endpoints first, then any non-compliance. */
export function scanExitCode(report: ScanReport): ScanExit {
  if (report.targets.some((r) => !r.reachable)) return SCAN_EXIT.unreachable;
  const allOk = report.targets.every((r) => r.compliant) && (report.domains ?? []).every((d) => d.compliant);
  return allOk ? SCAN_EXIT.ok : SCAN_EXIT.findings;
}

/**
 * Runs a whole scan and returns its report (JSON contract: docs/scan-schema.md) and exit code.
 * Throws UsageError / PosternError for what the user can fix (no targets, unresolvable names).
 */
export async function runScan(opts: ScanRunOptions): Promise<ScanRun> {
  if (opts.targets.length === 0)
    throw new UsageError('no targets given', {
      hint: 'postern scan example.org, postern scan smtp://mx.example.org or postern scan 127.0.0.1:25',
    });
  const dns = createDnsClient(opts.dnsServers ? { servers: opts.dnsServers } : {});
  const { jobs, plans } = await expandTargets(opts, dns);
  if (jobs.length === 0 && plans.length === 0)
    throw new UsageError('nothing to scan', { hint: 'the targets resolved to no endpoints' });

  // One limiter for the whole run: "at most --max-conn-per-ip concurrent connections to one
  // address" must hold across endpoints that share an address (e.g. MX and submission).
  const limiter = new ConnectionLimiter(opts.maxConnPerIp);
  const reports: EndpointReport[] = new Array<EndpointReport>(jobs.length);
  const progress = jobs.length > 1 ? opts.progress : undefined;
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i] as Job;
      const r = await scanEndpoint(job.target, {
        name: job.name,
        profile: opts.profile,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        limiter,
        timeoutMs: opts.timeoutMs,
        ...(opts.endpointTimeoutMs === undefined ? {} : { endpointTimeoutMs: opts.endpointTimeoutMs }),
        injectionTest: opts.injectionTest,
      });
      reports[i] = r;
      done++;
      progress?.(
        `[${done}/${jobs.length}] ${job.target.url} (${job.target.address}) ${r.compliant ? 'ok' : 'findings'}`,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, jobs.length) }, worker));

  // DANE, MTA-STS and TLS-RPT for mail domains: judged against the chains just captured.
  let resolver: DnssecResolver | null = null;
  const domains: DomainSummary[] = [];
  for (const plan of plans) {
    const planReports = reports.filter((_, i) => jobs[i]?.plan === plan);
    let policies: MailPolicyReport | null = null;
    if (plan.services.includes('mx') && !plan.nullMx && plan.mx.length > 0) {
      // The first DNS server also answers the DNSSEC questions; else resolv.conf's first.
      resolver ??= createDnssecResolver({
        ...(opts.dnsServers?.[0] === undefined ? {} : { server: opts.dnsServers[0] }),
        trustAd: opts.trustAd ? 'any' : 'loopback',
      });
      progress?.(`[policies] ${plan.domain}: DANE, MTA-STS, TLS-RPT`);
      policies = await checkMailPolicies(plan, planReports, {
        dns,
        resolver,
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        timeoutMs: opts.timeoutMs,
      });
    }
    domains.push(summarizeDomain(plan, planReports, policies));
  }
  const report: ScanReport = {
    schemaVersion: 1,
    profile: opts.profile.id,
    generatedAt: (opts.now?.() ?? new Date()).toISOString(),
    targets: reports,
    ...(domains.length ? { domains } : {}),
  };
  return { report, exitCode: scanExitCode(report) };
}
