/**
 * Outbound delivery of one queued message, as plan → attempt → outcome: recipients grouped by
 * domain; per domain the plan (plan.ts: route > relayhost > MX, null/implicit MX, the MX RRset's
 * DNSSEC status from the same answer), then the MX loop (loop.ts: per host the policy chain, per
 * address connect → EHLO → STARTTLS as the level says → decide, attempt.ts) and the transaction;
 * outcome.ts turns it all into recipient states. Never cleartext when the policy requires TLS;
 * when the policy fails on every MX the recipients are deferred with the reason (the queue
 * bounces when the message's lifetime ends).
 *
 * `policyCheck` (`postern policy check`) runs the same plan and loop with a probing step: it
 * connects, decides and QUITs without MAIL.
 */
import { createEventSink } from '../core/events.ts';
import type { TlsLevel } from '../policy/levels.ts';
import type { EnvelopeRecipient, QueuedMessage, RecipientStatus } from '../queue/types.ts';
import { normalizeDomain } from '../policy/table.ts';
import { ConnectionPool } from '../smtp/client/pool.ts';
import { asClientError, smtpConnector } from './attempt.ts';
import { runHosts } from './loop.ts';
import type { HostRecord, LoopOptions } from './loop.ts';
import {
  exhaustedOutcome,
  internalErrorOutcome,
  mxDnssecWords,
  planFailureOutcome,
  toRecipientStatus,
  transactionOutcomes,
} from './outcome.ts';
import type { RecipientOutcome } from './outcome.ts';
import { domainOf, loadSts, planDomain } from './plan.ts';
import type { DomainPlan } from './plan.ts';
import type { AdmittedSession, Connector, DeliveryConnection, DeliveryDeps, DeliveryPool, DomainCtx } from './types.ts';

export { parseHostPort } from './plan.ts';
export { resultTypeOf } from './tlsrpt.ts';
export type {
  AdmittedSession,
  Connector,
  ConnectTo,
  DeliveryConnection,
  DeliveryDeps,
  DeliveryPool,
  StsSource,
  StsView,
  TlsRptSink,
} from './types.ts';
export type { RecipientOutcome } from './outcome.ts';

/** `arrival.listener` of the gateway's own TLS-RPT report mail (RFC 8460 §3). */
// Not a valid listener name (config/schema.ts allows [a-z0-9_-]), so no SMTP client can arrive with it.
export const TLSRPT_LISTENER = 'postern:tlsrpt';

interface Pending {
  status: RecipientStatus;
  rcpt: EnvelopeRecipient;
}

function connectorOf(deps: DeliveryDeps): Connector {
  return (
    deps.connector ??
    smtpConnector({ heloName: deps.heloName, ...(deps.timeouts !== undefined ? { timeouts: deps.timeouts } : {}) })
  );
}

function newCtx(deps: DeliveryDeps, domain: string, msgId: string | null): DomainCtx {
  return {
    deps,
    domain,
    policy: deps.policy.lookup(domain),
    msgId,
    events: deps.events ?? createEventSink(deps.log !== undefined ? { log: deps.log } : {}),
    sts: null,
    stsRechecked: false,
    mxSecure: false,
  };
}

/** Plan the domain and emit what was planned; `ctx.mxSecure` and `ctx.sts` are set from it. */
async function planAndLog(ctx: DomainCtx, requireTls: boolean): Promise<DomainPlan> {
  const p = await planDomain(ctx, requireTls);
  if (p.kind === 'failed') {
    if (p.failure.kind === 'mx-dnssec') {
      ctx.events.emit({
        event: 'delivery.mx-dnssec-failed',
        domain: ctx.domain,
        status: p.failure.status,
        detail: p.failure.detail,
        reason: mxDnssecWords(ctx.domain, p.failure),
      });
    }
    return p;
  }
  ctx.mxSecure = p.mxSecure;
  ctx.events.emit({
    event: 'delivery.plan',
    msgId: ctx.msgId,
    domain: ctx.domain,
    via: p.targets[0]?.via ?? 'mx',
    targets: p.targets.map((t) => `${t.mxHost}:${t.port}`),
    mxSecure: p.mxSecure,
    level: ctx.policy.level,
    profile: ctx.policy.profile?.id ?? null,
    matched: ctx.policy.matched,
  });
  return p;
}

