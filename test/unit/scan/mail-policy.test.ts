/** MTA-STS and TLS-RPT assessment (pure parts of the scanner's mail-policy checks). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DnssecAnswer, DnssecResolver } from '../../../src/dns/dnssec.ts';
import { DnsError } from '../../../src/dns/resolver.ts';
import type { DnsClient } from '../../../src/dns/resolver.ts';
import type { DomainPlan } from '../../../src/scan/domain.ts';
import { checkMailPolicies } from '../../../src/scan/mail-policy.ts';
import { assessMtaSts, mxCertificateVerdict } from '../../../src/scan/mta-sts.ts';
import type { MtaStsInput } from '../../../src/scan/mta-sts.ts';
import type { CertificateSummary, EndpointReport } from '../../../src/scan/scan.ts';
import type { Finding } from '../../../src/scan/findings.ts';
import { assessTlsRpt } from '../../../src/scan/tlsrpt.ts';

const D = 'example.test';

function cert(over: Partial<CertificateSummary> = {}): CertificateSummary {
  return {
    subject: 'CN=mx1.example.test',
    issuer: 'CN=CA',
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2027-01-01T00:00:00.000Z',
    keyType: 'EC',
    keyBits: 256,
    signatureAlgorithm: 'ecdsa-with-SHA256',
    sha256: '00',
    dnsNames: ['mx1.example.test'],
    selfSigned: false,
    trusted: true,
    hostnameMatches: true,
    ...over,
  };
}

function ep(
  host: string,
  address: string,
  o: { certificate?: CertificateSummary | null; findings?: Finding[]; starttls?: boolean; reachable?: boolean } = {},
): EndpointReport {
  return {
    url: `smtp://${host}:25`,
    service: 'smtp',
    host,
    address,
    port: 25,
    starttls: {
      offered: o.starttls ?? true,
      advertised: o.starttls ?? true,
      stripped: false,
      refusedReply: null,
      injectedBytes: null,
    },
    protocols: { SSLv2: false, SSLv3: false, 'TLSv1.0': false, 'TLSv1.1': false, 'TLSv1.2': true, 'TLSv1.3': true },
    ciphers: [],
    serverPreference: {},
    groups: { tls13: [], tls12: [] },
    dhBits: [],
    certificate: o.certificate === undefined ? cert({ dnsNames: [host] }) : o.certificate,
    chains: 1,
    negotiated: null,
    findings: o.findings ?? [],
    compliant: true,
    reachable: o.reachable ?? true,
    errors: [],
    stats: { connections: 1, durationMs: 1 },
  };
}

const REC = { kind: 'records' as const, txt: [['v=STSv1; id=20260101']] };

function policy(mode: 'enforce' | 'testing' | 'none', mx: string[]): MtaStsInput['fetch'] {
  return { ok: true, policy: { version: 'STSv1', mode, mx, maxAge: 604800 }, text: '' };
}

function run(over: Partial<MtaStsInput>): ReturnType<typeof assessMtaSts> {
  return assessMtaSts({
    domain: D,
    record: REC,
    fetch: policy('enforce', ['*.example.test']),
    mxHosts: ['mx1.example.test', 'mx2.example.test'],
    endpoints: [
      { mxHost: 'mx1.example.test', report: ep('mx1.example.test', '192.0.2.1') },
      { mxHost: 'mx2.example.test', report: ep('mx2.example.test', '192.0.2.2') },
    ],
    ...over,
  });
}

const ids = (fs: Finding[]): Array<[string, string]> => fs.map((f) => [f.id, f.severity]);

describe('assessMtaSts', () => {
  it('enforce, every MX covered and valid: no findings; the report carries record and policy', () => {
    const { report, findings } = run({});
    assert.deepEqual(findings, []);
    assert.deepEqual(report.record, { name: `_mta-sts.${D}`, found: true, valid: true, id: '20260101', reason: null });
    assert.equal(report.policy?.url, `https://mta-sts.${D}/.well-known/mta-sts.txt`);
    assert.equal(report.policy?.mode, 'enforce');
    assert.equal(report.policy?.maxAge, 604800);
    assert.deepEqual(
      report.mx.map((m) => [m.host, m.covered, m.addresses.map((a) => a.certValid)]),
      [
        ['mx1.example.test', true, [true]],
        ['mx2.example.test', true, [true]],
      ],
    );
  });

  it('an MX outside the mx patterns in enforce mode: mta-sts-mx-not-covered (high); in testing: low + mta-sts-testing', () => {
    const enforce = run({ fetch: policy('enforce', ['mx1.example.test']) });
    assert.deepEqual(ids(enforce.findings), [['mta-sts-mx-not-covered', 'high']]);
    assert.deepEqual(enforce.findings[0]?.evidence, ['mx2.example.test']);
    const testing = run({ fetch: policy('testing', ['mx1.example.test']) });
    assert.deepEqual(ids(testing.findings), [
      ['mta-sts-mx-not-covered', 'low'],
      ['mta-sts-testing', 'info'],
    ]);
    // mode none: the domain is withdrawing its policy; nothing to enforce, nothing to report.
    assert.deepEqual(run({ fetch: policy('none', []) }).findings, []);
  });

  it('"*.example.test" covers exactly one label (RFC 8461 §4.1)', () => {
    const { report } = run({ mxHosts: ['a.b.example.test'], endpoints: [] });
    assert.equal(report.mx[0]?.covered, false);
  });

  it('an MX certificate a sender would refuse: mta-sts-cert-invalid with the RFC 8460 result type per address', () => {
    const { report, findings } = run({
      endpoints: [
        {
          mxHost: 'mx1.example.test',
          report: ep('mx1.example.test', '192.0.2.1', { certificate: cert({ hostnameMatches: false }) }),
        },
        {
          mxHost: 'mx2.example.test',
          report: ep('mx2.example.test', '192.0.2.2', { certificate: cert({ trusted: false }) }),
        },
        {
          mxHost: 'mx2.example.test',
          report: ep('mx2.example.test', '192.0.2.3', {
            findings: [{ id: 'cert-expired', severity: 'high', message: 'expired' }],
          }),
        },
      ],
    });
    assert.deepEqual(ids(findings), [['mta-sts-cert-invalid', 'high']]);
    assert.deepEqual(findings[0]?.evidence, [
      'mx1.example.test [192.0.2.1]: certificate-host-mismatch',
      'mx2.example.test [192.0.2.2]: certificate-not-trusted',
      'mx2.example.test [192.0.2.3]: certificate-expired',
    ]);
    assert.equal(report.mx[1]?.addresses.length, 2);
  });

  it('no STARTTLS is starttls-not-supported; an unreachable endpoint is not judged', () => {
    assert.deepEqual(mxCertificateVerdict(ep('mx', '192.0.2.1', { starttls: false, certificate: null })), {
      certValid: false,
      failure: 'starttls-not-supported',
    });
    assert.deepEqual(mxCertificateVerdict(ep('mx', '192.0.2.1', { reachable: false, certificate: null })), {
      certValid: null,
      failure: null,
    });
  });

  it('policy fetch failures become mta-sts-invalid or, for the policy host certificate, mta-sts-cert-invalid', () => {
    const fetchErr = run({ fetch: { ok: false, error: 'sts-policy-fetch-error', reason: 'HTTP 404, not 200' } });
    assert.deepEqual(ids(fetchErr.findings), [['mta-sts-invalid', 'medium']]);
    assert.match(fetchErr.findings[0]?.message ?? '', /sts-policy-fetch-error/);
    assert.equal(fetchErr.report.policy?.fetched, false);
    assert.equal(fetchErr.report.policy?.resultType, 'sts-policy-fetch-error');
    assert.equal(fetchErr.report.mx[0]?.covered, null);

    const invalid = run({ fetch: { ok: false, error: 'sts-policy-invalid', reason: 'missing max_age' } });
    assert.deepEqual(ids(invalid.findings), [['mta-sts-invalid', 'medium']]);
    assert.equal(invalid.report.policy?.fetched, true);

    const webpki = run({ fetch: { ok: false, error: 'sts-webpki-invalid', reason: 'certificate has expired' } });
    assert.deepEqual(ids(webpki.findings), [['mta-sts-cert-invalid', 'medium']]);
    assert.ok(webpki.findings[0]?.evidence?.includes('result-type: sts-webpki-invalid'));
  });

  it('record problems: missing (info), invalid (medium), two records, lookup failure', () => {
    assert.deepEqual(ids(run({ record: { kind: 'none' }, fetch: null }).findings), [['mta-sts-missing', 'info']]);
    assert.deepEqual(ids(run({ record: { kind: 'records', txt: [['v=spf1 -all']] }, fetch: null }).findings), [
      ['mta-sts-missing', 'info'],
    ]);
    const bad = run({ record: { kind: 'records', txt: [['v=STSv1; id=not-alnum!']] } });
    assert.deepEqual(ids(bad.findings), [['mta-sts-invalid', 'medium']]);
    assert.equal(bad.report.record.valid, false);
    // The policy is still assessed: a sender with a cached policy enforces it.
    assert.equal(bad.report.mx[0]?.covered, true);
    const two = run({ record: { kind: 'records', txt: [['v=STSv1; id=1'], ['v=STSv1; id=2']] } });
    assert.match(two.report.record.reason ?? '', /exactly one/);
    const failed = run({ record: { kind: 'failed', reason: 'timed out' }, fetch: null });
    assert.deepEqual(ids(failed.findings), [['policy-lookup-failed', 'low']]);
    assert.equal(failed.report.record.found, null);
  });
});

describe('assessTlsRpt', () => {
  it('a valid record: no finding, rua listed', () => {
    const { report, findings } = assessTlsRpt(D, {
      kind: 'records',
      txt: [['v=TLSRPTv1; rua=mailto:tlsrpt@', 'example.test,https://r.example.test/x']],
    });
    assert.deepEqual(findings, []);
    assert.deepEqual(report, {
      name: `_smtp._tls.${D}`,
      found: true,
      valid: true,
      rua: ['mailto:tlsrpt@example.test', 'https://r.example.test/x'],
      reason: null,
    });
  });
  it('missing is info; unrelated TXT records do not count', () => {
    assert.deepEqual(ids(assessTlsRpt(D, { kind: 'none' }).findings), [['tlsrpt-missing', 'info']]);
    assert.deepEqual(ids(assessTlsRpt(D, { kind: 'records', txt: [['hello']] }).findings), [
      ['tlsrpt-missing', 'info'],
    ]);
  });
  it('invalid records: no rua, unsupported scheme only, two records', () => {
    for (const txt of [
      [['v=TLSRPTv1;']],
      [['v=TLSRPTv1; rua=ftp://x.example.test']],
      [['v=TLSRPTv1; rua=mailto:a@b.test'], ['v=TLSRPTv1; rua=mailto:c@d.test']],
    ]) {
      const { report, findings } = assessTlsRpt(D, { kind: 'records', txt });
      assert.deepEqual(ids(findings), [['tlsrpt-invalid', 'low']], JSON.stringify(txt));
      assert.equal(report.found, true);
      assert.equal(report.valid, false);
      assert.ok(report.reason);
    }
  });
});

describe('checkMailPolicies', () => {
  const answer = <T>(qname: string, records: T[]): DnssecAnswer<T> => ({
    qname,
    qtype: 'A',
    status: 'insecure',
    rcode: 'NOERROR',
    records,
    canonicalName: qname,
    detail: null,
  });
  // A resolver whose AD bit is not trusted (not on loopback, no --trust-ad): nothing is secure.
  const resolver: DnssecResolver = {
    server: '192.0.2.53:53',
    validating: false,
    addresses: async (h) => answer(h, ['192.0.2.1']),
    mx: async (d) => answer(d, [{ exchange: 'mx1.example.test', priority: 10 }]),
    txt: async (n) => answer(n, []),
    tlsa: async (h, p) => ({ ...answer(`_${p}._tcp.${h}`, []), qtype: 'TLSA' }),
  };
  const nodata = (name: string): never => {
    throw new DnsError('dns-nodata', name, 'TXT', 'no records of that type (NODATA)');
  };
  const dns = { txt: async (n: string) => nodata(n) } as unknown as DnsClient;
  const plan: DomainPlan = {
    domain: D,
    services: ['mx'],
    nullMx: false,
    implicitMx: false,
    mx: ['mx1.example.test'],
    endpoints: [],
    problems: [],
  };

  it('a non-validating resolver: one dane-not-checked, no per-host DANE verdict; MTA-STS and TLS-RPT still checked', async () => {
    const r = await checkMailPolicies(plan, [], { dns, resolver });
    assert.ok(r);
    assert.equal(r.dane.validatingResolver, false);
    assert.equal(r.dane.hosts[0]?.state, 'none');
    assert.deepEqual(ids(r.findings), [
      ['dane-not-checked', 'info'],
      ['mta-sts-missing', 'info'],
      ['tlsrpt-missing', 'info'],
    ]);
    assert.match(r.findings[0]?.message ?? '', /--trust-ad/);
  });

  it('nothing to check for a null MX or without the mx service', async () => {
    assert.equal(await checkMailPolicies({ ...plan, nullMx: true, mx: [] }, [], { dns, resolver }), null);
    assert.equal(await checkMailPolicies({ ...plan, services: ['imap'] }, [], { dns, resolver }), null);
  });
});
