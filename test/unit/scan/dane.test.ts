import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { DnssecAnswer, DnssecStatus, TlsaRecord } from '../../../src/dns/dnssec.ts';
import type { DaneState } from '../../../src/policy/dane/lookup.ts';
import { classifyTlsa, tlsaAssociation } from '../../../src/policy/dane/verify.ts';
import { assessDaneHost, daneRollover } from '../../../src/scan/dane.ts';
import type { DaneHostInput } from '../../../src/scan/dane.ts';
import { makeCert } from '../../helpers/certs.ts';
import type { TestCert } from '../../helpers/certs.ts';

const MX = 'mx.example.test';
const NOW = new Date();

function answer<T>(status: DnssecStatus, records: T[], qname = MX): DnssecAnswer<T> {
  const failed = status === 'bogus' || status === 'indeterminate';
  return {
    qname,
    qtype: 'A',
    status,
    rcode: failed ? null : 'NOERROR',
    records,
    canonicalName: qname,
    detail: failed ? 'SERVFAIL; CD=1 answered: validation failed' : null,
  };
}

function tlsaAnswer(status: DnssecStatus, records: TlsaRecord[]): DnssecAnswer<TlsaRecord> {
  return { ...answer(status, records, `_25._tcp.${MX}`), qtype: 'TLSA' };
}

function eeRecord(cert: TestCert): TlsaRecord {
  return { usage: 3, selector: 1, matchingType: 1, data: tlsaAssociation(cert.der, 1, 1) };
}

function taRecord(cert: TestCert): TlsaRecord {
  return { usage: 2, selector: 1, matchingType: 1, data: tlsaAssociation(cert.der, 1, 1) };
}

/** The state lookupDane reaches for a secure RRset. */
function secureState(records: TlsaRecord[]): DaneState {
  const { usable, unusable } = classifyTlsa(records);
  return usable.length > 0
    ? { kind: 'dane', base: MX, records: usable, unusable, all: records }
    : { kind: 'encrypt-only', base: MX, unusable, all: records };
}

function input(over: Partial<DaneHostInput> & Pick<DaneHostInput, 'state'>): DaneHostInput {
  return {
    mxHost: MX,
    port: 25,
    addresses: answer('secure', ['192.0.2.1']),
    tlsa: null,
    names: [MX],
    endpoints: [],
    now: NOW,
    ...over,
  };
}

