import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { parseTlsRptRecord } from '../../../src/report/tlsrpt/record.ts';
import { POLICY_TYPES, RESULT_TYPES, TlsRptAggregator } from '../../../src/report/tlsrpt/aggregate.ts';
import type { TlsRptReport } from '../../../src/report/tlsrpt/aggregate.ts';
import { gzipReport, reportFilename } from '../../../src/report/tlsrpt/encode.ts';
import { PosternError } from '../../../src/core/errors.ts';
import { RFC8460_POLICY_TYPES, RFC8460_RESULT_TYPES, validateTlsRptJson } from './tlsrpt/validate.ts';

describe('parseTlsRptRecord (RFC 8460 §3)', () => {
  it('parses mailto and https URIs, joining TXT character-strings', () => {
    const r = parseTlsRptRecord([['v=TLSRPTv1; rua=mailto:tls@example.com,', 'https://rpt.example.com/v1']]);
    assert.deepEqual(r, {
      ok: true,
      rua: [
        { kind: 'mailto', uri: 'mailto:tls@example.com' },
        { kind: 'https', uri: 'https://rpt.example.com/v1' },
      ],
    });
  });

  it('tolerates whitespace, ignores unknown fields and other records', () => {
    const r = parseTlsRptRecord([['v=spf1 -all'], ['v = TLSRPTv1 ;  ext_1=foo ; rua = mailto:a@b.example ; x=y;']]);
    assert.deepEqual(r, { ok: true, rua: [{ kind: 'mailto', uri: 'mailto:a@b.example' }] });
  });

  it('drops non-mailto/https URIs but keeps the rest', () => {
    const r = parseTlsRptRecord([['v=TLSRPTv1; rua=http://insecure.example/,ftp://x.example/,https://ok.example/']]);
    assert.deepEqual(r, { ok: true, rua: [{ kind: 'https', uri: 'https://ok.example/' }] });
  });

  it('fails when no usable URI remains', () => {
    const r = parseTlsRptRecord([['v=TLSRPTv1; rua=http://insecure.example/,mailto:']]);
    assert.equal(r.ok, false);
  });

  it('requires exactly one v=TLSRPTv1 record', () => {
    assert.equal(parseTlsRptRecord([]).ok, false);
    assert.equal(parseTlsRptRecord([['v=spf1 -all']]).ok, false);
    const two = parseTlsRptRecord([['v=TLSRPTv1; rua=mailto:a@b.example'], ['v=TLSRPTv1; rua=mailto:c@d.example']]);
    assert.equal(two.ok, false);
    if (!two.ok) assert.match(two.reason, /exactly one/);
  });

  it('rejects a missing rua, a missing delimiter, a wrong version and duplicate rua', () => {
    assert.equal(parseTlsRptRecord([['v=TLSRPTv1;']]).ok, false);
    assert.equal(parseTlsRptRecord([['v=TLSRPTv1']]).ok, false);
    assert.equal(parseTlsRptRecord([['v=TLSRPTv1 rua=mailto:a@b.example']]).ok, false);
    assert.equal(parseTlsRptRecord([['v=TLSRPTv2; rua=mailto:a@b.example']]).ok, false);
    assert.equal(parseTlsRptRecord([['v=TLSRPTv10; rua=mailto:a@b.example']]).ok, false);
    assert.equal(parseTlsRptRecord([['v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example']]).ok, false);
    // Field names are case-sensitive in the ABNF, so "RUA" is an (ignored) extension.
    assert.equal(parseTlsRptRecord([['v=TLSRPTv1; RUA=mailto:a@b.example']]).ok, false);
  });

  it('never throws on junk', () => {
    for (const junk of [
      '',
      ';;;',
      'v=TLSRPTv1;=;==',
      'v=TLSRPTv1; rua=%%%,\u0000',
      'v=TLSRPTv1; rua=mailto:%E0%A4%A',
    ]) {
      assert.doesNotThrow(() => parseTlsRptRecord([[junk]]));
    }
  });
});

const STS = {
  type: 'sts' as const,
  strings: ['version: STSv1', 'mode: enforce', 'mx: *.mail.example.net', 'max_age: 86400'],
  mxHost: '*.mail.example.net',
};
const DAY = new Date('2024-03-10T12:34:56Z');
const OPTS = { organizationName: 'Postern Test', contactInfo: 'tlsrpt@sender.example', reportIdPrefix: 'pt-' };

