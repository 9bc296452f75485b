/** Prometheus metrics of the gateway (prom-client), one registry per gateway instance. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { PosternEvent } from '../core/events.ts';

export interface GatewayMetrics {
  registry: Registry;
  accepted: Counter<'listener'>;
  rejected: Counter<'reason'>;
  auth: Counter<'result'>;
  deliveries: Counter<'state'>;
  queue: Gauge<'state'>;
  /** Outbound TLS decisions: enforced level × the rule met or failed (TlsCheck) × ok/fail/error. */
  outboundTls: Counter<'level' | 'check' | 'outcome'>;
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'postern_' });
  return {
    registry,
    accepted: new Counter({
      name: 'postern_messages_accepted_total',
      help: 'Messages accepted and queued (250 sent)',
      labelNames: ['listener'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'postern_smtp_rejected_total',
      help: 'SMTP commands refused by policy',
      labelNames: ['reason'],
      registers: [registry],
    }),
    auth: new Counter({
      name: 'postern_auth_attempts_total',
      help: 'SASL authentication attempts',
      labelNames: ['result'],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'postern_recipient_results_total',
      help: 'Per-recipient delivery results',
      labelNames: ['state'],
      registers: [registry],
    }),
    queue: new Gauge({
      name: 'postern_queue_recipients',
      help: 'Recipients in the queue by state',
      labelNames: ['state'],
      registers: [registry],
    }),
    outboundTls: new Counter({
      name: 'postern_outbound_tls_total',
      help: 'Outbound TLS decisions per MX attempt by enforced level, the rule met or failed (dane, mta-sts, verify, profile, ...) and outcome',
      labelNames: ['level', 'check', 'outcome'],
      registers: [registry],
    }),
  };
}

/**
 * Count one `delivery.attempt` event in `postern_outbound_tls_total` (other events are ignored).
 * Probes (`postern policy check`) are not deliveries and are not counted.
 */
export function countOutboundTls(m: Pick<GatewayMetrics, 'outboundTls'>, e: PosternEvent): void {
  if (e.event !== 'delivery.attempt' || e.probe === true) return;
  const outcome = e.outcome === 'policy-ok' ? 'ok' : e.outcome === 'policy-fail' ? 'fail' : 'error';
  m.outboundTls.inc({ level: e.hostLevel ?? e.level, check: e.check, outcome });
}
