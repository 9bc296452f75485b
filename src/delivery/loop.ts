/**
 * The MX loop, shared by delivery and `postern policy check`: for each target in plan order, the
 * host's policy (plan.ts), then for each of its addresses one attempt (attempt.ts) — or a cached
 * connection admitted under the same policy — and, once admitted, the caller's `use` step: send
 * the transaction (delivery) or QUIT without MAIL (probe). Every attempt is emitted as a typed
 * `delivery.attempt` event with the rule that was met or failed, and recorded for TLS-RPT.
 */
import { createHash } from 'node:crypto';
import { formatTlsa } from '../policy/dane/verify.ts';
import type { PolicyDecision } from '../policy/decide.ts';
import { requiresAuth } from '../policy/levels.ts';
import type { SmtpClientError } from '../smtp/client/errors.ts';
import type { RecipientResult } from '../smtp/client/session.ts';
import type { NegotiatedSession } from '../tls/session.ts';
import type { TlsCheck } from '../core/events.ts';
import { attempt } from './attempt.ts';
import { checkOf, requireTlsRefusal, skipCheckOf, skipDecision, where } from './outcome.ts';
import type { Exhausted, TransactionContext } from './outcome.ts';
import { addressesOf, hostPolicy } from './plan.ts';
import { recordAttempt, recordSkip } from './tlsrpt.ts';
import type { ConnectTo, Connector, DeliveryConnection, DeliveryPool, DomainCtx, HostUse, Target } from './types.ts';
import { viaMx } from './types.ts';

/** One address (or skipped host) as tried: what `postern policy check` prints. */
export interface HostRecord {
  host: string;
  /** '' when the host was not connected to (skipped by policy, no address). */
  address: string;
  port: number;
  outcome: 'ok' | 'fail';
  tls: { protocol: string; cipher: string } | null;
  rule: string;
  reason: string;
}

/** What the caller did with an admitted connection. */
export type UseResult =
  /** A transaction took place: its answers are final for this delivery. */
  | { kind: 'sent'; results: RecipientResult[] }
  /** Nothing was sent: this server cannot take the message as it is (5.6.7, 5.7.30, 5.3.4). */
  | { kind: 'unsuitable'; error: SmtpClientError }
  /** The transaction failed on the way (network, timeout): try the next address. */
  | { kind: 'failed'; error: SmtpClientError }
  /** A probe: decided and QUIT, try the next address too. */
  | { kind: 'probed' };

export interface Admitted {
  target: Target;
  to: ConnectTo;
  host: HostUse;
  decision: PolicyDecision;
  /** The server is authenticated as the right next hop (RFC 8689 §4.1 REQUIRETLS). */
  authenticated: boolean;
}

export interface LoopOptions {
  connector: Connector;
  /** The message asks for REQUIRETLS (RFC 8689): only authenticated next hops. */
  requireTls: boolean;
  /** Connection cache; null: always connect (probes). */
  pool: DeliveryPool | null;
  /** Follow a `may` cleartext-reconnect decision (delivery) or only report it (probe). */
  reconnect: boolean;
  probe: boolean;
  use(conn: DeliveryConnection, a: Admitted): Promise<UseResult>;
}

export interface LoopResult {
  /** The transaction that took place, or null when none did. */
  sent: { results: RecipientResult[]; context: TransactionContext } | null;
  exhausted: Exhausted;
  records: HostRecord[];
  /** An MTA-STS policy applied to some host (a re-check may help, RFC 8461 §5.1). */
  stsInvolved: boolean;
}

/**
 * Does this host's policy authenticate the server (RFC 8689 §4.1 REQUIRETLS)? The certificate
 * must be checked (PKIX or DANE) and the host itself must be the right one: a configured next hop,
 * an MX from a DNSSEC-validated RRset (the very answer the targets came from), or one the
 * domain's MTA-STS policy lists.
 */
