/**
 * Mail-domain targets: turn `example.org` into the endpoints that carry its mail (MX hosts and,
 * on request, the submission / IMAP / POP3 servers its users reach), and fold the per-endpoint
 * reports back into one verdict per domain. "The weakest MX decides": a sender picks any MX, so a
 * domain is only as strong as its worst one, and MX hosts that differ are a finding of their own
 * (seed 002: mail stops or leaks when the secondary MX is not like the primary).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { UsageError } from '../core/errors.ts';
import { DnsError } from '../dns/resolver.ts';
import type { DnsClient, SrvLookup } from '../dns/resolver.ts';
import type { Finding, Severity } from './findings.ts';
import { parseTarget } from './target.ts';
import type { ResolvedTarget, ScanTarget, Service } from './target.ts';
import type { DomainSummary, EndpointReport, MailPolicyReport } from './report.ts';

export type DomainService = 'mx' | 'submission' | 'imap' | 'pop3';

export const DOMAIN_SERVICES: readonly DomainService[] = ['mx', 'submission', 'imap', 'pop3'];

/** How an endpoint was found. */
export type EndpointSource = 'mx' | 'implicit-mx' | 'srv' | 'guess';

export interface DomainEndpoint extends ResolvedTarget {
  role: DomainService;
  source: EndpointSource;
  /** MX endpoints only: the exchange name and its preference. */
  mxHost?: string;
  priority?: number;
  /** The name the certificate must match: the MX name, the SRV target or the guessed host name. */
  name: string;
}

export interface DomainProblem {
  id: string;
  severity: Severity;
  message: string;
}

export interface DomainPlan {
  domain: string;
  services: DomainService[];
  nullMx: boolean;
  implicitMx: boolean;
  /** MX exchange names in preference order (empty for a null MX). */
  mx: string[];
  endpoints: DomainEndpoint[];
  problems: DomainProblem[];
}

export interface PlanOptions {
  /**
   * Ports to use instead of the standard ones (smtp 25, submission 587, smtps 465, imap 143,
   * imaps 993, pop3 110, pop3s 995) for MX and guessed hosts. For test setups and estates on
   * non-standard ports; SRV records carry their own port and are not overridden.
   */
  ports?: Partial<Record<Service, number>>;
}

/**
 * True when `input` names a mail domain rather than an endpoint: no scheme, no port, not an IP
 * literal, and a syntactically valid (optionally internationalized) host name.
 */
export function isDomainTarget(input: string): boolean {
  const text = input.trim();
  if (text === '' || text.includes('://') || text.includes(':') || text.includes('/') || isIP(text)) return false;
  return normalizeDomain(text) !== null;
}

/** LDH labels of at most 63 octets, at most 253 in all (RFC 1035 §2.3.4), after IDNA (RFC 5891). */
function normalizeDomain(input: string): string | null {
  const ascii = domainToASCII(input.trim().replace(/\.$/, '')).toLowerCase();
  if (ascii === '' || ascii.length > 253) return null;
  const labels = ascii.split('.');
  if (!labels.every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l))) return null;
  // An all-numeric last label is an address fragment ("10.1"), not a domain.
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return null;
  return ascii;
}

/** Parses `--services mx,submission,imap,pop3`. Throws UsageError on an unknown name. */
export function parseServices(text: string): DomainService[] {
  const out: DomainService[] = [];
  for (const raw of text.split(',')) {
    const s = raw.trim().toLowerCase();
    if (s === '') continue;
    if (!(DOMAIN_SERVICES as readonly string[]).includes(s))
      throw new UsageError(`unknown service "${raw.trim()}"`, { hint: `use a list of ${DOMAIN_SERVICES.join(', ')}` });
    if (!out.includes(s as DomainService)) out.push(s as DomainService);
  }
  if (out.length === 0)
    throw new UsageError('no service given', { hint: `use a list of ${DOMAIN_SERVICES.join(', ')}` });
  return out;
}

interface ClientRole {
  /** The STARTTLS service and its implicit-TLS twin (RFC 8314 §3.3 prefers the latter). */
  kinds: Array<{ service: Service; srv: string }>;
  /** Host names tried (as `<label>.<domain>`) when no SRV record exists. */
  guesses: string[];
}

