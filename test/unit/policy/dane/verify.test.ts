import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyTlsa, formatTlsa, tlsaAssociation, verifyDane } from '../../../../src/policy/dane/verify.ts';
import type { TlsaRecord } from '../../../../src/dns/dnssec.ts';
import { WireError } from '../../../../src/core/errors.ts';
import { daysFromNow, makeCert, makePki } from '../../../helpers/certs.ts';
import type { TestCert } from '../../../helpers/certs.ts';
import { assertTool, toolSkipReason } from '../../../integration/peers/require.ts';

function tlsa(usage: number, selector: number, matchingType: number, data: Buffer): TlsaRecord {
  return { usage, selector, matchingType, data };
}

/** A record for `cert` computed independently of tlsaAssociation (node's own SPKI export). */
function rec(usage: number, selector: number, matchingType: number, cert: TestCert): TlsaRecord {
  const raw =
    selector === 0 ? cert.der : new X509Certificate(cert.der).publicKey.export({ type: 'spki', format: 'der' });
  const data =
    matchingType === 0
      ? raw
      : createHash(matchingType === 1 ? 'sha256' : 'sha512')
          .update(raw)
          .digest();
  return tlsa(usage, selector, matchingType, data);
}

function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const NOW = new Date();
const MX = ['mail.example.test'];

describe('classifyTlsa', () => {
  const d32 = Buffer.alloc(32, 1);
  const d64 = Buffer.alloc(64, 2);

  test('DANE-TA(2) and DANE-EE(3) with known selectors and right lengths are usable', () => {
    const good = [tlsa(3, 1, 1, d32), tlsa(2, 0, 2, d64), tlsa(3, 0, 0, Buffer.from([0x30, 0x00]))];
    const { usable, unusable } = classifyTlsa(good);
    assert.deepEqual(usable, good);
    assert.deepEqual(unusable, []);
  });

  test('PKIX usages, unknown values and wrong digest lengths are unusable, each with its reason', () => {
    const bad = [
      tlsa(0, 1, 1, d32),
      tlsa(1, 0, 1, d32),
      tlsa(4, 1, 1, d32),
      tlsa(3, 2, 1, d32),
      tlsa(3, 1, 3, d32),
      tlsa(3, 1, 1, Buffer.alloc(31)),
      tlsa(2, 1, 2, d32),
      tlsa(3, 1, 0, Buffer.alloc(0)),
    ];
    const { usable, unusable } = classifyTlsa(bad);
    assert.equal(usable.length, 0);
    const why = unusable.map((u) => u.why);
    assert.match(why[0] ?? '', /PKIX-TA\(0\).*RFC 7672 §3\.1\.3/);
    assert.match(why[1] ?? '', /PKIX-EE\(1\)/);
    assert.match(why[2] ?? '', /unknown certificate usage 4/);
    assert.match(why[3] ?? '', /unknown selector 2/);
    assert.match(why[4] ?? '', /unknown matching type 3/);
    assert.match(why[5] ?? '', /SHA2-256 data is 31 bytes, not 32/);
    assert.match(why[6] ?? '', /SHA2-512 data is 32 bytes, not 64/);
    assert.match(why[7] ?? '', /empty/);
    assert.equal(unusable[0]?.record, bad[0]);
  });
});

describe('formatTlsa', () => {
  test('presentation form with lowercase hex', () => {
    assert.equal(formatTlsa(tlsa(3, 1, 1, Buffer.from('ABCDEF01', 'hex'))), '3 1 1 abcdef01');
  });
});

