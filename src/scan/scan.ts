/**
 * scan: engine results → a report (JSON contract in docs/scan-schema.md, schemaVersion 1).
 */
import { isIP } from 'node:net';
import { PosternError } from '../core/errors.ts';
import { analyzeChain } from '../tls/cert/index.ts';
import type { ChainReport } from '../tls/cert/index.ts';
import { emptyProbe, probeEndpoint, ProbeUnreachableError } from '../tls/probe/index.ts';
import type { EndpointProbe } from '../tls/probe/index.ts';
import { probeCommandInjection, StartTlsError } from '../tls/starttls/index.ts';
import { ConnectionLimiter } from '../tls/probe/limiter.ts';
import { groupByCode, VERSIONS } from '../tls/wire/constants.ts';
import { formatSuiteCode, suiteByCode } from '../tls/wire/suites.ts';
import { certificateFindings, starttlsFindings, tooSlowFindings } from './findings.ts';
import type { EndpointBudget } from './findings.ts';
import { analyzeCertificate } from '../tls/cert/index.ts';
import { evaluate, isCompliant } from '../tls/evaluate.ts';
import type { TlsFacts } from '../tls/evaluate.ts';
import { getProfile } from '../tls/profiles/index.ts';
import type { Profile } from '../tls/profiles/types.ts';
import type { Finding } from './findings.ts';
import type { ResolvedTarget } from './target.ts';
import type { EndpointReport } from './report.ts';

export interface ScanOptions {
  /** Grading profile (default: BSI TR-02102-2). */
  profile?: Profile;
  /** Name the certificate must match (default: the target's host). */
  name?: string;
  /** Extra trust anchors (PEM); default: the Mozilla store shipped with Node. */
  ca?: string[];
  maxConnPerIp?: number;
  /** One politeness limiter shared by a whole scan run (see ConnectionLimiter). */
  limiter?: ConnectionLimiter;
  /** Run the safe CVE-2011-0411 check on STARTTLS endpoints (one extra connection). Default true. */
  injectionTest?: boolean;
  now?: Date;
  /** Per network step (connect, one reply line, a handshake); default 10 000. */
  timeoutMs?: number;
  /**
   * Total for this endpoint, all connections included (default {@link DEFAULT_ENDPOINT_TIMEOUT_MS}).
   * When it runs out the probe stops, what was learnt is kept, and the finding `server-too-slow`
   * says so: per-step timeouts alone let a server that answers just inside them hold a scan for
   * an hour (500 reply lines × 10 s).
   */
  endpointTimeoutMs?: number;
  /** Starts the endpoint-budget timer; returns its cancel function. Tests inject a fake clock here. */
  setTimer?: (ms: number, fire: () => void) => () => void;
  rateLimitBackoffMs?: number;
  signal?: AbortSignal;
}

/** Default budget for one endpoint (`--endpoint-timeout`): generous for a full probe (~20 s on a good server). */
export const DEFAULT_ENDPOINT_TIMEOUT_MS = 120_000;

function realTimer(ms: number, fire: () => void): () => void {
  const t = setTimeout(fire, ms);
  return () => clearTimeout(t);
}

// moved: import from './report.ts' (shim kept while the issue 9 branches merge; delete after).
export type { CertificateSummary, EndpointReport, ScanReport } from './report.ts';

function groupName(code: number): string {
  return groupByCode(code)?.name ?? `0x${code.toString(16).padStart(4, '0')}`;
}

/**
 * Scans one resolved endpoint within its time budget (ScanOptions.endpointTimeoutMs). Never throws
 * for server behaviour; unreachable or too slow endpoints become reports with findings.
 */
export async function scanEndpoint(t: ResolvedTarget, opts: ScanOptions = {}): Promise<EndpointReport> {
  const budgetMs = opts.endpointTimeoutMs ?? DEFAULT_ENDPOINT_TIMEOUT_MS;
  const budget = new AbortController();
  const cancel = (opts.setTimer ?? realTimer)(budgetMs, () => budget.abort());
  const signal = opts.signal === undefined ? budget.signal : AbortSignal.any([opts.signal, budget.signal]);
  try {
    return await scanWithin(t, opts, signal, {
      expired: () => budget.signal.aborted && opts.signal?.aborted !== true,
      ms: budgetMs,
    });
  } finally {
    cancel();
  }
}

