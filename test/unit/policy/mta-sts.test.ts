import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseStsRecord } from '../../../src/policy/mta-sts/record.ts';
import { MAX_MAX_AGE, MAX_POLICY_BYTES, parseStsPolicy } from '../../../src/policy/mta-sts/policy.ts';
import { mxMatches, policyCovers } from '../../../src/policy/mta-sts/match.ts';

function recordReason(txt: string[][]): string {
  const r = parseStsRecord(txt);
  assert.equal(r.ok, false, `expected invalid: ${JSON.stringify(txt)}`);
  return r.ok ? '' : r.reason;
}

function policyReason(text: string): string {
  const r = parseStsPolicy(text);
  assert.equal(r.ok, false, `expected invalid: ${JSON.stringify(text)}`);
  return r.ok ? '' : r.reason;
}

describe('MTA-STS TXT record (RFC 8461 §3.1)', () => {
  it('parses the RFC example', () => {
    assert.deepEqual(parseStsRecord([['v=STSv1; id=20160831085700Z;']]), { ok: true, id: '20160831085700Z' });
  });

  it('concatenates the character-strings of one record', () => {
    assert.deepEqual(parseStsRecord([['v=STSv1; id=2016', '0831085700Z']]), { ok: true, id: '20160831085700Z' });
  });

  it('accepts optional whitespace around ";" and no trailing delimiter', () => {
    assert.deepEqual(parseStsRecord([['v=STSv1 ;\tid=abc ']]), { ok: true, id: 'abc' });
    assert.deepEqual(parseStsRecord([['v=STSv1;id=abc']]), { ok: true, id: 'abc' });
  });

  it('ignores unknown fields and unrelated TXT records', () => {
    const r = parseStsRecord([['v=spf1 -all'], ['v=STSv1; foo=bar; id=X1; baz.q-1=v'], ['hello']]);
    assert.deepEqual(r, { ok: true, id: 'X1' });
  });

  it('accepts a 32-character id and rejects 33', () => {
    const id32 = 'a'.repeat(32);
    assert.deepEqual(parseStsRecord([[`v=STSv1; id=${id32}`]]), { ok: true, id: id32 });
    assert.match(recordReason([[`v=STSv1; id=${id32}a`]]), /1-32 letters or digits/);
  });

  const invalid: [string, string[][], RegExp][] = [
    ['no records', [], /no v=STSv1 record/],
    ['only non-STS records', [['v=spf1 -all']], /no v=STSv1 record/],
    ['wrong version', [['v=STSv2; id=1']], /no v=STSv1 record/],
    ['version is case-sensitive', [['V=STSv1; id=1']], /no v=STSv1 record/],
    ['version prefix of a longer token', [['v=STSv10; id=1']], /no v=STSv1 record/],
    ['two STS records', [['v=STSv1; id=1'], ['v=STSv1; id=2']], /2 v=STSv1 records/],
    ['bare version', [['v=STSv1']], /no fields/],
    ['missing id', [['v=STSv1; foo=bar']], /missing id/],
    ['empty id', [['v=STSv1; id=']], /1-32 letters or digits/],
    ['id with punctuation', [['v=STSv1; id=2016-08-31']], /1-32 letters or digits/],
    ['duplicate id', [['v=STSv1; id=1; id=2']], /duplicate id/],
    ['empty field in the middle', [['v=STSv1;; id=1']], /empty field/],
    ['double trailing delimiter', [['v=STSv1; id=1;;']], /empty field/],
    ['malformed extension', [['v=STSv1; id=1; junk']], /malformed field/],
    ['extension with space in value', [['v=STSv1; id=1; a=b c']], /malformed field/],
  ];
  for (const [name, txt, reason] of invalid) {
    it(`rejects ${name}`, () => assert.match(recordReason(txt), reason));
  }
});

const RFC_POLICY =
  'version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n';

