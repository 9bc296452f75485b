import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCa, issueCertificate, generateKeyPair, loadCa } from '../../../src/tls/cert/pki.ts';
import type { CertificateAuthority } from '../../../src/tls/cert/pki.ts';
import { signatureOid } from './helpers.ts';

const SHA1_RSA = '1.2.840.113549.1.1.5';
const SHA256_RSA = '1.2.840.113549.1.1.11';
const SHA1_ECDSA = '1.2.840.10045.4.1';
const SHA256_ECDSA = '1.2.840.10045.4.3.2';
const SHA384_ECDSA = '1.2.840.10045.4.3.3';

const day = 24 * 3600 * 1000;
const now = Date.now();
const valid = { notBefore: new Date(now - day), notAfter: new Date(now + 30 * day) };

let caPromise: Promise<CertificateAuthority> | undefined;
function ca(): Promise<CertificateAuthority> {
  caPromise ??= createCa({ name: 'pki test CA', keyType: { kind: 'ec', curve: 'P-256' } });
  return caPromise;
}

test('CA certificate is self-issued, self-verifying and marked as a CA', async () => {
  const c = await ca();
  const x = new X509Certificate(c.certPem);
  assert.equal(x.ca, true);
  assert.equal(x.subject, x.issuer);
  assert.ok(x.verify(x.publicKey));
  assert.equal(signatureOid(c.der), SHA256_ECDSA);
  assert.ok(x.subject.includes('CN=pki test CA'));
});

test('CA-issued leaf chains to the CA, carries SAN DNS names and CN', async () => {
  const c = await ca();
  const leaf = await issueCertificate({
    ca: c,
    names: ['mx.example.test', 'alt.example.test'],
    keyType: { kind: 'ec', curve: 'P-256' },
    signatureHash: 'SHA-256',
    ...valid,
  });
  const x = new X509Certificate(leaf.certPem);
  const cax = new X509Certificate(c.certPem);
  assert.ok(x.checkIssued(cax));
  assert.ok(x.verify(cax.publicKey));
  assert.equal(x.ca, false);
  assert.equal(x.subjectAltName, 'DNS:mx.example.test, DNS:alt.example.test');
  assert.equal(x.subject, 'CN=mx.example.test');
  assert.equal(x.checkHost('mx.example.test'), 'mx.example.test');
  assert.equal(x.checkHost('other.example.test'), undefined);
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(signatureOid(leaf.der), SHA256_ECDSA);
  assert.deepEqual(Buffer.from(x.raw), leaf.der);
});

test('SHA-1 signatures: by an EC CA (ecdsa-with-SHA1) and self-signed RSA (sha1WithRSAEncryption)', async () => {
  const c = await ca();
  const byCa = await issueCertificate({
    ca: c,
    names: ['sha1.test'],
    keyType: { kind: 'ec', curve: 'P-256' },
    signatureHash: 'SHA-1',
    ...valid,
  });
  assert.equal(signatureOid(byCa.der), SHA1_ECDSA);
  assert.ok(new X509Certificate(byCa.certPem).verify(new X509Certificate(c.certPem).publicKey));

  const self = await issueCertificate({
    ca: null,
    names: ['sha1.test'],
    keyType: { kind: 'rsa', bits: 1024 },
    signatureHash: 'SHA-1',
    ...valid,
  });
  assert.equal(signatureOid(self.der), SHA1_RSA);
});

