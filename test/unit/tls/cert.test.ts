import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { analyzeCertificate, analyzeChain, matchHostname } from '../../../src/tls/cert/index.ts';
import { WireError } from '../../../src/core/errors.ts';
import { daysFromNow, makeCert, makePki, makePssCert, resignWithMd5 } from '../../helpers/certs.ts';
import type { TestCert } from '../../helpers/certs.ts';

describe('analyzeCertificate', () => {
  let pki: { root: TestCert; intermediate: TestCert; leaf: TestCert };
  let rsaRoot: TestCert;
  before(async () => {
    pki = await makePki({
      dnsNames: ['mail.example.test', '*.mx.example.test'],
      ipAddresses: ['192.0.2.7', '2001:db8::1'],
    });
    rsaRoot = await makeCert({ subject: 'CN=RSA Root', key: 'rsa-2048', isCA: true });
  });

  test('EC leaf: key, signature, names, fingerprint, dates', () => {
    const info = analyzeCertificate(pki.leaf.der);
    assert.equal(info.keyType, 'EC');
    assert.equal(info.curve, 'P-256');
    assert.equal(info.keyBits, 256);
    assert.equal(info.signatureAlgorithm, 'ecdsa-with-SHA256');
    assert.equal(info.signatureHash, 'sha256');
    assert.deepEqual(info.dnsNames, ['mail.example.test', '*.mx.example.test']);
    assert.deepEqual(info.ipAddresses, ['192.0.2.7', '2001:db8::1']);
    assert.equal(info.commonName, 'mail.example.test');
    assert.equal(info.subject, 'CN=mail.example.test');
    assert.equal(info.issuer, 'CN=Postern Test Intermediate');
    assert.equal(info.sha256, createHash('sha256').update(pki.leaf.der).digest('hex').toUpperCase());
    assert.equal(info.notAfter, pki.leaf.cert.notAfter.toISOString());
    assert.equal(info.serialNumber, pki.leaf.cert.serialNumber.toUpperCase());
    assert.equal(info.isCA, false);
    assert.equal(info.selfSigned, false);
  });

  test('CA flag and self-signed root', () => {
    const root = analyzeCertificate(pki.root.der);
    assert.equal(root.isCA, true);
    assert.equal(root.selfSigned, true);
  });

  test('RSA-1024 signed with SHA-1 is reported as such', async () => {
    const weak = await makeCert({ subject: 'CN=weak', key: 'rsa-1024', issuer: rsaRoot, hash: 'SHA-1' });
    const info = analyzeCertificate(weak.der);
    assert.equal(info.keyType, 'RSA');
    assert.equal(info.keyBits, 1024);
    assert.equal(info.curve, null);
    assert.equal(info.signatureAlgorithm, 'sha1WithRSAEncryption');
    assert.equal(info.signatureHash, 'sha1');
  });

  test('MD5-signed certificate is detected', async () => {
    const leaf = await makeCert({ subject: 'CN=md5', key: 'rsa-2048', issuer: rsaRoot });
    const info = analyzeCertificate(resignWithMd5(leaf, rsaRoot.keyPem));
    assert.equal(info.signatureAlgorithm, 'md5WithRSAEncryption');
    assert.equal(info.signatureHash, 'md5');
  });

  test('RSASSA-PSS: hash read from the parameters', async () => {
    const info = analyzeCertificate((await makePssCert('CN=pss', 'SHA-384')).der);
    assert.equal(info.signatureAlgorithm, 'rsassaPss(sha384)');
    assert.equal(info.signatureHash, 'sha384');
    assert.equal(info.keyType, 'RSA');
    assert.equal(info.keyBits, 2048);
  });

  test('Ed25519 self-signed: intrinsic hash', async () => {
    const ed = await makeCert({ subject: 'CN=ed', key: 'ed25519' });
    const info = analyzeCertificate(ed.der);
    assert.equal(info.keyType, 'Ed25519');
    assert.equal(info.signatureHash, 'intrinsic');
    assert.equal(info.selfSigned, true);
    assert.equal(info.commonName, 'ed');
  });

  test('garbage bytes raise WireError cert-parse, not a crash', () => {
    assert.throws(
      () => analyzeCertificate(Buffer.from('3003020101', 'hex')),
      (e: unknown) => e instanceof WireError && e.code === 'cert-parse',
    );
    assert.throws(
      () => analyzeChain([], {}),
      (e: unknown) => e instanceof WireError && e.code === 'cert-empty-chain',
    );
  });
});

