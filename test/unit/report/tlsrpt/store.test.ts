import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PosternError } from '../../../../src/core/errors.ts';
import {
  RESULT_TYPES,
  TlsRptAggregator,
  type TlsRptFailure,
  type TlsRptPolicy,
  type TlsRptSession,
} from '../../../../src/report/tlsrpt/aggregate.ts';
import { TlsRptStore, tlsRptStorePath } from '../../../../src/report/tlsrpt/store.ts';
import { validateTlsRptJson } from './validate.ts';

const OPTS = { organizationName: 'Postern Test', contactInfo: 'tlsrpt@sender.example', reportIdPrefix: 'pt-' };
const STS: TlsRptPolicy = {
  type: 'sts',
  strings: ['version: STSv1', 'mode: enforce', 'mx: *.mail.example.net', 'max_age: 86400'],
  mxHost: '*.mail.example.net',
};
const TLSA: TlsRptPolicy = { type: 'tlsa', strings: ['3 1 1 ABCD'], mxHost: 'mx.dane.example' };
const NONE: TlsRptPolicy = { type: 'no-policy-found', strings: [] };
const EXPIRED: TlsRptFailure = {
  policyDomain: 'example.net',
  policy: STS,
  resultType: 'certificate-expired',
  sendingMtaIp: '2001:db8::1',
  receivingMxHostname: 'mx1.mail.example.net',
  receivingIp: '192.0.2.5',
};

let dir: string;
before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'postern-tlsrpt-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function at(iso: string): Date {
  return new Date(iso);
}

