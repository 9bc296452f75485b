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
  wantsDane,
} from '../../../src/policy/levels.ts';
import { UsageError } from '../../../src/core/errors.ts';

describe('policy levels', () => {
  it('are strictly ordered none < may < encrypt < dane < dane-only < verify < secure (Postfix order)', () => {
    for (let i = 1; i < TLS_LEVELS.length; i++) {
      const a = TLS_LEVELS[i - 1];
      const b = TLS_LEVELS[i];
      assert.ok(a !== undefined && b !== undefined);
      assert.ok(levelRank(a) < levelRank(b), `${a} < ${b}`);
      assert.ok(compareLevels(a, b) < 0);
      assert.ok(atLeast(b, a));
      assert.ok(!atLeast(a, b));
    }
    assert.deepEqual([...TLS_LEVELS], ['none', 'may', 'encrypt', 'dane', 'dane-only', 'verify', 'secure']);
  });

  it('predicates match Postfix TLS_REQUIRED / TLS_MUST_MATCH', () => {
    const table = {
      none: [false, false, false],
      may: [true, false, false],
      encrypt: [true, true, false],
      // As an effective level `dane` means "TLSA records apply": TLS required, authenticated by
      // TLSA rather than PKIX, so requiresAuth (the PKIX predicate) stays false.
      dane: [true, true, false],
      'dane-only': [true, true, false],
      verify: [true, true, true],
      secure: [true, true, true],
    } as const;
    for (const l of TLS_LEVELS) {
      assert.deepEqual([attemptsTls(l), requiresTls(l), requiresAuth(l)], [...table[l]], l);
    }
  });

  it('parses names case-insensitively; mta-sts is not a level and unknown names are refused', () => {
    assert.equal(parseLevel(' Verify '), 'verify');
    assert.equal(parseLevel('DANE-only'), 'dane-only');
    assert.ok(isTlsLevel('secure'));
    assert.ok(isTlsLevel('dane'));
    assert.ok(wantsDane('dane') && wantsDane('dane-only') && !wantsDane('verify'));
    assert.throws(
      () => parseLevel('mta-sts'),
      (e) => e instanceof UsageError && /not a level/.test(e.message),
    );
    assert.throws(
      () => parseLevel('strict'),
      (e) => e instanceof UsageError && /unknown TLS level/.test(e.message),
    );
  });
});
