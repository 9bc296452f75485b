/**
 * The 454 reply to a login refused by a failed-login limit says when the lockout ends (issue 9:
 * a new user locked out for 15 minutes was not told for how long), keeping RFC 4954 §6's
 * `454 4.7.0` (temporary), and names which limit held.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AuthRateLimited } from '../../../src/smtp/server/types.ts';
import { plain, session, startHarness } from '../../helpers/smtp-harness.ts';
import type { Harness } from '../../helpers/smtp-harness.ts';

const LOCKOUTS: Record<string, AuthRateLimited> = {
  ip15m: {
    result: 'rate-limited',
    scope: 'address',
    until: new Date('2026-12-04T18:42:07.250Z'),
    retryAfterMs: 15 * 60_000,
  },
  user90s: { result: 'rate-limited', scope: 'user', until: new Date('2026-12-04T09:05:00Z'), retryAfterMs: 90_001 },
  ip1s: { result: 'rate-limited', scope: 'address', until: new Date('2026-12-04T00:00:01Z'), retryAfterMs: 400 },
};

describe('AUTH lockout reply', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      limits: { errorDelayMs: 0 },
      hooks: { authenticate: async (user) => LOCKOUTS[user] ?? 'bad' },
    });
  });
  after(async () => {
    await h?.close();
  });

  test('454 4.7.0 with the end time in UTC and how long that is', async () => {
    const c = await session(h.port['sub'] as number, { tls: true });
    try {
      assert.equal(
        (await c.cmd(`AUTH PLAIN ${plain('ip15m', 'x')}`)).raw,
        '454 4.7.0 Too many failed logins from your address; try again after 18:42:07 UTC (in 15 minutes)\r\n',
      );
      assert.equal(
        (await c.cmd(`AUTH PLAIN ${plain('user90s', 'x')}`)).raw,
        '454 4.7.0 Too many failed logins for this user; try again after 09:05:00 UTC (in 2 minutes)\r\n',
      );
      assert.equal(
        (await c.cmd(`AUTH PLAIN ${plain('ip1s', 'x')}`)).raw,
        '454 4.7.0 Too many failed logins from your address; try again after 00:00:01 UTC (in 1 second)\r\n',
      );
      // A wrong password is still 535, not a lockout.
      assert.equal((await c.cmd(`AUTH PLAIN ${plain('someone', 'x')}`)).code, 535);
    } finally {
      c.close();
    }
  });
});
