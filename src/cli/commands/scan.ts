import { readFile, writeFile } from 'node:fs/promises';
import { PosternError, UsageError } from '../../core/errors.ts';
import { createDnssecResolver } from '../../dns/dnssec.ts';
import type { DnssecResolver } from '../../dns/dnssec.ts';
import { createDnsClient } from '../../dns/resolver.ts';
import type { DnsClient } from '../../dns/resolver.ts';
import { isDomainTarget, parseServices, planDomain, resolveWith, summarizeDomain } from '../../scan/domain.ts';
import type { DomainPlan, DomainSummary } from '../../scan/domain.ts';
import { checkMailPolicies } from '../../scan/mail-policy.ts';
import type { MailPolicyReport } from '../../scan/mail-policy.ts';
import { renderHtml } from '../../scan/render-html.ts';
import { colourWanted, makeStyle, renderDomain, renderEndpoint } from '../../scan/render-text.ts';
import { scanEndpoint } from '../../scan/scan.ts';
import type { EndpointReport, ScanReport } from '../../scan/scan.ts';
import { parseTarget, resolveTarget } from '../../scan/target.ts';
import type { ResolvedTarget } from '../../scan/target.ts';
import { ConnectionLimiter } from '../../tls/probe/limiter.ts';
import { loadProfileFile } from '../../tls/profiles/custom.ts';
import { getProfile, isProfileId, PROFILE_IDS } from '../../tls/profiles/index.ts';
import type { Profile } from '../../tls/profiles/types.ts';

/** A built-in profile id, or a path to a YAML profile (errors name file:line:key). */
async function resolveProfile(spec: string): Promise<Profile> {
  if (isProfileId(spec)) return getProfile(spec);
  if (/\.ya?ml$/i.test(spec) || spec.includes('/')) return loadProfileFile(spec);
  throw new UsageError(`unknown profile "${spec}"`, {
    hint: `use one of ${PROFILE_IDS.join(', ')}, or a path to a YAML profile file`,
  });
}

export interface ScanCliOptions {
  file?: string;
  json?: boolean;
  html?: string;
  name?: string;
  caFile?: string[];
  dnsServer?: string[];
  /**
   * Trust the AD bit of a --dns-server that is not on loopback (DANE). Off by default: an AD bit
   * is only worth something over a path nobody can tamper with (RFC 7672 §2.1, RFC 6698 §4.1).
   */
  trustAd?: boolean;
  services: string;
  profile: string;
  maxConnPerIp: number;
  timeout: number;
  injectionTest: boolean;
}

async function readTargetsFile(path: string): Promise<string[]> {
  let text: string;
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read targets file ${path}: ${(e as Error).message}`, {
      hint: 'give a readable file with one target per line',
    });
  }
  return text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}

async function readCaFiles(paths: string[]): Promise<string[]> {
  return Promise.all(
    paths.map(async (p) => {
      try {
        const pem = await readFile(p, 'utf8');
        if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
        return pem;
      } catch (e) {
        throw new UsageError(`--ca-file ${p}: ${(e as Error).message}`, {
          hint: 'give a PEM file with one or more CERTIFICATE blocks',
        });
      }
    }),
  );
}

export const SCAN_EXIT = { ok: 0, findings: 1, usage: 2, unreachable: 3 } as const;

interface Job {
  target: ResolvedTarget;
  /** Name the certificate must match. */
  name: string;
  plan: DomainPlan | null;
}

/** Expands arguments into endpoints: mail domains through MX/SRV planning, URLs through DNS. */
async function expandTargets(
  inputs: string[],
  opts: ScanCliOptions,
  dns: DnsClient,
): Promise<{ jobs: Job[]; plans: DomainPlan[] }> {
  const services = parseServices(opts.services);
  const jobs: Job[] = [];
  const plans: DomainPlan[] = [];
  for (const input of inputs) {
    if (isDomainTarget(input)) {
      const plan = await planDomain(input, services, dns);
      plans.push(plan);
      for (const ep of plan.endpoints) jobs.push({ target: ep, name: opts.name ?? ep.name, plan });
      continue;
    }
    const t = parseTarget(input);
    let resolved: ResolvedTarget[];
    try {
      resolved = opts.dnsServer ? await resolveWith(t, dns) : await resolveTarget(t);
    } catch (e) {
      throw new PosternError(
        'dns-failed',
        `cannot resolve ${t.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        {
          hint: 'check the host name, give an IP address, or use --dns-server',
        },
      );
    }
    for (const r of resolved) jobs.push({ target: r, name: opts.name ?? t.host, plan: null });
  }
  return { jobs, plans };
}

