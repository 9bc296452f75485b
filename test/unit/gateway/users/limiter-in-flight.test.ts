/** users/limiter.ts: attempts count while in flight, so parallel guesses cannot outrun the limit. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthRateLimiter, checkLogin } from '../../../../src/gateway/users.ts';

const make = () => {
  let now = Date.UTC(2026, 11, 4, 18, 27, 7);
  const rl = new AuthRateLimiter({
    perIp: { failures: 5, windowMs: 15 * 60_000 },
    perUser: { failures: 10, windowMs: 15 * 60_000 },
    now: () => now,
  });
  return { rl, advance: (ms: number) => (now += ms), now: () => now };
};

describe('AuthRateLimiter.begin', () => {
  test('admits at most `failures` attempts in flight from one address; the rest are refused with the end time', () => {
    const { rl, now } = make();
    const results = Array.from({ length: 20 }, (_, i) => rl.begin('203.0.113.9', `user${i}`));
    const admitted = results.filter((r) => r.allowed);
    assert.equal(admitted.length, 5);
    for (const r of results.slice(5)) {
      assert.equal(r.allowed, false);
      if (r.allowed) continue;
      assert.equal(r.scope, 'address');
      assert.equal(r.retryAfterMs, 15 * 60_000, 'attempts in flight count as failures happening now');
      assert.equal(r.until.getTime(), now() + 15 * 60_000);
    }
    assert.equal(rl.begin('203.0.113.10', 'x').allowed, true, 'another address is unaffected');
  });

  test('a finished success frees its slot; a finished failure keeps it for the window', () => {
    const { rl, advance } = make();
    const t = Array.from({ length: 5 }, () => rl.begin('192.0.2.1', 'alice'));
    assert.equal(rl.begin('192.0.2.1', 'alice').allowed, false);
    const [first, second] = t;
    if (!first?.allowed || !second?.allowed) throw new Error('expected admitted attempts');
    first.finish(true);
    first.finish(false); // ignored: an attempt finishes once
    assert.equal(rl.check('192.0.2.1', 'alice').allowed, true, 'a success is not a failure');
    second.finish(false);
    for (const x of t.slice(2)) if (x.allowed) x.finish(false);
    const r = rl.begin('192.0.2.1', 'alice');
    assert.equal(r.allowed, true, '4 failures, nothing in flight: one more is allowed');
    if (r.allowed) r.finish(false);
    assert.equal(rl.begin('192.0.2.1', 'alice').allowed, false);
    advance(15 * 60_000);
    assert.equal(rl.begin('192.0.2.1', 'alice').allowed, true, 'the failures aged out');
  });

  test('per user: in-flight attempts from many addresses add up', () => {
    const { rl } = make();
    for (let i = 0; i < 10; i++) assert.equal(rl.begin(`198.51.100.${i}`, 'Victim').allowed, true);
    const r = rl.begin('198.51.100.99', 'victim');
    assert.equal(r.allowed, false);
    if (!r.allowed) assert.equal(r.scope, 'user');
  });
});

describe('checkLogin', () => {
  test('counts the attempt before the hash finishes, records the outcome after', async () => {
    const { rl } = make();
    const gates: Array<() => void> = [];
    let hashes = 0;
    const verify = (_u: string, p: string): Promise<boolean> =>
      new Promise((resolve) => {
        hashes++;
        gates.push(() => resolve(p === 'right'));
      });
    const attempts = Array.from({ length: 20 }, (_, i) =>
      checkLogin(rl, verify, '203.0.113.7', 'alice', i === 19 ? 'right' : 'wrong'),
    );
    assert.equal(hashes, 5, 'only the admitted attempts are hashed');
    for (const g of gates) g();
    const out = await Promise.all(attempts);
    assert.equal(out.filter((r) => r === 'bad').length, 5);
    const limited = out.filter((r) => typeof r === 'object');
    assert.equal(limited.length, 15);
    assert.equal(out[19] !== 'ok', true, 'the right password as the 20th guess is not even checked');
    assert.equal(rl.begin('203.0.113.7', 'alice').allowed, false, 'five failures recorded');
  });

  test('a throwing verify still finishes the attempt (as a failure)', async () => {
    const { rl } = make();
    await assert.rejects(
      checkLogin(rl, () => Promise.reject(new Error('boom')), '192.0.2.5', 'bob', 'pw'),
      /boom/,
    );
    for (let i = 0; i < 4; i++) assert.equal(await checkLogin(rl, async () => false, '192.0.2.5', 'bob', 'pw'), 'bad');
    assert.equal(typeof (await checkLogin(rl, async () => true, '192.0.2.5', 'bob', 'pw')), 'object');
  });
});
