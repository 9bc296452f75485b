/** The gateway's one event sink (gateway.ts gatewayEventSink): every event counted, delivery attempts in postern_outbound_tls_total. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { pino } from 'pino';
import { gatewayEventSink } from '../../../src/gateway/gateway.ts';
import { createMetrics } from '../../../src/gateway/metrics.ts';

it('counts every event by name and outbound TLS decisions by level, check and outcome', async () => {
  const metrics = createMetrics();
  const sink = gatewayEventSink(pino({ level: 'silent' }), metrics);
  const attempt = {
    event: 'delivery.attempt' as const,
    msgId: 'm1',
    domain: 'example.org',
    mx: 'mx.example.org',
    address: '192.0.2.1',
    port: 25,
    reused: false,
    level: 'may',
    profile: null,
    matched: 'default',
    hostLevel: 'verify',
    check: 'mta-sts' as const,
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_128_GCM_SHA256' },
    outcome: 'policy-ok' as const,
    rule: 'MTA-STS enforce: certificate valid for mx.example.org',
    reason: 'ok',
  };
  sink.emit(attempt);
  sink.emit({ ...attempt, outcome: 'policy-fail' });
  sink.emit({ ...attempt, probe: true }); // postern policy check: not a delivery
  sink.emit({ event: 'qmgr.expired', msgId: 'm2', recipients: ['a@example.org'] });
  const text = await metrics.registry.metrics();
  assert.match(text, /^postern_outbound_tls_total\{level="verify",check="mta-sts",outcome="ok"\} 1$/m);
  assert.match(text, /^postern_outbound_tls_total\{level="verify",check="mta-sts",outcome="fail"\} 1$/m);
  assert.match(text, /^postern_events_total\{event="delivery.attempt"\} 3$/m);
  assert.match(text, /^postern_events_total\{event="qmgr.expired"\} 1$/m);
});
