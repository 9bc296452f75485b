/**
 * Where mail for one domain goes, and what each next hop must satisfy: route > relayhost >
 * address literal > MX (null MX per RFC 7505, implicit MX per RFC 5321 §5.1), then per host the
 * policy chain of src/policy/resolve.ts (table → MTA-STS MX filter → DANE → MTA-STS).
 *
 * One MX answer per domain: when the DNSSEC resolver is consulted (DANE levels, or REQUIRETLS),
 * the targets are taken from its answer — the answer whose status is checked is the answer that
 * is used. A second, unvalidated lookup (node:dns) would let a forged MX set travel under the
 * validated set's `secure` status, which relaxes the MTA-STS MX filter and authenticates a next
 * hop for REQUIRETLS (test/security/forged-mx-mixup.test.ts).
 */
import { isIP } from 'node:net';
import type { DnssecAnswer } from '../dns/dnssec.ts';
import type { MxRecord } from '../dns/resolver.ts';
import { DnsError } from '../dns/resolver.ts';
import { lookupDane } from '../policy/dane/lookup.ts';
import type { DaneState } from '../policy/dane/lookup.ts';
import { wantsDane } from '../policy/levels.ts';
import { resolveHostPolicy } from '../policy/resolve.ts';
import type { HostPolicy, StsInput } from '../policy/resolve.ts';
import { normalizeDomain } from '../policy/table.ts';
import { SmtpClientError } from '../smtp/client/errors.ts';
import { recordStsError } from './tlsrpt.ts';
import type { ConnectTo, DeliveryDeps, DomainCtx, StsView, Target } from './types.ts';
import { viaMx } from './types.ts';

/** Why a domain has no target to try (outcome.ts turns each into recipient states and words). */
export type PlanFailure =
  /** RFC 7505 §3: a single "MX 0 ." — the domain accepts no mail. */
  | { kind: 'null-mx' }
  /** Neither MX nor address records (RFC 5321 §5.1). */
  | { kind: 'no-mail-server' }
  /** The domain does not exist (an authoritative answer). */
  | { kind: 'nxdomain'; detail: string }
  /** The MX lookup failed in a way a later attempt may fix. */
  | { kind: 'dns-temporary'; detail: string }
  /** RFC 7672 §2.2.1: the MX RRset (or the implicit MX's addresses) did not validate: hold the mail. */
  | { kind: 'mx-dnssec'; status: 'bogus' | 'indeterminate'; detail: string | null };

export type DomainPlan =
  { kind: 'targets'; targets: Target[]; mxSecure: boolean } | { kind: 'failed'; failure: PlanFailure };

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

/** The domain of an address, normalized; null when there is none. */
export function domainOf(address: string): string | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  return normalizeDomain(address.slice(at + 1));
}

/** The root name: a null MX's exchange (c-ares gives it as '', the wire codec as '.'). */
function isRoot(name: string): boolean {
  return name === '' || name === '.';
}

/**
 * MX targets from the plain DNS client: used when nothing needs the MX RRset's DNSSEC status.
 * `mxSecure` is then false.
 */
async function mxFromDns(domain: string, deps: DeliveryDeps, port: number): Promise<DomainPlan> {
  try {
    const mx = await deps.dns.mxLookup(domain);
    if (mx.nullMx) return { kind: 'failed', failure: { kind: 'null-mx' } };
    if (mx.records.length === 0) return { kind: 'failed', failure: { kind: 'no-mail-server' } };
    const via = mx.implicit ? 'implicit-mx' : 'mx';
    return {
      kind: 'targets',
      targets: mx.records.map((r) => ({ mxHost: r.exchange, port, nextHop: domain, via })),
      mxSecure: false,
    };
  } catch (e) {
    if (e instanceof DnsError && !e.temporary)
      return { kind: 'failed', failure: { kind: 'nxdomain', detail: e.message } };
    return { kind: 'failed', failure: { kind: 'dns-temporary', detail: (e as Error).message } };
  }
}

function failedAnswer<T>(qname: string, qtype: DnssecAnswer<T>['qtype'], e: unknown): DnssecAnswer<T> {
  return {
    qname,
    qtype,
    status: 'indeterminate',
    rcode: null,
    records: [],
    canonicalName: qname,
    detail: (e as Error).message ?? String(e),
  };
}

/**
 * MX targets from the validating resolver's answer, with that answer's status: one query for the
 * check and the use. Null MX (RFC 7505) and implicit MX (RFC 5321 §5.1) are read from the same
 * answer; the implicit MX's existence is checked through the same resolver.
 */
