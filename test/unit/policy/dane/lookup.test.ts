import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { daneNames, lookupDane } from '../../../../src/policy/dane/lookup.ts';
import type { DaneState } from '../../../../src/policy/dane/lookup.ts';
import type { DnssecAnswer, DnssecResolver, DnssecStatus, TlsaRecord } from '../../../../src/dns/dnssec.ts';

/** One canned answer: status, rcode (default NOERROR unless bogus/indeterminate), records, CNAME target. */
interface Canned<T> {
  status: DnssecStatus;
  rcode?: 'NOERROR' | 'NXDOMAIN';
  records?: T[];
  cname?: string;
  detail?: string;
}

function answer<T>(qname: string, qtype: DnssecAnswer<T>['qtype'], c: Canned<T> | undefined): DnssecAnswer<T> {
  const failed = c === undefined || c.status === 'bogus' || c.status === 'indeterminate';
  return {
    qname,
    qtype,
    status: c?.status ?? 'indeterminate',
    rcode: failed ? null : (c.rcode ?? 'NOERROR'),
    records: c?.records ?? [],
    canonicalName: c?.cname ?? qname,
    detail: c === undefined ? 'not in the test zone' : failed ? (c.detail ?? 'SERVFAIL') : null,
  };
}

/** A DnssecResolver over fixed answers; records which TLSA names were asked. */
class FakeResolver implements DnssecResolver {
  readonly server = '127.0.0.1:53';
  readonly validating: boolean;
  readonly asked: string[] = [];
  private readonly addrs: Record<string, Canned<string>>;
  private readonly tlsas: Record<string, Canned<TlsaRecord>>;
  constructor(addrs: Record<string, Canned<string>>, tlsas: Record<string, Canned<TlsaRecord>>, validating = true) {
    this.addrs = addrs;
    this.tlsas = tlsas;
    this.validating = validating;
  }
  addresses(host: string): Promise<DnssecAnswer<string>> {
    this.asked.push(`addr ${host}`);
    return Promise.resolve(answer(host, 'A', this.addrs[host]));
  }
  mx(): Promise<DnssecAnswer<never>> {
    return Promise.reject(new Error('not used'));
  }
  txt(): Promise<DnssecAnswer<string[]>> {
    return Promise.reject(new Error('not used'));
  }
  tlsa(host: string, port: number): Promise<DnssecAnswer<TlsaRecord>> {
    const name = `_${port}._tcp.${host}`;
    this.asked.push(`tlsa ${name}`);
    return Promise.resolve(answer(name, 'TLSA', this.tlsas[name]));
  }
}

const EE: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 0xaa) };
const TA: TlsaRecord = { usage: 2, selector: 0, matchingType: 1, data: Buffer.alloc(32, 0xbb) };
const PKIX: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: Buffer.alloc(32, 0xcc) };
const SHORT: TlsaRecord = { usage: 3, selector: 1, matchingType: 2, data: Buffer.alloc(32, 0xdd) };

const secureAddr: Canned<string> = { status: 'secure', records: ['192.0.2.1'] };

