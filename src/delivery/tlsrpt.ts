/**
 * TLS-RPT recording (RFC 8460 §4.3): one session record per TLS attempt to a recipient domain's
 * MX host, under the policy that applied (TLSA, MTA-STS or none). Routes and relayhosts are local
 * choices and are not reported. Recording never costs a delivery: a failing sink is logged.
 */
import { decide } from '../policy/decide.ts';
import type { PolicyFailure } from '../policy/decide.ts';
import type { ReportPolicy } from '../policy/resolve.ts';
import type { ResultType, TlsRptFailure, TlsRptPolicy } from '../report/tlsrpt/aggregate.ts';
import type { PolicyDecision } from '../policy/decide.ts';
import type { AttemptFacts, ConnectTo, DomainCtx, HostSkip, HostUse, Target } from './types.ts';
import { viaMx } from './types.ts';

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

/** The TLS-RPT policy of a host's policy (without the resolver's `testing` flag). */
function rptPolicy(r: ReportPolicy): TlsRptPolicy {
  return { type: r.type, strings: r.strings, ...(r.mxHost !== undefined ? { mxHost: r.mxHost } : {}) };
}

function guarded(ctx: DomainCtx, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    ctx.events.emit({ event: 'delivery.tlsrpt-failed', err: (e as Error).message });
  }
}

/** An MTA-STS discovery failure (RFC 8460 §4.3.2.2), filed against the policy host. */
export function recordStsError(ctx: DomainCtx, error: { type: string; reason: string }): void {
  const sink = ctx.deps.tlsrpt;
  const rt = stsResultType(error.type);
  if (sink === undefined || rt === null) return;
  guarded(ctx, () =>
    sink.recordFailure({
      policyDomain: ctx.domain,
      policy: { type: 'sts', strings: [] },
      resultType: rt,
      sendingMtaIp: '0.0.0.0',
      receivingMxHostname: `mta-sts.${ctx.domain}`,
      additionalInformation: error.reason.slice(0, 200),
    }),
  );
}

/** A host the policy chain took out of the running (never connected to). */
export function recordSkip(ctx: DomainCtx, t: Target, hp: HostSkip): void {
  const sink = viaMx(t) ? ctx.deps.tlsrpt : undefined;
  if (sink === undefined) return;
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
}

/**
 * One session record for a decided attempt. Under MTA-STS testing the enforce-mode check (MX
 * listed, PKIX-valid for the MX name) is evaluated here only for the report (RFC 8461 §5).
 */
export function recordAttempt(
  ctx: DomainCtx,
  t: Target,
  to: ConnectTo,
  hp: HostUse,
  decision: PolicyDecision,
  facts: AttemptFacts,
): void {
  const sink = ctx.deps.tlsrpt;
  if (sink === undefined || hp.level === 'none' || !viaMx(t)) return;
  const policy = rptPolicy(hp.report);
  const session = facts.session;
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
        tlsOffered: facts.offered,
        tlsError: session === null ? 'no TLS' : null,
        chain: facts.chain,
        mxHost: t.mxHost,
        nextHopDomain: t.nextHop,
      });
      if (!strict.ok) {
        failure = resultTypeOf(strict.failures[0]);
        info = `MTA-STS testing: ${strict.rule}`;
        ctx.events.emit({ event: 'delivery.sts-testing-failure', domain: ctx.domain, mx: t.mxHost, rule: strict.rule });
      }
    }
  } else if (session === null) {
    failure = facts.offered ? 'validation-failure' : 'starttls-not-supported';
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
    sendingMtaIp: facts.localAddress ?? '0.0.0.0',
    receivingMxHostname: t.mxHost,
    receivingIp: to.address,
  };
  if (facts.ehloName !== null) f.receivingMxHelo = facts.ehloName;
  if (info !== undefined) f.failureReasonCode = info.slice(0, 200);
  guarded(ctx, () => sink.recordFailure(f));
}
