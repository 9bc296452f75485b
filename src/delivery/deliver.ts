/**
 * Outbound delivery of one queued message: recipients grouped by domain; per domain the policy
 * from the table, the targets (route > relayhost > MX, null MX and implicit MX per RFC 7505 /
 * RFC 5321 §5.1), then for each MX host in preference order and each of its addresses:
 * connect → EHLO → STARTTLS as the level says → decide() → deliver | next MX. Never cleartext
 * when the policy requires TLS; when the policy fails on every MX the recipients are deferred
 * with the reason (the queue bounces when the message's lifetime ends). Every attempt is logged
 * with the rule that was met or failed.
 */
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { EventSink } from '../core/events.ts';
import type { DnssecResolver } from '../dns/dnssec.ts';
import type { DnsClient } from '../dns/resolver.ts';
import { DnsError } from '../dns/resolver.ts';
import { createHash } from 'node:crypto';
import { lookupDane } from '../policy/dane/lookup.ts';
import type { DaneState } from '../policy/dane/lookup.ts';
import { formatTlsa } from '../policy/dane/verify.ts';
import { decide, protocolLabel } from '../policy/decide.ts';
import type { PolicyDecision, PolicyFailure } from '../policy/decide.ts';
import { attemptsTls, requiresAuth, wantsDane } from '../policy/levels.ts';
import type { TlsLevel } from '../policy/levels.ts';
import type { StsPolicy } from '../policy/mta-sts/policy.ts';
import { resolveHostPolicy } from '../policy/resolve.ts';
import type { HostPolicy, ReportPolicy, StsInput } from '../policy/resolve.ts';
import type { ResultType, TlsRptFailure, TlsRptPolicy, TlsRptSession } from '../report/tlsrpt/aggregate.ts';
import { tlsClientOffer } from '../policy/offer.ts';
import { normalizeDomain } from '../policy/table.ts';
import type { PolicyLookup, PolicyTable } from '../policy/table.ts';
import type { EnvelopeRecipient, QueuedMessage, RecipientStatus } from '../queue/types.ts';
import { SmtpClientError } from '../smtp/client/errors.ts';
import { ConnectionPool } from '../smtp/client/pool.ts';
import { SmtpClient } from '../smtp/client/session.ts';
import type { RecipientResult, SmtpTimeouts, StartTlsClientOptions } from '../smtp/client/session.ts';
import { analyzeChain } from '../tls/cert/chain.ts';
import type { ChainReport } from '../tls/cert/chain.ts';
import type { NegotiatedSession } from '../tls/session.ts';

/** `arrival.listener` of the gateway's own TLS-RPT report mail (RFC 8460 §3). */
// Not a valid listener name (config/schema.ts allows [a-z0-9_-]), so no SMTP client can arrive with it.
export const TLSRPT_LISTENER = 'postern:tlsrpt';

/** What an MTA-STS source (src/policy/mta-sts/cache.ts StsPolicyCache) answers; structural. */
export interface StsView {
  state: 'policy' | 'none' | 'error';
  policy: StsPolicy | null;
  id: string | null;
  policyText: string | null;
  error: { type: string; reason: string } | null;
}

/** RFC 8461 policy discovery (§5.1) and the re-check before deferring for a policy failure. */
export interface StsSource {
  lookup(domain: string): Promise<StsView>;
  recheck(domain: string): Promise<StsView>;
}

/** Where TLS-RPT (RFC 8460) session results go: one call per TLS session attempt. */
export interface TlsRptSink {
  recordSuccess(s: TlsRptSession): void;
  recordFailure(f: TlsRptFailure): void;
}

/** What a cached connection was admitted under. */
export interface AdmittedSession {
  decision: PolicyDecision;
}

export interface DeliveryDeps {
  dns: DnsClient;
  policy: PolicyTable;
  /** Static routes: recipient domain → 'host', 'host:port' or '[host]:port' (no MX lookup). */
  routes: Record<string, string>;
  /** Send everything not routed to this host ('host[:port]'), like Postfix relayhost. */
  relayhost?: string;
  heloName: string;
  /** Trust anchors (PEM) for verify/secure; default node's Mozilla store. */
  ca?: string[];
  now(): Date;
  log?: Logger;
  /** Tests: connect somewhere else than DNS says for this host name; null = use DNS. */
  connectOverride?: (host: string) => { address: string; port: number } | null;
  /** Shared connection cache and per-destination limits; default: one for this call, closed at the end. */
  pool?: ConnectionPool<AdmittedSession>;
  timeouts?: Partial<SmtpTimeouts>;
  /** Port of MX hosts (default 25). */
  port?: number;
  /** DNSSEC-validating resolver for DANE (levels dane, dane-only); absent: no TLSA lookups. */
  dnssec?: DnssecResolver;
  /** MTA-STS policies (RFC 8461); absent: MTA-STS is not applied. */
  sts?: StsSource;
  /** TLS-RPT sink (RFC 8460). */
  tlsrpt?: TlsRptSink;
  /** Typed events (src/core/events.ts); default: none. */
  events?: EventSink;
}

