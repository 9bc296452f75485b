/** CIDR blocks, next hops and domain names as the config accepts them. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cidrContains, ipBytes, parseCidr, parseDomain, parseHostPort } from '../../../src/config/net.ts';
import type { Cidr } from '../../../src/config/net.ts';

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  assert.ok(typeof c !== 'string', `${text}: ${typeof c === 'string' ? c : ''}`);
  return c;
}

/** The reason parseCidr refuses `text` (and a failure when it does not). */
function refused(text: string): string {
  const c = parseCidr(text);
  assert.ok(typeof c === 'string', `${text}: accepted as ${JSON.stringify(c)}`);
  return c;
}

describe('parseCidr / cidrContains', () => {
  test('canonical text; a bare address is a host route', () => {
    assert.equal(cidr('192.0.2.0/24').text, '192.0.2.0/24');
    assert.equal(cidr('2001:DB8:0:0::/32').text, '2001:db8::/32');
    assert.equal(cidr('192.0.2.7').text, '192.0.2.7/32');
    assert.equal(cidr('::1').text, '::1/128');
  });
  test('refuses host bits, over-long prefixes, open-relay-wide blocks, garbage', () => {
    assert.match(refused('192.0.2.1/24'), /host bits set; did you mean 192\.0\.2\.0\/24\?/);
    assert.match(refused('192.0.2.0/33'), /longer than 32/);
    assert.match(refused('0.0.0.0/0'), /too wide/);
    assert.match(refused('10.0.0.0/7'), /too wide/);
    assert.match(refused('::/0'), /too wide/);
    assert.match(refused('fe80::1%eth0'), /not an IP address/);
    assert.match(refused('example.org/24'), /not an IP address/);
  });
  test('matching: boundaries, IPv4-mapped IPv6, families kept apart', () => {
    const v4 = cidr('192.0.2.128/25');
    assert.equal(cidrContains(v4, '192.0.2.128'), true);
    assert.equal(cidrContains(v4, '192.0.2.255'), true);
    assert.equal(cidrContains(v4, '192.0.2.127'), false);
    assert.equal(cidrContains(v4, '::ffff:192.0.2.200'), true);
    assert.equal(cidrContains(v4, '::192.0.2.200'), false, 'IPv4-compatible is not IPv4-mapped');
    const v6 = cidr('2001:db8::/126');
    assert.equal(cidrContains(v6, '2001:db8::3'), true);
    assert.equal(cidrContains(v6, '2001:db8::4'), false);
    assert.equal(cidrContains(v6, '192.0.2.1'), false);
    assert.equal(cidrContains(cidr('::ffff:0:0/96'), '::ffff:10.0.0.1'), true);
    assert.deepEqual(Array.from(ipBytes('::ffff:1.2.3.4') ?? []), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4]);
  });
});

describe('parseHostPort / parseDomain', () => {
  test('host:port forms', () => {
    assert.deepEqual(parseHostPort('mx.Example.org:2525', 25), { host: 'mx.example.org', port: 2525 });
    assert.deepEqual(parseHostPort('mx.example.org', 25), { host: 'mx.example.org', port: 25 });
    assert.deepEqual(parseHostPort('192.0.2.1:26', 25), { host: '192.0.2.1', port: 26 });
    assert.deepEqual(parseHostPort('[2001:db8::1]:587', 25), { host: '2001:db8::1', port: 587 });
    assert.deepEqual(parseHostPort('[mx.example.org]', 25), { host: 'mx.example.org', port: 25 });
    for (const bad of ['2001:db8::1', 'mx:0', 'mx:65536', 'mx:x', 'a b:25', '[fe80::1%eth0]:25', ''])
      assert.ok('error' in parseHostPort(bad, 25), bad);
  });
  test('domains', () => {
    assert.deepEqual(parseDomain('Example.ORG.'), { domain: 'example.org' });
    assert.deepEqual(parseDomain('bücher.example'), { domain: 'xn--bcher-kva.example' });
    assert.deepEqual(parseDomain('localhost'), { domain: 'localhost' });
    for (const bad of [
      '',
      '.',
      'a..b',
      '-a.example',
      'a_b.example',
      'a b',
      '192.0.2.1',
      `${'a'.repeat(64)}.example`,
      'user@example.org',
    ])
      assert.ok('error' in parseDomain(bad), bad);
  });
});