/** Deliver the recipients of one domain; an outcome for each entry of `pending` (by identity). */
async function deliverDomain(
  ctx: DomainCtx,
  pending: Pending[],
  msg: QueuedMessage,
  body: Buffer,
  pool: DeliveryPool,
): Promise<Map<Pending, RecipientOutcome>> {
  const out = new Map<Pending, RecipientOutcome>();
  const all = (o: RecipientOutcome): Map<Pending, RecipientOutcome> => {
    for (const p of pending) out.set(p, o);
    return out;
  };
  const env = msg.envelope;
  const p = await planAndLog(ctx, env.requireTls);
  if (p.kind === 'failed') return all(planFailureOutcome(ctx.domain, p.failure));
  const opts: LoopOptions = {
    connector: connectorOf(ctx.deps),
    requireTls: env.requireTls,
    pool,
    reconnect: true,
    probe: false,
    async use(conn, a) {
      const tx = {
        mailFrom: env.mailFrom,
        recipients: pending.map((x) => x.rcpt),
        body: env.body,
        smtputf8: env.smtputf8,
        requireTls: env.requireTls,
        dsnRet: env.dsnRet,
        dsnEnvid: env.dsnEnvid,
      };
      try {
        const r = await conn.send(tx, body, { nextHopAuthenticated: a.authenticated && conn.tls !== null });
        return { kind: 'sent', results: r.recipients };
      } catch (e) {
        const err = asClientError(e);
        return err.temporary ? { kind: 'failed', error: err } : { kind: 'unsuitable', error: err };
      }
    },
  };
  let r = await runHosts(ctx, p.targets, opts);
  // RFC 8461 §5.1: before deferring (and eventually bouncing) for an MTA-STS failure, look for a
  // newer policy: the domain may have moved its MX and published a new id.
  if (r.sent === null && r.exhausted.policyFailures.length > 0 && r.stsInvolved && ctx.deps.sts !== undefined) {
    const before = ctx.sts?.id ?? null;
    ctx.stsRechecked = true;
    const fresh = await loadSts(ctx, true);
    // Only a newer policy counts: a vanished one must not drop enforcement for the retry.
    if (fresh !== null && fresh.id !== before) {
      ctx.sts = fresh;
      ctx.events.emit({ event: 'delivery.sts-recheck', domain: ctx.domain, old: before, new: fresh.id });
      r = await runHosts(ctx, p.targets, opts);
    }
  }
  if (r.sent === null) return all(exhaustedOutcome(ctx.domain, r.exhausted));
  for (const [q, o] of transactionOutcomes(pending, r.sent.results, r.sent.context)) out.set(q, o);
  return out;
}

/**
 * Deliver one queued message to the recipients still due (queued or deferred); returns their new
 * status, in the order of `msg.recipients`. Never throws for delivery problems: they become
 * per-recipient states. `pool` (default `deps.pool`): a connection cache shared across calls;
 * without one, a pool for this call only.
 */
