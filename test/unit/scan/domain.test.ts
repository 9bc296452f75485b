import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/core/errors.ts';
import { isDomainTarget, parseServices, summarizeDomain } from '../../../src/scan/domain.ts';
import type { DomainEndpoint, DomainPlan } from '../../../src/scan/domain.ts';
import type { EndpointReport } from '../../../src/scan/scan.ts';
import type { Finding } from '../../../src/scan/findings.ts';

describe('isDomainTarget', () => {
  it('takes bare domain names, including internationalized ones', () => {
    for (const d of ['example.org', 'Example.ORG.', 'mail', 'xn--bcher-kva.example', 'bücher.example', ' a-b.c ']) {
      assert.equal(isDomainTarget(d), true, d);
    }
  });
  it('leaves URLs, host:port, IP literals and junk to parseTarget', () => {
    for (const t of [
      'smtp://example.org',
      'example.org:25',
      '127.0.0.1',
      '::1',
      '[::1]:25',
      '10.1',
      '',
      'a..b',
      '-a.b',
      'a_b.c',
      'a.b/c',
      `${'a'.repeat(64)}.b`,
    ]) {
      assert.equal(isDomainTarget(t), false, t);
    }
  });
});

describe('parseServices', () => {
  it('reads a comma list, dropping repeats', () => {
    assert.deepEqual(parseServices('mx, Submission,imap,mx'), ['mx', 'submission', 'imap']);
    assert.deepEqual(parseServices('pop3'), ['pop3']);
  });
  it('refuses unknown or empty lists', () => {
    assert.throws(() => parseServices('mx,smtp'), UsageError);
    assert.throws(() => parseServices(' , '), UsageError);
  });
});

function endpoint(host: string, address: string, priority = 10, role: DomainEndpoint['role'] = 'mx'): DomainEndpoint {
  return {
    url: `smtp://${host}:25`,
    service: 'smtp',
    host,
    port: 25,
    dialect: 'smtp',
    address,
    role,
    source: 'mx',
    ...(role === 'mx' ? { mxHost: host, priority } : {}),
    name: host,
  };
}

function report(
  ep: DomainEndpoint,
  opts: {
    findings?: Finding[];
    versions?: Array<'TLSv1.0' | 'TLSv1.2' | 'TLSv1.3'>;
    reachable?: boolean;
    starttls?: boolean;
  } = {},
): EndpointReport {
  const findings = opts.findings ?? [];
  const versions = opts.versions ?? ['TLSv1.2', 'TLSv1.3'];
  const reachable = opts.reachable ?? true;
  return {
    url: ep.url,
    service: ep.service,
    host: ep.host,
    address: ep.address,
    port: ep.port,
    starttls: {
      offered: opts.starttls ?? true,
      advertised: opts.starttls ?? true,
      stripped: false,
      refusedReply: null,
      injectedBytes: null,
    },
    protocols: {
      SSLv2: false,
      SSLv3: false,
      'TLSv1.0': versions.includes('TLSv1.0'),
      'TLSv1.1': false,
      'TLSv1.2': versions.includes('TLSv1.2'),
      'TLSv1.3': versions.includes('TLSv1.3'),
    },
    ciphers: versions.map((v) => ({ protocol: v, code: '0x13,0x01', name: 'TLS_AES_128_GCM_SHA256' })),
    serverPreference: {},
    groups: { tls13: [], tls12: [] },
    dhBits: [],
    certificate: null,
    chains: 0,
    negotiated: null,
    findings,
    compliant: reachable && findings.every((f) => f.severity === 'info'),
    reachable,
    errors: [],
    stats: { connections: 1, durationMs: 1 },
  };
}

function plan(endpoints: DomainEndpoint[], extra: Partial<DomainPlan> = {}): DomainPlan {
  return {
    domain: 'example.test',
    services: ['mx'],
    nullMx: false,
    implicitMx: false,
    mx: [...new Set(endpoints.filter((e) => e.mxHost).map((e) => e.mxHost as string))],
    endpoints,
    problems: [],
    ...extra,
  };
}

const medium: Finding = { id: 'protocol-tls1.0', severity: 'medium', message: 'TLS 1.0' };
const high: Finding = { id: 'cert-expired', severity: 'high', message: 'expired' };