describe('tlsaAssociation', () => {
  let dir: string;
  let ec: TestCert;
  let rsa: TestCert;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'postern-dane-'));
    ec = await makeCert({ subject: 'CN=ec.example.test', dnsNames: ['ec.example.test'] });
    rsa = await makeCert({ subject: 'CN=rsa.example.test', dnsNames: ['rsa.example.test'], key: 'rsa-2048' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('selector 0 is the whole DER, selector 1 the SubjectPublicKeyInfo as node exports it', () => {
    for (const c of [ec, rsa]) {
      assert.deepEqual(tlsaAssociation(c.der, 0, 0), c.der);
      const spki = new X509Certificate(c.der).publicKey.export({ type: 'spki', format: 'der' });
      assert.deepEqual(tlsaAssociation(c.der, 1, 0), spki);
      assert.deepEqual(tlsaAssociation(c.der, 1, 1), createHash('sha256').update(spki).digest());
      assert.deepEqual(tlsaAssociation(c.der, 0, 2), createHash('sha512').update(c.der).digest());
    }
  });

  const haveOpenssl = hasTool('openssl');
  const haveLdnsDane = hasTool('ldns-dane');

  test(
    'agrees with openssl (x509 -pubkey | pkey -outform DER | dgst)',
    { skip: toolSkipReason(haveOpenssl, 'openssl') },
    () => {
      assertTool(haveOpenssl, 'openssl');
      for (const c of [ec, rsa]) {
        const pem = join(dir, 'o.pem');
        writeFileSync(pem, c.pem);
        const out = execFileSync(
          'sh',
          [
            '-c',
            `openssl x509 -in "${pem}" -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`,
          ],
          { encoding: 'utf8' },
        );
        assert.equal(tlsaAssociation(c.der, 1, 1).toString('hex'), out.split(' ')[0]);
      }
    },
  );

  test(
    'agrees with ldns-dane for 3 1 1, 3 0 1, 3 1 2 and 3 0 2',
    { skip: toolSkipReason(haveLdnsDane, 'ldns-dane') },
    () => {
      assertTool(haveLdnsDane, 'ldns-dane');
      for (const [c, host] of [
        [ec, 'ec.example.test'],
        [rsa, 'rsa.example.test'],
      ] as const) {
        const pem = join(dir, 'l.pem');
        writeFileSync(pem, c.pem);
        for (const [s, m] of [
          [1, 1],
          [0, 1],
          [1, 2],
          [0, 2],
        ] as const) {
          const out = execFileSync('ldns-dane', ['-c', pem, 'create', host, '25', '3', String(s), String(m)], {
            encoding: 'utf8',
            timeout: 10_000,
          });
          const rr = /TLSA\s+3 (\d) (\d) ([0-9a-f]+)/i.exec(out);
          assert.ok(rr, out);
          assert.equal(`${rr[1]} ${rr[2]}`, `${s} ${m}`);
          assert.equal(tlsaAssociation(c.der, s, m).toString('hex'), rr[3]?.toLowerCase());
        }
      }
    },
  );

  test('malformed DER and unknown parameters throw WireError', () => {
    assert.throws(() => tlsaAssociation(Buffer.from('not a certificate'), 1, 1), WireError);
    assert.throws(() => tlsaAssociation(Buffer.from([0x30, 0x05, 0x02]), 0, 1), WireError);
    assert.throws(() => tlsaAssociation(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), 1, 1), WireError);
    assert.throws(() => tlsaAssociation(ec.der, 2, 1), WireError);
    assert.throws(() => tlsaAssociation(ec.der, 1, 3), WireError);
  });
});