describe('assessDaneHost', () => {
  let ca: TestCert;
  let leaf: TestCert;
  let nextLeaf: TestCert;
  let otherLeaf: TestCert;
  before(async () => {
    ca = await makeCert({ subject: 'CN=Test CA', isCA: true });
    leaf = await makeCert({ subject: `CN=${MX}`, dnsNames: [MX], issuer: ca });
    nextLeaf = await makeCert({ subject: `CN=${MX}`, dnsNames: [MX], issuer: ca });
    otherLeaf = await makeCert({ subject: 'CN=other.test', dnsNames: ['other.test'], issuer: ca });
  });

  it('a matching 3 1 1 record: no problem, but a single record is not rollover-ready', () => {
    const recs = [eeRecord(leaf)];
    const { report, findings } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [
          { address: '192.0.2.1', chains: [[leaf.der, ca.der]] },
          { address: '192.0.2.2', chains: [[leaf.der]] },
        ],
      }),
    );
    assert.equal(report.state, 'dane');
    assert.equal(report.tlsaName, `_25._tcp.${MX}`);
    assert.equal(report.records[0]?.record, `3 1 1 ${tlsaAssociation(leaf.der, 1, 1).toString('hex')}`);
    assert.equal(report.records[0]?.usable, true);
    assert.equal(report.records[0]?.matchesServed, true);
    assert.deepEqual(
      report.addresses.map((a) => [a.address, a.match]),
      [
        ['192.0.2.1', true],
        ['192.0.2.2', true],
      ],
    );
    assert.equal(report.rollover?.ready, false);
    assert.deepEqual(
      findings.map((f) => [f.id, f.severity]),
      [['dane-rollover-not-ready', 'info']],
    );
  });

  it('current + next: a second usable record for a key not yet served makes it rollover-ready', () => {
    const recs = [eeRecord(leaf), eeRecord(nextLeaf)];
    const { report, findings } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der, ca.der]] }],
      }),
    );
    assert.deepEqual(report.rollover && [report.rollover.ready, report.rollover.basis], [true, 'current+next']);
    const current = `3 1 1 ${tlsaAssociation(leaf.der, 1, 1).toString('hex')}`;
    assert.deepEqual(
      report.records.map((r) => r.matchesServed),
      report.records.map((r) => r.record === current),
    );
    assert.equal(report.records.filter((r) => r.matchesServed).length, 1);
    assert.deepEqual(findings, []);
  });

  it('3 1 1 + 2 1 1 both matching is ready (ee+ta); two records for the same key are not', () => {
    const eeTa = [eeRecord(leaf), taRecord(ca)];
    const chains = [[leaf.der, ca.der]];
    assert.equal(daneRollover(eeTa, chains, [MX], NOW).basis, 'ee+ta');
    const sameKey: TlsaRecord[] = [
      eeRecord(leaf),
      { usage: 3, selector: 0, matchingType: 1, data: tlsaAssociation(leaf.der, 0, 1) },
    ];
    const r = daneRollover(sameKey, chains, [MX], NOW);
    assert.equal(r.ready, false);
    assert.match(r.reason, /every usable record describes the certificate served now/);
  });

  it('a served chain that matches no usable record on one address is dane-mismatch (critical)', () => {
    const recs = [eeRecord(leaf)];
    const { report, findings } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [
          { address: '192.0.2.1', chains: [[leaf.der, ca.der]] },
          { address: '192.0.2.2', chains: [[otherLeaf.der, ca.der]] },
        ],
      }),
    );
    assert.deepEqual(
      report.addresses.map((a) => a.match),
      [true, false],
    );
    const f = findings.find((x) => x.id === 'dane-mismatch');
    assert.ok(f);
    assert.equal(f.severity, 'critical');
    assert.match(f.message, /192\.0\.2\.2/);
    assert.doesNotMatch(f.message, /192\.0\.2\.1/);
    // A mismatch already says what is wrong; no rollover advice on top.
    assert.ok(!findings.some((x) => x.id === 'dane-rollover-not-ready'));
  });

  it('two chains on one address (RSA + ECDSA): both must match', () => {
    const recs = [eeRecord(leaf)];
    const { report } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der], [otherLeaf.der]] }],
      }),
    );
    assert.equal(report.addresses[0]?.match, false);
    assert.match(report.addresses[0]?.reason ?? '', /^chain 2 of 2: /);
  });

  it('PKIX usages next to a usable record: dane-unusable-records (medium), still DANE', () => {
    const pkix: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: tlsaAssociation(leaf.der, 1, 1) };
    const recs = [eeRecord(leaf), eeRecord(nextLeaf), pkix];
    const { report, findings } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der]] }],
      }),
    );
    assert.equal(report.state, 'dane');
    // Sorted by presentation form: the "1 1 1" record comes first.
    assert.deepEqual(
      report.records.map((r) => [r.record.slice(0, 5), r.usable]),
      [
        ['1 1 1', false],
        ['3 1 1', true],
        ['3 1 1', true],
      ],
    );
    assert.match(report.records[0]?.unusableReason ?? '', /PKIX-EE/);
    const f = findings.find((x) => x.id === 'dane-unusable-records');
    assert.equal(f?.severity, 'medium');
    assert.match(f?.message ?? '', /1 of 3/);
  });

  it('only unusable records (bad digest length): encrypt-only, and matching is not checked', () => {
    const recs: TlsaRecord[] = [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(20) }];
    const { report, findings } = assessDaneHost(
      input({
        state: secureState(recs),
        tlsa: tlsaAnswer('secure', recs),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der]] }],
      }),
    );
    assert.equal(report.state, 'encrypt-only');
    assert.equal(report.addresses[0]?.match, null);
    assert.equal(report.rollover, null);
    assert.deepEqual(
      findings.map((f) => f.id),
      ['dane-unusable-records'],
    );
    assert.match(findings[0]?.evidence?.[0] ?? '', /20 bytes, not 32/);
  });

  it('insecure TLSA records: dane-missing (low) that says senders ignore them, no matching', () => {
    const recs = [eeRecord(otherLeaf)];
    const { report, findings } = assessDaneHost(
      input({
        state: { kind: 'none', base: MX, why: 'insecure-tlsa' },
        tlsa: tlsaAnswer('insecure', recs),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der]] }],
      }),
    );
    assert.equal(report.tlsaStatus, 'insecure');
    assert.equal(report.records.length, 1, 'published records are shown');
    assert.equal(report.addresses[0]?.match, null);
    assert.deepEqual(
      findings.map((f) => [f.id, f.severity]),
      [['dane-missing', 'low']],
    );
    assert.match(findings[0]?.message ?? '', /not DNSSEC-validated/);
  });

  it('an unsigned MX host without TLSA: dane-missing is info; a signed one without TLSA: low', () => {
    const unsigned = assessDaneHost(
      input({
        state: { kind: 'none', base: MX, why: 'insecure-address' },
        addresses: answer('insecure', ['192.0.2.1']),
        tlsa: tlsaAnswer('insecure', []),
      }),
    );
    assert.deepEqual(
      unsigned.findings.map((f) => [f.id, f.severity]),
      [['dane-missing', 'info']],
    );
    assert.match(unsigned.findings[0]?.message ?? '', /not in a DNSSEC-signed zone/);
    const signed = assessDaneHost(
      input({ state: { kind: 'none', base: MX, why: 'no-tlsa' }, tlsa: tlsaAnswer('secure', []) }),
    );
    assert.deepEqual(
      signed.findings.map((f) => [f.id, f.severity]),
      [['dane-missing', 'low']],
    );
  });

  it('bogus TLSA: dane-dnssec-bogus (critical) with the resolver detail; no records shown', () => {
    const { report, findings } = assessDaneHost(
      input({
        state: { kind: 'failed', base: MX, status: 'bogus', detail: `TLSA lookup for _25._tcp.${MX}: SERVFAIL` },
        tlsa: tlsaAnswer('bogus', []),
        endpoints: [{ address: '192.0.2.1', chains: [[leaf.der]] }],
      }),
    );
    assert.equal(report.state, 'failed');
    assert.equal(report.tlsaStatus, 'bogus');
    assert.equal(report.addresses[0]?.match, null);
    assert.deepEqual(
      findings.map((f) => [f.id, f.severity]),
      [['dane-dnssec-bogus', 'critical']],
    );
    assert.match(findings[0]?.message ?? '', /SERVFAIL/);
  });

  it('a non-validating resolver yields no per-host finding (the caller reports it once)', () => {
    const { findings } = assessDaneHost(
      input({
        state: { kind: 'none', base: MX, why: 'resolver-not-validating' },
        addresses: answer('insecure', ['192.0.2.1']),
      }),
    );
    assert.deepEqual(findings, []);
  });
});
