/**
 * Typed events (STYLE 6): one union of everything postern reports about itself, one sink that logs
 * each event through pino and counts it through prom-client. Code emits `sink.emit({ event: …, … })`,
 * never a free-form log string, so logs are greppable by `event` and every event is a metric.
 *
 * Each area keeps its variants in its own alias below (smtpd, delivery, queue, admin); the sink
 * does not care which. An event's severity is part of its definition (`SEVERITY`), not chosen at
 * the call site.
 */
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';

/** Inbound SMTP (src/smtp/server): security-relevant things a client did or a limit that held. */
export type SmtpdEvent =
  /**
   * A per-session limit refused something. `limit`: 'command-line', 'message-size', 'message-line',
   * 'recipients', 'errors' (maxErrors reached, 421), 'junk-commands' (421), 'data-deadline' (421).
   */
  | { event: 'smtpd.limit'; session: string; client: string; limit: string; detail?: string }
  | { event: 'smtpd.starttls-injection'; session: string; client: string; bytes: number }
  /** A message with a bare LF (and maybe bare CR) refused, 550 5.6.0 (SMTP smuggling). */
  | { event: 'smtpd.bare-lf'; session: string; client: string }
  /** A message with a bare CR (no bare LF) refused, 550 5.6.0. */
  | { event: 'smtpd.bare-cr'; session: string; client: string }
  /** A message with a NUL octet refused, 550 5.6.0. */
  | { event: 'smtpd.nul'; session: string; client: string }
  | { event: 'smtpd.auth-failure'; session: string; client: string; user: string | null; mechanism: string }
  /** SASL EXTERNAL with an authorization identity that is not the certificate's user (535). */
  | { event: 'smtpd.authzid-mismatch'; session: string; client: string; user: string }
  /** A session closed by a timeout; `stressed`: the short timeout of a pool under stress was used. */
  | {
      event: 'smtpd.timeout';
      session: string;
      client: string;
      phase: 'command' | 'data' | 'handshake';
      stressed: boolean;
    }
  /** A client-initiated TLS renegotiation refused; the session is closed. */
  | { event: 'smtpd.renegotiation-refused'; session: string; client: string }
  /** The session stopped reading because its client does not read its replies. */
  | { event: 'smtpd.output-stall'; session: string; client: string; buffered: number }
  /** An HTTP request line on an SMTP port (cross-protocol attack), 421. */
  | { event: 'smtpd.http-request'; session: string; client: string; verb: string }
  /** A connection refused before the greeting. */
  | {
      event: 'smtpd.connection-refused';
      listener: string;
      client: string;
      reason: 'slots' | 'per-ip' | 'shutting-down';
      pool: 'mx' | 'submission';
    }
  /** A slot pool went above (or back below) its stress threshold: short timeouts apply. */
  | { event: 'smtpd.stress'; pool: 'mx' | 'submission'; connections: number; limit: number; on: boolean };

/**
 * Which requirement an outbound TLS decision was about (the rule met or failed), for metrics:
 * 'dane' (RFC 7672 TLSA), 'mta-sts' (RFC 8461), 'verify'/'secure' (PKIX + name), 'profile' (a TLS
 * profile such as BSI), 'protocol' (RFC 8996 deprecated versions), 'starttls' (TLS missing or
 * failed where required), 'encrypt' (TLS required, unauthenticated), 'opportunistic' (may),
 * 'cleartext' (level none, or may without TLS), 'dnssec' (a bogus/indeterminate lookup),
 * 'connect' (no decision: the connection failed), 'dns' (no address for the host).
 */
export type TlsCheck =
  | 'dane'
  | 'mta-sts'
  | 'verify'
  | 'secure'
  | 'profile'
  | 'protocol'
  | 'starttls'
  | 'encrypt'
  | 'opportunistic'
  | 'cleartext'
  | 'dnssec'
  | 'connect'
  | 'dns';

/** Outbound delivery (src/delivery). */
export type DeliveryEvent =
  | {
      event: 'delivery.plan';
      msgId: string | null;
      domain: string;
      via: 'route' | 'relayhost' | 'mx' | 'implicit-mx' | 'literal';
      targets: string[];
      /** The MX targets are the DNSSEC-validated answer (secure). */
      mxSecure: boolean;
      /** The table's level and profile for the domain, and the entry that matched. */
      level: string;
      profile: string | null;
      matched: string;
    }
  | {
      event: 'delivery.attempt';
      msgId: string | null;
      domain: string;
      mx: string;
      /** '' when the host was not connected to (policy skip, no address). */
      address: string;
      port: number;
      reused: boolean;
      level: string;
      profile: string | null;
      matched: string;
      /** The level enforced for this host after DANE / MTA-STS (policy/resolve.ts); null when skipped. */
      hostLevel: string | null;
      check: TlsCheck;
      tls: { protocol: string; cipher: string } | null;
      outcome: 'policy-ok' | 'policy-fail' | 'error';
      rule: string;
      reason: string;
      /** `postern policy check`: connected and decided, no MAIL sent. */
      probe?: boolean;
    }
  | {
      event: 'delivery.recipient';
      msgId: string | null;
      recipient: string;
      state: 'queued' | 'deferred' | 'delivered' | 'bounced';
      mx: string | null;
      reply: string | null;
      reason: string | null;
      /** RFC 3461 §6.2: NOTIFY/ORCPT passed on to a DSN-capable next hop. */
      dsnPassedOn: boolean;
    }
  | {
      event: 'delivery.mx-dnssec-failed';
      domain: string;
      status: 'bogus' | 'indeterminate';
      detail: string | null;
      reason: string;
    }
  | { event: 'delivery.sts-error'; domain: string; type: string | null; reason: string }
  | { event: 'delivery.sts-recheck'; domain: string; old: string | null; new: string | null }
  | { event: 'delivery.sts-testing-failure'; domain: string; mx: string; rule: string }
  | { event: 'delivery.tlsrpt-failed'; err: string }
  | { event: 'delivery.error'; msgId: string | null; domain: string; err: string };