describe('verifyDane: DANE-EE(3)', () => {
  let self: TestCert;
  let expired: TestCert;
  let other: TestCert;
  before(async () => {
    self = await makeCert({ subject: 'CN=unrelated.invalid', dnsNames: ['unrelated.invalid'] });
    expired = await makeCert({
      subject: 'CN=old.example.test',
      notBefore: daysFromNow(-400),
      notAfter: daysFromNow(-30),
    });
    other = await makeCert({ subject: 'CN=other' });
  });

  for (const [s, m] of [
    [1, 1],
    [0, 1],
    [1, 2],
    [0, 0],
    [1, 0],
  ] as const) {
    test(`matches by 3 ${s} ${m} without any name check`, () => {
      const r = rec(3, s, m, self);
      const v = verifyDane({ records: [r], chain: [self.der], names: MX, now: NOW });
      assert.equal(v.ok, true, v.reason);
      assert.equal(v.failure, null);
      assert.deepEqual(v.matched, { record: r, depth: 0 });
      assert.match(v.reason, /CN=unrelated\.invalid/);
      assert.match(v.reason, new RegExp(`TLSA 3 ${s} ${m} `));
    });
  }

  test('an expired certificate still passes: DANE-EE ignores validity periods', () => {
    const v = verifyDane({ records: [rec(3, 1, 1, expired)], chain: [expired.der], names: MX, now: NOW });
    assert.equal(v.ok, true, v.reason);
  });

  test('only the server certificate counts for usage 3, not a certificate further up', () => {
    const v = verifyDane({ records: [rec(3, 1, 1, other)], chain: [self.der, other.der], names: MX, now: NOW });
    assert.equal(v.ok, false);
    assert.equal(v.failure, 'no-match');
  });

  test('no match: the reason names the record and the value the certificate gives', () => {
    const want = rec(3, 1, 1, other);
    const v = verifyDane({ records: [want], chain: [self.der], names: MX, now: NOW });
    assert.equal(v.ok, false);
    assert.equal(v.failure, 'no-match');
    assert.equal(v.matched, null);
    assert.ok(v.reason.includes(formatTlsa(want)), v.reason);
    assert.ok(v.reason.includes(formatTlsa(rec(3, 1, 1, self))), v.reason);
    assert.match(v.reason, /CN=unrelated\.invalid/);
  });

  test('records are OR-ed: one matching record among stale ones is enough', () => {
    const good = rec(3, 1, 1, self);
    const v = verifyDane({
      records: [rec(3, 1, 1, other), rec(3, 0, 2, other), good],
      chain: [self.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.ok, true);
    assert.equal(v.matched?.record, good);
  });

  test('PKIX-EE(1) records are never used, even when they match', () => {
    const v = verifyDane({ records: [rec(1, 1, 1, self), rec(0, 1, 1, self)], chain: [self.der], names: MX, now: NOW });
    assert.equal(v.ok, false);
    assert.equal(v.failure, 'no-usable-records');
    assert.match(v.reason, /PKIX-EE\(1\)/);
  });

  test('no records at all', () => {
    const v = verifyDane({ records: [], chain: [self.der], names: MX, now: NOW });
    assert.equal(v.failure, 'no-usable-records');
  });
});

describe('verifyDane: DANE-TA(2)', () => {
  let pki: { root: TestCert; intermediate: TestCert; leaf: TestCert };
  let rogueInt: TestCert;
  let rogueLeaf: TestCert;
  let expiredInt: TestCert;
  let leafUnderExpired: TestCert;
  let expiredLeaf: TestCert;
  let wildLeaf: TestCert;
  let cnOnlyLeaf: TestCert;
  let notCa: TestCert;
  let leafUnderNotCa: TestCert;
  before(async () => {
    pki = await makePki({ dnsNames: ['mail.example.test'] });
    // Same subject name as the real intermediate, different key: names chain, signatures do not.
    rogueInt = await makeCert({ subject: 'CN=Postern Test Intermediate', isCA: true });
    rogueLeaf = await makeCert({ subject: 'CN=mail.example.test', dnsNames: ['mail.example.test'], issuer: rogueInt });
    expiredInt = await makeCert({
      subject: 'CN=Expired Intermediate',
      isCA: true,
      issuer: pki.root,
      notBefore: daysFromNow(-400),
      notAfter: daysFromNow(-1),
    });
    leafUnderExpired = await makeCert({
      subject: 'CN=mail.example.test',
      dnsNames: ['mail.example.test'],
      issuer: expiredInt,
    });
    expiredLeaf = await makeCert({
      subject: 'CN=mail.example.test',
      dnsNames: ['mail.example.test'],
      issuer: pki.intermediate,
      notBefore: daysFromNow(-100),
      notAfter: daysFromNow(-2),
    });
    wildLeaf = await makeCert({ subject: 'CN=wild', dnsNames: ['*.example.test'], issuer: pki.intermediate });
    cnOnlyLeaf = await makeCert({ subject: 'CN=mail.example.test', issuer: pki.intermediate });
    notCa = await makeCert({ subject: 'CN=Not A CA', issuer: pki.root });
    leafUnderNotCa = await makeCert({
      subject: 'CN=mail.example.test',
      dnsNames: ['mail.example.test'],
      issuer: notCa,
    });
  });

  test('2 1 1 on the intermediate sent in the chain passes with the right name', () => {
    const r = rec(2, 1, 1, pki.intermediate);
    const v = verifyDane({
      records: [r],
      chain: [pki.leaf.der, pki.intermediate.der, pki.root.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.ok, true, v.reason);
    assert.deepEqual(v.matched, { record: r, depth: 1 });
    assert.match(v.reason, /Postern Test Intermediate/);
    assert.match(v.reason, /names mail\.example\.test/);
  });

  test('2 0 1 on the root passes, through the intermediate, even when the chain is out of order', () => {
    const r = rec(2, 0, 1, pki.root);
    const v = verifyDane({
      records: [r],
      chain: [pki.leaf.der, pki.root.der, pki.intermediate.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.ok, true, v.reason);
    assert.deepEqual(v.matched, { record: r, depth: 1 });
    assert.match(v.reason, /through 1 intermediate certificate/);
  });

  test('wrong name: name-mismatch, naming both the certificate names and the expected ones', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: ['mx.other.test'],
      now: NOW,
    });
    assert.equal(v.ok, false);
    assert.equal(v.failure, 'name-mismatch');
    assert.match(v.reason, /names mail\.example\.test/);
    assert.match(v.reason, /mx\.other\.test/);
  });

  test('the MX name, given after the TLSA base domain, is accepted too', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: ['target.cname.test', 'mail.example.test'],
      now: NOW,
    });
    assert.equal(v.ok, true, v.reason);
  });

  test('a wildcard DNS-ID covers exactly one left-most label', () => {
    const chain = [wildLeaf.der, pki.intermediate.der];
    const r = [rec(2, 1, 1, pki.intermediate)];
    assert.equal(verifyDane({ records: r, chain, names: ['mail.example.test'], now: NOW }).ok, true);
    const deep = verifyDane({ records: r, chain, names: ['a.mail.example.test'], now: NOW });
    assert.equal(deep.failure, 'name-mismatch');
  });

  test('without DNS-ID SANs the CN is the presented name (RFC 7672 §3.2.3)', () => {
    const chain = [cnOnlyLeaf.der, pki.intermediate.der];
    const r = [rec(2, 1, 1, pki.intermediate)];
    assert.equal(verifyDane({ records: r, chain, names: MX, now: NOW }).ok, true);
    assert.equal(verifyDane({ records: r, chain, names: ['x.example.test'], now: NOW }).failure, 'name-mismatch');
  });

  test('no reference identifiers given: name-mismatch, never a pass', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: [],
      now: NOW,
    });
    assert.equal(v.failure, 'name-mismatch');
  });

  test('leaf not issued by the matched TA: ta-chain-invalid', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [rogueLeaf.der, pki.intermediate.der, pki.root.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.ok, false);
    assert.equal(v.failure, 'ta-chain-invalid');
    assert.match(v.reason, /does not chain to it/);
  });

  test('a rogue intermediate between leaf and the TA root does not make a path', () => {
    const v = verifyDane({
      records: [rec(2, 0, 1, pki.root)],
      chain: [rogueLeaf.der, rogueInt.der, pki.root.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.failure, 'ta-chain-invalid');
  });

  test('an issuer without the CA flag is not accepted as a link or anchor', () => {
    const asAnchor = verifyDane({
      records: [rec(2, 1, 1, notCa)],
      chain: [leafUnderNotCa.der, notCa.der],
      names: MX,
      now: NOW,
    });
    assert.equal(asAnchor.failure, 'ta-chain-invalid');
    const asLink = verifyDane({
      records: [rec(2, 1, 1, pki.root)],
      chain: [leafUnderNotCa.der, notCa.der, pki.root.der],
      names: MX,
      now: NOW,
    });
    assert.equal(asLink.failure, 'ta-chain-invalid');
  });

  test('an expired intermediate TA: ta-expired, naming the certificate and date', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, expiredInt)],
      chain: [leafUnderExpired.der, expiredInt.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.failure, 'ta-expired');
    assert.match(v.reason, /Expired Intermediate/);
    assert.match(v.reason, /expired on \d{4}-/);
  });

  test('an expired server certificate under DANE-TA: ta-expired (only DANE-EE ignores dates)', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [expiredLeaf.der, pki.intermediate.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.failure, 'ta-expired');
    assert.match(v.reason, /server certificate/);
  });

  test('the clock is the input: a chain not yet valid fails, and passes at a later `now`', () => {
    const chain = [pki.leaf.der, pki.intermediate.der];
    const r = [rec(2, 1, 1, pki.intermediate)];
    const early = verifyDane({ records: r, chain, names: MX, now: daysFromNow(-30) });
    assert.equal(early.failure, 'ta-expired');
    assert.match(early.reason, /not valid before/);
    assert.equal(verifyDane({ records: r, chain, names: MX, now: daysFromNow(10) }).ok, true);
  });

  test('TA not sent: no-match, saying the anchor must be in the chain', () => {
    const v = verifyDane({ records: [rec(2, 1, 1, pki.intermediate)], chain: [pki.leaf.der], names: MX, now: NOW });
    assert.equal(v.failure, 'no-match');
    assert.match(v.reason, /sent no issuer certificates/);
  });

  test('a DANE-TA record matching the server certificate itself does not authenticate it', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.leaf)],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.failure, 'no-match');
    assert.match(v.reason, /matches the server certificate itself/);
  });

  test('a failed DANE-TA check does not hide a matching DANE-EE record, and vice versa', () => {
    const chain = [pki.leaf.der, pki.intermediate.der];
    const ee = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate), rec(3, 1, 1, pki.leaf)],
      chain,
      names: ['wrong.test'],
      now: NOW,
    });
    assert.equal(ee.ok, true);
    assert.equal(ee.matched?.depth, 0);
    const ta = verifyDane({
      records: [rec(3, 1, 1, rogueLeaf), rec(2, 1, 1, pki.root), rec(2, 1, 1, pki.intermediate)],
      chain,
      names: MX,
      now: NOW,
    });
    assert.equal(ta.ok, true, ta.reason);
    assert.equal(ta.matched?.depth, 1);
  });

  test('the failure reported is the one closest to passing', () => {
    // Record 1: intermediate matches but the name is wrong; record 2: matches nothing.
    const v = verifyDane({
      records: [rec(2, 1, 1, rogueInt), rec(2, 1, 1, pki.intermediate)],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: ['wrong.test'],
      now: NOW,
    });
    assert.equal(v.failure, 'name-mismatch');
  });
});

