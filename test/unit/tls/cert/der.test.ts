/**
 * Direct tests of the DER reader (src/tls/cert/der.ts): hand-assembled X.690 vectors for every
 * length form and error, OIDs and strings with known encodings, RFC 5952 IPv6 text, and whole
 * certificates cross-checked against node's own X509Certificate.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { WireError } from '../../../../src/core/errors.ts';
import {
  children,
  commonNames,
  decodeOid,
  decodeString,
  formatIp,
  parseCertificate,
  parseSan,
  readNode,
} from '../../../../src/tls/cert/der.ts';
import type { DerNode } from '../../../../src/tls/cert/der.ts';
import { makeCert } from '../../../helpers/certs.ts';
import type { TestCert } from '../../../helpers/certs.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const wireError = (code: string) => (e: unknown) => e instanceof WireError && e.code === code;

describe('readNode (X.690 §8.1)', () => {
  it('reads the short length form', () => {
    const n = readNode(hex('04 03 616263 ff'), 0);
    assert.equal(n.tag, 0x04);
    assert.equal(n.value.toString(), 'abc');
    assert.equal(n.end, 5);
  });

  it('reads long length forms with one to four length octets', () => {
    const body = Buffer.alloc(300, 0x41);
    const n1 = readNode(Buffer.concat([hex('04 81 05'), body.subarray(0, 5)]), 0);
    assert.equal(n1.value.length, 5);
    const n2 = readNode(Buffer.concat([hex('04 82 012c'), body]), 0);
    assert.equal(n2.value.length, 300);
    assert.equal(n2.end, 304);
    const n4 = readNode(Buffer.concat([hex('04 84 0000012c'), body]), 0);
    assert.equal(n4.value.length, 300);
  });

  it('reads at an offset, with end relative to the buffer', () => {
    const buf = hex('ff ff 02 01 07');
    const n = readNode(buf, 2);
    assert.deepEqual([n.tag, n.value[0], n.end], [0x02, 7, 5]);
  });

  it('refuses truncation, indefinite and over-long lengths, and high tag numbers', () => {
    assert.throws(() => readNode(hex(''), 0), wireError('der-truncated'));
    assert.throws(() => readNode(hex('04'), 0), wireError('der-truncated'));
    assert.throws(() => readNode(hex('04 05 6162'), 0), wireError('der-truncated'));
    assert.throws(() => readNode(hex('04 82 01'), 0), wireError('der-truncated'));
    // 0x80: the indefinite form, which DER forbids (X.690 §10.1).
    assert.throws(() => readNode(hex('30 80 0000'), 0), wireError('der-bad-length'));
    assert.throws(() => readNode(hex('04 85 0000000001 00'), 0), wireError('der-bad-length'));
    assert.throws(() => readNode(hex('1f 81 01 00'), 0), wireError('der-unsupported'));
    // A length near 2^32 never allocates: it is checked against the buffer.
    assert.throws(() => readNode(hex('04 84 ffffffff 00'), 0), wireError('der-truncated'));
  });
});

describe('children', () => {
  it('splits a SEQUENCE into its elements, in order', () => {
    const seq = readNode(hex('30 08 02 01 01 04 01 41 05 00 01'), 0);
    const c = children(seq);
    assert.deepEqual(
      c.map((x) => x.tag),
      [0x02, 0x04, 0x05],
    );
    assert.equal(c[2]?.value.length, 0);
  });

  it('refuses a child that runs past its parent, and more than 10,000 elements', () => {
    assert.throws(() => children(readNode(hex('30 03 04 05 41'), 0)), wireError('der-truncated'));
    const many = Buffer.concat([hex('30 83 007532'), Buffer.alloc(30_002, 0)]); // 15,001 × "00 00"
    assert.throws(() => children(readNode(many, 0)), wireError('der-too-many'));
  });
});

describe('decodeOid (X.690 §8.19)', () => {
  it('decodes well-known OIDs', () => {
    assert.equal(decodeOid(hex('55 04 03')), '2.5.4.3'); // commonName
    assert.equal(decodeOid(hex('2a 86 48 86 f7 0d 01 01 0b')), '1.2.840.113549.1.1.11'); // sha256WithRSAEncryption
    assert.equal(decodeOid(hex('55 1d 11')), '2.5.29.17'); // subjectAltName
    assert.equal(decodeOid(hex('2a 86 48 ce 3d 03 01 07')), '1.2.840.10045.3.1.7'); // prime256v1
  });

  it('splits the first subidentifier for arcs 0, 1 and 2 (2.x may exceed 39)', () => {
    assert.equal(decodeOid(hex('27')), '0.39');
    assert.equal(decodeOid(hex('28')), '1.0');
    assert.equal(decodeOid(hex('88 37')), '2.999');
  });

  it('refuses an empty OID', () => {
    assert.throws(() => decodeOid(Buffer.alloc(0)), wireError('der-bad-oid'));
  });
});

describe('decodeString', () => {
  const node = (tag: number, value: Buffer): DerNode => ({ tag, value, end: value.length + 2 });
  it('decodes UTF8String, PrintableString, IA5String, T61String, BMPString and UniversalString', () => {
    assert.equal(decodeString(node(0x0c, Buffer.from('Grüße', 'utf8'))), 'Grüße');
    assert.equal(decodeString(node(0x13, Buffer.from('Example Ltd'))), 'Example Ltd');
    assert.equal(decodeString(node(0x16, Buffer.from('a@b.example'))), 'a@b.example');
    assert.equal(decodeString(node(0x14, hex('e9'))), 'é'); // T61 read as Latin-1
    assert.equal(decodeString(node(0x1e, hex('00 41 00 e9 20 ac'))), 'Aé€');
    assert.equal(decodeString(node(0x1c, hex('00000041 0001f600'))), 'A😀');
  });

  it('ignores a trailing partial code unit instead of reading past the value', () => {
    assert.equal(decodeString(node(0x1e, hex('00 41 00'))), 'A');
    assert.equal(decodeString(node(0x1c, hex('00000041 0000'))), 'A');
  });
});

describe('formatIp (RFC 5952 §4)', () => {
  it('formats IPv4 and canonical IPv6', () => {
    assert.equal(formatIp(hex('c0000201')), '192.0.2.1');
    assert.equal(formatIp(hex('20010db8000000000000000000000001')), '2001:db8::1');
    assert.equal(formatIp(hex('00000000000000000000000000000001')), '::1');
    assert.equal(formatIp(hex('00000000000000000000000000000000')), '::');
    // §4.2.3: the longest run of zeros is compressed, the first one on a tie.
    assert.equal(formatIp(hex('00010000000000010000000000000001')), '1:0:0:1::1');
    assert.equal(formatIp(hex('20010db8000000010000000000000001')), '2001:db8:0:1::1');
    // §4.2.2: a single zero field is not compressed.
    assert.equal(formatIp(hex('20010db8000000010001000100010001')), '2001:db8:0:1:1:1:1:1');
    assert.equal(formatIp(hex('20010db8000000000001000000000001')), '2001:db8::1:0:0:1');
  });

  it('returns null for any other length', () => {
    assert.equal(formatIp(hex('c00002')), null);
    assert.equal(formatIp(Buffer.alloc(15)), null);
  });
});

describe('parseCertificate, parseSan, commonNames on real certificates', () => {
  let rsa: TestCert;
  let ec: TestCert;
  before(async () => {
    rsa = await makeCert({
      subject: 'CN=mx.example.test, O=Example, CN=second.example.test',
      dnsNames: ['mx.example.test', '*.example.test'],
      ipAddresses: ['192.0.2.25', '2001:db8::25'],
      key: 'rsa-2048',
    });
    ec = await makeCert({ subject: 'O=No Common Name' });
  });

  it('agrees with node on the subject, the SAN and the signature algorithm', () => {
    const f = parseCertificate(rsa.der);
    assert.deepEqual(commonNames(f.subject), ['mx.example.test', 'second.example.test']);
    const sanExt = f.extensions.get('2.5.29.17');
    assert.ok(sanExt);
    const san = parseSan(sanExt);
    assert.deepEqual(san.dnsNames, ['mx.example.test', '*.example.test']);
    assert.deepEqual(san.ipAddresses, ['192.0.2.25', '2001:db8::25']);
    const node = new X509Certificate(rsa.der);
    assert.equal(
      node.subjectAltName,
      'DNS:mx.example.test, DNS:*.example.test, IP Address:192.0.2.25, IP Address:2001:DB8:0:0:0:0:0:25',
    );
    assert.equal(f.sigAlgOid, '1.2.840.113549.1.1.11');
    // The extensions node lists are the ones parseCertificate found (basicConstraints, keyUsage, …).
    assert.ok(f.extensions.has('2.5.29.19') && f.extensions.has('2.5.29.15'));
  });

  it('an EC certificate without CN or SAN: no names, ECDSA signature OID', () => {
    const f = parseCertificate(ec.der);
    assert.deepEqual(commonNames(f.subject), []);
    assert.equal(f.extensions.has('2.5.29.17'), false);
    assert.equal(f.sigAlgOid, '1.2.840.10045.4.3.2'); // ecdsa-with-SHA256
  });

  it('refuses what is not a certificate, and every truncation of a real one', () => {
    assert.throws(() => parseCertificate(hex('04 00')), wireError('der-not-certificate'));
    assert.throws(() => parseCertificate(hex('30 00')), wireError('der-not-certificate'));
    for (let len = 0; len < rsa.der.length; len += 7) {
      assert.throws(
        () => parseCertificate(rsa.der.subarray(0, len)),
        (e: unknown) => e instanceof WireError,
        `truncated to ${len} bytes`,
      );
    }
  });
});