/** Typed log events (STYLE 6). */
export type DeliveryEvent =
  | {
      event: 'delivery.plan';
      msgId: string | null;
      domain: string;
      via: 'route' | 'relayhost' | 'mx' | 'implicit-mx' | 'literal';
      targets: string[];
      level: TlsLevel;
      profile: string | null;
      matched: string;
    }
  | {
      event: 'delivery.attempt';
      msgId: string | null;
      domain: string;
      mx: string;
      address: string;
      port: number;
      reused: boolean;
      level: TlsLevel;
      profile: string | null;
      matched: string;
      tls: { protocol: string; cipher: string } | null;
      outcome: 'policy-ok' | 'policy-fail' | 'error';
      rule: string;
      reason: string;
    }
  | {
      event: 'delivery.recipient';
      msgId: string | null;
      recipient: string;
      state: RecipientStatus['state'];
      mx: string | null;
      reply: string | null;
      reason: string | null;
    };

interface Target {
  mxHost: string;
  port: number;
  /** The next-hop domain for `secure` (recipient domain, or the route/relayhost name). */
  nextHop: string;
  via: 'route' | 'relayhost' | 'mx' | 'implicit-mx' | 'literal';
}

type Plan = { targets: Target[] } | { final: { state: 'bounced' | 'deferred'; reply: string; reason: string } };

/** 'host', 'host:port', '[host]:port', '[v6]:port'. */
export function parseHostPort(spec: string, defaultPort: number): { host: string; port: number } {
  const s = spec.trim();
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (br?.[1] !== undefined) return { host: br[1], port: br[2] !== undefined ? Number(br[2]) : defaultPort };
  if (isIP(s) === 6) return { host: s, port: defaultPort };
  const m = /^([^:]+)(?::(\d+))?$/.exec(s);
  if (m?.[1] === undefined)
    throw new SmtpClientError('smtp-protocol', `invalid host:port '${spec}'`, { stage: 'connect', temporary: true });
  return { host: m[1], port: m[2] !== undefined ? Number(m[2]) : defaultPort };
}

function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  return normalizeDomain(address.slice(at + 1));
}

/** Where mail for `domain` goes. */
async function plan(domain: string, deps: DeliveryDeps): Promise<Plan> {
  const port = deps.port ?? 25;
  const route = Object.entries(deps.routes).find(([k]) => normalizeDomain(k) === domain)?.[1];
  if (route !== undefined || deps.relayhost !== undefined) {
    const hp = parseHostPort(route ?? deps.relayhost ?? '', port);
    return {
      targets: [{ mxHost: hp.host, port: hp.port, nextHop: hp.host, via: route !== undefined ? 'route' : 'relayhost' }],
    };
  }
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain);
  if (literal?.[1] !== undefined && isIP(literal[1]) !== 0) {
    return { targets: [{ mxHost: literal[1], port, nextHop: literal[1], via: 'literal' }] };
  }
  try {
    const mx = await deps.dns.mxLookup(domain);
    if (mx.nullMx) {
      // RFC 7505 §4.2: 556 5.1.10.
      return {
        final: {
          state: 'bounced',
          reply: `556 5.1.10 ${domain} does not accept mail (null MX)`,
          reason: `the domain ${domain} does not accept mail: it publishes a null MX (RFC 7505)`,
        },
      };
    }
    if (mx.records.length === 0) {
      return {
        final: {
          state: 'bounced',
          reply: `550 5.1.2 ${domain} has no MX and no address record`,
          reason: `the domain ${domain} has no mail server (no MX and no address record)`,
        },
      };
    }
    return {
      targets: mx.records.map((r) => ({
        mxHost: r.exchange,
        port,
        nextHop: domain,
        via: mx.implicit ? 'implicit-mx' : 'mx',
      })),
    };
  } catch (e) {
    if (e instanceof DnsError && !e.temporary) {
      return {
        final: {
          state: 'bounced',
          reply: `550 5.1.2 ${e.message}`,
          reason: `the domain ${domain} does not exist in DNS (${e.message})`,
        },
      };
    }
    const msg = (e as Error).message;
    return {
      final: { state: 'deferred', reply: `451 4.4.3 ${msg}`, reason: `the MX lookup for ${domain} failed: ${msg}` },
    };
  }
}

/** The addresses to try for one target. */
async function addressesOf(t: Target, deps: DeliveryDeps): Promise<Array<{ address: string; port: number }>> {
  const o = deps.connectOverride?.(t.mxHost) ?? null;
  if (o !== null) return [o];
  if (isIP(t.mxHost) !== 0) return [{ address: t.mxHost, port: t.port }];
  const list = await deps.dns.addresses(t.mxHost);
  return list.map((address) => ({ address, port: t.port }));
}

interface Ctx {
  deps: DeliveryDeps;
  domain: string;
  policy: PolicyLookup;
  msgId: string | null;
  /** The recipient domain's usable MTA-STS policy (enforce/testing), when one applies. */
  sts: StsInput | null;
  /** The MTA-STS policy was re-checked after a failure (RFC 8461 §5.1), once per delivery. */
  stsRechecked: boolean;
  /** The domain's MX RRset was DNSSEC-validated (only asked when DANE or REQUIRETLS needs it). */
  mxSecure: boolean;
}

/** The per-host result of the policy chain, with what the log needs. */
type HostUse = Extract<HostPolicy, { kind: 'use' }>;

/** RFC 8460 §4.3 result type for a policy failure. */
export function resultTypeOf(f: PolicyFailure | undefined): ResultType {
  switch (f) {
    case 'starttls-not-supported':
    case 'starttls-refused':
      return 'starttls-not-supported';
    case 'certificate-expired':
      return 'certificate-expired';
    case 'certificate-not-trusted':
    case 'certificate-missing':
      return 'certificate-not-trusted';
    case 'certificate-host-mismatch':
      return 'certificate-host-mismatch';
    default:
      return 'validation-failure';
  }
}