// RFC 6186 §3.1 (_submission, _imap, _imaps, _pop3, _pop3s) and RFC 8314 §5.1 (_submissions).
const CLIENT_ROLES: Record<Exclude<DomainService, 'mx'>, ClientRole> = {
  submission: {
    kinds: [
      { service: 'submission', srv: '_submission._tcp' },
      { service: 'smtps', srv: '_submissions._tcp' },
    ],
    guesses: ['smtp', 'mail'],
  },
  imap: {
    kinds: [
      { service: 'imap', srv: '_imap._tcp' },
      { service: 'imaps', srv: '_imaps._tcp' },
    ],
    guesses: ['imap', 'mail'],
  },
  pop3: {
    kinds: [
      { service: 'pop3', srv: '_pop3._tcp' },
      { service: 'pop3s', srv: '_pop3s._tcp' },
    ],
    guesses: ['pop3', 'pop', 'mail'],
  },
};

function endpointFor(
  service: Service,
  host: string,
  port: number | undefined,
  address: string,
  extra: Omit<DomainEndpoint, keyof ResolvedTarget>,
): DomainEndpoint {
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const t = parseTarget(port === undefined ? `${service}://${hostPart}` : `${service}://${hostPart}:${port}`);
  return { ...t, address, ...extra };
}

function describeDnsError(e: unknown): string {
  return e instanceof DnsError ? e.message : String(e instanceof Error ? e.message : e);
}

/**
 * Works out which endpoints carry a domain's mail, in preference order. DNS failures become
 * `problems`, never exceptions: a scan of a half-broken estate should still scan the rest.
 * Throws UsageError only for a name that is not a domain.
 */
export async function planDomain(
  domain: string,
  services: DomainService[],
  dns: DnsClient,
  opts: PlanOptions = {},
): Promise<DomainPlan> {
  const d = normalizeDomain(domain);
  if (d === null) throw new UsageError(`"${domain}" is not a domain name`, { hint: 'give e.g. example.org' });
  const plan: DomainPlan = {
    domain: d,
    services,
    nullMx: false,
    implicitMx: false,
    mx: [],
    endpoints: [],
    problems: [],
  };
  const problem = (id: string, severity: Severity, message: string): void => {
    plan.problems.push({ id, severity, message });
  };
  const seen = new Set<string>();
  const add = (ep: DomainEndpoint): void => {
    // Guessed names: one endpoint per (service, address, port), as smtp.X and mail.X are often one
    // machine. MX and SRV names are published, so each is checked under its own name.
    const key = `${ep.service} ${ep.source === 'guess' ? '' : ep.host} ${ep.address} ${ep.port}`;
    if (seen.has(key)) return;
    seen.add(key);
    plan.endpoints.push(ep);
  };
  const addrCache = new Map<string, Promise<string[]>>();
  const addressesOf = (host: string): Promise<string[]> => {
    let p = addrCache.get(host);
    if (!p) {
      p = dns.addresses(host);
      addrCache.set(host, p);
    }
    return p;
  };

  if (services.includes('mx')) {
    try {
      const mx = await dns.mxLookup(d);
      plan.nullMx = mx.nullMx;
      plan.implicitMx = mx.implicit;
      plan.mx = mx.records.map((r) => r.exchange);
      if (mx.nullMx) problem('null-mx', 'info', `${d} publishes a null MX (RFC 7505): it accepts no mail`);
      if (mx.nullMxMixed)
        problem(
          'null-mx-mixed',
          'medium',
          `${d} publishes a null MX together with other MX records (RFC 7505 §3 forbids this)`,
        );
      if (mx.implicit)
        problem('mx-implicit', 'info', `${d} has no MX record; mail goes to its own address records (RFC 5321 §5.1)`);
      if (!mx.nullMx && mx.records.length === 0)
        problem('mx-none', 'high', `${d} has neither MX nor address records: it cannot receive mail`);
      for (const rec of mx.records) {
        if (isIP(rec.exchange)) {
          // RFC 7505 §3 / RFC 5321 §5.1: an MX names a host; an address literal there is an error.
          problem('mx-unresolvable', 'high', `MX ${rec.exchange} is an IP address, not a host name`);
          continue;
        }
        let addrs: string[];
        try {
          addrs = await addressesOf(rec.exchange);
        } catch (e) {
          problem('mx-unresolvable', 'high', `MX ${rec.exchange} (priority ${rec.priority}): ${describeDnsError(e)}`);
          continue;
        }
        for (const address of addrs)
          add(
            endpointFor('smtp', rec.exchange, opts.ports?.smtp, address, {
              role: 'mx',
              source: mx.implicit ? 'implicit-mx' : 'mx',
              mxHost: rec.exchange,
              priority: rec.priority,
              name: rec.exchange,
            }),
          );
      }
    } catch (e) {
      if (e instanceof DnsError && e.code === 'dns-nxdomain')
        problem('domain-nxdomain', 'high', `${d} does not exist (NXDOMAIN)`);
      else problem('mx-lookup-failed', 'high', `MX lookup for ${d} failed: ${describeDnsError(e)}`);
    }
  }

  for (const role of services) {
    if (role === 'mx') continue;
    const spec = CLIENT_ROLES[role];
    let guessed: Array<{ host: string; addrs: string[] }> | null = null;
    const guessHosts = async (): Promise<Array<{ host: string; addrs: string[] }>> => {
      if (guessed) return guessed;
      guessed = [];
      for (const label of spec.guesses) {
        const host = `${label}.${d}`;
        try {
          guessed.push({ host, addrs: await addressesOf(host) });
        } catch {
          // A guess that does not resolve is not a problem: it was only a guess.
        }
      }
      return guessed;
    };
    const before = plan.endpoints.length;
    for (const kind of spec.kinds) {
      const srvName = `${kind.srv}.${d}`;
      let srv: SrvLookup | null = null;
      try {
        srv = await dns.srv(srvName);
      } catch (e) {
        if (!(e instanceof DnsError) || e.temporary)
          problem(`${role}-lookup-failed`, 'medium', `SRV ${srvName}: ${describeDnsError(e)}`);
      }
      if (srv?.notAvailable) {
        problem(
          `${role}-not-offered`,
          'info',
          `SRV ${srvName} is "." : ${kind.service} is not offered (RFC 6186 §3.4)`,
        );
        continue;
      }
      if (srv && srv.records.length > 0) {
        for (const r of srv.records) {
          let addrs: string[];
          try {
            addrs = await addressesOf(r.name);
          } catch (e) {
            problem(`${role}-unresolvable`, 'medium', `SRV ${srvName} target ${r.name}: ${describeDnsError(e)}`);
            continue;
          }
          // Cert name: the SRV target, as deployed certificates name it. RFC 7817 §3 asks for the
          // source domain unless the SRV answer was DNSSEC-validated; recorded as a deviation.
          for (const address of addrs)
            add(endpointFor(kind.service, r.name, r.port, address, { role, source: 'srv', name: r.name }));
        }
        continue;
      }
      for (const g of await guessHosts())
        for (const address of g.addrs)
          add(
            endpointFor(kind.service, g.host, opts.ports?.[kind.service], address, {
              role,
              source: 'guess',
              name: g.host,
            }),
          );
    }
    if (plan.endpoints.length === before && !plan.problems.some((p) => p.id === `${role}-not-offered`))
      problem(
        `${role}-none`,
        'info',
        `no ${role} server found for ${d}: no SRV record (${spec.kinds.map((k) => k.srv).join(', ')}) and none of ${spec.guesses.map((g) => `${g}.${d}`).join(', ')} resolves`,
      );
  }
  return plan;
}

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type { DomainSummary } from './report.ts';

