/** Prometheus metrics of the gateway (prom-client), one registry per gateway instance. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export interface GatewayMetrics {
  registry: Registry;
  accepted: Counter<'listener'>;
  rejected: Counter<'reason'>;
  auth: Counter<'result'>;
  deliveries: Counter<'state'>;
  queue: Gauge<'state'>;
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
  };
}