/** The RFC 8460 §4.3.2.2 result type for an MTA-STS discovery error, or null when it is not one. */
function stsResultType(type: string): ResultType | null {
  return type === 'sts-policy-fetch-error' || type === 'sts-policy-invalid' || type === 'sts-webpki-invalid'
    ? type
    : null;
}

/** The recipient domain's MTA-STS policy (RFC 8461 §5.1), reporting discovery failures. */
async function loadSts(ctx: Ctx, recheck: boolean): Promise<StsInput | null> {
  const src = ctx.deps.sts;
  if (src === undefined) return null;
  let v: StsView;
  try {
    v = recheck ? await src.recheck(ctx.domain) : await src.lookup(ctx.domain);
  } catch (e) {
    ctx.deps.log?.warn(
      { event: 'mta-sts.error', domain: ctx.domain, err: (e as Error).message },
      'MTA-STS lookup failed',
    );
    return null;
  }
  if (v.state === 'error' && v.error !== null) {
    const rt = stsResultType(v.error.type);
    ctx.deps.log?.warn(
      { event: 'mta-sts.error', domain: ctx.domain, type: v.error.type, reason: v.error.reason },
      `MTA-STS policy for ${ctx.domain} not usable: ${v.error.reason}`,
    );
    if (rt !== null)
      ctx.deps.tlsrpt?.recordFailure({
        policyDomain: ctx.domain,
        policy: { type: 'sts', strings: [] },
        resultType: rt,
        sendingMtaIp: '0.0.0.0',
        receivingMxHostname: `mta-sts.${ctx.domain}`,
        additionalInformation: v.error.reason.slice(0, 200),
      });
  }
  if (v.policy === null || v.id === null || v.policy.mode === 'none') return null;
  return { policy: v.policy, text: v.policyText ?? '', id: v.id };
}

/**
 * Per-domain lookups before the MX loop: the MTA-STS policy, and — when DANE or REQUIRETLS needs
 * it — whether the MX RRset is DNSSEC-validated. A bogus or indeterminate MX answer defers the
 * whole domain (RFC 7672 §2.2.1: the MX hosts cannot be trusted, nor safely ignored).
 */
async function prepareDomain(
  ctx: Ctx,
  targets: Target[],
  requireTls: boolean,
): Promise<{ state: 'deferred'; reply: string; reason: string } | null> {
  if (ctx.policy.level === 'none' || !targets.some(viaMx)) return null;
  ctx.sts = await loadSts(ctx, false);
  const dnssec = ctx.deps.dnssec;
  if (dnssec === undefined || !(wantsDane(ctx.policy.level) || requireTls)) return null;
  let m: Awaited<ReturnType<DnssecResolver['mx']>>;
  try {
    m = await dnssec.mx(ctx.domain);
  } catch (e) {
    m = {
      qname: ctx.domain,
      qtype: 'MX',
      status: 'indeterminate',
      rcode: null,
      records: [],
      canonicalName: ctx.domain,
      detail: (e as Error).message,
    };
  }
  ctx.mxSecure = m.status === 'secure';
  if (m.status === 'bogus' || m.status === 'indeterminate') {
    const why = `the DNSSEC lookup of the MX records of ${ctx.domain} was ${m.status === 'bogus' ? 'bogus (signatures do not validate)' : 'inconclusive'}${m.detail !== null ? ` (${m.detail})` : ''}`;
    ctx.deps.log?.warn({ event: 'dane.mx-failed', domain: ctx.domain, status: m.status, detail: m.detail }, why);
    return {
      state: 'deferred',
      reply: `451 4.7.5 MX lookup ${m.status}`,
      reason: `${why}; mail is held rather than sent to MX hosts that cannot be trusted`,
    };
  }
  return null;
}

/** The policy chain for one target: table → DANE → MTA-STS (src/policy/resolve.ts). */
async function hostPolicy(ctx: Ctx, t: Target): Promise<HostPolicy> {
  const { deps, policy } = ctx;
  let dane: DaneState | null = null;
  if (wantsDane(policy.level) && deps.dnssec !== undefined && isIP(t.mxHost) === 0) {
    try {
      dane = await lookupDane(deps.dnssec, t.mxHost, t.port);
    } catch (e) {
      // A name the DNS client refuses (escapes, over-long labels): nothing is known, so the host
      // is not used (RFC 7672 §2.1.1), rather than an exception ending the whole delivery.
      dane = { kind: 'failed', base: t.mxHost, status: 'indeterminate', detail: (e as Error).message };
    }
  }
  const sts = viaMx(t) ? ctx.sts : null;
  return resolveHostPolicy({ table: policy, mxHost: t.mxHost, mxSecure: ctx.mxSecure, dane, sts });
}

/** MTA-STS and TLS-RPT are about the recipient domain's MX hosts; routes and relayhosts are local choices. */
function viaMx(t: Target): boolean {
  return t.via === 'mx' || t.via === 'implicit-mx';
}

/**
 * Does this host's policy authenticate the server (RFC 8689 §4.1 REQUIRETLS)? The certificate
 * must be checked (PKIX or DANE) and the host itself must be the right one: a configured next hop,
 * an MX from a DNSSEC-validated RRset, or one the domain's MTA-STS policy lists.
 */
function authenticates(hp: HostUse, ctx: Ctx, t: Target): boolean {
  const checked = requiresAuth(hp.level) || hp.level === 'dane';
  return checked && (!viaMx(t) || ctx.mxSecure || hp.source === 'mta-sts');
}

