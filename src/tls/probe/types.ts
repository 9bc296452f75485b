import type { Dialect } from '../starttls/index.ts';
import type { VersionName } from '../wire/constants.ts';
import type { NegotiatedSession } from '../session.ts';
import type { ConnectionLimiter } from './limiter.ts';

/** Where and how to reach one TLS endpoint. */
export interface ProbeTarget {
  /** Host name as the user gave it (used for SNI and reports). */
  host: string;
  /** The address actually connected to (one probe run = one address, RFC 7672 style). */
  address: string;
  port: number;
  dialect: Dialect;
  /** SNI to send; omitted for IP literals. */
  servername?: string;
  ehloName?: string;
  /** Send STARTTLS even when the capability is not advertised (detects stripping). */
  forceStartTls?: boolean;
  timeoutMs?: number;
}

export interface ProbeOptions {
  /** Versions to test; default all six. */
  versions?: VersionName[];
  /** Concurrent connections per address (politeness); default 2. */
  maxConnPerIp?: number;
  /** Share one limiter across endpoints (a whole scan run); overrides maxConnPerIp. */
  limiter?: ConnectionLimiter;
  /** Retries after a "too many connections" refusal (421, BYE), with exponential backoff. */
  rateLimitRetries?: number;
  rateLimitBackoffMs?: number;
  /** Skip the extra probes for preference/groups/DH (cipher enumeration only). */
  suitesOnly?: boolean;
  /** Also complete one full handshake through node:tls (needed for TLS 1.3 chains). Default true. */
  fullHandshake?: boolean;
  /** Trust anchors for the full handshake's PKIX verdict. */
  ca?: string[];
  signal?: AbortSignal;
}

export interface StartTlsObservation {
  dialect: Dialect;
  /** STARTTLS/STLS advertised in the capabilities before TLS. */
  advertised: boolean;
  /** STARTTLS worked although it was not advertised (capability stripped). */
  stripped: boolean;
  /** Refusal reply, e.g. "454 4.7.0 TLS not available". */
  refusedReply: string | null;
  /** Bytes the server sent after its STARTTLS go-ahead (response injection), escaped. */
  injectedBytes: string | null;
  greeting: string | null;
  capabilities: string[];
}

export interface ProbeError {
  phase: string;
  code: string;
  message: string;
}

export type CheckName = 'secureRenegotiation' | 'clientRenegotiation' | 'compression' | 'heartbeat' | 'fallbackScsv';

/** Everything the engine learned about one endpoint. Pure data; grading happens elsewhere. */
export interface EndpointProbe {
  target: ProbeTarget;
  starttls: StartTlsObservation | null;
  protocols: Record<VersionName, boolean>;
  /** Accepted suites per version, in the order the server picked them. */
  suites: Record<VersionName, number[]>;
  /** true = server order, false = client order, null = unknown / fewer than two suites. */
  serverPreference: Partial<Record<VersionName, boolean | null>>;
  /** Key-exchange groups the server accepts (TLS 1.3 via HelloRetryRequest, TLS 1.2 via ServerKeyExchange). */
  groups: { tls13: number[]; tls12: number[] };
  /** DHE prime sizes seen (bits). */
  dhBits: number[];
  /** Distinct certificate chains (DER, leaf first) the server sent. */
  chains: Buffer[][];
  /** Extensions seen in ServerHellos (RFC 5746 secure renegotiation, RFC 7627 EMS, RFC 7366 ETM). */
  secureRenegotiation: boolean | null;
  extendedMasterSecret: boolean | null;
  encryptThenMac: boolean | null;
  /**
   * Weakness checks (checks.ts); null = not applicable (e.g. TLS 1.3 only) or not determined.
   * compression: selects DEFLATE when offered (CRIME). heartbeat: echoes the RFC 6520 extension.
   * heartbleed: over-long heartbeat answered (CVE-2014-0160). clientRenegotiation: completes a
   * client-initiated renegotiation. fallbackScsv: true = refuses TLS_FALLBACK_SCSV fallbacks
   * (RFC 7507, correct), false = accepts them.
   */
  compression: boolean | null;
  heartbeat: boolean | null;
  heartbleed: boolean | null;
  clientRenegotiation: boolean | null;
  fallbackScsv: boolean | null;
  /** One printable line per check that ran, saying what was sent and answered (never leaked bytes). */
  checkEvidence: Partial<Record<CheckName, string>>;
  /** Server picked a suite or version we did not offer (a protocol violation). */
  anomalies: string[];
  session: NegotiatedSession | null;
  errors: ProbeError[];
  stats: { connections: number; durationMs: number };
}
