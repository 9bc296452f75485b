/**
 * One attempt at one MX address: connect, EHLO, STARTTLS as the host's level says, and decide
 * (src/policy/decide.ts) whether the session may carry the message. The connection comes from an
 * injected `Connector`, so the whole decision path runs in unit tests against scripted
 * connections; the real connector wraps `SmtpClient`. Returns a typed `AttemptResult`, never a
 * string: words are made in outcome.ts.
 */
import { isIP } from 'node:net';
import { decide } from '../policy/decide.ts';
import type { PolicyDecision } from '../policy/decide.ts';
import { attemptsTls } from '../policy/levels.ts';
import { tlsClientOffer } from '../tls/offer.ts';
import type { PolicyLookup } from '../policy/table.ts';
import { SmtpClientError } from '../smtp/client/errors.ts';
import { SmtpClient } from '../smtp/client/session.ts';
import type { SmtpTimeouts, StartTlsClientOptions } from '../smtp/client/session.ts';
import { analyzeChain } from '../tls/cert/chain.ts';
import type { ChainReport } from '../tls/cert/chain.ts';
import type { NegotiatedSession } from '../tls/session.ts';
import { policySource } from './outcome.ts';
import type { AttemptFacts, ConnectTo, Connector, DeliveryConnection, HostUse, Target } from './types.ts';

export type AttemptResult =
  /** The policy is met: `connection` is ready for MAIL (over TLS, or in cleartext where allowed). */
  | { kind: 'admitted'; connection: DeliveryConnection; decision: PolicyDecision; facts: AttemptFacts }
  /** The session does not satisfy the policy; the connection was closed (QUIT). */
  | { kind: 'policy-fail'; decision: PolicyDecision; facts: AttemptFacts }
  /** No decision could be made: connect, greeting, EHLO or an unexpected TLS error. */
  | { kind: 'error'; error: SmtpClientError };

export interface AttemptInput {
  target: Target;
  to: ConnectTo;
  host: HostUse;
  /** The table entry (its name goes into the rule text). */
  policy: PolicyLookup;
  /** The recipient domain. */
  domain: string;
  now: Date;
  /** Trust anchors for PKIX (PEM). */
  ca?: string[];
  /**
   * Follow a `may` 'cleartext-reconnect' decision with a new cleartext connection (delivery), or
   * not (a probe only reports the decision).
   */
  reconnect: boolean;
}

/** The real connector: SMTP over TCP (src/smtp/client/session.ts), greeting and EHLO done. */
export function smtpConnector(o: { heloName: string; timeouts?: Partial<SmtpTimeouts> }): Connector {
  return {
    async connect(to: ConnectTo): Promise<DeliveryConnection> {
      const c = await SmtpClient.connect({
        host: to.host,
        address: to.address,
        port: to.port,
        heloName: o.heloName,
        ...(o.timeouts ? { timeouts: o.timeouts } : {}),
      });
      try {
        await c.ehlo();
      } catch (e) {
        c.close();
        throw e;
      }
      return c;
    },
  };
}

/** Any failure as a (temporary) SmtpClientError. */
export function asClientError(e: unknown): SmtpClientError {
  if (e instanceof SmtpClientError) return e;
  return new SmtpClientError('net-closed', (e as Error).message ?? String(e), {
    stage: 'connect',
    temporary: true,
    cause: e,
  });
}

function safeChain(
  session: NegotiatedSession,
  mxHost: string,
  now: Date,
  ca: string[] | undefined,
): ChainReport | null {
  if (session.peerChain.length === 0) return null;
  try {
    const o: Parameters<typeof analyzeChain>[1] = { hostname: mxHost, now };
    if (ca !== undefined) o.ca = ca;
    return analyzeChain(session.peerChain, o);
  } catch {
    return null; // unparseable certificates: decide() treats it as "no usable certificate"
  }
}

/** Connect, EHLO, STARTTLS as the level says, and decide. Never throws. */
export async function attempt(connector: Connector, a: AttemptInput): Promise<AttemptResult> {
  const { target: t, host: hp } = a;
  let conn: DeliveryConnection;
  try {
    conn = await connector.connect(a.to);
  } catch (e) {
    return { kind: 'error', error: asClientError(e) };
  }
  const offered = conn.offersStartTls();
  let session: NegotiatedSession | null = null;
  let tlsError: string | null = null;
  let tlsFailure: 'refused' | 'handshake' = 'handshake';
  if (attemptsTls(hp.level) && offered) {
    const opts: StartTlsClientOptions = { ...tlsClientOffer(hp.profile) };
    // RFC 7672 §3.1.2: DANE-TA needs the chain exactly as sent. SNI: the TLSA base domain (§8.1),
    // which is the MX name unless a CNAME was followed.
    if (hp.dane !== null && hp.dane.records.some((r) => r.usage === 2)) opts.captureChain = true;
    const sni = hp.dane?.names[0] ?? t.mxHost;
    if (isIP(sni) === 0) opts.servername = sni;
    if (a.ca !== undefined) opts.ca = a.ca;
    try {
      session = await conn.startTls(opts);
    } catch (e) {
      const err = asClientError(e);
      if (err.code === 'starttls-refused') {
        tlsError = err.reply ?? err.message;
        tlsFailure = 'refused';
      } else if (err.code === 'tls-handshake-failed') {
        tlsError = err.message.replace(/^TLS handshake failed: /, '');
      } else {
        conn.close();
        return { kind: 'error', error: err };
      }
    }
  }
  const chain = session === null ? null : safeChain(session, t.mxHost, a.now, a.ca);
  const via = hp.source === 'dane' ? 'DANE' : hp.source === 'mta-sts' ? 'MTA-STS' : undefined;
  const decision = decide({
    level: hp.level,
    profile: hp.profile,
    session,
    tlsOffered: offered,
    tlsError,
    tlsFailure,
    chain,
    mxHost: t.mxHost,
    nextHopDomain: t.nextHop,
    policySource: policySource(a.policy),
    policyDomain: a.domain,
    now: a.now,
    ...(hp.dane !== null ? { dane: hp.dane } : {}),
    ...(via !== undefined ? { via } : {}),
    // RFC 8461 §4.1: under MTA-STS the certificate must be valid for the MX host name.
    ...(hp.source === 'mta-sts' ? { mxNameRequired: true } : {}),
  });
  // Read before QUIT: the socket's addresses are gone once it is closed.
  const facts: AttemptFacts = { offered, session, chain, localAddress: conn.localAddress, ehloName: conn.ehloName };
  if (!decision.ok) {
    await conn.quit();
    return { kind: 'policy-fail', decision, facts };
  }
  if (decision.action === 'cleartext-reconnect' && a.reconnect) {
    // `may` after a failed handshake: a new connection without STARTTLS (Postfix behaviour).
    conn.close();
    try {
      conn = await connector.connect(a.to);
    } catch (e) {
      return { kind: 'error', error: asClientError(e) };
    }
  }
  return { kind: 'admitted', connection: conn, decision, facts };
}
