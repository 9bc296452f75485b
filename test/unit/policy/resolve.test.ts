import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveHostPolicy } from '../../../src/policy/resolve.ts';
import type { HostPolicy, StsInput } from '../../../src/policy/resolve.ts';
import type { DaneState } from '../../../src/policy/dane/lookup.ts';
import type { PolicyLookup } from '../../../src/policy/table.ts';
import type { TlsLevel } from '../../../src/policy/levels.ts';
import type { TlsaRecord } from '../../../src/dns/dnssec.ts';

const MX = 'mx1.example.org';
const ee: TlsaRecord = { usage: 3, selector: 1, matchingType: 1, data: Buffer.alloc(32, 0xab) };
const pkix: TlsaRecord = { usage: 1, selector: 1, matchingType: 1, data: Buffer.alloc(32, 0xcd) };

function table(level: TlsLevel, matched = 'default'): PolicyLookup {
  return { level, profile: null, matched };
}

function sts(mode: 'enforce' | 'testing' | 'none', mx = ['*.example.org']): StsInput {
  return {
    policy: { version: 'STSv1', mode, mx, maxAge: 86400 },
    text: `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}`).join('\n')}\nmax_age: 86400\n`,
    id: '20261122',
  };
}

const secureDane: DaneState = { kind: 'dane', base: MX, records: [ee], unusable: [], all: [ee] };

function use(h: HostPolicy): Extract<HostPolicy, { kind: 'use' }> {
  assert.equal(h.kind, 'use', h.kind === 'skip' ? h.reason : '');
  return h;
}

function skip(h: HostPolicy): Extract<HostPolicy, { kind: 'skip' }> {
  assert.equal(h.kind, 'skip');
  return h;
}

describe('resolveHostPolicy: table', () => {
  it('none ends the chain even when DANE and MTA-STS exist', () => {
    const h = use(resolveHostPolicy({ table: table('none'), mxHost: MX, dane: secureDane, sts: sts('enforce') }));
    assert.equal(h.level, 'none');
    assert.equal(h.source, 'table');
  });

  it('an explicit per-domain entry is raised by MTA-STS enforce, never lowered by it', () => {
    const weak = use(
      resolveHostPolicy({ table: table('encrypt', 'domain example.org'), mxHost: MX, dane: null, sts: sts('enforce') }),
    );
    assert.equal(weak.level, 'verify');
    assert.equal(weak.source, 'mta-sts');
    const strict = use(
      resolveHostPolicy({ table: table('secure', 'domain example.org'), mxHost: MX, dane: null, sts: sts('enforce') }),
    );
    assert.equal(strict.level, 'secure');
    // ... and the MX filter applies to it too.
    skip(
      resolveHostPolicy({
        table: table('encrypt', 'domain example.org'),
        mxHost: 'evil.test',
        dane: null,
        sts: sts('enforce'),
      }),
    );
  });

  it('no DANE, no MTA-STS: the table level, reported as no-policy-found', () => {
    const h = use(resolveHostPolicy({ table: table('may'), mxHost: MX, dane: null, sts: null }));
    assert.equal(h.level, 'may');
    assert.equal(h.report.type, 'no-policy-found');
  });
});

describe('resolveHostPolicy: DANE (RFC 7672)', () => {
  it('secure usable TLSA: level dane with the records and names, reported as tlsa', () => {
    const h = use(resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: secureDane, sts: null }));
    assert.equal(h.level, 'dane');
    assert.equal(h.source, 'dane');
    assert.deepEqual(h.dane?.records, [ee]);
    assert.deepEqual(h.dane?.names, [MX]);
    assert.equal(h.report.type, 'tlsa');
    assert.deepEqual(h.report.strings, [`3 1 1 ${'ab'.repeat(32)}`]);
  });

  it('DANE wins over MTA-STS for a listed MX (RFC 8461 §2); an unlisted MX is skipped unless the MX RRset is secure', () => {
    const listed = use(resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: secureDane, sts: sts('enforce') }));
    assert.equal(listed.level, 'dane');
    // A forged unsigned MX pointing at the attacker's own signed zone must not pass on DANE alone.
    const forged = skip(
      resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: secureDane, sts: sts('enforce', ['other.test']) }),
    );
    assert.equal(forged.resultType, 'validation-failure');
    const signedMx = use(
      resolveHostPolicy({
        table: table('dane'),
        mxHost: MX,
        mxSecure: true,
        dane: secureDane,
        sts: sts('enforce', ['other.test']),
      }),
    );
    assert.equal(signedMx.level, 'dane');
  });

  it('secure TLSA with only unusable records: encrypt (mandatory, unauthenticated); MTA-STS still applies', () => {
    const d: DaneState = { kind: 'encrypt-only', base: MX, unusable: [{ record: pkix, why: 'PKIX-EE' }], all: [pkix] };
    const h = use(resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: d, sts: null }));
    assert.equal(h.level, 'encrypt');
    assert.equal(h.report.type, 'tlsa');
    const raised = use(resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: d, sts: sts('enforce') }));
    assert.equal(raised.level, 'verify');
    skip(resolveHostPolicy({ table: table('dane'), mxHost: 'evil.test', dane: d, sts: sts('enforce') }));
  });

  it('dane-only: secure TLSA with only unusable records cannot authenticate, the host is skipped (tlsa-invalid)', () => {
    // Postfix smtp_tls_policy.c dane_incompat(): DANE_UNUSABLE under dane-only → "TLSA records unusable".
    const d: DaneState = { kind: 'encrypt-only', base: MX, unusable: [{ record: pkix, why: 'PKIX-EE' }], all: [pkix] };
    for (const s of [null, sts('enforce'), sts('testing')]) {
      const h = skip(resolveHostPolicy({ table: table('dane-only'), mxHost: MX, dane: d, sts: s }));
      assert.equal(h.resultType, 'tlsa-invalid');
      assert.match(h.reason, /unusable for SMTP \(PKIX-EE\)/);
    }
  });

  it('bogus or indeterminate TLSA: the host is skipped (dnssec-invalid), never downgraded', () => {
    for (const status of ['bogus', 'indeterminate'] as const) {
      const d: DaneState = { kind: 'failed', base: MX, status, detail: 'SERVFAIL' };
      for (const level of ['dane', 'dane-only'] as const) {
        const h = skip(resolveHostPolicy({ table: table(level), mxHost: MX, dane: d, sts: sts('enforce') }));
        assert.equal(h.resultType, 'dnssec-invalid');
        assert.match(h.reason, new RegExp(status === 'bogus' ? 'bogus' : 'inconclusive'));
      }
    }
  });

  it('no secure TLSA: dane falls back to may, dane-only skips the host (dane-required)', () => {
    const none: DaneState = { kind: 'none', base: MX, why: 'insecure-tlsa' };
    const h = use(resolveHostPolicy({ table: table('dane'), mxHost: MX, dane: none, sts: null }));
    assert.equal(h.level, 'may');
    assert.match(h.why, /not DNSSEC-signed/);
    const s = skip(resolveHostPolicy({ table: table('dane-only'), mxHost: MX, dane: none, sts: null }));
    assert.equal(s.resultType, 'dane-required');
    const noResolver = skip(resolveHostPolicy({ table: table('dane-only'), mxHost: MX, dane: null, sts: null }));
    assert.match(noResolver.reason, /no DNSSEC-validating resolver/);
  });
});

describe('resolveHostPolicy: MTA-STS (RFC 8461)', () => {
  it('enforce with a listed MX raises may/encrypt/dane-fallback to verify', () => {
    for (const level of ['may', 'encrypt', 'dane'] as const) {
      const dane: DaneState | null = level === 'dane' ? { kind: 'none', base: MX, why: 'no-tlsa' } : null;
      const h = use(resolveHostPolicy({ table: table(level), mxHost: MX, dane, sts: sts('enforce') }));
      assert.equal(h.level, 'verify', level);
      assert.equal(h.source, 'mta-sts');
      assert.equal(h.report.type, 'sts');
      assert.equal(h.report.mxHost, '*.example.org');
      assert.ok(h.report.strings.includes('mode: enforce'));
    }
  });

  it('enforce never lowers a stricter default (secure stays secure)', () => {
    const h = use(resolveHostPolicy({ table: table('secure'), mxHost: MX, dane: null, sts: sts('enforce') }));
    assert.equal(h.level, 'secure');
  });

  it('enforce with an MX the policy does not list: skipped as validation-failure', () => {
    const h = skip(
      resolveHostPolicy({ table: table('may'), mxHost: 'mx.attacker.test', dane: null, sts: sts('enforce') }),
    );
    assert.equal(h.resultType, 'validation-failure');
    assert.match(h.reason, /does not cover the MX host mx\.attacker\.test/);
    // Single-label wildcard only: a deeper name is not covered either.
    skip(resolveHostPolicy({ table: table('may'), mxHost: 'a.b.example.org', dane: null, sts: sts('enforce') }));
  });

  it('testing: delivery follows the table, the enforce check is only reported', () => {
    const listed = use(resolveHostPolicy({ table: table('may'), mxHost: MX, dane: null, sts: sts('testing') }));
    assert.equal(listed.level, 'may');
    assert.deepEqual(listed.stsTesting, { mxCovered: true });
    assert.equal(listed.report.testing, true);
    const unlisted = use(resolveHostPolicy({ table: table('may'), mxHost: 'x.test', dane: null, sts: sts('testing') }));
    assert.deepEqual(unlisted.stsTesting, { mxCovered: false });
  });

  it('mode none is no policy', () => {
    const h = use(resolveHostPolicy({ table: table('may'), mxHost: 'x.test', dane: null, sts: sts('none') }));
    assert.equal(h.level, 'may');
    assert.equal(h.stsTesting, null);
    assert.equal(h.report.type, 'no-policy-found');
  });
});