function sampleAggregator(): TlsRptAggregator {
  const agg = new TlsRptAggregator({ now: () => DAY });
  for (let i = 0; i < 5; i++) agg.recordSuccess({ policyDomain: 'Example.NET.', policy: STS });
  const expired = {
    policyDomain: 'example.net',
    policy: STS,
    resultType: 'certificate-expired' as const,
    sendingMtaIp: '2001:db8::1',
    receivingMxHostname: 'mx1.mail.example.net',
    receivingIp: '192.0.2.5',
  };
  agg.recordFailure(expired);
  agg.recordFailure(expired);
  agg.recordFailure({ ...expired, day: new Date('2024-03-10T23:59:59.999Z') });
  agg.recordFailure({
    ...expired,
    resultType: 'starttls-not-supported',
    receivingMxHelo: 'mx1',
    additionalInformation: 'https://sender.example/tlsrpt/why',
    failureReasonCode: 'X-NO-STARTTLS',
  });
  agg.recordSuccess({
    policyDomain: 'dane.example',
    policy: { type: 'tlsa', strings: ['3 1 1 ABCD'], mxHost: 'mx.dane.example' },
  });
  agg.recordSuccess({ policyDomain: 'plain.example', policy: { type: 'no-policy-found', strings: [] } });
  // A session on the next UTC day must not leak into DAY's report.
  agg.recordSuccess({ policyDomain: 'example.net', policy: STS, day: new Date('2024-03-11T00:00:00Z') });
  return agg;
}

function reportFor(reports: TlsRptReport[], domain: string): TlsRptReport {
  const r = reports.find((x) => x.policyDomain === domain);
  assert.ok(r, `report for ${domain}`);
  return r;
}

describe('TlsRptAggregator', () => {
  it('aggregates sessions per policy domain and UTC day', () => {
    const agg = sampleAggregator();
    const reports = agg.reports(new Date('2024-03-10T00:00:00Z'), OPTS);
    assert.deepEqual(
      reports.map((r) => r.policyDomain),
      ['dane.example', 'example.net', 'plain.example'],
    );
    const json = reportFor(reports, 'example.net').toJSON();
    assert.equal(json.policies.length, 1);
    const p = json.policies[0];
    assert.ok(p);
    assert.deepEqual(p.summary, { 'total-successful-session-count': 5, 'total-failure-session-count': 4 });
    assert.deepEqual(p['failure-details'], [
      {
        'result-type': 'certificate-expired',
        'sending-mta-ip': '2001:db8::1',
        'receiving-mx-hostname': 'mx1.mail.example.net',
        'receiving-ip': '192.0.2.5',
        'failed-session-count': 3,
      },
      {
        'result-type': 'starttls-not-supported',
        'sending-mta-ip': '2001:db8::1',
        'receiving-mx-hostname': 'mx1.mail.example.net',
        'receiving-mx-helo': 'mx1',
        'receiving-ip': '192.0.2.5',
        'failed-session-count': 1,
        'additional-information': 'https://sender.example/tlsrpt/why',
        'failure-reason-code': 'X-NO-STARTTLS',
      },
    ]);
    assert.equal(json['report-id'], 'pt-2024-03-10_example.net');
    assert.deepEqual(json['date-range'], {
      'start-datetime': '2024-03-10T00:00:00Z',
      'end-datetime': '2024-03-10T23:59:59Z',
    });
    const next = agg.reports(new Date('2024-03-11T18:00:00Z'), OPTS);
    assert.equal(next.length, 1);
    assert.deepEqual(next[0]?.toJSON().policies[0]?.summary, {
      'total-successful-session-count': 1,
      'total-failure-session-count': 0,
    });
  });

  it('omits failure-details when there were no failures, and mx-host when not given', () => {
    const reports = sampleAggregator().reports(DAY, OPTS);
    const plain = reportFor(reports, 'plain.example').toJSON().policies[0];
    assert.ok(plain);
    assert.equal('failure-details' in plain, false);
    assert.equal('mx-host' in plain.policy, false);
    assert.deepEqual(plain.policy['policy-string'], []);
  });

  it('keeps a separate policies[] entry when the applied policy changed during the day', () => {
    const agg = new TlsRptAggregator({ now: () => DAY });
    agg.recordSuccess({ policyDomain: 'example.net', policy: STS });
    agg.recordSuccess({
      policyDomain: 'example.net',
      policy: { ...STS, strings: ['version: STSv1', 'mode: testing'] },
    });
    agg.recordSuccess({ policyDomain: 'example.net', policy: STS });
    const [r] = agg.reports(DAY, OPTS);
    assert.ok(r);
    assert.deepEqual(
      r.toJSON().policies.map((p) => p.summary['total-successful-session-count']),
      [2, 1],
    );
  });

  it('snapshots: later sessions and caller mutation do not alter an issued report', () => {
    const agg = sampleAggregator();
    const [r] = agg.reports(DAY, OPTS);
    assert.ok(r);
    const before = JSON.stringify(r);
    agg.recordSuccess({
      policyDomain: 'dane.example',
      policy: { type: 'tlsa', strings: ['3 1 1 ABCD'], mxHost: 'mx.dane.example' },
    });
    r.toJSON().policies.length = 0;
    assert.equal(JSON.stringify(r), before);
  });

  it('discard() forgets a day; invalid input is a typed error', () => {
    const agg = sampleAggregator();
    agg.discard(DAY);
    assert.deepEqual(agg.reports(DAY, OPTS), []);
    assert.equal(agg.domains(new Date('2024-03-11T01:00:00Z')).length, 1);
    assert.throws(() => agg.recordSuccess({ policyDomain: ' ', policy: STS }), PosternError);
    assert.throws(
      () => agg.recordSuccess({ policyDomain: 'a.example', policy: STS, day: new Date(NaN) }),
      PosternError,
    );
    assert.throws(
      () =>
        agg.recordFailure({
          policyDomain: 'a.example',
          policy: STS,
          resultType: 'bogus' as unknown as 'dane-required',
          sendingMtaIp: '192.0.2.1',
          receivingMxHostname: 'mx.a.example',
        }),
      PosternError,
    );
  });
});

