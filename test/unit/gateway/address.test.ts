/** parsePath: RFC 5321 §4.1.2 path syntax with RFC 6531 SMTPUTF8, limits of §4.5.3.1. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  comparableAddress,
  comparableDomain,
  formatLocalPart,
  isPathError,
  parsePath,
} from '../../../src/gateway/address.ts';
import type { ParsePathOptions, ParsedPath } from '../../../src/gateway/address.ts';

const ascii: ParsePathOptions = { smtputf8: false };
const utf8: ParsePathOptions = { smtputf8: true };

function ok(text: string, opts: ParsePathOptions = ascii): ParsedPath {
  const r = parsePath(text, opts);
  assert.ok(!isPathError(r), `${text}: ${isPathError(r) ? r.error.message : ''}`);
  return r;
}

function err(text: string, opts: ParsePathOptions = ascii): { code: number; enhanced: string; message: string } {
  const r = parsePath(text, opts);
  assert.ok(isPathError(r), `${text} should be refused`);
  return r.error;
}

describe('parsePath: accepted forms', () => {
  test('plain, mixed case kept, domain as written', () => {
    const p = ok('<John.Doe@Example.ORG>');
    assert.deepEqual(p, {
      address: 'John.Doe@Example.ORG',
      local: 'John.Doe',
      domain: 'Example.ORG',
      quoted: false,
      literal: false,
      routeDiscarded: false,
      utf8: false,
    });
  });
  test('all atext characters', () => {
    assert.equal(ok("<a!#$%&'*+-/=?^_`{|}~z@example.org>").local, "a!#$%&'*+-/=?^_`{|}~z");
  });
  test('null reverse-path only for MAIL FROM', () => {
    assert.equal(ok('<>', { smtputf8: false, kind: 'reverse' }).address, '');
    const e = err('<>');
    assert.equal(e.code, 501);
    assert.equal(e.enhanced, '5.1.3');
  });
  test('<Postmaster> without a domain only for RCPT TO (RFC 5321 §4.1.1.3), any case', () => {
    for (const t of ['<Postmaster>', '<postmaster>', '<POSTMASTER>']) {
      const p = ok(t);
      assert.equal(p.address, 'postmaster');
      assert.equal(p.domain, '');
    }
    assert.equal(err('<postmaster>', { smtputf8: false, kind: 'reverse' }).enhanced, '5.1.7');
    assert.equal(err('<bob>').code, 501);
  });
  test('source routes are accepted and discarded (RFC 5321 §4.1.1.3, Appendix C)', () => {
    const p = ok('<@relay1.example,@relay2.example:user@example.org>');
    assert.equal(p.address, 'user@example.org');
    assert.equal(p.routeDiscarded, true);
    assert.equal(err('<@relay1.example user@example.org>').code, 501);
    assert.equal(err('<@[192.0.2.1]:user@example.org>').code, 501, 'route hops are domains, never literals');
    assert.equal(err('<@:user@example.org>').code, 501);
  });
  test('quoted local parts: decoded, re-quoted only when needed', () => {
    const q = ok('<"john smith"@example.org>');
    assert.equal(q.local, 'john smith');
    assert.equal(q.quoted, true);
    assert.equal(q.address, '"john smith"@example.org');
    assert.equal(ok('<"john"@example.org>').address, 'john@example.org');
    const esc = ok('<"a\\"b\\\\c@d"@example.org>');
    assert.equal(esc.local, 'a"b\\c@d');
    assert.equal(esc.address, '"a\\"b\\\\c@d"@example.org');
    assert.equal(formatLocalPart('a..b'), '"a..b"');
  });
  test('address literals', () => {
    const v4 = ok('<user@[192.0.2.1]>');
    assert.equal(v4.literal, true);
    assert.equal(v4.domain, '[192.0.2.1]');
    assert.equal(ok('<user@[IPv6:2001:db8::1]>').literal, true);
    assert.equal(ok('<user@[ipv6:::1]>').literal, true);
    for (const bad of [
      '<u@[256.1.1.1]>',
      '<u@[1.2.3]>',
      '<u@[IPv6:fe80::1%eth0]>',
      '<u@[IPv6:2001:db8::g]>',
      '<u@[x-tag:abc]>',
      '<u@[192.0.2.1>',
    ])
      assert.equal(err(bad).code, 501, bad);
  });
  test('SMTPUTF8: non-ASCII local parts and U-label domains', () => {
    const p = ok('<jörg@bücher.example>', utf8);
    assert.equal(p.utf8, true);
    assert.equal(p.local, 'jörg');
    assert.equal(ok('<"ö ö"@example.org>', utf8).local, 'ö ö');
  });
});

describe('parsePath: refused forms', () => {
  test('angle brackets are required', () => {
    for (const t of ['user@example.org', '<user@example.org', 'user@example.org>', '', '<', ' <a@b.example>'])
      assert.equal(err(t).message.includes('angle brackets') || err(t).code === 501, true, t);
    assert.match(err('user@example.org').message, /angle brackets required/);
  });
  test('syntax: dots, missing parts, spaces, trailing dot, bad labels', () => {
    for (const t of [
      '<.user@example.org>',
      '<user.@example.org>',
      '<us..er@example.org>',
      '<user@>',
      '<@example.org>',
      '<user>',
      '<us er@example.org>',
      '<user@example.org.>',
      '<user@-example.org>',
      '<user@exa_mple.org>',
      '<user@example..org>',
      '<user@evil.com@example.org>',
      '<"unterminated@example.org>',
      '<"a"b@example.org>',
      '<user@example.org >',
    ]) {
      const e = err(t);
      assert.equal(e.code, 501, t);
      assert.equal(e.enhanced, '5.1.3', t);
      assert.match(e.message, /^Bad recipient address syntax \(/, t);
    }
    assert.match(err('<user@example.org.>').message, /ends with a dot/);
    assert.equal(err('<user.@example.org>', { smtputf8: false, kind: 'reverse' }).enhanced, '5.1.7');
  });
  test('control characters, DEL, U+FFFD, bidi controls and lone surrogates never pass', () => {
    for (const t of [
      '<us\ter@example.org>',
      '<"a\rb"@example.org>',
      '<a\u0000@example.org>',
      '<a\u007f@example.org>',
      '<a\ufffd@example.org>',
      '<a\u202e@example.org>',
      '<a\ud800@example.org>',
      '<"a\\\u0001"@example.org>',
    ])
      assert.equal(err(t, utf8).code, 501, JSON.stringify(t));
  });
  test('non-ASCII without SMTPUTF8 → 553 5.6.7 (RFC 6531 §3.5)', () => {
    const e = err('<jörg@example.org>');
    assert.equal(e.code, 553);
    assert.equal(e.enhanced, '5.6.7');
    assert.equal(err('<user@bücher.example>').code, 553);
  });
  test('IDN lookalikes that are not canonical U-labels are refused', () => {
    // Fullwidth letters would be mapped to 'example' by UTS 46; IDNA2008 does not allow them.
    assert.equal(err('<user@ｅｘａｍｐｌｅ.org>', utf8).code, 501);
    // Not NFC (u + combining diaeresis) is not a U-label either (RFC 5891 §5.4).
    assert.equal(err('<user@bu\u0308cher.example>', utf8).code, 501);
    assert.equal(ok('<user@BÜCHER.example>', utf8).domain, 'BÜCHER.example', 'case is not a lookalike');
  });
  test('length limits: local part 64, domain 255, path 256 octets (RFC 5321 §4.5.3.1)', () => {
    const l64 = 'a'.repeat(64);
    ok(`<${l64}@example.org>`);
    const e = err(`<${l64}b@example.org>`);
    assert.equal(e.code, 553);
    assert.match(e.message, /64 octets/);
    assert.equal(err(`<"${'a'.repeat(63)}"@example.org>`).code, 553, 'quotes count toward 64');
    // 64 octets of 'ö' is 32 characters but 64 octets: the limit is in octets.
    assert.equal(err(`<${'ö'.repeat(33)}@example.org>`, utf8).code, 553);
    const label = 'a'.repeat(63);
    const longDomain = `${label}.${label}.${label}.${'a'.repeat(50)}.org`;
    ok(`<u@${longDomain}>`);
    assert.match(err(`<${'u'.repeat(20)}@${longDomain}>`).message, /longer than 256 octets/);
  });
});

describe('comparable forms', () => {
  test('domains: lower case, A-labels; literals and non-canonical names are null', () => {
    assert.equal(comparableDomain('Example.ORG'), 'example.org');
    assert.equal(comparableDomain('bücher.example'), 'xn--bcher-kva.example');
    assert.equal(comparableDomain('[192.0.2.1]'), null);
    assert.equal(comparableDomain('ｅｘａｍｐｌｅ.org'), null);
    assert.equal(comparableDomain(''), null);
  });
  test('addresses fold case and IDN', () => {
    assert.equal(comparableAddress('Alice@Example.ORG'), 'alice@example.org');
    assert.equal(comparableAddress('jörg@bücher.example'), 'jörg@xn--bcher-kva.example');
    assert.equal(comparableAddress('"A B"@example.org'), '"a b"@example.org');
    assert.equal(comparableAddress('postmaster'), null);
    assert.equal(comparableAddress('not an address'), null);
  });
});