describe('lookupDane', () => {
  test('secure addresses and secure usable TLSA: dane, usable and unusable split', async () => {
    const r = new FakeResolver(
      { 'mx.example.test': secureAddr },
      { '_25._tcp.mx.example.test': { status: 'secure', records: [EE, PKIX, TA] } },
    );
    const s = await lookupDane(r, 'MX.Example.Test.', 25);
    assert.equal(s.kind, 'dane');
    if (s.kind !== 'dane') return;
    assert.equal(s.base, 'mx.example.test');
    assert.deepEqual(s.records, [EE, TA]);
    assert.deepEqual(
      s.unusable.map((u) => u.record),
      [PKIX],
    );
    assert.deepEqual(s.all, [EE, PKIX, TA]);
  });

  test('secure TLSA with only unusable records: encrypt-only (RFC 7672 §2.2)', async () => {
    const r = new FakeResolver(
      { 'mx.example.test': secureAddr },
      { '_25._tcp.mx.example.test': { status: 'secure', records: [PKIX, SHORT] } },
    );
    const s = await lookupDane(r, 'mx.example.test', 25);
    assert.equal(s.kind, 'encrypt-only');
    if (s.kind !== 'encrypt-only') return;
    assert.equal(s.unusable.length, 2);
    assert.deepEqual(s.all, [PKIX, SHORT]);
  });

  test('resolver not validating: none, and no DNS query is made', async () => {
    const r = new FakeResolver({ 'mx.example.test': secureAddr }, {}, false);
    assert.deepEqual(await lookupDane(r, 'mx.example.test', 25), {
      kind: 'none',
      base: 'mx.example.test',
      why: 'resolver-not-validating',
    });
    assert.deepEqual(r.asked, []);
  });

  test('insecure addresses: none, TLSA not even asked', async () => {
    const r = new FakeResolver(
      { 'mx.example.test': { status: 'insecure', records: ['192.0.2.1'] } },
      { '_25._tcp.mx.example.test': { status: 'secure', records: [EE] } },
    );
    const s = await lookupDane(r, 'mx.example.test', 25);
    assert.deepEqual(s, { kind: 'none', base: 'mx.example.test', why: 'insecure-address' });
    assert.deepEqual(r.asked, ['addr mx.example.test']);
  });

  for (const status of ['bogus', 'indeterminate'] as const) {
    test(`${status} addresses: failed, never a downgrade to none`, async () => {
      const r = new FakeResolver({ 'mx.example.test': { status, detail: 'SERVFAIL; CD=1 answered' } }, {});
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'failed');
      if (s.kind !== 'failed') return;
      assert.equal(s.status, status);
      assert.match(s.detail, /address lookup for mx\.example\.test: SERVFAIL; CD=1 answered/);
    });

    test(`${status} TLSA: failed`, async () => {
      const r = new FakeResolver(
        { 'mx.example.test': secureAddr },
        { '_25._tcp.mx.example.test': { status, detail: 'timeout' } },
      );
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'failed');
      if (s.kind !== 'failed') return;
      assert.equal(s.status, status);
      assert.equal(s.base, 'mx.example.test');
      assert.match(s.detail, /TLSA lookup for _25\._tcp\.mx\.example\.test: timeout/);
    });
  }

  test('secure NODATA and secure NXDOMAIN: none no-tlsa', async () => {
    for (const c of [
      { status: 'secure', records: [] },
      { status: 'secure', rcode: 'NXDOMAIN' },
    ] as Array<Canned<TlsaRecord>>) {
      const r = new FakeResolver({ 'mx.example.test': secureAddr }, { '_25._tcp.mx.example.test': c });
      assert.deepEqual(await lookupDane(r, 'mx.example.test', 25), {
        kind: 'none',
        base: 'mx.example.test',
        why: 'no-tlsa',
      });
    }
  });

  test('insecure TLSA (e.g. an unsigned _tcp delegation): none insecure-tlsa', async () => {
    const r = new FakeResolver(
      { 'mx.example.test': secureAddr },
      { '_25._tcp.mx.example.test': { status: 'insecure', records: [EE] } },
    );
    assert.deepEqual(await lookupDane(r, 'mx.example.test', 25), {
      kind: 'none',
      base: 'mx.example.test',
      why: 'insecure-tlsa',
    });
  });

  test('the port is part of the TLSA name', async () => {
    const r = new FakeResolver(
      { 'mx.example.test': secureAddr },
      { '_2525._tcp.mx.example.test': { status: 'secure', records: [EE] } },
    );
    assert.equal((await lookupDane(r, 'mx.example.test', 2525)).kind, 'dane');
    assert.deepEqual(r.asked, ['addr mx.example.test', 'tlsa _2525._tcp.mx.example.test']);
  });

  describe('CNAME expansion (RFC 7672 §2.2.2)', () => {
    const alias: Canned<string> = { status: 'secure', records: ['192.0.2.1'], cname: 'Target.Provider.Test' };

    test('TLSA at the expanded name wins; base is the expanded name', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': alias },
        {
          '_25._tcp.target.provider.test': { status: 'secure', records: [TA] },
          '_25._tcp.mx.example.test': { status: 'secure', records: [EE] },
        },
      );
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'dane');
      assert.equal(s.base, 'target.provider.test');
      if (s.kind === 'dane') assert.deepEqual(s.records, [TA]);
      assert.deepEqual(r.asked, ['addr mx.example.test', 'tlsa _25._tcp.target.provider.test']);
    });

    test('no TLSA at the expanded name: falls back to the original name', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': alias },
        {
          '_25._tcp.target.provider.test': { status: 'secure', rcode: 'NXDOMAIN' },
          '_25._tcp.mx.example.test': { status: 'secure', records: [EE] },
        },
      );
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'dane');
      assert.equal(s.base, 'mx.example.test');
    });

    test('no TLSA at either name: none no-tlsa for the original name', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': alias },
        {
          '_25._tcp.target.provider.test': { status: 'secure', records: [] },
          '_25._tcp.mx.example.test': { status: 'secure', records: [] },
        },
      );
      assert.deepEqual(await lookupDane(r, 'mx.example.test', 25), {
        kind: 'none',
        base: 'mx.example.test',
        why: 'no-tlsa',
      });
    });

    test('a bogus TLSA at the expanded name is failed, not skipped to the original name', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': alias },
        {
          '_25._tcp.target.provider.test': { status: 'bogus', detail: 'RRSIG expired' },
          '_25._tcp.mx.example.test': { status: 'secure', records: [] },
        },
      );
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'failed');
      assert.equal(s.base, 'target.provider.test');
    });

    test('a secure but all-unusable RRset at the expanded name is encrypt-only there', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': alias },
        {
          '_25._tcp.target.provider.test': { status: 'secure', records: [PKIX] },
          '_25._tcp.mx.example.test': { status: 'secure', records: [EE] },
        },
      );
      const s = await lookupDane(r, 'mx.example.test', 25);
      assert.equal(s.kind, 'encrypt-only');
      assert.equal(s.base, 'target.provider.test');
    });

    test('an insecure CNAME chain means insecure addresses: none', async () => {
      const r = new FakeResolver(
        { 'mx.example.test': { ...alias, status: 'insecure' } },
        { '_25._tcp.mx.example.test': { status: 'secure', records: [EE] } },
      );
      assert.equal((await lookupDane(r, 'mx.example.test', 25)).kind, 'none');
    });
  });
});

describe('daneNames', () => {
  const state = (base: string): DaneState => ({ kind: 'dane', base, records: [EE], unusable: [], all: [EE] });

  test('TLSA base domain first, then the MX name when it differs', () => {
    assert.deepEqual(daneNames(state('target.provider.test'), 'MX.example.test.'), [
      'target.provider.test',
      'mx.example.test',
    ]);
  });

  test('one name when base and MX name are the same (case and trailing dot ignored)', () => {
    assert.deepEqual(daneNames(state('mx.example.test'), 'MX.Example.Test.'), ['mx.example.test']);
  });
});
