import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WireError } from '../../../../src/core/errors.ts';
import { ServerFlightParser, parseServerFlight } from '../../../../src/tls/wire/server-flight.ts';
import type { ServerFlight } from '../../../../src/tls/wire/server-flight.ts';
import {
  buildAlert,
  buildCertificate,
  buildServerHello,
  buildServerHelloDone,
  buildServerKeyExchange,
} from '../../../../src/tls/wire/server-side.ts';
import { HRR_RANDOM } from '../../../../src/tls/wire/constants.ts';

/** Hex with spaces/newlines allowed. */
function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}
const rep = (byte: string, n: number): string => byte.repeat(n);

// A TLS 1.2 ServerHello + Certificate + ServerKeyExchange (ECDHE secp256r1) + ServerHelloDone,
// all in one record, written out byte by byte.
const SERVER_HELLO = hex(`
  02 00 00 3c  0303 ${rep('11', 32)} 00  c02f 00
  0014  ff01 0001 00  0017 0000  0010 0007 0005 04 736d7470`);
const CERTIFICATE = hex('0b 00 00 0b  000008 000005 3003020101');
const SKE = hex(`0c 00 00 4d  03 0017 41 04${rep('aa', 64)}  0401 0004 deadbeef`);
const DONE = hex('0e 00 00 00');
const HANDSHAKE = Buffer.concat([SERVER_HELLO, CERTIFICATE, SKE, DONE]);
const FLIGHT = Buffer.concat([hex('16 0303 00a4'), HANDSHAKE]);

function expectHello(f: ServerFlight | null): Extract<ServerFlight, { kind: 'hello' }> {
  assert.ok(f !== null && f.kind === 'hello', `expected a hello flight, got ${JSON.stringify(f)}`);
  return f;
}

function checkFullFlight(f: ServerFlight | null): void {
  const flight = expectHello(f);
  assert.equal(flight.hello.legacyVersion, 0x0303);
  assert.equal(flight.hello.version, 'TLSv1.2');
  assert.equal(flight.hello.cipherSuite, 0xc02f);
  assert.deepEqual(flight.hello.random, Buffer.alloc(32, 0x11));
  assert.equal(flight.hello.secureRenegotiation, true);
  assert.equal(flight.hello.extendedMasterSecret, true);
  assert.equal(flight.hello.encryptThenMac, false);
  assert.equal(flight.hello.alpn, 'smtp');
  assert.equal(flight.hello.helloRetryRequest, false);
  assert.equal(flight.hello.downgradeSentinel, null);
  assert.deepEqual(flight.certificates, [hex('3003020101')]);
  assert.deepEqual(flight.keyExchange, { kind: 'ecdhe', group: 23, signed: true, signatureScheme: 0x0401 });
  assert.equal(flight.helloDone, true);
  assert.equal(flight.certificateRequested, false);
}