describe('summarizeDomain', () => {
  it('is compliant with consistent, compliant MX endpoints', () => {
    const a = endpoint('mx1.example.test', '127.0.0.1');
    const b = endpoint('mx2.example.test', '127.0.0.2', 20);
    const s = summarizeDomain(plan([a, b]), [report(b), report(a)]);
    assert.deepEqual(s, {
      domain: 'example.test',
      mx: ['mx1.example.test', 'mx2.example.test'],
      compliant: true,
      weakest: null,
      weakestAddress: null,
      findings: [],
    });
  });

  it('lets the weakest MX decide: unreachable beats high beats medium', () => {
    const a = endpoint('mx1.example.test', '127.0.0.1');
    const b = endpoint('mx2.example.test', '127.0.0.2', 20);
    const c = endpoint('mx3.example.test', '127.0.0.3', 30);
    const s1 = summarizeDomain(plan([a, b, c]), [
      report(a, { findings: [medium], versions: ['TLSv1.0', 'TLSv1.2'] }),
      report(b, { findings: [high] }),
      report(c),
    ]);
    assert.equal(s1.compliant, false);
    assert.equal(s1.weakest, 'smtp://mx2.example.test:25');
    const s2 = summarizeDomain(plan([a, b, c]), [
      report(a, { findings: [medium] }),
      report(b, { findings: [high] }),
      report(c, { reachable: false, findings: [{ id: 'unreachable', severity: 'high', message: 'x' }] }),
    ]);
    assert.equal(s2.weakest, 'smtp://mx3.example.test:25');
    assert.equal(s2.weakestAddress, '127.0.0.3');
  });

  it('reports mx-inconsistent with host-by-host evidence for exactly the aspects that differ', () => {
    const a = endpoint('mx1.example.test', '127.0.0.1');
    const b = endpoint('mx2.example.test', '127.0.0.2', 20);
    const s = summarizeDomain(plan([a, b]), [report(a), report(b, { starttls: false, versions: [] })]);
    const f = s.findings.find((x) => x.id === 'mx-inconsistent');
    assert.ok(f);
    assert.equal(f.severity, 'medium');
    assert.deepEqual(f.evidence, [
      'STARTTLS: mx1.example.test [127.0.0.1]: offered',
      'STARTTLS: mx2.example.test [127.0.0.2]: not offered',
      'protocols: mx1.example.test [127.0.0.1]: TLSv1.2 TLSv1.3',
      'protocols: mx2.example.test [127.0.0.2]: none',
      'suites: mx1.example.test [127.0.0.1]: 2 accepted, not on every MX: TLSv1.2:TLS_AES_128_GCM_SHA256 TLSv1.3:TLS_AES_128_GCM_SHA256',
      'suites: mx2.example.test [127.0.0.2]: 0 accepted',
    ]);
    // Both endpoints compliant (no findings in these fixtures): the difference alone does not fail the domain.
    assert.equal(s.compliant, true);
  });

  it('ignores non-MX endpoints for consistency but counts them for compliance', () => {
    const a = endpoint('mx1.example.test', '127.0.0.1');
    const sub = endpoint('smtp.example.test', '127.0.0.9', 0, 'submission');
    const s = summarizeDomain(plan([a, sub]), [report(a), report(sub, { starttls: false, findings: [high] })]);
    assert.equal(s.findings.length, 0);
    assert.equal(s.weakest, null);
    assert.equal(s.compliant, false);
  });

  it('carries plan problems over and fails on serious ones', () => {
    const nul = summarizeDomain(
      plan([], { nullMx: true, problems: [{ id: 'null-mx', severity: 'info', message: 'no mail' }] }),
      [],
    );
    assert.equal(nul.compliant, true);
    assert.deepEqual(
      nul.findings.map((f) => f.id),
      ['null-mx'],
    );
    const none = summarizeDomain(plan([], { problems: [{ id: 'mx-none', severity: 'high', message: 'nothing' }] }), []);
    assert.equal(none.compliant, false);
    assert.equal(none.weakest, null);
  });

  it('flags planned endpoints that have no report', () => {
    const a = endpoint('mx1.example.test', '127.0.0.1');
    const b = endpoint('mx2.example.test', '127.0.0.2', 20);
    const s = summarizeDomain(plan([a, b]), [report(a)]);
    assert.deepEqual(
      s.findings.map((f) => [f.id, f.evidence]),
      [['endpoint-not-scanned', ['smtp://mx2.example.test:25 [127.0.0.2]']]],
    );
    assert.equal(s.compliant, false);
  });
});