/** Fingerprint of the TLSA records and names a connection was admitted under (pool key). */
function daneKey(hp: HostUse): string {
  if (hp.dane === null) return '-';
  const h = createHash('sha256');
  for (const r of hp.dane.records) h.update(formatTlsa(r)).update('\n');
  h.update(hp.dane.names.join(','));
  return h.digest('hex').slice(0, 16);
}

type Negotiated =
  | { kind: 'admitted'; client: SmtpClient; decision: PolicyDecision }
  | { kind: 'policy-fail'; decision: PolicyDecision; session: NegotiatedSession | null }
  | { kind: 'error'; error: SmtpClientError };

function asClientError(e: unknown): SmtpClientError {
  if (e instanceof SmtpClientError) return e;
  return new SmtpClientError('net-closed', (e as Error).message ?? String(e), {
    stage: 'connect',
    temporary: true,
    cause: e,
  });
}

function policySource(p: PolicyLookup): string {
  return p.matched === 'default' ? 'default' : p.matched.replace(/^domain /, '');
}

function safeChain(session: NegotiatedSession, mxHost: string, deps: DeliveryDeps): ChainReport | null {
  if (session.peerChain.length === 0) return null;
  try {
    const o: Parameters<typeof analyzeChain>[1] = { hostname: mxHost, now: deps.now() };
    if (deps.ca !== undefined) o.ca = deps.ca;
    return analyzeChain(session.peerChain, o);
  } catch {
    return null; // unparseable certificates: decide() treats it as "no usable certificate"
  }
}

/**
 * Connect, EHLO, STARTTLS as the level says, and decide. `reconnect`: follow a `may`
 * 'cleartext-reconnect' decision with a new cleartext connection (delivery), or not (probe).
 */
async function negotiate(
  ctx: Ctx,
  t: Target,
  a: { address: string; port: number },
  reconnect: boolean,
  hp: HostUse,
): Promise<Negotiated> {
  const { deps } = ctx;
  const policy = { level: hp.level, profile: hp.profile };
  const connectOpts = {
    host: t.mxHost,
    address: a.address,
    port: a.port,
    heloName: deps.heloName,
    ...(deps.timeouts ? { timeouts: deps.timeouts } : {}),
  };
  let client: SmtpClient;
  try {
    client = await SmtpClient.connect(connectOpts);
    await client.ehlo();
  } catch (e) {
    return { kind: 'error', error: asClientError(e) };
  }
  const offered = client.offersStartTls();
  let session: NegotiatedSession | null = null;
  let tlsError: string | null = null;
  let tlsFailure: 'refused' | 'handshake' = 'handshake';
  if (attemptsTls(policy.level) && offered) {
    const opts: StartTlsClientOptions = { ...tlsClientOffer(policy.profile) };
    // RFC 7672 §3.1.2: DANE-TA needs the chain exactly as sent. SNI: the TLSA base domain (§8.1),
    // which is the MX name unless a CNAME was followed.
    if (hp.dane !== null && hp.dane.records.some((r) => r.usage === 2)) opts.captureChain = true;
    const sni = hp.dane?.names[0] ?? t.mxHost;
    if (isIP(sni) === 0) opts.servername = sni;
    if (deps.ca !== undefined) opts.ca = deps.ca;
    try {
      session = await client.startTls(opts);
    } catch (e) {
      const err = asClientError(e);
      if (err.code === 'starttls-refused') {
        tlsError = err.reply ?? err.message;
        tlsFailure = 'refused';
      } else if (err.code === 'tls-handshake-failed') {
        tlsError = err.message.replace(/^TLS handshake failed: /, '');
      } else return { kind: 'error', error: err };
    }
  }
  const chain = session === null ? null : safeChain(session, t.mxHost, deps);
  const base = {
    profile: policy.profile,
    session,
    tlsOffered: offered,
    tlsError,
    tlsFailure,
    chain,
    mxHost: t.mxHost,
    nextHopDomain: t.nextHop,
    policySource: policySource(ctx.policy),
    policyDomain: ctx.domain,
    now: deps.now(),
  };
  const via = hp.source === 'dane' ? 'DANE' : hp.source === 'mta-sts' ? 'MTA-STS' : undefined;
  const decision = decide({
    ...base,
    level: policy.level,
    ...(hp.dane !== null ? { dane: hp.dane } : {}),
    ...(via !== undefined ? { via } : {}),
  });
  report(ctx, t, a, hp, client, decision, offered, chain);
  if (!decision.ok) {
    await client.quit();
    return { kind: 'policy-fail', decision, session };
  }
  if (decision.action === 'cleartext-reconnect' && reconnect) {
    client.close();
    try {
      client = await SmtpClient.connect(connectOpts);
      await client.ehlo();
    } catch (e) {
      return { kind: 'error', error: asClientError(e) };
    }
  }
  return { kind: 'admitted', client, decision };
}

/**
 * One TLS-RPT session record (RFC 8460 §4.3). Under MTA-STS testing the enforce-mode check
 * (MX listed, PKIX-valid for the MX name) is evaluated here only for the report (RFC 8461 §5).
 */