export function authenticates(hp: HostUse, ctx: DomainCtx, t: Target): boolean {
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

/** A cached session may only be reused under everything its admission depended on. */
function poolKey(ctx: DomainCtx, t: Target, a: ConnectTo, hp: HostUse): string {
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

function tlsOf(s: NegotiatedSession | null): { protocol: string; cipher: string } | null {
  return s === null ? null : { protocol: s.protocol, cipher: s.cipher.standardName };
}

/** Try the targets in order until one takes the transaction (or, probing, try them all). */
export async function runHosts(ctx: DomainCtx, targets: readonly Target[], o: LoopOptions): Promise<LoopResult> {
  const x: Exhausted = {
    policyFailures: [],
    lastPolicy: null,
    requireTlsRefusals: [],
    unsuitable: null,
    errors: [],
    attempted: 0,
  };
  const records: HostRecord[] = [];
  let stsInvolved = false;
  const emit = (
    t: Target,
    to: { address: string; port: number },
    e: {
      reused?: boolean;
      hostLevel: string | null;
      check: TlsCheck;
      tls: { protocol: string; cipher: string } | null;
      outcome: 'policy-ok' | 'policy-fail' | 'error';
      rule: string;
      reason: string;
    },
  ): void => {
    ctx.events.emit({
      event: 'delivery.attempt',
      msgId: ctx.msgId,
      domain: ctx.domain,
      mx: t.mxHost,
      address: to.address,
      port: to.port,
      reused: e.reused ?? false,
      level: ctx.policy.level,
      profile: ctx.policy.profile?.id ?? null,
      matched: ctx.policy.matched,
      hostLevel: e.hostLevel,
      check: e.check,
      tls: e.tls,
      outcome: e.outcome,
      rule: e.rule,
      reason: e.reason,
      ...(o.probe ? { probe: true } : {}),
    });
    records.push({
      host: t.mxHost,
      address: to.address,
      port: to.port,
      outcome: e.outcome === 'policy-ok' ? 'ok' : 'fail',
      tls: e.tls,
      rule: e.rule,
      reason: e.reason,
    });
  };

  for (const t of targets) {
    const hp = await hostPolicy(ctx, t);
    if (hp.report.type === 'sts') stsInvolved = true;
    if (hp.kind === 'skip') {
      const d = skipDecision(ctx.policy, hp);
      recordSkip(ctx, t, hp);
      emit(
        t,
        { address: '', port: t.port },
        { hostLevel: null, check: skipCheckOf(hp), tls: null, outcome: 'policy-fail', rule: d.rule, reason: d.reason },
      );
      x.policyFailures.push(hp.reason);
      x.lastPolicy = d;
      continue;
    }
    const authenticated = authenticates(hp, ctx, t);
    // RFC 8689 §4.1: REQUIRETLS needs a next hop authenticated by PKIX, DANE or MTA-STS.
    if (o.requireTls && !authenticated) {
      x.requireTlsRefusals.push(requireTlsRefusal(hp, t));
      continue;
    }
    let addrs: ConnectTo[];
    try {
      addrs = await addressesOf(t, ctx.deps);
    } catch (e) {
      const msg = (e as Error).message;
      x.errors.push(`${t.mxHost}: ${msg}`);
      emit(
        t,
        { address: '', port: t.port },
        { hostLevel: hp.level, check: 'dns', tls: null, outcome: 'error', rule: 'dns', reason: msg },
      );
      continue;
    }
    for (const to of addrs) {
      x.attempted++;
      const key = poolKey(ctx, t, to, hp);
      let conn: DeliveryConnection | null = null;
      let decision: PolicyDecision | null = null;
      let reused = false;
      const cached = o.pool?.take(key) ?? null;
      if (cached !== null) {
        try {
          await cached.client.reset();
          conn = cached.client;
          decision = cached.meta.decision;
          reused = true;
        } catch {
          cached.client.close();
        }
      }
      if (conn === null || decision === null) {
        const r = await attempt(o.connector, {
          target: t,
          to,
          host: hp,
          policy: ctx.policy,
          domain: ctx.domain,
          now: ctx.deps.now(),
          ...(ctx.deps.ca !== undefined ? { ca: ctx.deps.ca } : {}),
          reconnect: o.reconnect,
        });
        if (r.kind === 'error') {
          x.errors.push(`${where(to)}: ${r.error.message}`);
          emit(t, to, {
            hostLevel: hp.level,
            check: 'connect',
            tls: null,
            outcome: 'error',
            rule: `connect: ${r.error.code}`,
            reason: r.error.message,
          });
          continue;
        }
        recordAttempt(ctx, t, to, hp, r.decision, r.facts);
        if (r.kind === 'policy-fail') {
          x.policyFailures.push(r.decision.reason);
          x.lastPolicy = r.decision;
          emit(t, to, {
            hostLevel: hp.level,
            check: checkOf(hp, r.decision),
            tls: tlsOf(r.facts.session),
            outcome: 'policy-fail',
            rule: r.decision.rule,
            reason: r.decision.reason,
          });
          continue;
        }
        conn = r.connection;
        decision = r.decision;
      }
      emit(t, to, {
        reused,
        hostLevel: hp.level,
        check: checkOf(hp, decision),
        tls: tlsOf(conn.tls),
        outcome: 'policy-ok',
        rule: decision.rule,
        reason: decision.reason,
      });
      const context: TransactionContext = { to, tls: conn.tls, decision, dsn: conn.dsn };
      const u = await o.use(conn, { target: t, to, host: hp, decision, authenticated });
      if (u.kind === 'probed') continue;
      if (u.kind === 'failed') {
        conn.close();
        x.errors.push(`${where(to)}: ${u.error.message}`);
        continue;
      }
      if (o.pool !== null) o.pool.put(key, conn, { decision });
      else await conn.quit();
      if (u.kind === 'unsuitable') {
        x.unsuitable = u.error;
        continue;
      }
      // A transaction took place: its answers are final for this attempt (Postfix does not retry
      // a recipient at another MX once a server has answered for it).
      return { sent: { results: u.results, context }, exhausted: x, records, stsInvolved };
    }
  }
  return { sent: null, exhausted: x, records, stsInvolved };
}
