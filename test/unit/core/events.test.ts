import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { createEventSink, nullSink } from '../../../src/core/events.ts';
import type { PosternEvent } from '../../../src/core/events.ts';

function capture(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'info' }, out), lines };
}

test('every event is logged with its name and fields, at the severity its definition gives', () => {
  const { log, lines } = capture();
  const sink = createEventSink({ log });
  sink.emit({ event: 'smtpd.bare-lf', session: 's1', client: '192.0.2.1' });
  sink.emit({ event: 'qmgr.expired', msgId: 'm1', recipients: ['a@example.org'] });
  assert.equal(lines.length, 2);
  assert.equal(lines[0]?.event, 'smtpd.bare-lf');
  assert.equal(lines[0]?.client, '192.0.2.1');
  assert.equal(lines[0]?.level, 40, 'security events log at warn');
  assert.equal(lines[1]?.event, 'qmgr.expired');
  assert.equal(lines[1]?.level, 30, 'unlisted events log at info');
});

test('every event is counted by name in postern_events_total', async () => {
  const registry = new Registry();
  const seen: PosternEvent[] = [];
  const sink = createEventSink({ registry, extra: (e) => seen.push(e) });
  for (let i = 0; i < 3; i++) sink.emit({ event: 'smtpd.bare-lf', session: `s${i}`, client: '::1' });
  sink.emit({ event: 'admin.refused', reason: 'origin', method: 'POST', path: '/queue/flush' });
  const text = await registry.metrics();
  assert.match(text, /postern_events_total\{event="smtpd.bare-lf"\} 3/);
  assert.match(text, /postern_events_total\{event="admin.refused"\} 1/);
  assert.equal(seen.length, 4, 'the per-area hook sees every event');
});

test('the null sink accepts events and does nothing', () => {
  assert.doesNotThrow(() => nullSink.emit({ event: 'qmgr.expired', msgId: 'x', recipients: [] }));
});
