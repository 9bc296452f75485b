/** AuthRateLimiter: sliding windows per IP and per user, bounded memory. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthRateLimiter } from '../../../../src/gateway/users.ts';

describe('AuthRateLimiter', () => {
  const make = () => {
    let now = 1_000_000;
    const rl = new AuthRateLimiter({
      perIp: { failures: 3, windowMs: 60_000 },
      perUser: { failures: 5, windowMs: 120_000 },
      maxEntries: 100,
      now: () => now,
    });
    return { rl, advance: (ms: number) => (now += ms) };
  };
  test('per IP: the n-th failure blocks until the oldest one leaves the sliding window', () => {
    const { rl, advance } = make();
    rl.recordFailure('203.0.113.1', 'a');
    advance(10_000);
    rl.recordFailure('203.0.113.1', 'b');
    advance(10_000);
    assert.deepEqual(rl.check('203.0.113.1', 'c'), { allowed: true, retryAfterMs: 0 });
    rl.recordFailure('203.0.113.1', 'c');
    const c = rl.check('203.0.113.1', 'd');
    assert.equal(c.allowed, false);
    assert.equal(c.retryAfterMs, 40_000);
    assert.equal(rl.check('203.0.113.2', 'd').allowed, true, 'other IPs are unaffected');
    advance(40_000);
    assert.equal(rl.check('203.0.113.1', 'd').allowed, true, 'first failure aged out');
    rl.recordFailure('203.0.113.1', 'd');
    assert.equal(rl.check('203.0.113.1', 'd').allowed, false, 'sliding, not a fixed window');
  });
  test('per user: failures from many IPs add up; success clears the user but not the IP', () => {
    const { rl } = make();
    for (let i = 0; i < 5; i++) rl.recordFailure(`198.51.100.${i}`, 'Victim');
    const c = rl.check('198.51.100.99', 'victim');
    assert.equal(c.allowed, false);
    assert.equal(c.retryAfterMs, 120_000);
    rl.recordSuccess('198.51.100.99', 'VICTIM');
    assert.equal(rl.check('198.51.100.99', 'victim').allowed, true);
    rl.recordFailure('192.0.2.1', null);
    rl.recordFailure('192.0.2.1', null);
    rl.recordFailure('192.0.2.1', 'x');
    rl.recordSuccess('192.0.2.1', 'x');
    assert.equal(rl.check('192.0.2.1', 'y').allowed, false, 'a success does not reset the IP budget');
  });
  test('IPv6 clients count per /64; IPv4-mapped addresses count as IPv4', () => {
    const { rl } = make();
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3']) rl.recordFailure(ip, null);
    assert.equal(rl.check('2001:db8:1:2::99', null).allowed, false);
    assert.equal(rl.check('2001:db8:1:3::1', null).allowed, true);
    for (let i = 0; i < 3; i++) rl.recordFailure('::ffff:192.0.2.7', null);
    assert.equal(rl.check('192.0.2.7', null).allowed, false);
  });
  test('memory is bounded', () => {
    const { rl } = make();
    for (let i = 0; i < 1000; i++) rl.recordFailure(`10.0.${i >> 8}.${i & 255}`, `user${i}`);
    assert.ok(rl.size.ips <= 100 && rl.size.users <= 100, JSON.stringify(rl.size));
    // The most recent offenders are the ones kept.
    for (let i = 0; i < 2; i++) rl.recordFailure('10.0.3.231', null);
    assert.equal(rl.check('10.0.3.231', null).allowed, false);
  });
});
