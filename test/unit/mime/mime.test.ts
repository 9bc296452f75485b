/**
 * src/mime: golden output for the pieces DSNs and TLS-RPT reports are built from, and for the
 * shape end-to-end encryption will use (RFC 3156 multipart/encrypted).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  base64Lines,
  buildMultipart,
  foldList,
  isAscii,
  mimeField,
  newBoundary,
  paramValue,
  quotedPrintable,
  rfc5322Date,
} from '../../../src/mime/index.ts';

describe('rfc5322Date (RFC 5322 §3.3, UTC)', () => {
  const cases: Array<[string, string]> = [
    ['2025-07-01T12:00:00.000Z', 'Tue, 01 Jul 2025 12:00:00 +0000'],
    ['2000-01-01T00:00:00.000Z', 'Sat, 01 Jan 2000 00:00:00 +0000'],
    ['1999-12-31T23:59:59.999Z', 'Fri, 31 Dec 1999 23:59:59 +0000'],
    ['2024-02-29T09:05:07.000Z', 'Thu, 29 Feb 2024 09:05:07 +0000'],
    ['2024-03-10T12:00:00+05:30', 'Sun, 10 Mar 2024 06:30:00 +0000'],
  ];
  for (const [iso, want] of cases) it(`${iso} → ${want}`, () => assert.equal(rfc5322Date(new Date(iso)), want));
});

describe('encodings (RFC 2045 §6)', () => {
  it('base64Lines wraps at 76 characters with CRLF, no final CRLF', () => {
    assert.equal(base64Lines(Buffer.alloc(0)), '');
    assert.equal(base64Lines(Buffer.alloc(57, 0xff)), '/'.repeat(76));
    assert.equal(base64Lines(Buffer.alloc(58, 0xff)), `${'/'.repeat(76)}\r\n/w==`);
    assert.equal(base64Lines(Buffer.from('hello')), 'aGVsbG8=');
  });

  it('quotedPrintable: golden lines (equals sign, trailing space, UTF-8, soft breaks at 76)', () => {
    assert.equal(quotedPrintable('a=b é \r\n'), 'a=3Db =C3=A9=20\r\n');
    assert.equal(quotedPrintable('tab\t'), 'tab=09\r\n');
    assert.equal(quotedPrintable('line one\r\nline two'), 'line one\r\nline two\r\n');
    assert.equal(quotedPrintable('x'.repeat(80)), `${'x'.repeat(75)}=\r\n${'x'.repeat(5)}\r\n`);
    // An encoded octet is never split across a soft break.
    assert.equal(quotedPrintable(`${'x'.repeat(74)}é`), `${'x'.repeat(74)}=\r\n=C3=A9\r\n`);
    for (const l of quotedPrintable('ü'.repeat(100)).split('\r\n')) assert.ok(l.length <= 76);
  });

  it('isAscii on strings and buffers', () => {
    assert.equal(isAscii('plain\r\n'), true);
    assert.equal(isAscii('é'), false);
    assert.equal(isAscii(Buffer.from([0x41, 0x80])), false);
  });
});

describe('header fields', () => {
  it('paramValue quotes only where RFC 2045 §5.1 requires it, and never lets CR/LF through', () => {
    assert.equal(paramValue('delivery-status'), 'delivery-status');
    assert.equal(paramValue('report.json.gz'), 'report.json.gz');
    assert.equal(paramValue('=_postern_ab'), '"=_postern_ab"');
    assert.equal(paramValue('a b'), '"a b"');
    assert.equal(paramValue('say "hi"\\'), '"say \\"hi\\"\\\\"');
    assert.equal(paramValue('x\r\nBcc: victim@example.org'), '"x  Bcc: victim@example.org"');
    assert.equal(paramValue(''), '""');
  });

  it('mimeField: golden short and folded forms', () => {
    assert.equal(
      mimeField('Content-Type', 'text/plain', [['charset', 'utf-8']]),
      'Content-Type: text/plain; charset=utf-8',
    );
    assert.equal(
      mimeField('Content-Type', 'multipart/report', [
        ['report-type', 'tlsrpt', 'quoted'],
        ['boundary', '=_tlsrpt_000102030405060708090a0b'],
      ]),
      'Content-Type: multipart/report; report-type="tlsrpt";\r\n boundary="=_tlsrpt_000102030405060708090a0b"',
    );
  });

  it('foldList: golden fold before the part that would pass 78 characters', () => {
    const to = ['alice@example.org', 'bob@example.org', 'carol@example.org', 'dave@example.org'];
    assert.equal(
      foldList('To', to, ','),
      'To: alice@example.org, bob@example.org, carol@example.org, dave@example.org',
    );
    assert.equal(
      foldList('To', [...to, 'erin@example.org'], ','),
      'To: alice@example.org, bob@example.org, carol@example.org, dave@example.org,\r\n erin@example.org',
    );
    const long = `<${'x'.repeat(90)}@example.org>`;
    assert.equal(foldList('Message-ID', [long], ''), `Message-ID:\r\n ${long}`);
  });
});

/** A deterministic "random" source: 0x00, 0x01, … then the next call continues. */
function counter(): (n: number) => Buffer {
  let k = 0;
  return (n) => Buffer.from(Array.from({ length: n }, () => k++ & 0xff));
}

