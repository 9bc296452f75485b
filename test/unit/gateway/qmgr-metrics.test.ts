/** /metrics shows the queue by age (src/gateway/metrics.ts registerQueueMetrics), read from the spool at scrape time. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, it } from 'node:test';
import { Registry } from 'prom-client';
import { registerQueueMetrics } from '../../../src/gateway/metrics.ts';
import { openSqliteSpool } from '../../../src/queue/sqlite.ts';
import { testClock, testEnvelope } from '../queue/spool-contract.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('exports message count, oldest age and age buckets of the queue', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-qmetrics-'));
  dirs.push(dir);
  const clock = testClock();
  const spool = await openSqliteSpool(path.join(dir, 'q'), { now: clock.now });
  try {
    const registry = new Registry();
    registerQueueMetrics(registry, spool, clock.now);
    let text = await registry.metrics();
    assert.match(text, /^postern_queue_messages 0$/m);
    assert.match(text, /^postern_queue_oldest_message_age_seconds 0$/m);

    await spool.enqueue(testEnvelope(), Buffer.from('a'));
    clock.advance(2 * 3_600_000);
    await spool.enqueue(testEnvelope(), Buffer.from('b'));
    clock.advance(10 * 60_000); // ages: 2 h 10 min and 10 min
    text = await registry.metrics();
    assert.match(text, /^postern_queue_messages 2$/m);
    assert.match(text, /^postern_queue_oldest_message_age_seconds 7800$/m);
    assert.match(text, /^postern_queue_messages_older_than\{age="5m"\} 2$/m);
    assert.match(text, /^postern_queue_messages_older_than\{age="1h"\} 1$/m);
    assert.match(text, /^postern_queue_messages_older_than\{age="4h"\} 0$/m);
    assert.match(text, /^postern_queue_messages_older_than\{age="1d"\} 0$/m);
  } finally {
    await spool.close();
  }
});