async function mxFromDnssec(domain: string, deps: DeliveryDeps, port: number): Promise<DomainPlan> {
  const dnssec = deps.dnssec;
  if (dnssec === undefined) return mxFromDns(domain, deps, port);
  let m: DnssecAnswer<MxRecord>;
  try {
    m = await dnssec.mx(domain);
  } catch (e) {
    // A name the resolver refuses (UsageError): nothing is known about it.
    m = failedAnswer<MxRecord>(domain, 'MX', e);
  }
  if (m.status === 'bogus' || m.status === 'indeterminate')
    return { kind: 'failed', failure: { kind: 'mx-dnssec', status: m.status, detail: m.detail } };
  if (m.rcode === 'NXDOMAIN')
    return { kind: 'failed', failure: { kind: 'nxdomain', detail: `MX ${domain}: no such domain (NXDOMAIN)` } };
  const first = m.records[0];
  if (m.records.length === 1 && first !== undefined && isRoot(first.exchange))
    return { kind: 'failed', failure: { kind: 'null-mx' } };
  // RFC 7505 §3: a "." alongside other MX records is meaningless; it is dropped, the rest used.
  const real = m.records.filter((r) => !isRoot(r.exchange));
  const secure = m.status === 'secure';
  if (real.length > 0) {
    return {
      kind: 'targets',
      // Already in preference order (dnssec.ts sorts by preference, then name).
      targets: real.map((r) => ({ mxHost: r.exchange, port, nextHop: domain, via: 'mx' })),
      mxSecure: secure,
    };
  }
  // RFC 5321 §5.1: no MX records → the domain itself, if it has an address record. The NODATA
  // answer's status is the MX status; a bogus address answer holds the mail like a bogus MX.
  let a: DnssecAnswer<string>;
  try {
    a = await dnssec.addresses(domain);
  } catch (e) {
    a = failedAnswer<string>(domain, 'A', e);
  }
  if (a.status === 'bogus' || a.status === 'indeterminate')
    return { kind: 'failed', failure: { kind: 'mx-dnssec', status: a.status, detail: a.detail } };
  if (a.records.length === 0) return { kind: 'failed', failure: { kind: 'no-mail-server' } };
  return {
    kind: 'targets',
    targets: [{ mxHost: domain, port, nextHop: domain, via: 'implicit-mx' }],
    mxSecure: secure,
  };
}

/**
 * Plan one domain: its targets in the order to try and whether they are DNSSEC-validated. Also
 * loads the domain's MTA-STS policy into `ctx.sts` (RFC 8461 §5.1) when MX hosts are used and the
 * level is not `none`.
 */
export async function planDomain(ctx: DomainCtx, requireTls: boolean): Promise<DomainPlan> {
  const { deps, domain } = ctx;
  const port = deps.port ?? 25;
  const route = Object.entries(deps.routes).find(([k]) => normalizeDomain(k) === domain)?.[1];
  if (route !== undefined || deps.relayhost !== undefined) {
    const hp = parseHostPort(route ?? deps.relayhost ?? '', port);
    const via = route !== undefined ? 'route' : 'relayhost';
    return { kind: 'targets', targets: [{ mxHost: hp.host, port: hp.port, nextHop: hp.host, via }], mxSecure: false };
  }
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(domain);
  if (literal?.[1] !== undefined && isIP(literal[1]) !== 0) {
    return {
      kind: 'targets',
      targets: [{ mxHost: literal[1], port, nextHop: literal[1], via: 'literal' }],
      mxSecure: false,
    };
  }
  const level = ctx.policy.level;
  // The MX RRset's status matters only to DANE (RFC 7672 §2.2.1) and REQUIRETLS (RFC 8689 §4.1);
  // only then is the validating resolver asked, and then it is the only source of the targets.
  const validated = deps.dnssec !== undefined && level !== 'none' && (wantsDane(level) || requireTls);
  const p = validated ? await mxFromDnssec(domain, deps, port) : await mxFromDns(domain, deps, port);
  if (p.kind === 'targets' && level !== 'none' && p.targets.some(viaMx)) ctx.sts = await loadSts(ctx, false);
  return p;
}

/** The recipient domain's MTA-STS policy (RFC 8461 §5.1), reporting discovery failures. */
export async function loadSts(ctx: DomainCtx, recheck: boolean): Promise<StsInput | null> {
  const src = ctx.deps.sts;
  if (src === undefined) return null;
  let v: StsView;
  try {
    v = recheck ? await src.recheck(ctx.domain) : await src.lookup(ctx.domain);
  } catch (e) {
    ctx.events.emit({ event: 'delivery.sts-error', domain: ctx.domain, type: null, reason: (e as Error).message });
    return null;
  }
  if (v.state === 'error' && v.error !== null) {
    ctx.events.emit({ event: 'delivery.sts-error', domain: ctx.domain, type: v.error.type, reason: v.error.reason });
    recordStsError(ctx, v.error);
  }
  if (v.policy === null || v.id === null || v.policy.mode === 'none') return null;
  return { policy: v.policy, text: v.policyText ?? '', id: v.id };
}

/** The policy chain for one target: table → DANE → MTA-STS (src/policy/resolve.ts). */
export async function hostPolicy(ctx: DomainCtx, t: Target): Promise<HostPolicy> {
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

/** The addresses to try for one target. Throws DnsError when there are none. */
export async function addressesOf(t: Target, deps: DeliveryDeps): Promise<ConnectTo[]> {
  const o = deps.connectOverride?.(t.mxHost) ?? null;
  if (o !== null) return [{ host: t.mxHost, ...o }];
  if (isIP(t.mxHost) !== 0) return [{ host: t.mxHost, address: t.mxHost, port: t.port }];
  const list = await deps.dns.addresses(t.mxHost);
  return list.map((address) => ({ host: t.mxHost, address, port: t.port }));
}