async function scanWithin(
  t: ResolvedTarget,
  opts: ScanOptions,
  signal: AbortSignal,
  budget: EndpointBudget,
): Promise<EndpointReport> {
  const name = opts.name ?? t.host;
  const servername = isIP(name) ? undefined : name;
  const target = {
    host: t.host,
    address: t.address,
    port: t.port,
    dialect: t.dialect,
    ...(servername === undefined ? {} : { servername }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  };
  // One limiter for the probe and the injection check, so the politeness bound covers both.
  const limiter = opts.limiter ?? new ConnectionLimiter(opts.maxConnPerIp ?? 2);
  type InjectionResult = { vulnerable: boolean; evidence: string[] } | PosternError | Error;
  let injectionConnections = 0;
  const runInjection = (force: boolean): Promise<InjectionResult> => {
    injectionConnections++;
    return limiter
      .run(t.address, () =>
        probeCommandInjection({
          host: t.address,
          port: t.port,
          dialect: t.dialect,
          ...(force ? { forceStartTls: true } : {}),
          ...(servername === undefined ? {} : { servername }),
          ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
          signal,
        }),
      )
      .catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
  };
  // The safe CVE-2011-0411 check runs alongside the probe (it needs only STARTTLS and a
  // handshake); its answer is used once the probe confirms TLS was reached.
  const wantInjection = (opts.injectionTest ?? true) && t.dialect !== 'implicit';
  let injectionRun: Promise<InjectionResult> | null = wantInjection ? runInjection(false) : null;

  let probe: EndpointProbe;
  let reachable = true;
  const findings: Finding[] = [];
  /** Why the first connection failed, when it failed by being too slow. */
  let slowStart: string | null = null;
  try {
    probe = await probeEndpoint(target, {
      limiter,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.rateLimitBackoffMs === undefined ? {} : { rateLimitBackoffMs: opts.rateLimitBackoffMs }),
      signal,
    });
  } catch (e) {
    if (!(e instanceof ProbeUnreachableError)) {
      // Only the budget may interrupt the probe outside its typed errors (e.g. a backoff sleep).
      if (!budget.expired()) throw e;
      probe = emptyProbe(target);
      slowStart = 'first connection: interrupted by the endpoint budget';
    } else {
      probe = e.probe;
      // Too slow is reported below as server-too-slow (the server did answer: reachable).
      if (e.code === 'net-too-slow') slowStart = `first connection: ${e.message}${tooSlowReply(e)}`;
      else if (budget.expired()) slowStart = `first connection: interrupted by the endpoint budget (${e.message})`;
      else if (e.code === 'rate-limited')
        findings.push({
          id: 'rate-limited',
          severity: 'info',
          message: `server refused connections as too many: ${e.message}`,
        });
      else if (!e.code.startsWith('starttls-'))
        findings.push({ id: 'unreachable', severity: 'high', message: e.message });
      reachable = slowStart !== null || e.code.startsWith('starttls-');
    }
  }

  let injection: { vulnerable: boolean; evidence: string[] } | null = null;
  const tlsReached = VERSIONS.some((v) => probe.protocols[v]);
  if (injectionRun && tlsReached && probe.starttls && probe.session) {
    let result = await injectionRun;
    // A stripped capability makes the first attempt fail; STARTTLS works when forced.
    if (result instanceof StartTlsError && result.code === 'starttls-not-offered' && probe.starttls.stripped) {
      injectionRun = runInjection(true);
      result = await injectionRun;
    }
    if (result instanceof Error) {
      probe.errors.push({
        phase: 'command-injection',
        code: result instanceof PosternError ? result.code : 'internal',
        message: result.message,
      });
    } else injection = result;
  } else if (injectionRun) {
    await injectionRun; // never leave it running; its outcome does not apply
  }
  probe.stats.connections += injectionConnections;

  let chain: ChainReport | null = null;
  const firstChain = probe.chains[0];
  if (firstChain && firstChain.length > 0) {
    chain = analyzeChain(firstChain, {
      hostname: name,
      ...(opts.ca === undefined ? {} : { ca: opts.ca }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
  }

  const profile = opts.profile ?? getProfile('bsi');
  findings.push(...starttlsFindings(probe, injection));
  if (tlsReached) findings.push(...withContext(t.service, evaluate(factsFromProbe(probe), profile).findings));
  if (chain) findings.push(...withContext(t.service, certificateFindings(chain)));
  if (probe.heartbleed) {
    // Not a matter of profile: the server leaks memory to anyone (CVE-2014-0160).
    findings.push({
      id: 'heartbleed',
      severity: 'critical',
      message: 'server answers heartbeat requests with more data than was sent (Heartbleed, CVE-2014-0160)',
      ...(probe.checkEvidence.heartbeat ? { evidence: [probe.checkEvidence.heartbeat] } : {}),
    });
  }
  for (const a of probe.anomalies) findings.push({ id: 'tls-anomaly', severity: 'medium', message: a });
  findings.push(...tooSlowFindings(probe.errors, slowStart, budget));

  const ciphers = VERSIONS.flatMap((v) =>
    probe.suites[v].map((code) => ({
      protocol: v,
      code: formatSuiteCode(code),
      name: suiteByCode(code)?.name ?? 'unknown',
    })),
  );
  const offered = probe.starttls ? probe.starttls.advertised || probe.starttls.stripped : true;
  return {
    url: t.url,
    service: t.service,
    host: t.host,
    address: t.address,
    port: t.port,
    starttls: probe.starttls
      ? {
          offered,
          advertised: probe.starttls.advertised,
          stripped: probe.starttls.stripped,
          refusedReply: probe.starttls.refusedReply,
          injectedBytes: probe.starttls.injectedBytes,
        }
      : null,
    protocols: probe.protocols,
    ciphers,
    serverPreference: probe.serverPreference,
    groups: { tls13: probe.groups.tls13.map(groupName), tls12: probe.groups.tls12.map(groupName) },
    dhBits: probe.dhBits,
    certificate: chain
      ? {
          subject: chain.leaf.subject,
          issuer: chain.leaf.issuer,
          notBefore: chain.leaf.notBefore,
          notAfter: chain.leaf.notAfter,
          keyType: chain.leaf.keyType,
          keyBits: chain.leaf.keyBits,
          signatureAlgorithm: chain.leaf.signatureAlgorithm,
          sha256: chain.leaf.sha256,
          dnsNames: chain.leaf.dnsNames,
          selfSigned: chain.leaf.selfSigned,
          trusted: chain.trust.trusted,
          hostnameMatches: chain.hostname.checked === null ? null : chain.hostname.matches,
        }
      : null,
    chains: probe.chains.length,
    certificateChains: probe.chains.map((c) => c.map((der) => der.toString('base64'))),
    negotiated: probe.session
      ? { protocol: probe.session.protocol, cipher: probe.session.cipher.standardName, group: probe.session.group }
      : null,
    findings,
    compliant: reachable && isCompliant(findings),
    reachable,
    errors: probe.errors,
    stats: probe.stats,
  };
}

/** What the grading engine needs from a probe (the same TlsFacts the gateway builds from one session). */
export function factsFromProbe(probe: EndpointProbe): TlsFacts {
  const chain = probe.chains[0] ?? [];
  const certificates = chain.flatMap((der) => {
    try {
      return [analyzeCertificate(der)];
    } catch {
      return [];
    }
  });
  const groups = [...new Set([...probe.groups.tls13, ...probe.groups.tls12].map(groupName))];
  return {
    protocols: VERSIONS.filter((v) => probe.protocols[v]),
    suites: probe.suites,
    groups,
    dhBits: probe.dhBits,
    certificates,
    secureRenegotiation: probe.secureRenegotiation,
    extendedMasterSecret: probe.extendedMasterSecret,
    encryptThenMac: probe.encryptThenMac,
    compression: probe.compression,
    heartbeat: probe.heartbeat,
    clientRenegotiation: probe.clientRenegotiation,
    fallbackScsv: probe.fallbackScsv,
  };
}

/**
 * Seed 004's debate: on an opportunistic port-25 MX, refusing weak crypto can push senders to
 * cleartext, and opportunistic senders do not verify certificates. Such findings stay (the profile
 * verdict is strict) but say that they matter to senders that require TLS (DANE, MTA-STS, policy).
 */
const MANDATORY_TLS_NOTE =
  'on a port-25 MX this matters to senders that require TLS (DANE, MTA-STS, local policy); opportunistic senders would fall back to cleartext rather than refuse';

function withContext(service: string, findings: Finding[]): Finding[] {
  if (service !== 'smtp') return findings;
  return findings.map((f) =>
    /^(protocol|cipher|group|dh|cert)-/.test(f.id) ? { ...f, context: MANDATORY_TLS_NOTE } : f,
  );
}

/** " (last line: …)" for a StartTlsError that carries the server line it stopped at. */
function tooSlowReply(e: ProbeUnreachableError): string {
  const cause = e.cause;
  return cause instanceof StartTlsError && cause.reply !== null ? `; last line: ${cause.reply.slice(0, 120)}` : '';
}
