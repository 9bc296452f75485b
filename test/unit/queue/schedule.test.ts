import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyReply,
  DEFAULT_RETRY,
  delayWarningDue,
  dsnStatus,
  isExpired,
  nextAttempt,
} from '../../../src/queue/schedule.ts';

const T0 = new Date('2025-07-01T00:00:00.000Z');
const MIN = 60_000;
const delay = (attempts: number, random = 0.5, opts = {}): number =>
  nextAttempt(attempts, T0, opts, () => random).getTime() - T0.getTime();

describe('nextAttempt', () => {
  it('grows exponentially from 5 minutes and stops at 1 hour (defaults, mid jitter)', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 50].map((n) => delay(n) / MIN),
      [5, 10, 20, 40, 60, 60, 60],
    );
    assert.equal(delay(0), 5 * MIN); // "no attempt yet" is treated as the first
  });
  it('keeps jitter within ±10 % and never above the maximum', () => {
    assert.equal(delay(1, 0), 4.5 * MIN);
    assert.equal(delay(1, 1), 5.5 * MIN);
    assert.equal(delay(4, 1), 44 * MIN);
    for (let i = 0; i < 200; i++) {
      const d = nextAttempt(10, T0).getTime() - T0.getTime();
      assert.ok(d <= DEFAULT_RETRY.maxMs && d >= DEFAULT_RETRY.maxMs * 0.9, String(d));
    }
  });
  it('is configurable and survives absurd inputs', () => {
    assert.equal(delay(3, 0.5, { initialMs: 1000, maxMs: 100_000, factor: 3, jitter: 0 }), 9000);
    assert.equal(delay(1e9, 0.5), 60 * MIN);
    assert.equal(delay(Number.NaN, 0.5), 5 * MIN);
    assert.equal(delay(3, 0.5, { factor: 0.5, jitter: 0 }), 5 * MIN); // never shrinks
  });
});

describe('lifetime and delay warnings', () => {
  it('expires after 5 days by default, or the configured lifetime', () => {
    const created = '2025-07-01T00:00:00.000Z';
    assert.equal(isExpired(created, new Date('2025-07-05T23:59:59.999Z')), false);
    assert.equal(isExpired(created, new Date('2025-07-06T00:00:00.000Z')), true);
    assert.equal(isExpired(T0, new Date(T0.getTime() + 3_600_000), 3_600_000), true);
  });
  it('warns once after 4 hours by default; 0 disables', () => {
    const at = (h: number): Date => new Date(T0.getTime() + h * 3_600_000);
    assert.equal(delayWarningDue(T0, at(3.99), false), false);
    assert.equal(delayWarningDue(T0, at(4), false), true);
    assert.equal(delayWarningDue(T0, at(10), true), false);
    assert.equal(delayWarningDue(T0, at(10), false, 0), false);
  });
});

describe('classifyReply (RFC 5321 §4.2.1, RFC 3463)', () => {
  it('maps 4xx to temporary and 5xx to permanent', () => {
    assert.equal(classifyReply(421), 'temporary');
    assert.equal(classifyReply(451, '4.7.5'), 'temporary');
    assert.equal(classifyReply(550), 'permanent');
    assert.equal(classifyReply(554, '5.7.1'), 'permanent');
    assert.equal(classifyReply(250, '2.0.0'), 'success');
    assert.equal(classifyReply(354), 'success');
  });
  it('the reply code decides when its enhanced code disagrees (RFC 3463 §2); malformed defers', () => {
    assert.equal(classifyReply(550, '4.2.2'), 'permanent');
    assert.equal(classifyReply(450, '5.1.1'), 'temporary');
    assert.equal(classifyReply(999), 'temporary');
    assert.equal(classifyReply(150), 'temporary');
    assert.equal(classifyReply(Number.NaN), 'temporary');
    assert.equal(classifyReply(550, 'garbage'), 'permanent');
  });
  it("dsnStatus: the reply's class with the enhanced subject/detail, else the class default", () => {
    assert.equal(dsnStatus(550, '5.7.1'), '5.7.1');
    assert.equal(dsnStatus(550), '5.0.0');
    assert.equal(dsnStatus(451, '5.7.1'), '4.7.1');
    assert.equal(dsnStatus(550, '4.7.1'), '5.7.1');
    assert.equal(dsnStatus(250, ' 2.1.5 '), '2.1.5');
    assert.equal(dsnStatus(554, '5.7.1000'), '5.0.0');
  });
});
