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

export interface SmtpServerHooks {
  /** PLAIN (RFC 4616) and LOGIN. */
  authenticate(user: string, password: string, s: SessionInfo): Promise<'ok' | 'bad' | 'rate-limited'>;
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
    o: { smtputf8: boolean },
  ):
    { address: string; local: string; domain: string } | { error: { code: number; enhanced: string; message: string } };
  checkSender(address: string, s: SessionInfo): Promise<HookReply>;
  checkRecipient(address: string, s: SessionInfo): Promise<HookReply>;
  /** Resolves with the queue id only once the message is durably stored; then we answer 250. Rejecting → 451 4.3.0. */
  enqueue(envelope: Envelope, message: Buffer): Promise<string>;
}

export interface SmtpLimits {
  maxMessageSize: number;
  maxRecipients: number;
  /** Octets per message line excluding CRLF (RFC 5322 §2.1.1: 998). */
  maxLineLength: number;
  /** Idle time allowed while waiting for a complete command line (also bounds the TLS handshake). */
  commandTimeoutMs: number;
  /** Idle time allowed between chunks of DATA; the whole DATA phase is capped at 10× this. */
  dataTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  /** Error replies per session before 421 4.7.0 and close. */
  maxErrors: number;
  /** Delay before each error reply (Postfix smtpd_error_sleep_time). Default 1000. */
  errorDelayMs?: number;
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
  /** Sessions closed by timeout. */
  timeouts: number;
}

export interface SmtpServer {
  listen(): Promise<Array<{ name: string; address: string; port: number }>>;
  close(opts?: { graceful: boolean; timeoutMs?: number }): Promise<void>;
  setTls(tls: TlsMaterial): void;
  stats(): SmtpServerStats;
}
