/** Public types of the inbound SMTP server (src/smtp/server). */
import type { PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import type { EventSink } from '../../core/events.ts';
import type { ArrivalInfo, Envelope } from '../../core/envelope.ts';

export interface ListenerSpec {
  name: string;
  address: string;
  port: number;
  /** 'starttls': plaintext greeting, STARTTLS offered (RFC 3207); 'implicit': TLS first (RFC 8314). */
  mode: 'starttls' | 'implicit';
  role: 'mx' | 'submission';
  /** 'none': AUTH not offered; 'optional': offered after TLS; 'required': MAIL needs AUTH first. */
  auth: 'none' | 'optional' | 'required';
  /** 'request': ask for a client certificate (verified against `tls.ca`) for SASL EXTERNAL. */
  clientCertificates?: 'none' | 'request';
}

export interface SessionInfo {
  id: string;
  listener: ListenerSpec;
  clientAddress: string;
  helo: string | null;
  tls: ArrivalInfo['tls'];
  authUser: string | null;
}

export type HookReply = { ok: true } | { ok: false; code: number; enhanced: string; message: string };

/** A login refused by a failed-login limit: which one, and when it ends (the 454 reply says so). */
export interface AuthRateLimited {
  result: 'rate-limited';
  scope: 'address' | 'user';
  until: Date;
  retryAfterMs: number;
}
/** checkRecipient's answer: `address` replaces the recipient as given (e.g. `<Postmaster>`, RFC 5321 §4.5.1). */
export type RecipientReply =
  { ok: true; address?: string } | { ok: false; code: number; enhanced: string; message: string };

export interface SmtpServerHooks {
  /** PLAIN (RFC 4616) and LOGIN. */
  authenticate(
    user: string,
    password: string,
    s: SessionInfo,
  ): Promise<'ok' | 'bad' | 'rate-limited' | AuthRateLimited>;
  /** SASL EXTERNAL (RFC 4422 App. A): map a verified client certificate to a user, or null. */
  authenticateExternal?: (
    certSubject: string,
    cert: PeerCertificate,
    s: SessionInfo,
    authzid: string | null,
  ) => Promise<string | null>;
  /** Parse a MAIL FROM / RCPT TO path as written, angle brackets included (e.g. `<a@b.example>`). */
  parsePath(
    text: string,
    /** 'reverse' for MAIL FROM (RFC 3463 X.1.7 on errors), 'forward' for RCPT TO (X.1.3). */
    o: { smtputf8: boolean; kind: 'reverse' | 'forward' },
  ):
    { address: string; local: string; domain: string } | { error: { code: number; enhanced: string; message: string } };
  checkSender(address: string, s: SessionInfo): Promise<HookReply>;
  checkRecipient(address: string, s: SessionInfo): Promise<RecipientReply>;
  /** Resolves with the queue id only once the message is durably stored; then we answer 250. Rejecting → 451 4.3.0. */
  enqueue(envelope: Envelope, message: Buffer): Promise<string>;
}

export interface SmtpLimits {
  maxMessageSize: number;
  maxRecipients: number;
  /** Octets per message line INCLUDING the CRLF (RFC 5321 §4.5.3.1.6: 1000, i.e. 998 of text). */
  maxLineLength: number;
  /** Idle time allowed while waiting for a complete command line (also bounds the TLS handshake). */
  commandTimeoutMs: number;
  /** Idle time allowed between chunks of DATA. */
  dataTimeoutMs: number;
  /** Slots of the MX listeners (role 'mx'); submission listeners have their own pool. */
  maxConnections: number;
  /** Per client address, counted in each pool separately. */
  maxConnectionsPerIp: number;
  /** Error replies per session before 421 4.7.0 and close. */
  maxErrors: number;
  /** Delay before each error reply (Postfix smtpd_error_sleep_time). Default 1000. */
  errorDelayMs?: number;
  /**
   * Slots of the submission listeners (role 'submission'), apart from the MX pool so that a flood
   * on port 25 cannot lock users out of 587/465. Default: max(20, maxConnections / 4).
   */
  maxSubmissionConnections?: number;
  /** NOOP, RSET, VRFY and HELP per session before 421 (Postfix smtpd_junk_command_limit). Default 100. */
  junkCommandLimit?: number;
  /** Total time for one DATA phase, however the client paces its bytes. Default 15 minutes. */
  dataDeadlineMs?: number;
  /**
   * Timeout used instead of commandTimeoutMs and dataTimeoutMs while a pool is more than
   * stressThreshold full (Postfix smtpd_timeout = ${stress?10}${stress:300}s). Default 10 s.
   */
  stressTimeoutMs?: number;
  /** Percent of a pool's slots in use above which it is under stress. Default 80. */
  stressThreshold?: number;
}

/**
 * The clock the server's timeouts and delays run on. A seam: tests drive a manual clock instead of
 * waiting (no wall-clock windows in tests). `after` returns a function that cancels the timer.
 */
export interface SmtpTimers {
  after(ms: number, fn: () => void): () => void;
}

export interface TlsMaterial {
  key: string;
  cert: string;
  /** CAs that client certificates are verified against. */
  ca?: string[];
}

export interface SmtpServerOptions {
  /** Typed events (src/core/events.ts); default: none. */
  events?: EventSink;
  hostname: string;
  listeners: ListenerSpec[];
  tls: TlsMaterial;
  limits: SmtpLimits;
  hooks: SmtpServerHooks;
  logger?: Logger;
  /** Default: node's timers (unref'd). */
  timers?: SmtpTimers;
}

export interface SmtpServerStats {
  /** Connections open now. */
  connections: number;
  connectionsTotal: number;
  /** Refused with 421 because of maxConnections / maxConnectionsPerIp. */
  connectionsRefused: number;
  tlsHandshakes: number;
  tlsFailures: number;
  messagesAccepted: number;
  messagesRejected: number;
  bytesAccepted: number;
  authSuccesses: number;
  authFailures: number;
  /** Plaintext bytes discarded after STARTTLS (CVE-2011-0411 attempts). */
  starttlsInjections: number;
  /** Messages rejected for bare LF / bare CR (SMTP smuggling attempts). */
  bareLineEndings: number;
  /** Messages rejected for NUL octets in DATA. */
  nulBytes: number;
  /** Octets read from clients (after TLS decryption), all sessions. */
  bytesReceived: number;
  /** Command lines processed (all sessions). */
  commands: number;
  /** Sessions closed by timeout. */
  timeouts: number;
  /** Sessions closed for too many junk commands (NOOP/RSET/VRFY/HELP). */
  junkLimitHits: number;
  /** Client-initiated TLS renegotiations refused (the session is closed). */
  renegotiationsRefused: number;
  /**
   * The most reply bytes ever queued in user space for one connection (socket.writableLength):
   * bounded because a session stops reading commands while its replies are not drained.
   */
  outputBufferedPeak: number;
  /** The most unprocessed input bytes ever buffered for one connection (bounded: HIGH_WATER, line caps). */
  inputBufferedPeak: number;
  /** Times a session stopped reading because its client did not read its replies. */
  outputStalls: number;
}

export interface SmtpServer {
  listen(): Promise<Array<{ name: string; address: string; port: number }>>;
  close(opts?: { graceful: boolean; timeoutMs?: number }): Promise<void>;
  setTls(tls: TlsMaterial): void;
  stats(): SmtpServerStats;
}