function report(
  ctx: Ctx,
  t: Target,
  a: { address: string; port: number },
  hp: HostUse,
  client: SmtpClient,
  decision: PolicyDecision,
  offered: boolean,
  chain: ChainReport | null,
): void {
  const sink = ctx.deps.tlsrpt;
  if (sink === undefined || hp.level === 'none' || !viaMx(t)) return;
  const policy = rptPolicy(hp.report);
  const session = client.tls;
  let failure: ResultType | null = null;
  let info: string | undefined;
  if (!decision.ok) {
    failure = resultTypeOf(decision.failures[0]);
    info = decision.rule;
  } else if (hp.stsTesting !== null) {
    if (!hp.stsTesting.mxCovered) {
      failure = 'validation-failure';
      info = `MX ${t.mxHost} not listed in the MTA-STS policy (testing)`;
    } else {
      const strict = decide({
        level: 'verify',
        profile: null,
        session,
        tlsOffered: offered,
        tlsError: session === null ? 'no TLS' : null,
        chain,
        mxHost: t.mxHost,
        nextHopDomain: t.nextHop,
      });
      if (!strict.ok) {
        failure = resultTypeOf(strict.failures[0]);
        info = `MTA-STS testing: ${strict.rule}`;
        ctx.deps.log?.warn(
          { event: 'mta-sts.testing-failure', domain: ctx.domain, mx: t.mxHost, rule: strict.rule },
          `MTA-STS testing: ${t.mxHost} would fail enforce (${strict.rule}); delivered as the policy is in testing mode`,
        );
      }
    }
  } else if (session === null) {
    failure = offered ? 'validation-failure' : 'starttls-not-supported';
    info = decision.rule;
  }
  if (failure === null) {
    guarded(ctx, () => sink.recordSuccess({ policyDomain: ctx.domain, policy }));
    return;
  }
  const f: TlsRptFailure = {
    policyDomain: ctx.domain,
    policy,
    resultType: failure,
    sendingMtaIp: client.localAddress ?? '0.0.0.0',
    receivingMxHostname: t.mxHost,
    receivingIp: a.address,
  };
  const helo = client.ehloName;
  if (helo !== null) f.receivingMxHelo = helo;
  if (info !== undefined) f.failureReasonCode = info.slice(0, 200);
  guarded(ctx, () => sink.recordFailure(f));
}

/** The TLS-RPT policy of a host's policy (without the resolver's `testing` flag). */
function rptPolicy(r: ReportPolicy): TlsRptPolicy {
  return { type: r.type, strings: r.strings, ...(r.mxHost !== undefined ? { mxHost: r.mxHost } : {}) };
}

/** TLS-RPT bookkeeping must never cost a delivery (a full disk is logged, not thrown). */
function guarded(ctx: Ctx, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    ctx.deps.log?.error({ event: 'tlsrpt.record-failed', err: (e as Error).message }, 'TLS-RPT: recording failed');
  }
}

/** A host the policy chain took out of the running: reported and logged like a failed attempt. */
function skipHost(ctx: Ctx, t: Target, hp: Extract<HostPolicy, { kind: 'skip' }>): PolicyDecision {
  const sink = viaMx(t) ? ctx.deps.tlsrpt : undefined;
  if (sink !== undefined)
    guarded(ctx, () =>
      sink.recordFailure({
        policyDomain: ctx.domain,
        policy: rptPolicy(hp.report),
        resultType: hp.resultType,
        sendingMtaIp: '0.0.0.0',
        receivingMxHostname: t.mxHost,
        failureReasonCode: hp.rule.slice(0, 200),
      }),
    );
  const d: PolicyDecision = {
    ok: false,
    temporary: true,
    rule: `policy ${policySource(ctx.policy)}: ${hp.rule}`,
    reason: hp.reason,
    action: 'defer',
    enhanced: '4.7.5',
    failures: [],
    findings: [],
  };
  log(
    ctx,
    attemptEvent(
      ctx,
      t,
      { address: '', port: t.port },
      { reused: false, tls: null, outcome: 'policy-fail', rule: d.rule, reason: d.reason },
    ),
    true,
  );
  return d;
}

function tlsOf(s: NegotiatedSession | null): { protocol: string; cipher: string } | null {
  return s === null ? null : { protocol: s.protocol, cipher: s.cipher.standardName };
}

function log(ctx: Ctx, e: DeliveryEvent, warn = false): void {
  const l = ctx.deps.log;
  if (l === undefined) return;
  const msg = e.event === 'delivery.attempt' ? e.rule : e.event;
  if (warn) l.warn(e, msg);
  else l.info(e, msg);
}

function attemptEvent(
  ctx: Ctx,
  t: Target,
  a: { address: string; port: number },
  x: {
    reused: boolean;
    tls: { protocol: string; cipher: string } | null;
    outcome: 'policy-ok' | 'policy-fail' | 'error';
    rule: string;
    reason: string;
  },
): DeliveryEvent {
  return {
    event: 'delivery.attempt',
    msgId: ctx.msgId,
    domain: ctx.domain,
    mx: t.mxHost,
    address: a.address,
    port: a.port,
    level: ctx.policy.level,
    profile: ctx.policy.profile?.id ?? null,
    matched: ctx.policy.matched,
    ...x,
  };
}

interface Pending {
  status: RecipientStatus;
  rcpt: EnvelopeRecipient;
}

interface Final {
  state: RecipientStatus['state'];
  reply: string | null;
  reason: string;
  mx: string | null;
}

function poolKey(ctx: Ctx, t: Target, a: { address: string; port: number }, hp: HostUse): string {
  return [
    a.address,
    a.port,
    t.mxHost,
    t.nextHop,
    hp.level,
    hp.source,
    daneKey(hp),
    ctx.sts?.id ?? '-',
    ctx.policy.profile?.id ?? '-',
    ctx.policy.matched,
    ctx.deps.heloName,
  ].join('|');
}