describe('analyzeChain', () => {
  let pki: { root: TestCert; intermediate: TestCert; leaf: TestCert };
  before(async () => {
    pki = await makePki();
  });

  test('leaf + intermediate to a supplied root: trusted, hostname checked', () => {
    const r = analyzeChain([pki.leaf.der, pki.intermediate.der], {
      ca: [pki.root.pem],
      hostname: 'MAIL.example.test.',
    });
    assert.deepEqual(r.trust, { trusted: true, anchor: 'CN=Postern Test Root', error: null });
    assert.deepEqual(r.hostname, { checked: 'MAIL.example.test.', matches: true, matchedName: 'mail.example.test' });
    assert.deepEqual(
      r.chain.map((c) => c.subject),
      ['CN=mail.example.test', 'CN=Postern Test Intermediate'],
    );
    assert.equal(r.validity.expired, false);
    assert.ok(r.validity.daysLeft >= 88 && r.validity.daysLeft <= 90);
  });

  test('misordered chain still builds a path; report keeps the sent order', () => {
    const r = analyzeChain([pki.leaf.der, pki.root.der, pki.intermediate.der], { ca: [pki.root.pem] });
    assert.equal(r.trust.trusted, true);
    assert.deepEqual(
      r.chain.map((c) => c.subject),
      ['CN=mail.example.test', 'CN=Postern Test Root', 'CN=Postern Test Intermediate'],
    );
  });

  test('missing intermediate or unknown root is untrusted', () => {
    const missing = analyzeChain([pki.leaf.der], { ca: [pki.root.pem] });
    assert.deepEqual(missing.trust, { trusted: false, anchor: null, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    // Default anchors are node's Mozilla store, which does not know our test root.
    const mozilla = analyzeChain([pki.leaf.der, pki.intermediate.der, pki.root.der], {});
    assert.equal(mozilla.trust.trusted, false);
    assert.equal(mozilla.trust.error, 'SELF_SIGNED_CERT_IN_CHAIN');
  });

  test('self-signed leaf: untrusted unless pinned as an anchor', async () => {
    const self = await makeCert({ subject: 'CN=self', dnsNames: ['self.test'] });
    assert.equal(analyzeChain([self.der], { ca: [pki.root.pem] }).trust.error, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    assert.deepEqual(analyzeChain([self.der], { ca: [self.pem] }).trust, {
      trusted: true,
      anchor: 'CN=self',
      error: null,
    });
  });

  test('expired leaf: expired, untrusted; trusted again at an injected earlier time', async () => {
    const root = await makeCert({
      subject: 'CN=Old Root',
      isCA: true,
      notBefore: daysFromNow(-1000),
      notAfter: daysFromNow(1000),
    });
    const leaf = await makeCert({
      subject: 'CN=old',
      issuer: root,
      dnsNames: ['old.test'],
      notBefore: daysFromNow(-400),
      notAfter: daysFromNow(-10),
    });
    const now = analyzeChain([leaf.der], { ca: [root.pem] });
    assert.equal(now.validity.expired, true);
    assert.ok(now.validity.daysLeft <= -10);
    assert.deepEqual(now.trust, { trusted: false, anchor: 'CN=Old Root', error: 'CERT_HAS_EXPIRED' });
    const then = analyzeChain([leaf.der], { ca: [root.pem], now: daysFromNow(-100) });
    assert.equal(then.validity.expired, false);
    assert.equal(then.validity.daysLeft, 89);
    assert.deepEqual(then.trust, { trusted: true, anchor: 'CN=Old Root', error: null });
    const before = analyzeChain([leaf.der], { ca: [root.pem], now: daysFromNow(-500) });
    assert.equal(before.validity.notYetValid, true);
    assert.equal(before.trust.error, 'CERT_NOT_YET_VALID');
  });

  test('an intermediate without cA=TRUE cannot issue', async () => {
    const notCa = await makeCert({ subject: 'CN=Not A CA', issuer: pki.root });
    const leaf = await makeCert({ subject: 'CN=x', issuer: notCa, dnsNames: ['x.test'] });
    const r = analyzeChain([leaf.der, notCa.der], { ca: [pki.root.pem] });
    assert.deepEqual(r.trust, { trusted: false, anchor: null, error: 'INVALID_CA' });
  });

  test('signature by a different key under the same issuer name fails', async () => {
    const impostor = await makeCert({ subject: 'CN=Postern Test Intermediate', isCA: true });
    const leaf = await makeCert({ subject: 'CN=y', issuer: impostor, dnsNames: ['y.test'] });
    const r = analyzeChain([leaf.der, pki.intermediate.der], { ca: [pki.root.pem] });
    assert.deepEqual(r.trust, { trusted: false, anchor: null, error: 'CERT_SIGNATURE_FAILURE' });
  });
});

describe('matchHostname (RFC 9525)', () => {
  const san = {
    dnsNames: ['*.example.com', 'Mail.Example.NET', 'xn--bcher-kva.example', 'f*o.example.org', '*.com'],
    ipAddresses: ['127.0.0.1', '::1'],
  };

  test('wildcard matches exactly one left-most label', () => {
    assert.equal(matchHostname('a.example.com', san), '*.example.com');
    assert.equal(matchHostname('A.EXAMPLE.COM', san), '*.example.com');
    assert.equal(matchHostname('a.b.example.com', san), null);
    assert.equal(matchHostname('example.com', san), null);
    assert.equal(matchHostname('.example.com', san), null);
  });

  test('partial-label wildcards and wildcards over a single label are refused', () => {
    assert.equal(matchHostname('foo.example.org', san), null);
    assert.equal(matchHostname('example.com', { dnsNames: ['*.com'], ipAddresses: [] }), null);
    assert.equal(matchHostname('x.com', { dnsNames: ['*.com'], ipAddresses: [] }), null);
  });

  test('exact names: case-insensitive, trailing dot ignored, A-labels as-is', () => {
    assert.equal(matchHostname('mail.example.net.', san), 'Mail.Example.NET');
    assert.equal(matchHostname('xn--bcher-kva.example', san), 'xn--bcher-kva.example');
    assert.equal(matchHostname('bücher.example', san), null);
  });

  test('no CN fallback', async () => {
    const c = await makeCert({ subject: 'CN=mail.example.com', dnsNames: ['other.example.com'] });
    const info = analyzeCertificate(c.der);
    assert.equal(info.commonName, 'mail.example.com');
    assert.equal(matchHostname('mail.example.com', info), null);
    assert.equal(matchHostname('mail.example.com', { dnsNames: [], ipAddresses: [] }), null);
  });

  test('IP literals match iPAddress SANs only', async () => {
    assert.equal(matchHostname('127.0.0.1', san), '127.0.0.1');
    assert.equal(matchHostname('0:0:0:0:0:0:0:1', san), '::1');
    assert.equal(matchHostname('[::1]', san), '::1');
    assert.equal(matchHostname('127.0.0.2', san), null);
    // An IP in a DNS SAN does not count.
    assert.equal(matchHostname('10.0.0.1', { dnsNames: ['10.0.0.1'], ipAddresses: [] }), null);
    const c = await makeCert({ subject: 'CN=ip', ipAddresses: ['2001:db8::5'] });
    assert.equal(matchHostname('2001:DB8:0:0:0:0:0:5', analyzeCertificate(c.der)), '2001:db8::5');
  });
});
