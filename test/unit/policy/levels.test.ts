import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  TLS_LEVELS,
  atLeast,
  attemptsTls,
  compareLevels,
  isTlsLevel,
  levelRank,
  parseLevel,
  requiresAuth,
  requiresTls,
} from '../../../src/policy/levels.ts';
import { UsageError } from '../../../src/core/errors.ts';

describe('policy levels', () => {
  it('are strictly ordered none < may < encrypt < verify < secure', () => {
    for (let i = 1; i < TLS_LEVELS.length; i++) {
      const a = TLS_LEVELS[i - 1];
      const b = TLS_LEVELS[i];
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(levelRank(a) < levelRank(b), `${a} < ${b}`);
      assert.ok(compareLevels(a, b) < 0);
      assert.ok(atLeast(b, a));
      assert.ok(!atLeast(a, b));
    }
    // Room for issue 5 (dane, mta-sts) between encrypt and verify.
    assert.ok(levelRank('verify') - levelRank('encrypt') > 2);
  });

  it('predicates match Postfix TLS_REQUIRED / TLS_MUST_MATCH', () => {
    const table = {
      none: [false, false, false],
      may: [true, false, false],
      encrypt: [true, true, false],
      verify: [true, true, true],
      secure: [true, true, true],
    } as const;
    for (const l of TLS_LEVELS) {
      assert.deepEqual([attemptsTls(l), requiresTls(l), requiresAuth(l)], [...table[l]], l);
    }
  });

  it('parses names case-insensitively and refuses reserved and unknown ones', () => {
    assert.equal(parseLevel(' Verify '), 'verify');
    assert.ok(isTlsLevel('secure'));
    assert.ok(!isTlsLevel('dane'));
    assert.throws(
      () => parseLevel('dane'),
      (e) => e instanceof UsageError && /not implemented/.test(e.message),
    );
    assert.throws(() => parseLevel('mta-sts'), UsageError);
    assert.throws(
      () => parseLevel('strict'),
      (e) => e instanceof UsageError && /unknown TLS level/.test(e.message),
    );
  });
});
