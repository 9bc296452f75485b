/** The queue's one schedule (src/queue/schedule.ts `createSchedule`): backoff and lifetimes above the storage. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSchedule } from '../../../src/queue/schedule.ts';
import type { RecipientStatus } from '../../../src/queue/types.ts';

const NOW = new Date('2025-07-01T10:00:00.000Z');

function st(state: RecipientStatus['state'], extra: Partial<RecipientStatus> = {}): RecipientStatus {
  return {
    id: 0,
    address: 'a@x.test',
    state,
    attempts: 1,
    lastReply: null,
    reason: null,
    nextAttemptAt: null,
    updatedAt: NOW.toISOString(),
    ...extra,
  };
}

describe('createSchedule', () => {
  const s = createSchedule({
    retry: { initialMs: 60_000, maxMs: 600_000, factor: 2, jitter: 0 },
    maxLifetimeMs: 10 * 3_600_000,
    delayWarningMs: 3_600_000,
  });

  it('settles a deferred recipient with the backoff of its attempt count', () => {
    assert.equal(s.settle(st('deferred'), NOW).nextAttemptAt, '2025-07-01T10:01:00.000Z');
    assert.equal(s.settle(st('deferred', { attempts: 3 }), NOW).nextAttemptAt, '2025-07-01T10:04:00.000Z');
    assert.equal(s.settle(st('deferred', { attempts: 30 }), NOW).nextAttemptAt, '2025-07-01T10:10:00.000Z');
  });

  it('keeps an explicit time, makes queued due now, and clears the time of final states', () => {
    const at = '2025-07-01T12:00:00.000Z';
    assert.equal(s.settle(st('deferred', { nextAttemptAt: at }), NOW).nextAttemptAt, at);
    assert.equal(s.settle(st('queued'), NOW).nextAttemptAt, NOW.toISOString());
    assert.equal(s.settle(st('delivered', { nextAttemptAt: at }), NOW).nextAttemptAt, null);
    assert.equal(s.settle(st('bounced', { nextAttemptAt: at }), NOW).nextAttemptAt, null);
  });

  it('turns lifetimes into the cut-off times a spool selects by', () => {
    assert.equal(s.expiredBefore(NOW).toISOString(), '2025-07-01T00:00:00.000Z');
    assert.equal(s.warnBefore(NOW)?.toISOString(), '2025-07-01T09:00:00.000Z');
    assert.equal(s.retryUntil('2025-07-01T10:00:00.000Z').toISOString(), '2025-07-01T20:00:00.000Z');
    assert.equal(createSchedule({ delayWarningMs: 0 }).warnBefore(NOW), null, 'warnings off');
  });

  it('defaults to Postfix: 5 days lifetime, 4 h delay warning', () => {
    const d = createSchedule();
    assert.equal(d.maxLifetimeMs, 5 * 86_400_000);
    assert.equal(d.delayWarningMs, 4 * 3_600_000);
  });
});