describe('ServerFlightParser', () => {
  it('parses a hand-built TLS 1.2 flight in one record', () => {
    assert.equal(FLIGHT.length, 5 + 0xa4);
    checkFullFlight(parseServerFlight(FLIGHT));
  });

  it('parses the same flight fed one byte at a time, returning it exactly once', () => {
    const p = new ServerFlightParser();
    let result: ServerFlight | null = null;
    for (let i = 0; i < FLIGHT.length; i++) {
      const r = p.push(FLIGHT.subarray(i, i + 1));
      if (i < FLIGHT.length - 1) assert.equal(r, null, `early result at byte ${i}`);
      else result = r;
    }
    checkFullFlight(result);
    assert.equal(p.push(hex('15 0303 0002 0228')), null, 'later input is ignored');
    assert.equal(p.done, true);
  });

  it('reassembles handshake messages fragmented across one-byte records', () => {
    const records = [...HANDSHAKE].map((b) => Buffer.concat([hex('16 0303 0001'), Buffer.from([b])]));
    checkFullFlight(parseServerFlight(Buffer.concat(records)));
  });

  it('handles each message in its own record and records split across chunks', () => {
    const recs = [SERVER_HELLO, CERTIFICATE, SKE, DONE].map((m) =>
      Buffer.concat([Buffer.from([22, 3, 3, m.length >> 8, m.length & 0xff]), m]),
    );
    const all = Buffer.concat(recs);
    const p = new ServerFlightParser();
    assert.equal(p.push(all.subarray(0, 7)), null);
    assert.equal(p.push(all.subarray(7, 100)), null);
    checkFullFlight(p.push(all.subarray(100)));
  });

  it('returns a partial flight when the peer closes before ServerHelloDone', () => {
    const p = new ServerFlightParser();
    const noDone = Buffer.concat([hex('16 0303 00a0'), SERVER_HELLO, CERTIFICATE, SKE]);
    assert.equal(p.push(noDone), null);
    const f = expectHello(p.partial());
    assert.equal(f.helloDone, false);
    assert.equal(f.certificates.length, 1);
    assert.equal(new ServerFlightParser().partial(), null);
  });

  it('stops after the ServerHello when asked', () => {
    const f = expectHello(
      new ServerFlightParser({ stopAfterServerHello: true }).push(Buffer.concat([hex('16 0303 0040'), SERVER_HELLO])),
    );
    assert.equal(f.hello.cipherSuite, 0xc02f);
    assert.equal(f.certificates.length, 0);
  });

  it('detects a HelloRetryRequest by its special random and reads the selected group', () => {
    const hrr = hex(`16 0303 0058  02 000054  0303 ${HRR_RANDOM.toString('hex')} 20 ${rep('44', 32)} 1301 00
      000c  002b 0002 0304  0033 0002 0018`);
    const f = expectHello(parseServerFlight(hrr));
    assert.equal(f.hello.helloRetryRequest, true);
    assert.equal(f.hello.version, 'TLSv1.3');
    assert.equal(f.hello.selectedGroup, 24);
    assert.equal(f.hello.cipherSuite, 0x1301);
    assert.deepEqual(f.hello.sessionId, Buffer.alloc(32, 0x44));
  });

  it('parses a TLS 1.3 ServerHello (supported_versions wins) followed by CCS and encrypted records', () => {
    const sh = hex(`16 0303 007a  02 000076  0303 ${rep('22', 32)} 20 ${rep('55', 32)} 1302 00
      002e  002b 0002 0304  0033 0024 001d 0020 ${rep('66', 32)}`);
    const bytes = Buffer.concat([sh, hex('14 0303 0001 01'), hex('17 0303 0005 0102030405')]);
    const f = expectHello(parseServerFlight(bytes));
    assert.equal(f.hello.legacyVersion, 0x0303);
    assert.equal(f.hello.version, 'TLSv1.3');
    assert.equal(f.hello.cipherSuite, 0x1302);
    assert.equal(f.hello.selectedGroup, 29);
    assert.equal(f.hello.helloRetryRequest, false);
    assert.equal(f.helloDone, false);
  });

  it('reports the RFC 8446 downgrade sentinel', () => {
    const random = Buffer.concat([Buffer.alloc(24, 1), hex('444f574e47524401')]);
    const bytes = Buffer.concat([
      buildServerHello({ version: 'TLSv1.2', cipherSuite: 0xc02f, random }),
      buildServerHelloDone(),
    ]);
    assert.equal(expectHello(parseServerFlight(bytes)).hello.downgradeSentinel, 'tls12');
  });

  it('parses fatal alerts and collects warning alerts', () => {
    const f = parseServerFlight(hex('15 0303 0002 0228'));
    assert.deepEqual(f, { kind: 'alert', level: 2, description: 40, name: 'handshake_failure' });
    assert.deepEqual(parseServerFlight(buildAlert(2, 86, 0x0301)), {
      kind: 'alert',
      level: 2,
      description: 86,
      name: 'inappropriate_fallback',
    });
    const v = parseServerFlight(hex('15 0300 0002 0246'));
    assert.ok(v.kind === 'alert' && v.name === 'protocol_version');
    // A warning unrecognized_name before the ServerHello does not end the handshake.
    const withWarning = Buffer.concat([hex('15 0301 0002 0170'), FLIGHT]);
    const h = expectHello(parseServerFlight(withWarning));
    assert.deepEqual(h.warningAlerts, [112]);
    const onlyWarning = new ServerFlightParser();
    assert.equal(onlyWarning.push(hex('15 0301 0002 0170')), null);
    assert.deepEqual(onlyWarning.partial(), { kind: 'alert', level: 1, description: 112, name: 'unrecognized_name' });
  });

  it('parses SSLv2 SERVER-HELLO with 2-byte and 3-byte headers, and SSLv2 ERROR', () => {
    const msg = hex(`04 00 01 0002 0005 0006 0010  3003020101  010080 0700c0  ${rep('33', 16)}`);
    const expected = {
      kind: 'sslv2',
      version: 2,
      certificate: hex('3003020101'),
      cipherKinds: [0x010080, 0x0700c0],
      connectionId: Buffer.alloc(16, 0x33),
    };
    assert.equal(msg.length, 0x26);
    assert.deepEqual(parseServerFlight(Buffer.concat([hex('8026'), msg])), expected);
    assert.deepEqual(parseServerFlight(Buffer.concat([hex('002600'), msg])), expected);
    const p = new ServerFlightParser();
    const two = Buffer.concat([hex('8026'), msg]);
    for (let i = 0; i < two.length - 1; i++) assert.equal(p.push(two.subarray(i, i + 1)), null);
    assert.deepEqual(p.push(two.subarray(two.length - 1)), expected);
    const err = parseServerFlight(hex('8003 00 0001'));
    assert.ok(err.kind === 'alert' && err.sslv2Error === 1 && err.description === 40);
  });

  it('rejects a plaintext SMTP or HTTP reply with wire-not-tls, quoting it', () => {
    const smtp = Buffer.from('220 mx.example.org ESMTP ready\r\n');
    assert.throws(
      () => parseServerFlight(smtp),
      (e: unknown) =>
        e instanceof WireError &&
        e.code === 'wire-not-tls' &&
        e.message.includes('220 mx.example.org ESMTP ready\\r\\n'),
    );
    assert.throws(() => new ServerFlightParser().push(Buffer.from('HTTP/1.1 400 Bad Request\r\n')), {
      code: 'wire-not-tls',
    });
    assert.throws(() => new ServerFlightParser().push(Buffer.from('* OK IMAP4rev1\r\n')), { code: 'wire-not-tls' });
    // Fewer than 4 ambiguous bytes: wait for more rather than guess.
    const p = new ServerFlightParser();
    assert.equal(p.push(Buffer.from('22')), null);
    assert.throws(() => p.push(Buffer.from('0 ')), { code: 'wire-not-tls' });
    assert.throws(() => p.push(Buffer.from('x')), { code: 'wire-not-tls' }, 'the error sticks');
  });

  it('rejects oversize records, oversize handshake lengths and input beyond the cap', () => {
    assert.throws(() => new ServerFlightParser().push(hex('16 0303 4801')), { code: 'wire-malformed' });
    assert.throws(() => new ServerFlightParser({ maxBytes: 1000 }).push(hex('16 0303 0004 02 ffffff')), {
      code: 'wire-too-large',
    });
    const p = new ServerFlightParser({ maxBytes: 64 });
    assert.equal(p.push(hex('16 0303 4000')), null);
    assert.throws(() => p.push(Buffer.alloc(100)), { code: 'wire-too-large' });
    assert.ok(p.bufferedBytes <= 64);
  });

  it('rejects malformed structures with typed errors', () => {
    assert.throws(
      () => parseServerFlight(hex('16 0303 0004 0b000000')),
      { code: 'wire-malformed' },
      'Certificate before ServerHello',
    );
    assert.throws(() => parseServerFlight(hex('16 0303 0005 02000001 03')), { code: 'wire-truncated' });
    assert.throws(
      () => parseServerFlight(hex('14 0303 0001 01')),
      { code: 'wire-malformed' },
      'CCS before ServerHello',
    );
    assert.throws(() => parseServerFlight(hex('15 0303 0002 0928')), { code: 'wire-malformed' }, 'alert level 9');
    assert.throws(() => parseServerFlight(hex('16 0303 0002 0e00')), { code: 'wire-truncated' }, 'incomplete flight');
  });

  it('recognises OCSP stapling, CertificateRequest and key-exchange variants', () => {
    const rv = 0x0301;
    const bytes = Buffer.concat([
      buildServerHello({ version: 'TLSv1.0', cipherSuite: 0x0003 }),
      buildCertificate([hex('3003020101')], rv),
      hex('16 0301 000b 16 000007 01 000003 300100'), // CertificateStatus, ocsp
      buildServerKeyExchange(
        { kind: 'rsa-export', modulus: Buffer.concat([hex('c0'), Buffer.alloc(63, 1)]) },
        { version: 'TLSv1.0' },
      ),
      hex('16 0301 0008 0d 000004 01 01 0000'), // CertificateRequest
      buildServerHelloDone(rv),
    ]);
    const f = expectHello(parseServerFlight(bytes));
    assert.equal(f.hello.version, 'TLSv1.0');
    assert.equal(f.ocspStapled, true);
    assert.equal(f.certificateRequested, true);
    assert.deepEqual(f.keyExchange, { kind: 'rsa-export', modulusBits: 512, signed: true, signatureScheme: null });

    const anonDh = Buffer.concat([
      buildServerHello({ version: 'TLSv1.2', cipherSuite: 0x00a6 }),
      buildServerKeyExchange(
        { kind: 'dhe', prime: Buffer.concat([hex('ff'), Buffer.alloc(127, 0xee)]), generator: hex('05') },
        { version: 'TLSv1.2', anonymous: true },
      ),
      buildServerHelloDone(),
    ]);
    assert.deepEqual(expectHello(parseServerFlight(anonDh)).keyExchange, {
      kind: 'dhe',
      primeBits: 1024,
      generator: hex('05'),
      signed: false,
      signatureScheme: null,
    });
    const odd = Buffer.concat([
      buildServerHello({ version: 'TLSv1.2', cipherSuite: 0x00ae }),
      hex('16 0303 0007 0c 000003 000100'),
      buildServerHelloDone(),
    ]);
    assert.deepEqual(expectHello(parseServerFlight(odd)).keyExchange, { kind: 'unknown' });
  });

  it('accepts an SSLv3 ServerHello without an extensions block', () => {
    const bytes = Buffer.concat([
      hex(`16 0300 002a 02 000026 0300 ${rep('77', 32)} 00 0005 00`),
      hex('16 0300 0004 0e000000'),
    ]);
    const f = expectHello(parseServerFlight(bytes));
    assert.equal(f.hello.version, 'SSLv3');
    assert.equal(f.hello.cipherSuite, 0x0005);
    assert.deepEqual(f.hello.extensions, []);
    assert.equal(f.hello.secureRenegotiation, false);
  });
});