describe('TlsRptStore', () => {
  it('keeps counts across close and reopen, in an owner-only file', () => {
    const file = tlsRptStorePath(path.join(dir, 'persist'));
    assert.equal(path.basename(file), 'tlsrpt.sqlite');
    const now = () => at('2024-03-10T12:00:00Z');
    let store = TlsRptStore.open(file, { now });
    store.recordSuccess({ policyDomain: 'example.net', policy: STS });
    store.recordFailure(EXPIRED);
    store.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    store = TlsRptStore.open(file, { now });
    store.recordSuccess({ policyDomain: 'Example.NET.', policy: STS });
    store.recordFailure(EXPIRED);
    const [r] = store.reports({ report: OPTS });
    store.close();
    assert.ok(r);
    const p = r.toJSON().policies[0];
    assert.deepEqual(p?.summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 2 });
    assert.equal(p?.['failure-details']?.[0]?.['failed-session-count'], 2);
    assert.deepEqual(validateTlsRptJson(JSON.parse(JSON.stringify(r))), []);
  });

  it('splits days at UTC midnight; `before` returns only finished days', () => {
    const store = TlsRptStore.open(':memory:', { now: () => at('2024-03-11T00:30:00Z') });
    store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: at('2024-03-10T23:59:59.999Z') });
    // 01:00 at UTC+02:00 is still 23:00 on the 10th in UTC.
    store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: at('2024-03-11T01:00:00+02:00') });
    store.recordSuccess({ policyDomain: 'example.net', policy: STS, day: at('2024-03-11T00:00:00Z') });
    assert.deepEqual(store.days(), ['2024-03-10', '2024-03-11']);
    const all = store.reports({ report: OPTS });
    assert.deepEqual(
      all.map((r) => [r.start.toISOString(), r.toJSON().policies[0]?.summary['total-successful-session-count']]),
      [
        ['2024-03-10T00:00:00.000Z', 2],
        ['2024-03-11T00:00:00.000Z', 1],
      ],
    );
    assert.equal(store.reports({ report: OPTS, before: at('2024-03-10T23:59:59.999Z') }).length, 0);
    assert.deepEqual(
      store.reports({ report: OPTS, before: at('2024-03-11T00:00:00Z') }).map((r) => r.start.toISOString()),
      ['2024-03-10T00:00:00.000Z'],
    );
    // pending() is about finished days only: the 11th is still running at 00:30.
    assert.deepEqual(
      store.pending().map((d) => d.day),
      ['2024-03-10'],
    );
    store.close();
  });

  it('merges identical failures and keeps distinct ones apart', () => {
    const store = TlsRptStore.open(':memory:', { now: () => at('2024-03-10T08:00:00Z') });
    store.recordFailure(EXPIRED);
    store.recordFailure({ ...EXPIRED, receivingMxHostname: 'MX1.mail.example.net.' }); // same after normalising
    store.recordFailure({ ...EXPIRED, receivingIp: '192.0.2.6' });
    store.recordFailure({ ...EXPIRED, resultType: 'starttls-not-supported' });
    const [r] = store.reports({ report: OPTS });
    store.close();
    const details = r?.toJSON().policies[0]?.['failure-details'] ?? [];
    assert.deepEqual(
      details.map((d) => [d['result-type'], d['receiving-ip'], d['failed-session-count']]),
      [
        ['certificate-expired', '192.0.2.5', 2],
        ['certificate-expired', '192.0.2.6', 1],
        ['starttls-not-supported', '192.0.2.5', 1],
      ],
    );
    // A failure-only policy still reports zero successes.
    assert.equal(r?.toJSON().policies[0]?.summary['total-successful-session-count'], 0);
  });

  it('counts exactly like TlsRptAggregator for the same random sequence (with a reopen midway)', () => {
    // Small deterministic PRNG (mulberry32) so a failure is reproducible.
    let seed = 0x5eed1234;
    const rnd = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)] as T;
    const domains = ['example.net', 'Example.NET.', 'dane.example', 'plain.example', 'b.example'];
    const policies = [STS, { ...STS, strings: ['version: STSv1', 'mode: testing'] }, TLSA, NONE];
    const start = Date.parse('2024-03-09T22:00:00Z');
    const file = path.join(dir, 'random', 'tlsrpt.sqlite');
    const agg = new TlsRptAggregator();
    let store = TlsRptStore.open(file);
    for (let i = 0; i < 1500; i++) {
      if (i === 700) {
        store.close();
        store = TlsRptStore.open(file);
      }
      const session: TlsRptSession = {
        policyDomain: pick(domains),
        policy: pick(policies),
        day: new Date(start + rnd(3 * 86_400_000)),
      };
      if (rnd(3) === 0) {
        const f: TlsRptFailure = {
          ...session,
          resultType: pick(RESULT_TYPES),
          sendingMtaIp: pick(['192.0.2.1', '2001:db8::1']),
          receivingMxHostname: pick(['mx1.example.net', 'MX2.example.net.']),
          ...(rnd(2) === 0 ? { receivingIp: pick(['198.51.100.1', '198.51.100.2']) } : {}),
          ...(rnd(4) === 0 ? { receivingMxHelo: 'mx1' } : {}),
          ...(rnd(5) === 0 ? { failureReasonCode: pick(['X509_V_ERR_1', 'X509_V_ERR_2']) } : {}),
          ...(rnd(6) === 0 ? { additionalInformation: 'https://sender.example/why' } : {}),
        };
        agg.recordFailure(f);
        store.recordFailure(f);
      } else {
        agg.recordSuccess(session);
        store.recordSuccess(session);
      }
    }
    const fromStore = store.reports({ report: OPTS });
    store.close();
    const fromAgg = agg.days().flatMap((d) => agg.reports(new Date(`${d}T00:00:00Z`), OPTS));
    assert.ok(fromAgg.length >= 10, `enough reports to compare (${fromAgg.length})`);
    assert.equal(JSON.stringify(fromStore), JSON.stringify(fromAgg));
    for (const r of fromStore) assert.deepEqual(validateTlsRptJson(JSON.parse(JSON.stringify(r))), []);
  });

  it('tracks delivery: sent and skipped are final, retry comes back when due', () => {
    let now = at('2024-03-11T01:00:00Z');
    const store = TlsRptStore.open(':memory:', { now: () => now });
    for (const d of ['a.example', 'b.example', 'c.example'])
      store.recordSuccess({ policyDomain: d, policy: NONE, day: at('2024-03-10T12:00:00Z') });
    assert.deepEqual(
      store.pending().map((p) => p.policyDomain),
      ['a.example', 'b.example', 'c.example'],
    );
    store.markSent('a.example', '2024-03-10', { state: 'sent', delivered: ['mailto:r@a.example'] });
    store.markSent('b.example', '2024-03-10', { state: 'skipped', reason: 'no TLS-RPT record' });
    store.markSent('c.example', '2024-03-10', {
      state: 'retry',
      reason: 'HTTP 503',
      retryAt: at('2024-03-11T01:30:00Z'),
      delivered: ['mailto:r@c.example'],
    });
    assert.deepEqual(store.pending(), []);
    assert.deepEqual(
      store.reports({ report: OPTS, unsentOnly: true }).map((r) => r.policyDomain),
      ['c.example'],
    );
    now = at('2024-03-11T01:30:00Z');
    const [due] = store.pending();
    assert.equal(due?.policyDomain, 'c.example');
    assert.equal(due?.status?.attempts, 1);
    assert.deepEqual(due?.status?.delivered, ['mailto:r@c.example']);
    assert.equal(due?.status?.firstAttemptAt.toISOString(), '2024-03-11T01:00:00.000Z');
    store.markSent('c.example', '2024-03-10', { state: 'failed', reason: 'gave up' });
    assert.deepEqual(store.pending(), []);
    const st = store.status('c.example', '2024-03-10');
    assert.equal(st?.attempts, 2);
    assert.equal(st?.state, 'failed');
    // first attempt time is kept across attempts (the §5.5 24-hour window counts from it)
    assert.equal(st?.firstAttemptAt.toISOString(), '2024-03-11T01:00:00.000Z');
    assert.deepEqual(
      store.statuses().map((s) => [s.policyDomain, s.state]),
      [
        ['a.example', 'sent'],
        ['b.example', 'skipped'],
        ['c.example', 'failed'],
      ],
    );
    store.close();
  });

  it('prunes days older than the retention period, whatever their state', () => {
    let now = at('2024-03-11T01:00:00Z');
    const store = TlsRptStore.open(':memory:', { now: () => now, retentionDays: 3 });
    for (const day of ['2024-03-01', '2024-03-07', '2024-03-08', '2024-03-10']) {
      store.recordFailure({ ...EXPIRED, day: at(`${day}T10:00:00Z`) });
      store.markSent('example.net', day, { state: 'sent' });
    }
    store.recordSuccess({ policyDomain: 'x.example', policy: NONE, day: at('2024-03-02T10:00:00Z') }); // never sent
    assert.equal(store.prune(), 3); // 03-01, 03-02, 03-07 are before 03-08 (today - 3 days)
    assert.deepEqual(store.days(), ['2024-03-08', '2024-03-10']);
    assert.deepEqual(
      store.statuses().map((s) => s.day),
      ['2024-03-08', '2024-03-10'],
    );
    now = at('2024-03-20T00:00:00Z');
    store.prune();
    assert.deepEqual(store.days(), []);
    store.close();
  });

  it('rejects invalid input with typed errors and writes nothing for it', () => {
    const store = TlsRptStore.open(':memory:', { now: () => at('2024-03-10T00:00:00Z') });
    assert.throws(() => store.recordSuccess({ policyDomain: ' ', policy: STS }), PosternError);
    assert.throws(
      () => store.recordSuccess({ policyDomain: 'a.example', policy: STS, day: new Date(NaN) }),
      PosternError,
    );
    assert.throws(
      () => store.recordSuccess({ policyDomain: 'a.example', policy: { type: 'bogus' as 'sts', strings: [] } }),
      PosternError,
    );
    assert.throws(
      () => store.recordFailure({ ...EXPIRED, resultType: 'bogus' as unknown as 'dane-required' }),
      PosternError,
    );
    assert.deepEqual(store.days(), []);
    assert.throws(() => store.markSent('a.example', '2024-02-30', { state: 'sent' }), /not a YYYY-MM-DD/);
    assert.throws(() => store.reports({ report: OPTS, day: '10.03.2024' }), PosternError);
    store.close();
  });

  it('a read-only reader sees the writer’s data while it is open, and cannot write', () => {
    const file = path.join(dir, 'shared', 'tlsrpt.sqlite');
    assert.throws(
      () => TlsRptStore.open(file, { readOnly: true }),
      (e: unknown) => {
        return e instanceof PosternError && e.code === 'tlsrpt-store-open';
      },
    );
    const writer = TlsRptStore.open(file, { now: () => at('2024-03-10T00:00:00Z') });
    writer.recordSuccess({ policyDomain: 'example.net', policy: STS });
    const reader = TlsRptStore.open(file, { readOnly: true });
    assert.equal(reader.reports({ report: OPTS }).length, 1);
    writer.recordSuccess({ policyDomain: 'other.example', policy: STS });
    assert.equal(reader.reports({ report: OPTS }).length, 2);
    assert.throws(
      () => reader.recordSuccess({ policyDomain: 'example.net', policy: STS }),
      (e: unknown) => e instanceof PosternError && e.code === 'tlsrpt-store-readonly',
    );
    reader.close();
    writer.close();
  });
});
