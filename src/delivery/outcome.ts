/**
 * The only place that turns what happened — a plan failure, attempt results, the server's replies
 * — into recipient outcomes: the state, the reply text stored as `lastReply` (which the queue's
 * DSNs read) and the plain-words reason. Pure: no I/O, no clock but the one passed in.
 *
 * Temporary vs permanent of a server reply is src/smtp/protocol/reply-class.ts (RFC 5321 §4.2.1:
 * the reply code decides), the same rule the SMTP client and the queue use. Policy failures are
 * always temporary (the queue bounces when the message's lifetime ends).
 *
 * Outcomes are per recipient and carry why a deferral happened (`cause`), so a later stage can
 * choose another action for some of them: end-to-end encryption of the message instead of
 * deferring it for a TLS policy failure is the one planned (`e2e-encrypted`, reserved).
 */
import type { TlsCheck } from '../core/events.ts';
import { protocolLabel } from '../policy/decide.ts';
import type { PolicyDecision, PolicyFailure } from '../policy/decide.ts';
import { requiresAuth } from '../policy/levels.ts';
import type { PolicyLookup } from '../policy/table.ts';
import type { RecipientDsn, RecipientStatus } from '../queue/types.ts';
import type { SmtpClientError } from '../smtp/client/errors.ts';
import type { RecipientResult } from '../smtp/client/session.ts';
import { replyClass } from '../smtp/protocol/reply-class.ts';
import type { NegotiatedSession } from '../tls/session.ts';
import type { PlanFailure } from './plan.ts';
import type { ConnectTo, HostSkip, HostUse, Target } from './types.ts';

/** Why recipients were deferred: lets a later stage act differently per cause. */
export type DeferCause =
  /** Every usable MX failed the TLS policy (the case end-to-end encryption would take over). */
  | 'tls-policy'
  /** No MX could be reached (network, greeting, a failed transaction). */
  | 'network'
  /** A DNS lookup failed temporarily. */
  | 'dns'
  /** The MX RRset did not validate (RFC 7672 §2.2.1). */
  | 'dnssec'
  /** The server answered 4xx. */
  | 'reply'
  /** A bug or unexpected failure in postern. */
  | 'internal';

export type RecipientOutcome =
  | { kind: 'delivered'; reply: string; reason: string; mx: string; dsnPassedOn: boolean }
  | { kind: 'deferred'; reply: string | null; reason: string; mx: string | null; cause: DeferCause }
  | { kind: 'bounced'; reply: string; reason: string; mx: string | null }
  /**
   * Reserved, not produced yet: the message went out end-to-end encrypted (OpenPGP / S/MIME)
   * instead of being deferred for a TLS policy failure. Counts as delivered for the queue.
   */
  | { kind: 'e2e-encrypted'; reply: string; reason: string; mx: string };

/** A plan that has no target: null MX, no such domain, a DNS failure, a bogus MX RRset. */
export function planFailureOutcome(domain: string, f: PlanFailure): RecipientOutcome {
  switch (f.kind) {
    case 'null-mx':
      // RFC 7505 §4.2: 556 5.1.10.
      return {
        kind: 'bounced',
        reply: `556 5.1.10 ${domain} does not accept mail (null MX)`,
        reason: `the domain ${domain} does not accept mail: it publishes a null MX (RFC 7505)`,
        mx: null,
      };
    case 'no-mail-server':
      return {
        kind: 'bounced',
        reply: `550 5.1.2 ${domain} has no MX and no address record`,
        reason: `the domain ${domain} has no mail server (no MX and no address record)`,
        mx: null,
      };
    case 'nxdomain':
      return {
        kind: 'bounced',
        reply: `550 5.1.2 ${f.detail}`,
        reason: `the domain ${domain} does not exist in DNS (${f.detail})`,
        mx: null,
      };
    case 'dns-temporary':
      return {
        kind: 'deferred',
        reply: `451 4.4.3 ${f.detail}`,
        reason: `the MX lookup for ${domain} failed: ${f.detail}`,
        mx: null,
        cause: 'dns',
      };
    case 'mx-dnssec':
      return {
        kind: 'deferred',
        reply: `451 4.7.5 MX lookup ${f.status}`,
        reason: `${mxDnssecWords(domain, f)}; mail is held rather than sent to MX hosts that cannot be trusted`,
        mx: null,
        cause: 'dnssec',
      };
  }
}

