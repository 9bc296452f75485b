import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DataReader } from '../../../src/smtp/server/data.ts';
import { receivedHeader, withProtocol, addressLiteral } from '../../../src/smtp/server/received.ts';

function read(input: string, limits = { maxSize: 1000, maxLineLength: 998 }, chunk = 0) {
  const r = new DataReader(limits);
  const buf = Buffer.from(input, 'latin1');
  let off = 0;
  const step = chunk > 0 ? chunk : buf.length;
  while (off < buf.length) {
    const part = buf.subarray(off, Math.min(off + step, buf.length));
    const f = r.feed(part);
    off += f.consumed;
    if (f.done) return { ...r.result(), rest: buf.subarray(off).toString('latin1'), done: true };
    if (f.consumed !== part.length) throw new Error('partial consume without done');
  }
  return { ...r.result(), rest: '', done: false };
}

describe('DataReader', () => {
  test('CRLF.CRLF ends, dot-unstuffing, rest returned', () => {
    const r = read('a\r\n..b\r\n.c\r\n.\r\nQUIT\r\n');
    assert.equal(r.done, true);
    assert.equal(r.message?.toString('latin1'), 'a\r\n.b\r\nc\r\n');
    assert.equal(r.rest, 'QUIT\r\n');
    assert.equal(r.bareLf || r.bareCr || r.tooBig || r.lineTooLong, false);
  });
  test('empty message', () => {
    const r = read('.\r\n');
    assert.equal(r.done, true);
    assert.equal(r.message?.length, 0);
  });
  test('byte-at-a-time feeding gives the same result', () => {
    const input = 'x\r\n..y\r\n\r\n.\r\nRSET\r\n';
    const whole = read(input);
    const bytes = read(input, undefined, 1);
    assert.equal(bytes.message?.toString(), whole.message?.toString());
    assert.equal(bytes.rest, 'RSET\r\n');
  });
  test('bare LF / bare CR never end data and are flagged', () => {
    for (const [input, flag] of [
      ['a\n.\nb\r\n.\r\n', 'bareLf'],
      ['a\r.\rb\r\n.\r\n', 'bareCr'],
      ['a\n.\r\nb\r\n.\r\n', 'bareLf'],
      ['a\r\n.\nb\r\n.\r\n', 'bareLf'],
      ['a\r\n.\rb\r\n.\r\n', 'bareCr'],
      ['a\r\r\n.\r\n', 'bareCr'],
    ] as const) {
      const r = read(input);
      assert.equal(r.done, true, JSON.stringify(input));
      assert.equal(r.rest, '', `ended early on ${JSON.stringify(input)}`);
      assert.equal(r[flag], true, JSON.stringify(input));
    }
  });
  test('size limit: counted, storage stops, terminator still found', () => {
    const r = read('x'.repeat(50) + '\r\n' + 'y'.repeat(5000) + '\r\n.\r\nNOOP\r\n', {
      maxSize: 100,
      maxLineLength: 10_000,
    });
    assert.equal(r.tooBig, true);
    assert.equal(r.message, null);
    assert.equal(r.size, 50 + 2 + 5000 + 2);
    assert.equal(r.rest, 'NOOP\r\n');
  });
  test('line length: 998 ok, 999 flagged (RFC 5322 §2.1.1); stuffing dot not counted', () => {
    assert.equal(read('x'.repeat(998) + '\r\n.\r\n', { maxSize: 5000, maxLineLength: 998 }).lineTooLong, false);
    assert.equal(read('.' + '.'.repeat(998) + '\r\n.\r\n', { maxSize: 5000, maxLineLength: 998 }).lineTooLong, false);
    assert.equal(read('x'.repeat(999) + '\r\n.\r\n', { maxSize: 5000, maxLineLength: 998 }).lineTooLong, true);
  });
  test('8-bit content is recorded', () => {
    assert.equal(read('caf\xe9\r\n.\r\n').eightBit, true);
    assert.equal(read('cafe\r\n.\r\n').eightBit, false);
  });
});

describe('Received header', () => {
  test('RFC 3848 with-protocol names', () => {
    assert.equal(withProtocol(true, false, false), 'ESMTP');
    assert.equal(withProtocol(true, true, false), 'ESMTPS');
    assert.equal(withProtocol(true, false, true), 'ESMTPA');
    assert.equal(withProtocol(true, true, true), 'ESMTPSA');
    assert.equal(withProtocol(false, true, false), 'SMTP');
  });
  test('TLS details, verified client certificate, one recipient', () => {
    const h = receivedHeader({
      hostname: 'mx.example',
      helo: 'client.example',
      esmtp: true,
      clientAddress: '192.0.2.7',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256, clientCertSubject: 'CN=alice (x)' },
      unverifiedClientCert: false,
      authenticated: true,
      id: 'ABC.1',
      recipients: ['bob@example.org'],
      date: new Date(Date.UTC(2025, 6, 1, 10, 52, 37)),
    });
    assert.equal(
      h,
      'Received: from client.example ([192.0.2.7])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\t(client certificate "CN=alice ?x?" verified OK)\r\n\tby mx.example (postern) with ESMTPSA id ABC.1\r\n\tfor <bob@example.org>; Tue, 1 Jul 2025 10:52:37 +0000\r\n',
    );
  });
  test('hostile HELO is not copied; no "for" with several recipients; IPv6 literal', () => {
    const h = receivedHeader({
      hostname: 'mx.example',
      helo: 'evil)\r\nX-Injected: 1',
      esmtp: false,
      clientAddress: '2001:db8::1',
      tls: null,
      unverifiedClientCert: false,
      authenticated: false,
      id: 'ID',
      recipients: ['a@x', 'b@x'],
      date: new Date(0),
    });
    assert.ok(
      h.startsWith('Received: from unknown ([IPv6:2001:db8::1])\r\n\tby mx.example (postern) with SMTP id ID\r\n\t; '),
    );
    assert.ok(!h.includes('Injected'));
    assert.equal(addressLiteral('::ffff:10.0.0.1'), '[10.0.0.1]');
  });
});