/** `postern scan`: expand targets, scan every endpoint (4 at once, one politeness limiter for all), print. */
export async function scanCommand(args: string[], opts: ScanCliOptions): Promise<number> {
  const inputs = [...args, ...(opts.file ? await readTargetsFile(opts.file) : [])];
  if (inputs.length === 0)
    throw new UsageError('no targets given', {
      hint: 'postern scan example.org, postern scan smtp://mx.example.org or postern scan 127.0.0.1:25',
    });
  const ca = opts.caFile ? await readCaFiles(opts.caFile) : undefined;
  const profile = await resolveProfile(opts.profile);
  const dns = createDnsClient(opts.dnsServer ? { servers: opts.dnsServer } : {});
  const { jobs, plans } = await expandTargets(inputs, opts, dns);
  if (jobs.length === 0 && plans.length === 0)
    throw new UsageError('nothing to scan', { hint: 'the targets resolved to no endpoints' });

  // One limiter for the whole run: "at most --max-conn-per-ip concurrent connections to one
  // address" must hold across endpoints that share an address (e.g. MX and submission).
  const limiter = new ConnectionLimiter(opts.maxConnPerIp);
  const reports = new Array<EndpointReport>(jobs.length);
  const progress = jobs.length > 1;
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i] as Job;
      reports[i] = await scanEndpoint(job.target, {
        name: job.name,
        profile,
        ...(ca === undefined ? {} : { ca }),
        limiter,
        timeoutMs: opts.timeout,
        injectionTest: opts.injectionTest,
      });
      done++;
      if (progress)
        process.stderr.write(
          `[${done}/${jobs.length}] ${job.target.url} (${job.target.address}) ${reports[i]?.compliant ? 'ok' : 'findings'}\n`,
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
      // The --dns-server (first one) also answers the DNSSEC questions; else resolv.conf's first.
      resolver ??= createDnssecResolver({
        ...(opts.dnsServer?.[0] === undefined ? {} : { server: opts.dnsServer[0] }),
        trustAd: opts.trustAd ? 'any' : 'loopback',
      });
      if (progress) process.stderr.write(`[policies] ${plan.domain}: DANE, MTA-STS, TLS-RPT\n`);
      policies = await checkMailPolicies(plan, planReports, {
        dns,
        resolver,
        ...(ca === undefined ? {} : { ca }),
        timeoutMs: opts.timeout,
      });
    }
    domains.push(summarizeDomain(plan, planReports, policies));
  }
  const report: ScanReport = {
    schemaVersion: 1,
    profile: profile.id,
    generatedAt: new Date().toISOString(),
    targets: reports,
    ...(domains.length ? { domains } : {}),
  };
  if (opts.html) {
    try {
      await writeFile(opts.html, renderHtml(report, { generatedBy: 'postern 0.1.0' }));
    } catch (e) {
      throw new UsageError(`--html ${opts.html}: ${(e as Error).message}`, { hint: 'give a writable file path' });
    }
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const st = makeStyle(colourWanted(process.stdout));
    const parts = reports.map((r) => renderEndpoint(r, st));
    for (const d of domains) parts.push(renderDomain(d, st));
    process.stdout.write(`${parts.join('\n\n')}\n`);
  }
  if (reports.some((r) => !r.reachable)) return SCAN_EXIT.unreachable;
  const allOk = reports.every((r) => r.compliant) && domains.every((d) => d.compliant);
  return allOk ? SCAN_EXIT.ok : SCAN_EXIT.findings;
}
