/** Prometheus metrics of the gateway (prom-client), one registry per gateway instance. */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { PosternEvent } from '../core/events.ts';
import type { QueueAges, Spool } from '../queue/types.ts';

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

/** Age thresholds of `postern_queue_messages_older_than` (label `age`). */
export const QUEUE_AGE_BUCKETS: ReadonlyArray<{ label: string; ms: number }> = [
  { label: '5m', ms: 5 * 60_000 },
  { label: '1h', ms: 3_600_000 },
  { label: '4h', ms: 4 * 3_600_000 },
  { label: '1d', ms: 86_400_000 },
  { label: '3d', ms: 3 * 86_400_000 },
];

/**
 * The queue by age, read from the spool at each scrape (no timers, no stale values): how many
 * messages, how old the oldest is, and how many are older than each of QUEUE_AGE_BUCKETS. A
 * growing oldest age with a flat message count is mail stuck behind one destination.
 */
export function registerQueueMetrics(
  registry: Registry,
  spool: Pick<Spool, 'ages'>,
  now: () => Date = () => new Date(),
): void {
  const ages = (): Promise<QueueAges> =>
    spool.ages(
      now(),
      QUEUE_AGE_BUCKETS.map((b) => b.ms),
    );
  new Gauge({
    name: 'postern_queue_messages',
    help: 'Messages in the queue',
    registers: [registry],
    async collect() {
      this.set((await ages()).messages);
    },
  });
  new Gauge({
    name: 'postern_queue_oldest_message_age_seconds',
    help: 'Age of the oldest message in the queue (0 when empty)',
    registers: [registry],
    async collect() {
      const a = await ages();
      const t = now().getTime();
      this.set(a.oldestCreatedAt === null ? 0 : Math.max(0, (t - Date.parse(a.oldestCreatedAt)) / 1000));
    },
  });
  new Gauge({
    name: 'postern_queue_messages_older_than',
    help: 'Messages queued longer than `age`',
    labelNames: ['age'],
    registers: [registry],
    async collect() {
      const a = await ages();
      QUEUE_AGE_BUCKETS.forEach((b, i) => this.set({ age: b.label }, a.olderThan[i] ?? 0));
    },
  });
}