describe('MTA-STS policy (RFC 8461 §3.2)', () => {
  it('parses the RFC example with CRLF and with LF', () => {
    const expected = {
      ok: true,
      policy: {
        version: 'STSv1',
        mode: 'enforce',
        mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'],
        maxAge: 604800,
      },
    };
    assert.deepEqual(parseStsPolicy(RFC_POLICY), expected);
    assert.deepEqual(parseStsPolicy(RFC_POLICY.replaceAll('\r\n', '\n')), expected);
    assert.deepEqual(parseStsPolicy(RFC_POLICY.replace(/\r\n$/, '')), expected);
  });

  it('accepts mode none without mx and mode testing', () => {
    const none = parseStsPolicy('version: STSv1\nmode: none\nmax_age: 86400\n');
    assert.deepEqual(none, { ok: true, policy: { version: 'STSv1', mode: 'none', mx: [], maxAge: 86400 } });
    const testing = parseStsPolicy('version: STSv1\nmode: testing\nmx: MX.Example.COM\nmax_age: 1\n');
    assert.ok(testing.ok);
    assert.equal(testing.policy.mode, 'testing');
    assert.deepEqual(testing.policy.mx, ['mx.example.com']);
  });

  it('ignores unknown keys and tolerates whitespace after ":" and at line end', () => {
    const r = parseStsPolicy(
      'version:STSv1  \nfoo_bar: anything goes here ✓\nmode:\tenforce\nmx: a.example\nmax_age: 5\t\n',
    );
    assert.ok(r.ok);
    assert.equal(r.policy.maxAge, 5);
  });

  it('accepts max_age bounds 0 and 31557600, rejects 31557601', () => {
    const p = (age: string) => parseStsPolicy(`version: STSv1\nmode: enforce\nmx: a.example\nmax_age: ${age}\n`);
    const zero = p('0');
    assert.ok(zero.ok);
    assert.equal(zero.policy.maxAge, 0);
    const max = p(String(MAX_MAX_AGE));
    assert.ok(max.ok);
    assert.equal(max.policy.maxAge, 31557600);
    assert.match(policyReason(`version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n`), /above 31557600/);
    const leadingZeros = p('0000604800');
    assert.ok(leadingZeros.ok);
    assert.equal(leadingZeros.policy.maxAge, 604800);
  });

  const head = 'version: STSv1\nmode: enforce\nmx: a.example\n';
  const invalid: [string, string, RegExp][] = [
    ['an empty body', '', /empty policy/],
    ['wrong version', 'version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n', /unsupported version/],
    ['key case mismatch', 'Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n', /missing version/],
    ['duplicate version', 'version: STSv1\nversion: STSv1\nmode: none\nmax_age: 1\n', /duplicate version/],
    ['missing mode', 'version: STSv1\nmx: a.example\nmax_age: 1\n', /missing mode/],
    ['invalid mode', 'version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n', /invalid mode/],
    ['duplicate mode', 'version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 1\n', /duplicate mode/],
    ['missing mx in enforce', 'version: STSv1\nmode: enforce\nmax_age: 1\n', /missing mx/],
    ['missing mx in testing', 'version: STSv1\nmode: testing\nmax_age: 1\n', /missing mx/],
    ['missing max_age', head, /missing max_age/],
    ['duplicate max_age', `${head}max_age: 1\nmax_age: 2\n`, /duplicate max_age/],
    ['signed max_age', `${head}max_age: +1\n`, /1-10 digits/],
    ['negative max_age', `${head}max_age: -1\n`, /1-10 digits/],
    ['11-digit max_age', `${head}max_age: 00000000001\n`, /1-10 digits/],
    ['fractional max_age', `${head}max_age: 1.5\n`, /1-10 digits/],
    ['empty max_age', `${head}max_age:\n`, /empty or invalid value/],
    ['wildcard not left-most', 'version: STSv1\nmode: enforce\nmx: mail.*.example\nmax_age: 1\n', /invalid mx/],
    ['bare wildcard', 'version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n', /invalid mx/],
    ['mx with trailing dot', 'version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1\n', /invalid mx/],
    ['mx with underscore', 'version: STSv1\nmode: enforce\nmx: a_b.example\nmax_age: 1\n', /invalid mx/],
    ['a line without ":"', `${head}max_age 1\n`, /not a "key: value"/],
    ['space before ":"', `${head}max_age : 1\n`, /not a "key: value"/],
    ['leading whitespace', `${head} max_age: 1\n`, /not a "key: value"/],
    ['a blank line between fields', 'version: STSv1\n\nmode: none\nmax_age: 1\n', /not a "key: value"/],
    ['a control character in a value', `${head}max_age: 1\nx: a\u0001b\n`, /invalid value/],
    ['a bare CR inside a line', 'version: STSv1\rmode: none\nmax_age: 1\n', /invalid value/],
    ['an over-long key', `${head}max_age: 1\n${'k'.repeat(33)}: v\n`, /not a "key: value"/],
  ];
  for (const [name, text, reason] of invalid) {
    it(`rejects ${name}`, () => assert.match(policyReason(text), reason));
  }

  it(`rejects bodies over MAX_POLICY_BYTES (${MAX_POLICY_BYTES}) counted in UTF-8 bytes`, () => {
    const base = `${head}max_age: 1\nx: `;
    const fits = base + 'a'.repeat(MAX_POLICY_BYTES - base.length);
    assert.equal(parseStsPolicy(fits).ok, true);
    assert.match(policyReason(fits + 'a'), /larger than 65536 bytes/);
    // 2-byte characters: fewer UTF-16 units than the limit but more bytes.
    const wide = base + 'é'.repeat(MAX_POLICY_BYTES / 2);
    assert.ok(wide.length < MAX_POLICY_BYTES);
    assert.match(policyReason(wide), /larger than/);
  });
});