const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** Orders endpoints from weakest: unreachable first, then by worst finding, then by number of findings. */
function weakness(r: EndpointReport): [number, number, number] {
  const worst = r.findings.reduce((m, f) => Math.max(m, SEVERITY_RANK[f.severity]), 0);
  const serious = r.findings.filter((f) => f.severity !== 'info').length;
  return [r.reachable ? 0 : 1, worst, serious];
}

function suiteSet(r: EndpointReport): string[] {
  return [...new Set(r.ciphers.map((c) => `${c.protocol}:${c.name}`))].sort();
}

/** What two MX endpoints must agree on, one line per aspect, for the mx-inconsistent comparison. */
function profile(r: EndpointReport): Array<[string, string]> {
  const versions = Object.entries(r.protocols)
    .filter(([, on]) => on)
    .map(([v]) => v);
  const suites = suiteSet(r);
  const c = r.certificate;
  const certFindings = r.findings
    .filter((f) => f.id.startsWith('cert-'))
    .map((f) => f.id)
    .sort();
  return [
    ['reachable', r.reachable ? 'yes' : 'no'],
    ['STARTTLS', r.starttls === null ? 'implicit TLS' : r.starttls.offered ? 'offered' : 'not offered'],
    ['protocols', versions.length ? versions.join(' ') : 'none'],
    ['suites', suites.length ? suites.join(' ') : 'none'],
    [
      'certificate',
      c === null
        ? 'none'
        : `trusted=${c.trusted ? 'yes' : 'no'} name-match=${c.hostnameMatches === null ? 'n/a' : c.hostnameMatches ? 'yes' : 'no'} validity=${certFindings.some((f) => f === 'cert-expired' || f === 'cert-not-yet-valid') ? 'invalid' : 'valid'}`,
    ],
    ['compliant', r.compliant ? 'yes' : 'no'],
  ];
}

