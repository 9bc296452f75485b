import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError, WireError } from '../../../src/core/errors.ts';
import {
  canonicalName,
  decodeHeader,
  decodeResponse,
  describeEde,
  encodeQuery,
  formatIpv6,
  namesEqual,
  RR_TYPES,
  rcodeName,
  responseMatches,
  rrTypeName,
} from '../../../src/dns/wire.ts';
import { ede, FLAG, message, opt, prng, question, rdata, rr, u16 } from './dns-builder.ts';

/** Hex with spaces and comments (# to end of line) → bytes. */
function hex(s: string): Buffer {
  return Buffer.from(
    s
      .split('\n')
      .map((l) => l.replace(/#.*/, ''))
      .join('')
      .replace(/\s+/g, ''),
    'hex',
  );
}

function wireCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof WireError, `expected WireError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected a WireError');
}

describe('encodeQuery (RFC 1035 §4.1, RFC 6891, RFC 6840 §5.7)', () => {
  it('produces the exact bytes: RD+AD, one question, OPT with DO and 1232', () => {
    const q = encodeQuery({ id: 0x1234, name: 'Example.COM.', type: 'MX' });
    assert.deepEqual(
      q,
      hex(`
        1234 0120 0001 0000 0000 0001          # id, RD|AD, QD=1, AR=1
        07 4578616d706c65 03 434f4d 00         # Example.COM (case kept)
        000f 0001                              # MX IN
        00 0029 04d0 00008000 0000             # OPT, 1232, DO, no options
      `),
    );
  });
  it('sets CD when asked and can drop DO/AD/RD', () => {
    const q = encodeQuery({ id: 1, name: 'a.test', type: 'TLSA', cd: true });
    assert.equal(q.readUInt16BE(2), 0x0130);
    const bare = encodeQuery({
      id: 1,
      name: 'a.test',
      type: 'A',
      rd: false,
      ad: false,
      dnssecOk: false,
      udpSize: 4096,
    });
    assert.equal(bare.readUInt16BE(2), 0);
    const m = decodeResponse(bare);
    assert.equal(m.edns?.dnssecOk, false);
    assert.equal(m.edns?.udpSize, 4096);
  });
  it('round-trips through the decoder', () => {
    const m = decodeResponse(encodeQuery({ id: 0xbeef, name: '_25._tcp.mx.dane.test', type: 'TLSA', cd: true }));
    assert.equal(m.header.id, 0xbeef);
    assert.equal(m.header.qr, false);
    assert.equal(m.header.rd, true);
    assert.equal(m.header.ad, true);
    assert.equal(m.header.cd, true);
    assert.deepEqual(m.questions, [{ name: '_25._tcp.mx.dane.test', type: 52, class: 1 }]);
    assert.deepEqual(m.answers, []);
    assert.equal(m.edns?.dnssecOk, true);
    assert.equal(m.edns?.udpSize, 1232);
    assert.equal(m.edns?.version, 0);
  });
  it('refuses bad names and ids with UsageError (caller mistakes, not peer input)', () => {
    for (const name of [
      'a..b',
      `${'x'.repeat(64)}.test`,
      'bücher.de',
      'a b.test',
      'a\\.b.test',
      `${'abcdefg.'.repeat(32)}test`,
    ])
      assert.throws(() => encodeQuery({ id: 1, name, type: 'A' }), UsageError, name);
    assert.throws(() => encodeQuery({ id: 65536, name: 'a.test', type: 'A' }), UsageError);
    assert.throws(() => encodeQuery({ id: 1, name: 'a.test', type: 0 }), UsageError);
    // 63-octet labels and a 255-octet name are the limits, not errors (RFC 1035 §2.3.4).
    const max = [`${'a'.repeat(63)}`, `${'b'.repeat(63)}`, `${'c'.repeat(63)}`, `${'d'.repeat(61)}`].join('.');
    assert.equal(decodeResponse(encodeQuery({ id: 1, name: max, type: 'A' })).questions[0]?.name, max);
    assert.throws(() => encodeQuery({ id: 1, name: `${max}d`, type: 'A' }), UsageError);
  });
});

describe('decodeResponse: hand-built replies', () => {
  it('follows compression pointers in owners, CNAME and MX RDATA', () => {
    const buf = hex(`
      beef 81a0 0001 0002 0000 0000           # QR RD RA AD, QD=1 AN=2
      04 6d61696c 07 6578616d706c65 03 6f7267 00   # @12 mail.example.org (example.org @17)
      000f 0001                               # MX IN
      c00c 0005 0001 0000012c 0005            # @34 mail.example.org CNAME, rdlen 5
      02 6d78 c011                            # @46 mx + ->example.org
      c02e 000f 0001 0000012c 000a            # @51 mx.example.org MX, rdlen 10
      000a 05 6d61696c32 c011                 # 10 mail2.example.org
    `);
    const m = decodeResponse(buf);
    assert.equal(m.header.id, 0xbeef);
    assert.equal(m.header.ad, true);
    assert.equal(m.header.ra, true);
    assert.equal(m.rcode, 0);
    assert.equal(m.edns, null);
    assert.deepEqual(m.questions, [{ name: 'mail.example.org', type: 15, class: 1 }]);
    assert.equal(m.answers.length, 2);
    assert.deepEqual(m.answers[0], {
      name: 'mail.example.org',
      type: 5,
      class: 1,
      ttl: 300,
      data: { kind: 'CNAME', target: 'mx.example.org' },
    });
    assert.deepEqual(m.answers[1]?.data, { kind: 'MX', priority: 10, exchange: 'mail2.example.org' });
    assert.equal(m.answers[1]?.name, 'mx.example.org');
    assert.ok(responseMatches(m, { id: 0xbeef, name: 'MAIL.Example.org.', type: 15 }));
    assert.ok(!responseMatches(m, { id: 0xbeee, name: 'mail.example.org', type: 15 }));
    assert.ok(!responseMatches(m, { id: 0xbeef, name: 'mail.example.org', type: 16 }));
    assert.ok(!responseMatches(m, { id: 0xbeef, name: 'mail.example.com', type: 15 }));
  });

  it('keeps TXT character-strings as separate chunks, including empty ones', () => {
    const buf = message({
      id: 7,
      flags: FLAG.QR,
      qd: [question('t.test', 16)],
      an: [rr('t.test', 16, Buffer.concat([rdata.txt('v=STSv1; ', 'id=1'), Buffer.from([0])]))],
    });
    const d = decodeResponse(buf).answers[0]?.data;
    assert.equal(d?.kind, 'TXT');
    assert.deepEqual(d.kind === 'TXT' && d.chunks.map((c) => c.toString()), ['v=STSv1; ', 'id=1', '']);
  });

  it('decodes TLSA, A and AAAA and keeps other types raw', () => {
    const buf = message({
      id: 8,
      flags: FLAG.QR | FLAG.AD,
      qd: [question('_25._tcp.mx.test', 52)],
      an: [
        rr('_25._tcp.mx.test', 52, rdata.tlsa(3, 1, 1, 'aabbccdd')),
        rr('mx.test', 1, rdata.a('192.0.2.1')),
        rr('mx.test', 28, rdata.aaaa('20010db8000000000000000000000001')),
        rr('_25._tcp.mx.test', 46, Buffer.from('0034080300000e10', 'hex')),
      ],
    });
    const m = decodeResponse(buf);
    assert.deepEqual(m.answers[0]?.data, {
      kind: 'TLSA',
      usage: 3,
      selector: 1,
      matchingType: 1,
      data: Buffer.from('aabbccdd', 'hex'),
    });
    assert.deepEqual(m.answers[1]?.data, { kind: 'A', address: '192.0.2.1' });
    assert.deepEqual(m.answers[2]?.data, { kind: 'AAAA', address: '2001:db8::1' });
    assert.deepEqual(m.answers[3]?.data, { kind: 'raw', rdata: Buffer.from('0034080300000e10', 'hex') });
  });

  it('surfaces EDNS: extended RCODE and Extended DNS Errors (RFC 6891 §6.1.3, RFC 8914)', () => {
    const buf = message({
      id: 9,
      flags: FLAG.QR | FLAG.RA,
      rcode: 2,
      qd: [question('x.test', 52)],
      ar: [
        rr('x.test', 1, rdata.a('127.0.0.1')),
        opt({
          udpSize: 1232,
          options: [ede(6, 'signature crypto failed'), { code: 10, data: Buffer.alloc(8) }, ede(22)],
        }),
      ],
    });
    const m = decodeResponse(buf);
    assert.equal(m.rcode, 2);
    assert.equal(rcodeName(m.rcode), 'SERVFAIL');
    assert.equal(m.additional.length, 1);
    assert.equal(m.edns?.options.length, 3);
    assert.deepEqual(m.edns?.ede, [
      { infoCode: 6, extraText: 'signature crypto failed' },
      { infoCode: 22, extraText: '' },
    ]);
    assert.equal(describeEde({ infoCode: 6, extraText: 'x' }), 'EDE 6 (DNSSEC Bogus): x');
    assert.equal(describeEde({ infoCode: 999, extraText: '' }), 'EDE 999');
    // Extended RCODE 1 + header 0 = 16 (BADVERS).
    const bad = decodeResponse(message({ id: 1, flags: FLAG.QR, ar: [opt({ extRcode: 1 })] }));
    assert.equal(bad.rcode, 16);
    assert.equal(rcodeName(bad.rcode), 'BADVERS');
  });

  it('presents odd label bytes escaped, compares names case-insensitively', () => {
    const buf = message({
      id: 1,
      flags: FLAG.QR,
      qd: [
        Buffer.concat([Buffer.from([3, 0x61, 0x2e, 0x01, 4]), Buffer.from('TeSt'), Buffer.from([0]), u16(1), u16(1)]),
      ],
    });
    assert.equal(decodeResponse(buf).questions[0]?.name, 'a\\.\\001.TeSt');
    assert.ok(namesEqual('Mail.Example.ORG.', 'mail.example.org'));
    assert.ok(!namesEqual('mail.example.org', 'mail.example.org.x'));
    assert.equal(canonicalName('A.B.'), 'a.b');
    assert.equal(canonicalName('.'), '.');
    assert.equal(rrTypeName(52), 'TLSA');
    assert.equal(rrTypeName(65534), 'TYPE65534');
    assert.equal(RR_TYPES.TLSA, 52);
  });

  it('formats IPv6 as RFC 5952 text', () => {
    const f = (h: string): string => formatIpv6(Buffer.from(h, 'hex'));
    assert.equal(f('00000000000000000000000000000001'), '::1');
    assert.equal(f('00000000000000000000000000000000'), '::');
    assert.equal(f('20010db8000000010000000000000001'), '2001:db8:0:1::1');
    assert.equal(f('20010db8000000000001000000000001'), '2001:db8::1:0:0:1'); // first of equal runs
    assert.equal(f('20010db8000100010001000100010001'), '2001:db8:1:1:1:1:1:1');
    assert.equal(f('20010db8000000010001000100010001'), '2001:db8:0:1:1:1:1:1'); // a single 0 stays
    assert.equal(f('00000000000000000000ffffc0000201'), '::ffff:192.0.2.1');
  });
});

describe('decodeResponse: malformed input is a WireError', () => {
  const base = (): Buffer =>
    message({ id: 1, flags: FLAG.QR, qd: [question('a.test', 1)], an: [rr('a.test', 1, rdata.a('127.0.0.1'))] });

  it('a pointer to itself, forward pointers and pointer cycles', () => {
    const self = hex('0001 8000 0001 0000 0000 0000  c00c 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(self)),
      'dns-bad-pointer',
    );
    const forward = hex('0001 8000 0001 0000 0000 0000  c00e 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(forward)),
      'dns-bad-pointer',
    );
    // @12: label 'a', then a pointer back to @12: each round would add a label forever.
    const cycle = hex('0001 8000 0001 0000 0000 0000  01 61 c00c 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(cycle)),
      'dns-bad-pointer',
    );
    // Two names pointing at each other: @12 -> @20 (forward) is caught before the cycle closes.
    const pair = hex('0001 8000 0002 0000 0000 0000  01 61 c014 0001 0001  01 62 c00c 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(pair)),
      'dns-bad-pointer',
    );
    // Into the header.
    const header = hex('0001 8000 0001 0000 0000 0000  01 61 c002 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(header)),
      'dns-bad-pointer',
    );
  });

  it('truncated messages and RRs', () => {
    assert.equal(
      wireCode(() => decodeResponse(Buffer.alloc(5))),
      'dns-truncated',
    );
    assert.equal(
      wireCode(() => decodeHeader(Buffer.alloc(11))),
      'dns-truncated',
    );
    const full = base();
    for (let cut = 12; cut < full.length; cut++) {
      const code = wireCode(() => decodeResponse(full.subarray(0, cut)));
      assert.ok(['dns-truncated', 'dns-bad-rdata'].includes(code), `cut at ${cut}: ${code}`);
    }
    // RDLENGTH larger than what follows.
    const long = Buffer.from(full);
    long.writeUInt16BE(200, long.length - 6);
    assert.equal(
      wireCode(() => decodeResponse(long)),
      'dns-truncated',
    );
    // Counts that cannot fit: refused before any allocation.
    const counts = Buffer.from(full);
    counts.writeUInt16BE(0xffff, 6);
    assert.equal(
      wireCode(() => decodeResponse(counts)),
      'dns-truncated',
    );
  });

  it('oversize and reserved labels, names over 255 octets', () => {
    const ext = hex('0001 8000 0001 0000 0000 0000  41 61 00 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(ext)),
      'dns-bad-label',
    );
    const reserved = hex('0001 8000 0001 0000 0000 0000  80 00 0001 0001');
    assert.equal(
      wireCode(() => decodeResponse(reserved)),
      'dns-bad-label',
    );
    // Four 63-octet labels = 257 octets with the root.
    const label = Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)]);
    const tooLong = message({
      id: 1,
      flags: FLAG.QR,
      qd: [Buffer.concat([label, label, label, label, Buffer.from([0]), u16(1), u16(1)])],
    });
    assert.equal(
      wireCode(() => decodeResponse(tooLong)),
      'dns-name-too-long',
    );
    // The same via pointers: each name adds a 63-octet label in front of the previous one.
    const parts: Buffer[] = [Buffer.concat([label, Buffer.from([0]), u16(1), u16(1)])];
    let prev = 12;
    let at = 12 + 63 + 1 + 1 + 4;
    for (let i = 0; i < 4; i++) {
      parts.push(Buffer.concat([label, Buffer.from([0xc0 | (prev >> 8), prev & 0xff]), u16(1), u16(1)]));
      prev = at;
      at += 64 + 2 + 4;
    }
    const chained = Buffer.concat([hex('0001 8000 0005 0000 0000 0000'), ...parts]);
    assert.equal(
      wireCode(() => decodeResponse(chained)),
      'dns-name-too-long',
    );
  });

  it('RDATA that does not fit its type, stray bytes, bad OPT', () => {
    const rrs = (r: Buffer): Buffer => message({ id: 1, flags: FLAG.QR, an: [r] });
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 1, Buffer.alloc(5))))),
      'dns-bad-rdata',
    );
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 28, Buffer.alloc(4))))),
      'dns-bad-rdata',
    );
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 52, Buffer.alloc(2))))),
      'dns-bad-rdata',
    );
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 16, Buffer.alloc(0))))),
      'dns-bad-rdata',
    );
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 16, Buffer.from([5, 0x61]))))),
      'dns-bad-rdata',
    );
    // MX exchange with bytes after the name, and a name running past RDLENGTH.
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 15, Buffer.from([0, 1, 0, 9]))))),
      'dns-bad-rdata',
    );
    assert.equal(
      wireCode(() => decodeResponse(rrs(rr('a.test', 15, Buffer.from([0, 1, 3, 0x61]))))),
      'dns-truncated',
    );
    assert.equal(
      wireCode(() => decodeResponse(Buffer.concat([base(), Buffer.from([0])]))),
      'dns-trailing-bytes',
    );
    const twoOpt = message({ id: 1, flags: FLAG.QR, ar: [opt(), opt()] });
    assert.equal(
      wireCode(() => decodeResponse(twoOpt)),
      'dns-bad-opt',
    );
    const optAnswer = message({ id: 1, flags: FLAG.QR, an: [opt()] });
    assert.equal(
      wireCode(() => decodeResponse(optAnswer)),
      'dns-bad-opt',
    );
    const shortEde = message({ id: 1, flags: FLAG.QR, ar: [opt({ options: [{ code: 15, data: Buffer.from([0]) }] })] });
    assert.equal(
      wireCode(() => decodeResponse(shortEde)),
      'dns-bad-opt',
    );
    const optOwner = message({ id: 1, flags: FLAG.QR, ar: [rr('x', 41, Buffer.alloc(0))] });
    assert.equal(
      wireCode(() => decodeResponse(optOwner)),
      'dns-bad-opt',
    );
    const cutOption = message({ id: 1, flags: FLAG.QR, ar: [rr('.', 41, Buffer.from([0, 15, 0, 9, 0]))] });
    assert.equal(
      wireCode(() => decodeResponse(cutOption)),
      'dns-bad-opt',
    );
  });
});

describe('decodeResponse: seeded mutation fuzz', () => {
  /** A reply with every feature the decoder has: pointers, CNAME, MX, TXT, TLSA, AAAA, OPT + EDE. */
  const valid = hex(`
    beef 81a0 0001 0006 0001 0001
    04 6d61696c 07 6578616d706c65 03 6f7267 00   000f 0001
    c00c 0005 0001 0000012c 0005  02 6d78 c011
    c02e 000f 0001 0000012c 000a  000a 05 6d61696c32 c011
    c011 0010 0001 0000012c 0009  03 613d62 04 632d6421
    c011 0034 0001 0000012c 0007  030101 aabbccdd
    c011 001c 0001 0000012c 0010  20010db8000000000000000000000001
    c011 0021 0001 0000012c 0008  0000 0001 0019 c011
    c011 0006 0001 0000012c 0004  deadbeef
    00 0029 04d0 00008000 000b  000f 0007 0006 626f677573
  `);

  it('the base message is valid', () => {
    const m = decodeResponse(valid);
    assert.equal(m.answers.length, 6);
    assert.equal(m.edns?.ede[0]?.infoCode, 6);
  });

  it('5000 mutations throw nothing but WireError', () => {
    const rnd = prng(0x5eed);
    const pick = (n: number): number => Math.floor(rnd() * n);
    let decoded = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(valid);
      let m: Buffer = b;
      const ops = 1 + pick(4);
      for (let k = 0; k < ops; k++) {
        switch (pick(6)) {
          case 0: // flip a random byte
            m[pick(m.length)] = pick(256);
            break;
          case 1: // truncate
            m = m.subarray(0, pick(m.length + 1));
            break;
          case 2: // plant a pointer somewhere
            if (m.length > 14) {
              const at = 12 + pick(m.length - 13);
              m[at] = 0xc0 | pick(4);
              if (at + 1 < m.length) m[at + 1] = pick(256);
            }
            break;
          case 3: // change a 16-bit field (counts, RDLENGTH, option lengths)
            if (m.length > 2) m.writeUInt16BE(pick(0x10000) & (rnd() < 0.5 ? 0xff : 0xffff), pick(m.length - 1));
            break;
          case 4: // insert garbage
            m = Buffer.concat([
              m.subarray(0, pick(m.length)),
              Buffer.from([pick(256), pick(256)]),
              m.subarray(pick(m.length)),
            ]);
            break;
          default: // bump a section count
            if (m.length >= 12) m.writeUInt16BE(pick(8), 4 + 2 * pick(4));
        }
      }
      try {
        decodeResponse(m);
        decoded++;
      } catch (e) {
        if (!(e instanceof WireError)) assert.fail(`mutation ${i} threw ${String(e)}: ${m.toString('hex')}`);
        rejected++;
      }
    }
    // Both outcomes occur, so the mutations reached past the header.
    assert.ok(decoded > 50 && rejected > 1000, `decoded ${decoded}, rejected ${rejected}`);
  });

  it('random garbage throws nothing but WireError', () => {
    const rnd = prng(42);
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(Math.floor(rnd() * 300));
      for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
      try {
        decodeResponse(b);
      } catch (e) {
        assert.ok(e instanceof WireError, String(e));
      }
    }
  });
});