function describeTls(s: NegotiatedSession | null): string {
  return s === null ? 'in cleartext' : `over ${protocolLabel(s.protocol)} (${s.cipher.standardName})`;
}

/** Deliver the recipients of one domain. */
async function deliverDomain(
  ctx: Ctx,
  pending: Pending[],
  msg: QueuedMessage,
  body: Buffer,
  pool: ConnectionPool<AdmittedSession>,
): Promise<Map<string, Final>> {
  const out = new Map<string, Final>();
  const all = (f: Final): Map<string, Final> => {
    for (const p of pending) out.set(p.rcpt.address, f);
    return out;
  };
  const env = msg.envelope;
  const p = await plan(ctx.domain, ctx.deps);
  if ('final' in p) return all({ ...p.final, mx: null });
  if (!ctx.stsRechecked) {
    const bogus = await prepareDomain(ctx, p.targets, env.requireTls);
    if (bogus !== null) return all({ ...bogus, mx: null });
  }
  log(ctx, {
    event: 'delivery.plan',
    msgId: ctx.msgId,
    domain: ctx.domain,
    via: p.targets[0]?.via ?? 'mx',
    targets: p.targets.map((t) => `${t.mxHost}:${t.port}`),
    level: ctx.policy.level,
    profile: ctx.policy.profile?.id ?? null,
    matched: ctx.policy.matched,
  });

  const policyFailures: string[] = [];
  const requireTlsRefusals: string[] = [];
  const errors: string[] = [];
  let unsuitable: SmtpClientError | null = null;
  let lastPolicy: PolicyDecision | null = null;
  let stsInvolved = false;
  let attempted = 0;
  let remaining = pending;

  for (const t of p.targets) {
    const hp = await hostPolicy(ctx, t);
    if (hp.report.type === 'sts') stsInvolved = true;
    if (hp.kind === 'skip') {
      lastPolicy = skipHost(ctx, t, hp);
      policyFailures.push(hp.reason);
      continue;
    }
    // RFC 8689 §4.1: REQUIRETLS needs a next hop authenticated by PKIX, DANE or MTA-STS.
    if (env.requireTls && !authenticates(hp, ctx, t)) {
      requireTlsRefusals.push(
        `the policy for ${t.mxHost} is '${hp.level}' (${hp.why})${requiresAuth(hp.level) || hp.level === 'dane' ? ', and the MX record is neither DNSSEC-validated nor listed by an MTA-STS policy' : ''}, which does not authenticate the receiving server`,
      );
      continue;
    }
    let addrs: Array<{ address: string; port: number }>;
    try {
      addrs = await addressesOf(t, ctx.deps);
    } catch (e) {
      errors.push(`${t.mxHost}: ${(e as Error).message}`);
      continue;
    }
    for (const a of addrs) {
      attempted++;
      const key = poolKey(ctx, t, a, hp);
      let client: SmtpClient | null = null;
      let decision: PolicyDecision | null = null;
      let reused = false;
      const cached = pool.take(key);
      if (cached !== null) {
        try {
          await cached.client.reset();
          client = cached.client;
          decision = cached.meta.decision;
          reused = true;
        } catch {
          cached.client.close();
        }
      }
      if (client === null) {
        const n = await negotiate(ctx, t, a, true, hp);
        if (n.kind === 'error') {
          errors.push(`${t.mxHost} [${a.address}]:${a.port}: ${n.error.message}`);
          log(
            ctx,
            attemptEvent(ctx, t, a, {
              reused: false,
              tls: null,
              outcome: 'error',
              rule: `connect: ${n.error.code}`,
              reason: n.error.message,
            }),
            true,
          );
          continue;
        }
        if (n.kind === 'policy-fail') {
          policyFailures.push(n.decision.reason);
          log(
            ctx,
            attemptEvent(ctx, t, a, {
              reused: false,
              tls: tlsOf(n.session),
              outcome: 'policy-fail',
              rule: n.decision.rule,
              reason: n.decision.reason,
            }),
            true,
          );
          lastPolicy = n.decision;
          continue;
        }
        client = n.client;
        decision = n.decision;
      }
      const d = decision as PolicyDecision;
      log(
        ctx,
        attemptEvent(ctx, t, a, {
          reused,
          tls: tlsOf(client.tls),
          outcome: 'policy-ok',
          rule: d.rule,
          reason: d.reason,
        }),
      );
      const tx = {
        mailFrom: env.mailFrom,
        recipients: remaining.map((x) => x.rcpt),
        body: env.body,
        smtputf8: env.smtputf8,
        requireTls: env.requireTls,
        dsnRet: env.dsnRet,
        dsnEnvid: env.dsnEnvid,
      };
      let results: RecipientResult[];
      try {
        results = (
          await client.send(tx, body, { nextHopAuthenticated: authenticates(hp, ctx, t) && client.tls !== null })
        ).recipients;
      } catch (e) {
        const err = asClientError(e);
        if (!err.temporary) {
          // Nothing was sent: this server cannot take the message as it is (5.6.7, 5.7.30, 5.3.4).
          unsuitable = err;
          pool.put(key, client, { decision: d });
        } else {
          client.close();
          errors.push(`${t.mxHost} [${a.address}]:${a.port}: ${err.message}`);
        }
        continue;
      }
      pool.put(key, client, { decision: d });
      const where = `${t.mxHost} [${a.address}]:${a.port}`;
      for (const r of results) {
        const state: RecipientStatus['state'] = r.ok ? 'delivered' : r.temporary ? 'deferred' : 'bounced';
        out.set(r.address, {
          state,
          reply: r.reply.text,
          reason: r.ok
            ? `delivered to ${where} ${describeTls(client.tls)}; ${d.rule}`
            : `the receiving server ${where} ${r.stage === 'data' ? 'rejected the message' : r.stage === 'mail' ? 'rejected the sender' : 'rejected the recipient'}: ${r.reply.text}`,
          mx: t.mxHost,
        });
      }
      // A transaction took place: its answers are final for this attempt (Postfix does not retry
      // a recipient at another MX once a server has answered for it).
      remaining = [];
      break;
    }
    if (remaining.length === 0) break;
  }
  if (remaining.length === 0) return out;

  if (policyFailures.length > 0) {
    // RFC 8461 §5.1: before deferring (and eventually bouncing) for an MTA-STS failure, look for
    // a newer policy: the domain may have moved its MX and published a new id.
    if (stsInvolved && !ctx.stsRechecked && ctx.deps.sts !== undefined) {
      const before = ctx.sts?.id ?? null;
      ctx.stsRechecked = true;
      const fresh = await loadSts(ctx, true);
      // Only a newer policy counts: a vanished one must not drop enforcement for the retry.
      if (fresh !== null && fresh.id !== before) {
        ctx.sts = fresh;
        ctx.deps.log?.info(
          { event: 'mta-sts.recheck', domain: ctx.domain, old: before, new: fresh?.id ?? null },
          `MTA-STS policy for ${ctx.domain} changed (${before ?? 'none'} → ${fresh?.id ?? 'none'}); trying again`,
        );
        return deliverDomain(ctx, remaining, msg, body, pool);
      }
    }
    const reasons = [...new Set(policyFailures)];
    const d: PolicyDecision | null = lastPolicy;
    return all({
      state: 'deferred',
      reply: `451 ${d?.enhanced ?? '4.7.5'} TLS policy not met: ${d?.rule ?? reasons[0] ?? ''}`,
      reason: reasons.join('; also: '),
      mx: null,
    });
  }
  if (requireTlsRefusals.length > 0 && errors.length === 0) {
    return all({
      state: 'bounced',
      reply: '550 5.7.30 REQUIRETLS support required',
      reason: `the message requires TLS (REQUIRETLS) to an authenticated server, but ${[...new Set(requireTlsRefusals)].join('; ')}`,
      mx: null,
    });
  }
  const u = unsuitable;
  if (u !== null && errors.length === 0) {
    return all({
      state: 'bounced',
      reply: `${u.smtpCode ?? 554} ${u.enhanced ?? '5.0.0'} ${u.message}`,
      reason: u.message,
      mx: null,
    });
  }
  const why =
    errors.length > 0
      ? errors.join('; ')
      : attempted === 0
        ? 'no address found for any MX host'
        : 'no MX host could be reached';
  return all({
    state: 'deferred',
    reply: `451 4.4.1 ${why}`,
    reason: `no mail server for ${ctx.domain} could be reached: ${why}`,
    mx: null,
  });
}