describe('multipart bodies (RFC 2046 §5.1)', () => {
  it('golden: preamble, two parts, close delimiter; content keeps its own final CRLF', () => {
    const m = buildMultipart(
      [
        { headers: ['Content-Type: text/plain; charset=us-ascii'], body: 'Hello.\r\n' },
        { headers: ['Content-Type: application/octet-stream'], body: Buffer.from([0x41, 0x42]) },
      ],
      { preamble: 'This is a multipart message in MIME format.', boundary: '=_t_1' },
    );
    assert.equal(m.boundary, '=_t_1');
    assert.equal(
      m.body.toString('latin1'),
      'This is a multipart message in MIME format.\r\n' +
        '\r\n--=_t_1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello.\r\n' +
        '\r\n--=_t_1\r\nContent-Type: application/octet-stream\r\n\r\nAB' +
        '\r\n--=_t_1--\r\n',
    );
  });

  it('golden: without a preamble the body starts with the first delimiter', () => {
    const m = buildMultipart([{ headers: [], body: 'x' }], { boundary: 'b' });
    assert.equal(m.body.toString(), '--b\r\n\r\nx\r\n--b--\r\n');
  });

  it('generates =_<tag>_<24 hex> and skips a boundary that occurs in a part', () => {
    const rnd = counter();
    assert.equal(newBoundary([], 'tag', rnd), '=_tag_000102030405060708090a0b');
    // The next candidate would be =_p_0c0d…; a part containing it forces the one after.
    const clash = { headers: [], body: 'see =_p_0c0d0e0f101112131415161718 here' };
    const m = buildMultipart([clash], { tag: 'p', random: rnd });
    assert.equal(m.boundary, '=_p_18191a1b1c1d1e1f20212223');
    assert.ok(!clash.body.includes(m.boundary));
  });

  it('refuses no parts, an unusable boundary, and a given boundary found in a part', () => {
    assert.throws(() => buildMultipart([]), RangeError);
    assert.throws(() => buildMultipart([{ headers: [], body: 'x' }], { boundary: 'ends in space ' }), RangeError);
    assert.throws(() => buildMultipart([{ headers: [], body: 'x' }], { boundary: 'x'.repeat(71) }), RangeError);
    assert.throws(
      () => buildMultipart([{ headers: [], body: '--b inside' }], { boundary: 'b' }),
      /occurs inside a part/,
    );
    assert.throws(
      () => buildMultipart([{ headers: ['X-Note: b'], body: Buffer.from('y') }], { boundary: 'b' }),
      /occurs inside a part/,
    );
  });

  it('fits PGP/MIME: an RFC 3156 §4 multipart/encrypted, golden', () => {
    const armored = '-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA…\r\n-----END PGP MESSAGE-----\r\n';
    const m = buildMultipart(
      [
        {
          headers: ['Content-Type: application/pgp-encrypted', 'Content-Description: PGP/MIME version'],
          body: 'Version: 1\r\n',
        },
        {
          headers: [mimeField('Content-Type', 'application/octet-stream', [['name', 'encrypted.asc', 'quoted']])],
          body: armored,
        },
      ],
      { preamble: 'This is an OpenPGP/MIME encrypted message (RFC 3156).', boundary: '=_e2e_0' },
    );
    const field = mimeField('Content-Type', 'multipart/encrypted', [
      ['protocol', 'application/pgp-encrypted'],
      ['boundary', m.boundary],
    ]);
    assert.equal(
      field,
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="=_e2e_0"',
    );
    assert.equal(
      m.body.toString('utf8'),
      'This is an OpenPGP/MIME encrypted message (RFC 3156).\r\n' +
        '\r\n--=_e2e_0\r\nContent-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version\r\n\r\nVersion: 1\r\n' +
        '\r\n--=_e2e_0\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n' +
        armored +
        '\r\n--=_e2e_0--\r\n',
    );
  });
});
