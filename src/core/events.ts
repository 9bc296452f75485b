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

/** Outbound delivery (src/delivery). */
export type DeliveryEvent = {
  event: 'delivery.tls-outcome';
  domain: string;
  level: string;
  rule: string;
  outcome: 'policy-ok' | 'policy-fail' | 'error';
};

/** The queue and its manager (src/queue, src/gateway/qmgr). */
export type QueueEvent = { event: 'queue.dsn'; msgId: string; action: string };

/** The admin endpoint (src/gateway/admin). */
export type AdminEvent = { event: 'admin.refused'; reason: string; method: string; path: string };

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