/**
 * Deliver one queued message to the recipients still due (queued or deferred); returns their new
 * status. Never throws for delivery problems: they become per-recipient states. `pool` (default
 * `deps.pool`): a connection cache shared across calls; without one, a pool for this call only.
 */
export async function deliverMessage(
  msg: QueuedMessage,
  body: Buffer,
  deps: DeliveryDeps,
  sharedPool: ConnectionPool<AdmittedSession> | undefined = deps.pool,
): Promise<RecipientStatus[]> {
  const pool = sharedPool ?? new ConnectionPool<AdmittedSession>();
  const byDomain = new Map<string, Pending[]>();
  const now = (): string => deps.now().toISOString();
  const out: RecipientStatus[] = [];
  for (const status of msg.recipients) {
    if (status.state !== 'queued' && status.state !== 'deferred') continue;
    const rcpt = msg.envelope.recipients.find((r) => r.address === status.address) ?? {
      address: status.address,
      dsn: { notify: null, orcpt: null },
    };
    const domain = domainOf(status.address);
    if (domain === null) {
      out.push({
        ...status,
        state: 'bounced',
        attempts: status.attempts + 1,
        lastReply: '553 5.1.3 bad recipient address syntax',
        reason: `the address ${status.address} has no domain`,
        nextAttemptAt: null,
        updatedAt: now(),
      });
      continue;
    }
    const list = byDomain.get(domain) ?? [];
    list.push({ status, rcpt });
    byDomain.set(domain, list);
  }
  try {
    await Promise.all(
      [...byDomain].map(async ([domain, pending]) => {
        // RFC 8460 §3 / RFC 8689 §5: a TLS-RPT report says TLS failed, so it must be able to get
        // through anyway (`TLS-Required: No`): opportunistic TLS, no DANE/MTA-STS, not counted.
        const report = msg.envelope.arrival.listener === TLSRPT_LISTENER;
        const table = deps.policy.lookup(domain);
        const ctx: Ctx = {
          deps: report ? { ...deps, tlsrpt: undefined, sts: undefined } : deps,
          domain,
          policy:
            report && table.level !== 'none'
              ? { level: 'may', profile: null, matched: 'TLS-Required: No (TLS-RPT report, RFC 8460 §3)' }
              : table,
          msgId: msg.id,
          sts: null,
          stsRechecked: false,
          mxSecure: false,
        };
        let finals: Map<string, Final>;
        try {
          finals = await pool.withSlot(domain, () => deliverDomain(ctx, pending, msg, body, pool));
        } catch (e) {
          // One domain's unexpected failure must not discard the others' results (their
          // recipients would be sent again): it defers this domain only.
          const why = (e as Error).message ?? String(e);
          deps.log?.error({ event: 'delivery.error', msgId: msg.id, domain, err: why }, 'delivery failed unexpectedly');
          finals = new Map(
            pending.map((p) => [
              p.rcpt.address,
              { state: 'deferred', reply: `451 4.3.0 ${why}`, reason: `internal error: ${why}`, mx: null },
            ]),
          );
        }
        for (const p of pending) {
          const f = finals.get(p.rcpt.address) ?? {
            state: 'deferred' as const,
            reply: null,
            reason: 'no result from the delivery attempt',
            mx: null,
          };
          const st: RecipientStatus = {
            ...p.status,
            state: f.state,
            attempts: p.status.attempts + 1,
            lastReply: f.reply,
            reason: f.reason,
            nextAttemptAt: null,
            updatedAt: now(),
          };
          out.push(st);
          log(
            ctx,
            {
              event: 'delivery.recipient',
              msgId: msg.id,
              recipient: st.address,
              state: st.state,
              mx: f.mx,
              reply: f.reply,
              reason: f.reason,
            },
            st.state !== 'delivered',
          );
        }
      }),
    );
  } finally {
    if (sharedPool === undefined) await pool.close();
  }
  return out;
}

