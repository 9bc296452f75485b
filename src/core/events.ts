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
  | { event: 'smtpd.limit'; session: string; client: string; limit: string; detail?: string }
  | { event: 'smtpd.starttls-injection'; session: string; client: string; bytes: number }
  | { event: 'smtpd.bare-lf'; session: string; client: string }
  | { event: 'smtpd.auth-failure'; session: string; client: string; user: string | null; mechanism: string };

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
  'admin.refused': 'warn',
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