export async function deliverMessage(
  msg: QueuedMessage,
  body: Buffer,
  deps: DeliveryDeps,
  sharedPool: ConnectionPool<AdmittedSession> | DeliveryPool | undefined = deps.pool,
): Promise<RecipientStatus[]> {
  // SmtpClient is a DeliveryConnection: a cache of SmtpClients is a cache of connections.
  const pool: DeliveryPool = sharedPool ?? new ConnectionPool<AdmittedSession, DeliveryConnection>();
  const byDomain = new Map<string, Pending[]>();
  const now = (): string => deps.now().toISOString();
  const results = new Map<Pending, RecipientOutcome>();
  const order: Pending[] = [];
  msg.recipients.forEach((status, i) => {
    if (status.state !== 'queued' && status.state !== 'deferred') return;
    // The envelope recipient at the same position, when it is this one (duplicates stay apart).
    const same = msg.envelope.recipients[i];
    const rcpt = (same?.address === status.address ? same : undefined) ??
      msg.envelope.recipients.find((r) => r.address === status.address) ?? {
        address: status.address,
        dsn: { notify: null, orcpt: null },
      };
    const p: Pending = { status, rcpt };
    order.push(p);
    const domain = domainOf(status.address);
    if (domain === null) {
      results.set(p, {
        kind: 'bounced',
        reply: '553 5.1.3 bad recipient address syntax',
        reason: `the address ${status.address} has no domain`,
        mx: null,
      });
      return;
    }
    const list = byDomain.get(domain) ?? [];
    list.push(p);
    byDomain.set(domain, list);
  });
  const ctxs = new Map<Pending, DomainCtx>();
  try {
    await Promise.all(
      [...byDomain].map(async ([domain, pending]) => {
        // RFC 8460 §3 / RFC 8689 §5: a TLS-RPT report says TLS failed, so it must be able to get
        // through anyway (`TLS-Required: No`): opportunistic TLS, no DANE/MTA-STS, not counted.
        const report = msg.envelope.arrival.listener === TLSRPT_LISTENER;
        const ctx = newCtx(report ? { ...deps, tlsrpt: undefined, sts: undefined } : deps, domain, msg.id);
        if (report && ctx.policy.level !== 'none')
          ctx.policy = { level: 'may', profile: null, matched: 'TLS-Required: No (TLS-RPT report, RFC 8460 §3)' };
        for (const p of pending) ctxs.set(p, ctx);
        let outcomes: Map<Pending, RecipientOutcome>;
        try {
          outcomes = await pool.withSlot(domain, () => deliverDomain(ctx, pending, msg, body, pool));
        } catch (e) {
          // One domain's unexpected failure must not discard the others' results (their
          // recipients would be sent again): it defers this domain only.
          const why = (e as Error).message ?? String(e);
          ctx.events.emit({ event: 'delivery.error', msgId: msg.id, domain, err: why });
          outcomes = new Map(pending.map((p) => [p, internalErrorOutcome(why)]));
        }
        for (const p of pending)
          results.set(p, outcomes.get(p) ?? internalErrorOutcome('no result from the delivery attempt'));
      }),
    );
  } finally {
    if (sharedPool === undefined) await pool.close();
  }
  const out: RecipientStatus[] = [];
  for (const p of order) {
    const o = results.get(p) ?? internalErrorOutcome('no result from the delivery attempt');
    const st = toRecipientStatus(p.status, o, now());
    out.push(st);
    const events =
      ctxs.get(p)?.events ?? deps.events ?? createEventSink(deps.log !== undefined ? { log: deps.log } : {});
    events.emit({
      event: 'delivery.recipient',
      msgId: msg.id,
      recipient: st.address,
      state: st.state,
      mx: o.mx,
      reply: o.reply,
      reason: o.reason,
      dsnPassedOn: st.dsnPassedOn === true,
    });
  }
  return out;
}

/** One MX address as `postern policy check` reports it. */
export type PolicyCheckMx = HostRecord;

export interface PolicyCheckResult {
  domain: string;
  policy: { level: TlsLevel; profile: string | null; matched: string };
  /** The MX hosts came from a DNSSEC-validated answer (asked for DANE levels). */
  mxSecure: boolean;
  mx: PolicyCheckMx[];
  verdict: { outcome: 'deliver' | 'defer' | 'bounce'; host: string | null; rule: string; reason: string };
}

/**
 * What would happen if mail for `domain` were sent now: the delivery plan and loop with a probing
 * step — for every target address connect, negotiate as the policy says, decide, and QUIT
 * without MAIL.
 */
export async function policyCheck(domain: string, deps: DeliveryDeps): Promise<PolicyCheckResult> {
  const ctx = newCtx(deps, normalizeDomain(domain), null);
  const policy = ctx.policy;
  const head = {
    domain: ctx.domain,
    policy: { level: policy.level, profile: policy.profile?.id ?? null, matched: policy.matched },
  };
  const p = await planAndLog(ctx, false);
  if (p.kind === 'failed') {
    const o = planFailureOutcome(ctx.domain, p.failure);
    return {
      ...head,
      mxSecure: false,
      mx: [],
      verdict: {
        outcome: o.kind === 'bounced' ? 'bounce' : 'defer',
        host: null,
        rule: o.reply ?? '',
        reason: o.reason,
      },
    };
  }
  const r = await runHosts(ctx, p.targets, {
    connector: connectorOf(deps),
    requireTls: false,
    pool: null,
    reconnect: false,
    probe: true,
    async use(conn) {
      await conn.quit();
      return { kind: 'probed' };
    },
  });
  const mx = r.records;
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
  return { ...head, mxSecure: p.mxSecure, mx, verdict };
}