/** One MX address as `postern policy check` reports it. */
export interface PolicyCheckMx {
  host: string;
  address: string;
  port: number;
  outcome: 'ok' | 'fail';
  tls: { protocol: string; cipher: string } | null;
  rule: string;
  reason: string;
}

export interface PolicyCheckResult {
  domain: string;
  policy: { level: TlsLevel; profile: string | null; matched: string };
  mx: PolicyCheckMx[];
  verdict: { outcome: 'deliver' | 'defer' | 'bounce'; host: string | null; rule: string; reason: string };
}

/**
 * What would happen if mail for `domain` were sent now: for every target address, connect,
 * negotiate as the policy says, decide, and QUIT without MAIL.
 */
export async function policyCheck(domain: string, deps: DeliveryDeps): Promise<PolicyCheckResult> {
  const d = normalizeDomain(domain);
  const policy = deps.policy.lookup(d);
  const ctx: Ctx = { deps, domain: d, policy, msgId: null, sts: null, stsRechecked: false, mxSecure: false };
  const head = {
    domain: d,
    policy: { level: policy.level, profile: policy.profile?.id ?? null, matched: policy.matched },
  };
  const p = await plan(d, deps);
  if ('final' in p) {
    return {
      ...head,
      mx: [],
      verdict: {
        outcome: p.final.state === 'bounced' ? 'bounce' : 'defer',
        host: null,
        rule: p.final.reply,
        reason: p.final.reason,
      },
    };
  }
  const mx: PolicyCheckMx[] = [];
  const bogus = await prepareDomain(ctx, p.targets, false);
  if (bogus !== null) {
    return { ...head, mx: [], verdict: { outcome: 'defer', host: null, rule: bogus.reply, reason: bogus.reason } };
  }
  for (const t of p.targets) {
    const hp = await hostPolicy(ctx, t);
    if (hp.kind === 'skip') {
      const d = skipHost(ctx, t, hp);
      mx.push({
        host: t.mxHost,
        address: '',
        port: t.port,
        outcome: 'fail',
        tls: null,
        rule: d.rule,
        reason: d.reason,
      });
      continue;
    }
    let addrs: Array<{ address: string; port: number }>;
    try {
      addrs = await addressesOf(t, deps);
    } catch (e) {
      mx.push({
        host: t.mxHost,
        address: '',
        port: t.port,
        outcome: 'fail',
        tls: null,
        rule: 'dns',
        reason: (e as Error).message,
      });
      continue;
    }
    for (const a of addrs) {
      const n = await negotiate(ctx, t, a, false, hp);
      const base = { host: t.mxHost, address: a.address, port: a.port };
      if (n.kind === 'error') {
        mx.push({ ...base, outcome: 'fail', tls: null, rule: `connect: ${n.error.code}`, reason: n.error.message });
      } else if (n.kind === 'policy-fail') {
        mx.push({ ...base, outcome: 'fail', tls: tlsOf(n.session), rule: n.decision.rule, reason: n.decision.reason });
      } else {
        mx.push({ ...base, outcome: 'ok', tls: tlsOf(n.client.tls), rule: n.decision.rule, reason: n.decision.reason });
        await n.client.quit();
      }
      log(
        ctx,
        attemptEvent(ctx, t, a, {
          reused: false,
          tls: mx[mx.length - 1]?.tls ?? null,
          outcome: n.kind === 'admitted' ? 'policy-ok' : n.kind === 'policy-fail' ? 'policy-fail' : 'error',
          rule: mx[mx.length - 1]?.rule ?? '',
          reason: mx[mx.length - 1]?.reason ?? '',
        }),
        n.kind !== 'admitted',
      );
    }
  }
  const first = mx.find((m) => m.outcome === 'ok');
  const verdict: PolicyCheckResult['verdict'] =
    first !== undefined
      ? { outcome: 'deliver', host: first.host, rule: first.rule, reason: first.reason }
      : {
          outcome: 'defer',
          host: null,
          rule: mx[0]?.rule ?? 'no MX host',
          reason: mx.length === 0 ? 'no MX host address found' : [...new Set(mx.map((m) => m.reason))].join('; also: '),
        };
  return { ...head, mx, verdict };
}