/** Words for a bogus / indeterminate MX answer (also the log line). */
export function mxDnssecWords(domain: string, f: Extract<PlanFailure, { kind: 'mx-dnssec' }>): string {
  const what = f.status === 'bogus' ? 'bogus (signatures do not validate)' : 'inconclusive';
  return `the DNSSEC lookup of the MX records of ${domain} was ${what}${f.detail !== null ? ` (${f.detail})` : ''}`;
}

/** The table entry's name as rule texts show it ('default', 'example.org', '.example.org'). */
export function policySource(p: PolicyLookup): string {
  return p.matched === 'default' ? 'default' : p.matched.replace(/^domain /, '');
}

/** The decision recorded for a host the policy chain skipped (logged and reported like a failed attempt). */
export function skipDecision(policy: PolicyLookup, hp: HostSkip): PolicyDecision {
  return {
    ok: false,
    temporary: true,
    rule: `policy ${policySource(policy)}: ${hp.rule}`,
    reason: hp.reason,
    action: 'defer',
    enhanced: '4.7.5',
    failures: [],
    findings: [],
  };
}

/** Why REQUIRETLS cannot go to this host (RFC 8689 §4.1), in words. */
export function requireTlsRefusal(hp: HostUse, t: Target): string {
  const unvalidated =
    requiresAuth(hp.level) || hp.level === 'dane'
      ? ', and the MX record is neither DNSSEC-validated nor listed by an MTA-STS policy'
      : '';
  return `the policy for ${t.mxHost} is '${hp.level}' (${hp.why})${unvalidated}, which does not authenticate the receiving server`;
}

/** "mx.example.org [192.0.2.1]:25" for reasons and reply texts. */
export function where(to: ConnectTo): string {
  return `${to.host} [${to.address}]:${to.port}`;
}

function describeTls(s: NegotiatedSession | null): string {
  return s === null ? 'in cleartext' : `over ${protocolLabel(s.protocol)} (${s.cipher.standardName})`;
}

/** What a transaction's party needs to know about it. */
export interface TransactionContext {
  to: ConnectTo;
  tls: NegotiatedSession | null;
  decision: PolicyDecision;
  /** The server advertised DSN, so NOTIFY/ORCPT were passed on (RFC 3461 §6.2). */
  dsn: boolean;
}

/**
 * The outcome of each recipient of one transaction. `pending[i]` was sent as the transaction's
 * i-th recipient and `results[i]` is its answer (the client keeps the order), so results are
 * matched by position in the pending list, never by address (one address may appear twice).
 */
export function transactionOutcomes<P extends { rcpt: { dsn: RecipientDsn } }>(
  pending: readonly P[],
  results: readonly RecipientResult[],
  c: TransactionContext,
): Array<[P, RecipientOutcome]> {
  const at = where(c.to);
  const out: Array<[P, RecipientOutcome]> = [];
  pending.forEach((p, i) => {
    const r = results[i];
    if (r === undefined) {
      out.push([
        p,
        {
          kind: 'deferred',
          reply: null,
          reason: `no answer from ${at} for this recipient`,
          mx: c.to.host,
          cause: 'network',
        },
      ]);
      return;
    }
    if (r.ok) {
      // RFC 3461 §6.2: with NOTIFY passed on to a DSN-capable next hop, it reports from now on.
      const dsnPassedOn = c.dsn && p.rcpt.dsn.notify !== null;
      out.push([
        p,
        {
          kind: 'delivered',
          reply: r.reply.text,
          reason: `delivered to ${at} ${describeTls(c.tls)}; ${c.decision.rule}`,
          mx: c.to.host,
          dsnPassedOn,
        },
      ]);
      return;
    }
    const what =
      r.stage === 'data'
        ? 'rejected the message'
        : r.stage === 'mail'
          ? 'rejected the sender'
          : 'rejected the recipient';
    const reason = `the receiving server ${at} ${what}: ${r.reply.text}`;
    // RFC 5321 §4.2.1: the reply code decides (src/smtp/protocol/reply-class.ts).
    out.push([
      p,
      replyClass(r.reply.code) === 'permanent'
        ? { kind: 'bounced', reply: r.reply.text, reason, mx: c.to.host }
        : { kind: 'deferred', reply: r.reply.text, reason, mx: c.to.host, cause: 'reply' },
    ]);
  });
  return out;
}

/** What the loop saw when no transaction took place for a domain. */
export interface Exhausted {
  /** Reasons of every policy failure and skipped host, in order. */
  policyFailures: string[];
  /** The last policy decision that failed (its rule and enhanced code go into the reply). */
  lastPolicy: PolicyDecision | null;
  /** Hosts REQUIRETLS could not go to (RFC 8689 §4.1). */
  requireTlsRefusals: string[];
  /** A server this message cannot be sent to as it is (5.6.7, 5.7.30, 5.3.4): nothing was sent. */
  unsuitable: SmtpClientError | null;
  /** Connection and lookup failures, "host [address]:port: message". */
  errors: string[];
  /** Addresses tried. */
  attempted: number;
}