function label(ep: { mxHost?: string; host: string; address: string }): string {
  return `${ep.mxHost ?? ep.host} [${ep.address}]`;
}

/**
 * Folds a domain's endpoint reports into one verdict. `reports` may come in any order; they are
 * matched to the plan's endpoints by url and address. The weakest MX decides compliance; MX
 * endpoints that differ in STARTTLS, protocol versions, suites, certificate state or compliance
 * yield `mx-inconsistent` with the differences host by host as evidence. `policies` (from
 * checkMailPolicies) adds the DANE, MTA-STS and TLS-RPT sections and their findings, which count
 * towards compliance like any other domain finding.
 */
export function summarizeDomain(
  plan: DomainPlan,
  reports: EndpointReport[],
  policies: MailPolicyReport | null = null,
): DomainSummary {
  const byKey = new Map(reports.map((r) => [`${r.url} ${r.address}`, r]));
  const matched = plan.endpoints.flatMap((ep) => {
    const r = byKey.get(`${ep.url} ${ep.address}`);
    return r ? [{ ep, r }] : [];
  });
  const mxPairs = matched.filter((m) => m.ep.role === 'mx');
  const findings: Finding[] = plan.problems.map((p) => ({ id: p.id, severity: p.severity, message: p.message }));

  const missing = plan.endpoints.filter((ep) => !byKey.has(`${ep.url} ${ep.address}`));
  if (missing.length > 0)
    findings.push({
      id: 'endpoint-not-scanned',
      severity: 'medium',
      message: `${missing.length} planned endpoint(s) have no report`,
      evidence: missing.map((ep) => `${ep.url} [${ep.address}]`),
    });

  if (mxPairs.length > 1) {
    const profiles = mxPairs.map((m) => ({ who: label(m.ep), aspects: profile(m.r), suites: suiteSet(m.r) }));
    const evidence: string[] = [];
    const first = profiles[0];
    if (first) {
      first.aspects.forEach(([aspect], i) => {
        const values = profiles.map((p) => p.aspects[i]?.[1] ?? '');
        if (new Set(values).size <= 1) return;
        if (aspect === 'suites') {
          // Full suite lists drown the difference: name only what not every MX accepts.
          const common = profiles.reduce((acc, p) => acc.filter((x) => p.suites.includes(x)), first.suites);
          for (const p of profiles) {
            const own = p.suites.filter((x) => !common.includes(x));
            evidence.push(
              `suites: ${p.who}: ${p.suites.length} accepted${own.length ? `, not on every MX: ${own.join(' ')}` : ''}`,
            );
          }
        } else profiles.forEach((p, j) => evidence.push(`${aspect}: ${p.who}: ${values[j] ?? ''}`));
      });
    }
    if (evidence.length > 0) {
      const aspects = [...new Set(evidence.map((e) => e.slice(0, e.indexOf(':'))))];
      findings.push({
        id: 'mx-inconsistent',
        severity: 'medium',
        message: `the MX hosts of ${plan.domain} differ in ${aspects.join(', ')}: a sender reaching the weaker one gets weaker protection, or none`,
        evidence,
      });
    }
  }

  if (policies) findings.push(...policies.findings);

  let weakest: { ep: DomainEndpoint; r: EndpointReport } | null = null;
  for (const m of mxPairs) {
    if (m.r.compliant) continue;
    if (weakest === null) {
      weakest = m;
      continue;
    }
    const a = weakness(m.r);
    const b = weakness(weakest.r);
    if (a[0] > b[0] || (a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && a[2] > b[2])))) weakest = m;
  }

  const compliant =
    matched.every((m) => m.r.compliant) &&
    findings.every((f) => SEVERITY_RANK[f.severity] <= SEVERITY_RANK.low || f.id === 'mx-inconsistent');
  return {
    domain: plan.domain,
    mx: plan.mx,
    compliant,
    weakest: weakest?.r.url ?? null,
    weakestAddress: weakest?.r.address ?? null,
    findings,
    ...(policies ? { dane: policies.dane, mtaSts: policies.mtaSts, tlsRpt: policies.tlsRpt } : {}),
  };
}

/**
 * Resolves a URL target's host through `dns` (for `--dns-server`; without servers the client uses
 * getaddrinfo, like `resolveTarget`): one entry per address, A before AAAA. Throws DnsError.
 */
export async function resolveWith(t: ScanTarget, dns: DnsClient): Promise<ResolvedTarget[]> {
  return (await dns.addresses(t.host)).map((address) => ({ ...t, address }));
}
