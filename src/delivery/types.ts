/**
 * The types the delivery pipeline's stages share: what delivery depends on (`DeliveryDeps`), a
 * target of the plan, the per-host policy in use, and the connection seam (`Connector`,
 * `DeliveryConnection`) that attempt.ts drives and tests replace with fakes.
 */
import type { Logger } from 'pino';
import type { EventSink } from '../core/events.ts';
import type { DnssecResolver } from '../dns/dnssec.ts';
import type { DnsClient } from '../dns/resolver.ts';
import type { PolicyDecision } from '../policy/decide.ts';
import type { StsPolicy } from '../policy/mta-sts/policy.ts';
import type { HostPolicy, StsInput } from '../policy/resolve.ts';
import type { PolicyLookup, PolicyTable } from '../policy/table.ts';
import type { TlsRptFailure, TlsRptSession } from '../report/tlsrpt/aggregate.ts';
import type { ConnectionPool } from '../smtp/client/pool.ts';
import type {
  OutboundTransaction,
  SmtpTimeouts,
  StartTlsClientOptions,
  TransactionResult,
} from '../smtp/client/session.ts';
import type { ChainReport } from '../tls/cert/chain.ts';
import type { NegotiatedSession } from '../tls/session.ts';

/** What TLS-RPT and the logs need to know about the TLS part of an attempt. */
export interface AttemptFacts {
  /** STARTTLS was advertised. */
  offered: boolean;
  session: NegotiatedSession | null;
  /** The peer chain analysed at the caller's `now`; null without a (parseable) chain. */
  chain: ChainReport | null;
  localAddress: string | null;
  ehloName: string | null;
}

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

/**
 * One outbound SMTP connection as the delivery loop uses it, after connect + greeting + EHLO.
 * `SmtpClient` (src/smtp/client/session.ts) is one; tests script others.
 */
export interface DeliveryConnection {
  readonly host: string;
  /** The TLS session, once STARTTLS completed. */
  readonly tls: NegotiatedSession | null;
  /** Still connected and idle. */
  readonly usable: boolean;
  /** Transactions (MAIL FROM sent) so far. */
  readonly transactions: number;
  /** Our end of the connection (TLS-RPT `sending-mta-ip`). */
  readonly localAddress: string | null;
  /** The server's name from its EHLO reply (TLS-RPT `receiving-mx-helo`). */
  readonly ehloName: string | null;
  /** The server advertised DSN (RFC 3461) in its current EHLO reply: NOTIFY/ORCPT go on. */
  readonly dsn: boolean;
  offersStartTls(): boolean;
  /** STARTTLS + handshake + EHLO again; throws SmtpClientError 'starttls-refused' / 'tls-handshake-failed'. */
  startTls(opts: StartTlsClientOptions): Promise<NegotiatedSession>;
  send(tx: OutboundTransaction, body: Buffer, opts: { nextHopAuthenticated?: boolean }): Promise<TransactionResult>;
  /** RSET; the liveness check before reusing a cached connection. */
  reset(): Promise<void>;
  quit(): Promise<void>;
  close(): void;
}

/** Where to connect: the host name (logs, SNI) and the address and port. */
export interface ConnectTo {
  host: string;
  address: string;
  port: number;
}

/**
 * Opens connections (TCP connect, greeting, EHLO). The real one wraps `SmtpClient.connect`;
 * throws SmtpClientError for network and greeting failures.
 */
export interface Connector {
  connect(to: ConnectTo): Promise<DeliveryConnection>;
}

/** The connection cache delivery shares across messages. */
export type DeliveryPool = ConnectionPool<AdmittedSession, DeliveryConnection>;

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
  /**
   * Shared connection cache and per-destination limits; default: one for this call, closed at the
   * end. (The gateway's cache holds SmtpClients; tests with fake connections pass a DeliveryPool
   * to deliverMessage instead.)
   */
  pool?: ConnectionPool<AdmittedSession>;
  timeouts?: Partial<SmtpTimeouts>;
  /** Port of MX hosts (default 25). */
  port?: number;
  /**
   * DNSSEC-validating resolver. Consulted for a domain when DANE (levels dane, dane-only) or
   * REQUIRETLS needs the MX RRset's status; then the MX targets come from its validated answer.
   * Absent: no TLSA lookups, no MX validation.
   */
  dnssec?: DnssecResolver;
  /** MTA-STS policies (RFC 8461); absent: MTA-STS is not applied. */
  sts?: StsSource;
  /** TLS-RPT sink (RFC 8460). */
  tlsrpt?: TlsRptSink;
  /** Typed events (src/core/events.ts); default: a sink that logs through `log`. */
  events?: EventSink;
  /** How connections are opened; default SMTP over TCP (`SmtpClient`). Tests inject fakes. */
  connector?: Connector;
}

/** How the target was found. */
export type TargetVia = 'route' | 'relayhost' | 'mx' | 'implicit-mx' | 'literal';

/** One next hop of the plan, in the order to try. */
export interface Target {
  mxHost: string;
  port: number;
  /** The next-hop domain for `secure` (recipient domain, or the route/relayhost name). */
  nextHop: string;
  via: TargetVia;
}

/** The per-host result of the policy chain when the host is used. */
export type HostUse = Extract<HostPolicy, { kind: 'use' }>;
export type HostSkip = Extract<HostPolicy, { kind: 'skip' }>;

/** MTA-STS and TLS-RPT are about the recipient domain's MX hosts; routes and relayhosts are local choices. */
export function viaMx(t: Target): boolean {
  return t.via === 'mx' || t.via === 'implicit-mx';
}

/** Per-domain state of one delivery (or policy check) while its stages run. */
export interface DomainCtx {
  deps: DeliveryDeps;
  domain: string;
  policy: PolicyLookup;
  msgId: string | null;
  events: EventSink;
  /** The recipient domain's usable MTA-STS policy (enforce/testing), when one applies. */
  sts: StsInput | null;
  /** The MTA-STS policy was re-checked after a failure (RFC 8461 §5.1), once per delivery. */
  stsRechecked: boolean;
  /**
   * The targets came from a DNSSEC-validated (secure) MX answer — the same answer they were taken
   * from (plan.ts), never a second lookup.
   */
  mxSecure: boolean;
}