describe('MX matching (RFC 8461 §4.1)', () => {
  it('matches exact names case-insensitively, ignoring a trailing dot', () => {
    assert.equal(mxMatches('mail.example.com', 'mail.example.com'), true);
    assert.equal(mxMatches('mail.example.com', 'MAIL.Example.COM.'), true);
    assert.equal(mxMatches('Mail.Example.com.', 'mail.example.com'), true);
    assert.equal(mxMatches('mail.example.com', 'mail2.example.com'), false);
    assert.equal(mxMatches('mail.example.com', 'example.com'), false);
    assert.equal(mxMatches('example.com', 'mail.example.com'), false);
  });

  it('lets a wildcard match exactly one left-most label', () => {
    assert.equal(mxMatches('*.example.com', 'mail.example.com'), true);
    assert.equal(mxMatches('*.example.com', 'MX1.EXAMPLE.COM.'), true);
    assert.equal(mxMatches('*.example.com', 'a.b.example.com'), false);
    assert.equal(mxMatches('*.example.com', 'example.com'), false);
    assert.equal(mxMatches('*.example.com', '.example.com'), false);
    assert.equal(mxMatches('*.example.com', 'mailexample.com'), false);
    assert.equal(mxMatches('*.example.com', 'mail.example.net'), false);
    assert.equal(mxMatches('*.example.com', '*.example.com'), false);
  });

  it('never matches empty names', () => {
    assert.equal(mxMatches('', ''), false);
    assert.equal(mxMatches('*.', 'a.'), false);
    assert.equal(mxMatches('a.example', ''), false);
  });

  it('policyCovers checks every mx pattern of a parsed policy', () => {
    const r = parseStsPolicy(RFC_POLICY);
    assert.ok(r.ok);
    assert.equal(policyCovers(r.policy, 'mail.example.com'), true);
    assert.equal(policyCovers(r.policy, 'mx7.example.net.'), true);
    assert.equal(policyCovers(r.policy, 'BACKUPMX.example.com'), true);
    assert.equal(policyCovers(r.policy, 'a.b.example.net'), false);
    assert.equal(policyCovers(r.policy, 'evil.example.org'), false);
    assert.equal(policyCovers({ mx: [] }, 'mail.example.com'), false);
  });
});

describe('robustness: random input never throws', () => {
  // Small deterministic PRNG (mulberry32) so failures are reproducible.
  function rng(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const alphabet = [
    'v=STSv1',
    'id=',
    ';',
    ' ',
    '\t',
    '\r',
    '\n',
    ':',
    'version',
    'mode',
    'mx',
    'max_age',
    'STSv1',
    'enforce',
    '*.',
    '.',
    'a',
    '9',
    '\u0000',
    'é',
    '\ud800',
    '=',
  ];
  const junk = (next: () => number): string => {
    let s = '';
    const n = Math.floor(next() * 40);
    for (let i = 0; i < n; i++) {
      s +=
        next() < 0.7
          ? (alphabet[Math.floor(next() * alphabet.length)] ?? '')
          : String.fromCharCode(Math.floor(next() * 0x3000));
    }
    return s;
  };

  it('parseStsRecord, parseStsPolicy and mxMatches return results for 3000 junk inputs', () => {
    const next = rng(8461);
    for (let i = 0; i < 3000; i++) {
      const a = junk(next);
      const b = junk(next);
      const rec = parseStsRecord([[a, b], [b]]);
      assert.equal(typeof rec.ok, 'boolean');
      if (rec.ok) assert.match(rec.id, /^[A-Za-z0-9]{1,32}$/);
      const pol = parseStsPolicy(a + '\n' + b);
      assert.equal(typeof pol.ok, 'boolean');
      if (pol.ok) {
        assert.ok(pol.policy.maxAge >= 0 && pol.policy.maxAge <= MAX_MAX_AGE);
        assert.ok(pol.policy.mode === 'none' || pol.policy.mx.length > 0);
      }
      assert.equal(typeof mxMatches(a, b), 'boolean');
    }
  });

  it('rejects non-string and malformed shapes without throwing', () => {
    assert.equal(parseStsPolicy(undefined as unknown as string).ok, false);
    assert.equal(parseStsRecord(null as unknown as string[][]).ok, false);
    assert.equal(parseStsRecord([null, [1, 'x']] as unknown as string[][]).ok, false);
    assert.equal(mxMatches(undefined as unknown as string, 'a'), false);
  });
});

it('version may stand anywhere: RFC 8461 §3.2 sets no order', () => {
  const r = parseStsPolicy('mode: enforce\nmx: a.example\nversion: STSv1\nmax_age: 86400\n');
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.policy.mode, 'enforce');
});