/** The queue and its manager (src/queue, src/gateway/qmgr). */
export type QueueEvent =
  /** smtpd's message is committed to the spool (250 sent after this). */
  | {
      event: 'queue.accepted';
      msgId: string;
      from: string;
      rcpts: number;
      size: number;
      listener: string;
      tls: string | null;
    }
  /** A DSN was enqueued in the same transaction as the results that caused it. */
  | { event: 'qmgr.dsn'; msgId: string; dsnId: string; action: string; recipients: string[] }
  /** No DSN although one was due: a report about a bounce (null sender) is never sent. */
  | { event: 'qmgr.dsn-dropped'; msgId: string; action: string; why: 'null-sender' }
  /** Past the queue lifetime: the pending recipients bounced. */
  | { event: 'qmgr.expired'; msgId: string; recipients: string[] }
  /** One message's delivery failed unexpectedly or its results could not be stored; it stays queued. */
  | { event: 'qmgr.deliver-error'; msgId: string; err: string }
  /** A queue manager pass failed (the spool could not be read). */
  | { event: 'qmgr.error'; err: string };

/**
 * The admin endpoint (src/gateway/admin) and the operator's files: who changed the queue, refused
 * requests, tokens, the users file being reloaded, secrets readable by others.
 */
export type AdminEvent =
  /** `suppressed`: refusals for the same reason not logged since the previous one (log-flood bound). */
  | { event: 'admin.refused'; reason: string; method: string; path: string; client?: string; suppressed?: number }
  /** `who`: the token that authorised it (today only 'admin'); `client`: address:port it came from. */
  | { event: 'admin.queue-delete'; who: string; client: string; msgId: string; found: boolean }
  | { event: 'admin.queue-retry'; who: string; client: string; msgId: string | null; recipients: number }
  | { event: 'admin.token-created'; file: string; kind: 'admin' | 'metrics' }
  /** A secret (private key, users file, admin token) that group or others may read; `fix` says how. */
  | { event: 'admin.file-mode'; file: string; kind: 'private-key' | 'users' | 'admin-token'; mode: string; fix: string }
  | { event: 'admin.users-reloaded'; file: string; users: number }
  | { event: 'admin.users-reload-failed'; file: string; error: string };

export type PosternEvent = SmtpdEvent | DeliveryEvent | QueueEvent | AdminEvent;
export type EventName = PosternEvent['event'];

/** Log level of each event. Unlisted events log at info. */
const SEVERITY: Partial<Record<EventName, 'info' | 'warn' | 'error'>> = {
  'smtpd.limit': 'warn',
  'smtpd.starttls-injection': 'warn',
  'smtpd.bare-lf': 'warn',
  'smtpd.auth-failure': 'warn',
  'smtpd.bare-cr': 'warn',
  'smtpd.nul': 'warn',
  'smtpd.authzid-mismatch': 'warn',
  'smtpd.renegotiation-refused': 'warn',
  'smtpd.output-stall': 'warn',
  'smtpd.http-request': 'warn',
  'smtpd.connection-refused': 'warn',
  'smtpd.stress': 'warn',
  'admin.refused': 'warn',
  'delivery.mx-dnssec-failed': 'warn',
  'delivery.sts-error': 'warn',
  'delivery.sts-testing-failure': 'warn',
  'delivery.tlsrpt-failed': 'error',
  'delivery.error': 'error',
  'qmgr.dsn-dropped': 'warn',
  'qmgr.deliver-error': 'warn',
  'qmgr.error': 'error',
  'admin.queue-delete': 'warn',
  'admin.file-mode': 'warn',
  'admin.users-reload-failed': 'error',
};

export interface EventSink {
  emit(e: PosternEvent): void;
}

/** A sink that drops everything (tests, library use without logging). */
export const nullSink: EventSink = { emit: () => undefined };

/**
 * Log through `log` and count every event in `postern_events_total{event}` on `registry` (when
 * given). `extra` sees each event after it is counted (per-area metrics with richer labels).
 */
export function createEventSink(opts: {
  log?: Logger;
  registry?: Registry;
  extra?: (e: PosternEvent) => void;
}): EventSink {
  const counter =
    opts.registry === undefined
      ? null
      : new Counter({
          name: 'postern_events_total',
          help: 'Typed events by name (src/core/events.ts)',
          labelNames: ['event'],
          registers: [opts.registry],
        });
  return {
    emit(e) {
      counter?.inc({ event: e.event });
      const level = SEVERITY[e.event] ?? 'info';
      opts.log?.[level](e, e.event);
      opts.extra?.(e);
    },
  };
}