describe('RFC 8460 §4.4 JSON structure', () => {
  it('the validator itself rejects wrong shapes (so a pass means something)', () => {
    const good = JSON.parse(JSON.stringify(sampleAggregator().reports(DAY, OPTS)[1])) as Record<string, unknown>;
    assert.deepEqual(validateTlsRptJson(good), []);
    const bad1 = { ...good, 'organisation-name': 'x' };
    delete (bad1 as Record<string, unknown>)['organization-name'];
    assert.ok(validateTlsRptJson(bad1).length >= 2);
    assert.ok(
      validateTlsRptJson({
        ...good,
        'date-range': { 'start-datetime': '2024-03-10T00:00:00Z', 'end-datetime': '2024-03-11T23:59:59Z' },
      }).length > 0,
    );
    const policies = structuredClone(good['policies']) as Array<Record<string, unknown>>;
    (policies[0] as { summary: Record<string, unknown> }).summary['total-failure-session-count'] = '4';
    assert.ok(validateTlsRptJson({ ...good, policies }).length > 0);
  });

  it("the implementation's result and policy types are exactly RFC 8460's (§4.3, §4.4)", () => {
    assert.deepEqual([...RESULT_TYPES].sort(), [...RFC8460_RESULT_TYPES].sort());
    assert.deepEqual([...POLICY_TYPES].sort(), [...RFC8460_POLICY_TYPES].sort());
    // The validator's own list, not the implementation's, decides: a made-up type fails.
    const good = JSON.parse(JSON.stringify(sampleAggregator().reports(DAY, OPTS)[1])) as {
      policies: Array<{ 'failure-details'?: Array<Record<string, unknown>> }>;
    };
    const detail = good.policies.flatMap((p) => p['failure-details'] ?? [])[0];
    assert.ok(detail !== undefined, 'the sample has a failure detail');
    detail['result-type'] = 'certificate-revoked';
    assert.ok(validateTlsRptJson(good).some((e) => e.includes('bad result-type')));
  });

  it('every generated report validates, via JSON.stringify round trip', () => {
    const reports = sampleAggregator().reports(DAY, OPTS);
    assert.equal(reports.length, 3);
    for (const r of reports) {
      const parsed: unknown = JSON.parse(JSON.stringify(r));
      assert.deepEqual(validateTlsRptJson(parsed), [], r.policyDomain);
      assert.deepEqual(parsed, r.toJSON());
    }
  });
});

describe('encoding (RFC 8460 §5.3)', () => {
  it('gzip round trip yields the same JSON', () => {
    const [r] = sampleAggregator().reports(DAY, OPTS);
    assert.ok(r);
    const gz = gzipReport(r);
    assert.equal(gz[0], 0x1f);
    assert.equal(gz[1], 0x8b);
    assert.deepEqual(JSON.parse(gunzipSync(gz).toString('utf8')), r.toJSON());
  });

  it('filename is receiver!policy-domain!begin!end[!unique-id].json.gz', () => {
    const r = reportFor(sampleAggregator().reports(DAY, OPTS), 'example.net');
    const begin = Date.UTC(2024, 2, 10) / 1000;
    assert.equal(reportFilename(r, 'Sender.Example.'), `sender.example!example.net!${begin}!${begin + 86399}.json.gz`);
    assert.equal(
      reportFilename(r, 'sender.example', '001'),
      `sender.example!example.net!${begin}!${begin + 86399}!001.json.gz`,
    );
    assert.match(reportFilename(r, 'sender.example', 'a.b-c_d'), /^[^!]+!example\.net!\d+!\d+!a\.b-c_d\.json\.gz$/);
  });

  it('filename refuses parts that would break the "!" structure', () => {
    const r = reportFor(sampleAggregator().reports(DAY, OPTS), 'example.net');
    assert.throws(() => reportFilename(r, 'sender!example'), PosternError);
    assert.throws(() => reportFilename(r, 'sender.example', 'a!b'), PosternError);
    assert.throws(() => reportFilename(r, 'sender.example', 'a/b'), PosternError);
    assert.throws(() => reportFilename(r, 'sender.example', ''), PosternError);
  });
});