test('RSA CA signs with the requested hash (key re-imported per hash)', async () => {
  const rsaCa = await createCa({ name: 'rsa CA', keyType: { kind: 'rsa', bits: 2048 } });
  assert.equal(signatureOid(rsaCa.der), SHA256_RSA);
  const leaf = await issueCertificate({
    ca: rsaCa,
    names: ['x.test'],
    keyType: { kind: 'ec', curve: 'P-384' },
    signatureHash: 'SHA-1',
    ...valid,
  });
  assert.equal(signatureOid(leaf.der), SHA1_RSA);
  assert.equal(new X509Certificate(leaf.certPem).publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  const ec384 = await issueCertificate({
    ca: await ca(),
    names: ['y.test'],
    keyType: { kind: 'ec', curve: 'P-384' },
    signatureHash: 'SHA-384',
    ...valid,
  });
  assert.equal(signatureOid(ec384.der), SHA384_ECDSA);
});

test('RSA-1024 key has a 1024-bit modulus', async () => {
  const leaf = await issueCertificate({
    ca: await ca(),
    names: ['weak.test'],
    keyType: { kind: 'rsa', bits: 1024 },
    signatureHash: 'SHA-256',
    ...valid,
  });
  const details = new X509Certificate(leaf.certPem).publicKey.asymmetricKeyDetails;
  assert.equal(details?.modulusLength, 1024);
  assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
});

test("the seed's certificate of shame: self-signed, 1970 validity, no SAN, CN=abc.xy, SHA-1, RSA-1024", async () => {
  const shame = await issueCertificate({
    ca: null,
    names: [],
    subject: 'C=DE, ST=Saxony, L=Chemnitz, O=CA, OU=CA, CN=abc.xy',
    keyType: { kind: 'rsa', bits: 1024 },
    signatureHash: 'SHA-1',
    notBefore: new Date(Date.UTC(1970, 0, 1)),
    notAfter: new Date(Date.UTC(1970, 0, 2)),
  });
  const x = new X509Certificate(shame.certPem);
  assert.equal(x.subject, x.issuer);
  assert.ok(x.verify(x.publicKey));
  assert.equal(x.subjectAltName, undefined);
  assert.match(x.subject, /CN=abc\.xy/);
  assert.match(x.subject, /L=Chemnitz/);
  assert.equal(x.validToDate.getTime(), Date.UTC(1970, 0, 2));
  assert.ok(x.validToDate.getTime() < Date.now());
  assert.equal(signatureOid(shame.der), SHA1_RSA);
  assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 1024);
});

test('expired CA-issued certificate: notAfter before now, still chains to the CA', async () => {
  const c = await ca();
  const leaf = await issueCertificate({
    ca: c,
    names: ['old.test'],
    keyType: { kind: 'ec', curve: 'P-256' },
    signatureHash: 'SHA-256',
    notBefore: new Date(now - 400 * day),
    notAfter: new Date(now - 2 * day),
  });
  const x = new X509Certificate(leaf.certPem);
  assert.ok(x.validToDate.getTime() < now);
  assert.ok(x.verify(new X509Certificate(c.certPem).publicKey));
});

test('a shared key pair can back several certificates; a cached CA reloads and still signs', async () => {
  const key = await generateKeyPair({ kind: 'ec', curve: 'P-256' });
  const c = await ca();
  const a = await issueCertificate({
    ca: c,
    names: ['a.test'],
    keyType: key.keyType,
    signatureHash: 'SHA-256',
    key,
    ...valid,
  });
  const b = await issueCertificate({
    ca: c,
    names: ['b.test'],
    keyType: key.keyType,
    signatureHash: 'SHA-256',
    key,
    ...valid,
  });
  assert.equal(a.keyPem, b.keyPem);
  assert.ok(new X509Certificate(a.certPem).publicKey.equals(new X509Certificate(b.certPem).publicKey));

  const reloaded = await loadCa({ name: c.name, keyType: c.keyType, certPem: c.certPem, keyPem: c.keyPem });
  const d = await issueCertificate({
    ca: reloaded,
    names: ['d.test'],
    keyType: key.keyType,
    signatureHash: 'SHA-1',
    key,
    ...valid,
  });
  assert.ok(new X509Certificate(d.certPem).verify(new X509Certificate(c.certPem).publicKey));
  assert.equal(signatureOid(d.der), SHA1_ECDSA);
});
