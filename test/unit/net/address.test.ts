/**
 * Address classification for DNS-driven HTTPS fetches (src/net/address.ts): every form that
 * reaches this host or its network is non-public, whatever spelling it hides behind.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyAddress, isPublicAddress, parseIPv4Loose, parseIPv6 } from '../../../src/net/address.ts';
import type { AddressKind } from '../../../src/net/address.ts';

const TABLE: ReadonlyArray<readonly [string, AddressKind, string | null]> = [
  // IPv4 special-purpose ranges (RFC 6890 and the IANA registry)
  ['0.0.0.0', 'unspecified', '0.0.0.0'],
  ['0.1.2.3', 'unspecified', '0.1.2.3'],
  ['10.0.0.1', 'private', '10.0.0.1'],
  ['172.16.0.1', 'private', '172.16.0.1'],
  ['172.31.255.255', 'private', '172.31.255.255'],
  ['172.32.0.1', 'public', '172.32.0.1'],
  ['192.168.1.1', 'private', '192.168.1.1'],
  ['100.64.0.0', 'cgnat', '100.64.0.0'],
  ['100.127.255.255', 'cgnat', '100.127.255.255'],
  ['100.63.255.255', 'public', '100.63.255.255'],
  ['100.128.0.0', 'public', '100.128.0.0'],
  ['127.0.0.1', 'loopback', '127.0.0.1'],
  ['127.255.255.254', 'loopback', '127.255.255.254'],
  ['169.254.169.254', 'link-local', '169.254.169.254'],
  ['169.254.0.1', 'link-local', '169.254.0.1'],
  ['192.0.0.8', 'reserved', '192.0.0.8'],
  ['192.0.2.1', 'documentation', '192.0.2.1'],
  ['198.18.0.1', 'reserved', '198.18.0.1'],
  ['198.51.100.7', 'documentation', '198.51.100.7'],
  ['203.0.113.9', 'documentation', '203.0.113.9'],
  ['224.0.0.251', 'multicast', '224.0.0.251'],
  ['239.255.255.250', 'multicast', '239.255.255.250'],
  ['240.0.0.1', 'reserved', '240.0.0.1'],
  ['255.255.255.255', 'broadcast', '255.255.255.255'],
  ['8.8.8.8', 'public', '8.8.8.8'],
  ['1.1.1.1', 'public', '1.1.1.1'],
  // inet_aton spellings of loopback and unspecified (what getaddrinfo and URL parsers accept)
  ['127.1', 'loopback', '127.0.0.1'],
  ['127.0.1', 'loopback', '127.0.0.1'],
  ['0x7f.0.0.1', 'loopback', '127.0.0.1'],
  ['0x7f000001', 'loopback', '127.0.0.1'],
  ['2130706433', 'loopback', '127.0.0.1'],
  ['017700000001', 'loopback', '127.0.0.1'],
  ['0177.0.0.1', 'loopback', '127.0.0.1'],
  ['127.000.000.001', 'loopback', '127.0.0.1'],
  ['0', 'unspecified', '0.0.0.0'],
  ['10.1', 'private', '10.0.0.1'],
  // IPv6
  ['::', 'unspecified', '::'],
  ['[::]', 'unspecified', '::'],
  ['0:0:0:0:0:0:0:0', 'unspecified', '::'],
  ['::1', 'loopback', '::1'],
  ['[::1]', 'loopback', '::1'],
  ['0:0:0:0:0:0:0:1', 'loopback', '::1'],
  ['fe80::1', 'link-local', 'fe80::1'],
  ['febf:ffff::1', 'link-local', 'febf:ffff::1'],
  ['fec0::1', 'private', 'fec0::1'],
  ['fc00::1', 'private', 'fc00::1'],
  ['fd12:3456::1', 'private', 'fd12:3456::1'],
  ['ff02::1', 'multicast', 'ff02::1'],
  ['ff05::1:3', 'multicast', 'ff05::1:3'],
  ['2001:db8::1', 'documentation', '2001:db8::1'],
  ['2001::1', 'reserved', '2001::1'],
  ['100::1', 'reserved', '100::1'],
  ['::1.2.3.4', 'reserved', '::102:304'],
  ['2001:4860:4860::8888', 'public', '2001:4860:4860::8888'],
  ['2a00:1450:4001:82b::200e', 'public', '2a00:1450:4001:82b::200e'],
  ['4000::1', 'reserved', '4000::1'],
  // IPv4 inside IPv6: judged by the IPv4 address
  ['::ffff:127.0.0.1', 'loopback', '::ffff:7f00:1'],
  ['[::ffff:127.0.0.1]', 'loopback', '::ffff:7f00:1'],
  ['::ffff:7f00:1', 'loopback', '::ffff:7f00:1'],
  ['::FFFF:10.0.0.1', 'private', '::ffff:a00:1'],
  ['::ffff:169.254.169.254', 'link-local', '::ffff:a9fe:a9fe'],
  ['::ffff:0.0.0.0', 'unspecified', '::ffff:0:0'],
  ['::ffff:8.8.8.8', 'public', '::ffff:808:808'],
  ['64:ff9b::127.0.0.1', 'loopback', '64:ff9b::7f00:1'],
  ['64:ff9b::a9fe:a9fe', 'link-local', '64:ff9b::a9fe:a9fe'],
  ['64:ff9b::808:808', 'public', '64:ff9b::808:808'],
  ['64:ff9b:1::1', 'private', '64:ff9b:1::1'],
  ['2002:7f00:1::1', 'loopback', '2002:7f00:1::1'],
  ['2002:c0a8:101::1', 'private', '2002:c0a8:101::1'],
  // not addresses: never public
  ['', 'invalid', null],
  ['localhost', 'invalid', null],
  ['mta-sts.example.org', 'invalid', null],
  ['256.0.0.1', 'invalid', null],
  ['1.2.3.4.5', 'invalid', null],
  ['127.0.0.1.', 'invalid', null],
  ['08.0.0.1', 'invalid', null],
  ['1::2::3', 'invalid', null],
  ['1:2:3:4:5:6:7:8:9', 'invalid', null],
  ['fe80::1%eth0', 'invalid', null],
  ['::ffff:1.2.3.256', 'invalid', null],
  ['12345::', 'invalid', null],
];

describe('classifyAddress', () => {
  for (const [input, kind, canonical] of TABLE) {
    it(`${JSON.stringify(input)} → ${kind}`, () => {
      const c = classifyAddress(input);
      assert.equal(c.kind, kind);
      assert.equal(c.address, canonical);
      assert.equal(isPublicAddress(input), kind === 'public');
    });
  }

  it('names the embedded IPv4 address that decided an IPv6 form', () => {
    assert.equal(classifyAddress('::ffff:127.0.0.1').embedded, '127.0.0.1');
    assert.equal(classifyAddress('64:ff9b::808:808').embedded, '8.8.8.8');
    assert.equal(classifyAddress('2002:7f00:1::1').embedded, '127.0.0.1');
    assert.equal(classifyAddress('fe80::1').embedded, undefined);
  });
});

describe('address parsers', () => {
  it('parseIPv4Loose follows inet_aton: the last part fills the remaining bytes', () => {
    assert.deepEqual(parseIPv4Loose('1.2.3.4'), [1, 2, 3, 4]);
    assert.deepEqual(parseIPv4Loose('1.2.772'), [1, 2, 3, 4]);
    assert.deepEqual(parseIPv4Loose('1.131844'), [1, 2, 3, 4]);
    assert.deepEqual(parseIPv4Loose('16909060'), [1, 2, 3, 4]);
    assert.equal(parseIPv4Loose('1.2.65536'), null);
    assert.equal(parseIPv4Loose('4294967296'), null);
    assert.deepEqual(parseIPv4Loose('0x'), [0, 0, 0, 0], 'as inet_aton and the WHATWG URL parser read it');
    assert.equal(parseIPv4Loose('a.b.c.d'), null);
  });

  it('parseIPv6 expands :: and dotted tails to 16 bytes', () => {
    assert.deepEqual(parseIPv6('::1'), [...new Array<number>(15).fill(0), 1]);
    assert.deepEqual(parseIPv6('::ffff:1.2.3.4')?.slice(10), [0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7.8.9.10')?.slice(12), [7, 8, 9, 10]);
    assert.equal(parseIPv6('1:2:3:4:5:6:7:8::'), null, ':: must stand for at least one group');
    assert.equal(parseIPv6('1:2:3:4:5:6:7'), null);
  });
});