/** The outcome for every recipient of a domain when no MX took the transaction. */
export function exhaustedOutcome(domain: string, x: Exhausted): RecipientOutcome {
  if (x.policyFailures.length > 0) {
    const reasons = [...new Set(x.policyFailures)];
    const d = x.lastPolicy;
    return {
      kind: 'deferred',
      reply: `451 ${d?.enhanced ?? '4.7.5'} TLS policy not met: ${d?.rule ?? reasons[0] ?? ''}`,
      reason: reasons.join('; also: '),
      mx: null,
      cause: 'tls-policy',
    };
  }
  if (x.requireTlsRefusals.length > 0 && x.errors.length === 0) {
    return {
      kind: 'bounced',
      reply: '550 5.7.30 REQUIRETLS support required',
      reason: `the message requires TLS (REQUIRETLS) to an authenticated server, but ${[...new Set(x.requireTlsRefusals)].join('; ')}`,
      mx: null,
    };
  }
  const u = x.unsuitable;
  if (u !== null && x.errors.length === 0) {
    return {
      kind: 'bounced',
      reply: `${u.smtpCode ?? 554} ${u.enhanced ?? '5.0.0'} ${u.message}`,
      reason: u.message,
      mx: null,
    };
  }
  const why =
    x.errors.length > 0
      ? x.errors.join('; ')
      : x.attempted === 0
        ? 'no address found for any MX host'
        : 'no MX host could be reached';
  return {
    kind: 'deferred',
    reply: `451 4.4.1 ${why}`,
    reason: `no mail server for ${domain} could be reached: ${why}`,
    mx: null,
    cause: 'network',
  };
}

/** An unexpected failure while delivering a domain: its recipients are deferred, the others keep their results. */
export function internalErrorOutcome(why: string): RecipientOutcome {
  return { kind: 'deferred', reply: `451 4.3.0 ${why}`, reason: `internal error: ${why}`, mx: null, cause: 'internal' };
}

/** The queue's view of an outcome. Extra fields of `status` (ids, …) pass through. */
export function toRecipientStatus(status: RecipientStatus, o: RecipientOutcome, now: string): RecipientStatus {
  const state: RecipientStatus['state'] =
    o.kind === 'delivered' || o.kind === 'e2e-encrypted' ? 'delivered' : o.kind === 'bounced' ? 'bounced' : 'deferred';
  const st: RecipientStatus = {
    ...status,
    state,
    attempts: status.attempts + 1,
    lastReply: o.reply,
    reason: o.reason,
    nextAttemptAt: null,
    updatedAt: now,
  };
  if (o.kind === 'delivered' && o.dsnPassedOn) st.dsnPassedOn = true;
  return st;
}

/** The requirement a decision was about, for metrics (`postern_outbound_tls_total{check}`). */
export function checkOf(hp: HostUse, d: PolicyDecision): TlsCheck {
  const f = (x: PolicyFailure): boolean => d.failures.includes(x);
  if (!d.ok) {
    if (f('profile-noncompliant')) return 'profile';
    if (f('dane-mismatch') || hp.source === 'dane') return hp.level === 'dane' ? 'dane' : 'encrypt';
    if (f('starttls-not-supported') || f('starttls-refused') || f('tls-handshake-failed')) return 'starttls';
    if (hp.source === 'mta-sts') return 'mta-sts';
    if (f('tls-version-deprecated') && d.failures.length === 1) return 'protocol';
    return hp.level === 'secure' ? 'secure' : hp.level === 'verify' ? 'verify' : 'encrypt';
  }
  if (d.action !== 'tls') return 'cleartext';
  if (hp.source === 'dane') return hp.level === 'dane' ? 'dane' : 'encrypt';
  if (hp.source === 'mta-sts') return 'mta-sts';
  if (hp.level === 'secure' || hp.level === 'verify') return hp.level;
  if (hp.profile !== null && hp.level !== 'may') return 'profile';
  return hp.level === 'may' ? 'opportunistic' : 'encrypt';
}

/** The check a skipped host failed. */
export function skipCheckOf(hp: HostSkip): TlsCheck {
  if (hp.resultType === 'dnssec-invalid') return 'dnssec';
  if (hp.report.type === 'sts') return 'mta-sts';
  return 'dane';
}