describe('verifyDane: malformed input never throws', () => {
  let pki: { root: TestCert; intermediate: TestCert; leaf: TestCert };
  before(async () => {
    pki = await makePki();
  });

  test('empty chain: no-certificate', () => {
    const v = verifyDane({ records: [rec(3, 1, 1, pki.leaf)], chain: [], names: MX, now: NOW });
    assert.equal(v.failure, 'no-certificate');
  });

  test('garbage, truncated or empty server certificate: no-certificate with a reason', () => {
    const truncated = pki.leaf.der.subarray(0, pki.leaf.der.length - 10);
    for (const bad of [Buffer.from('garbage'), truncated, Buffer.alloc(0), Buffer.from([0x30, 0x84, 0xff, 0xff])]) {
      const v = verifyDane({
        records: [tlsa(3, 0, 1, createHash('sha256').update(bad).digest())],
        chain: [bad],
        names: MX,
        now: NOW,
      });
      assert.equal(v.ok, false);
      assert.equal(v.failure, 'no-certificate');
      assert.match(v.reason, /not a valid X\.509 certificate/);
    }
  });

  test('a malformed certificate in the middle of the chain is skipped, not fatal', () => {
    const v = verifyDane({
      records: [rec(2, 1, 1, pki.intermediate)],
      chain: [pki.leaf.der, Buffer.from([0x30, 0x03, 0x01, 0x01]), pki.intermediate.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.ok, true, v.reason);
    assert.equal(v.matched?.depth, 2);
  });

  test('a full-data record with junk never matches and never throws', () => {
    const v = verifyDane({
      records: [tlsa(2, 0, 0, Buffer.from('junk')), tlsa(3, 1, 0, Buffer.alloc(3000, 0xff))],
      chain: [pki.leaf.der, pki.intermediate.der],
      names: MX,
      now: NOW,
    });
    assert.equal(v.failure, 'no-match');
    assert.ok(v.reason.length < 2000, 'long record data is cut in the reason');
  });
});
