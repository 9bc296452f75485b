/**
 * `postern scan <domain>` for DANE, MTA-STS and TLS-RPT against real peers, no mocks: NSD serves a
 * zone signed with a local key and a validating Unbound answers (test/integration/peers/dnssec.ts),
 * the testbed's smtp-good server is every MX, and a local HTTPS server plays the MTA-STS policy
 * hosts. The scanner's view (planDomain → scanEndpoint → checkMailPolicies → summarizeDomain) must
 * match what DNSSEC, the served chain and the policies say.
 *
 * The zone is the testbed's own domain (testbed.postern.test), so the MX name smtp-good.<zone>
 * is the name on the server's certificate. The SMTP server listens on 127.0.0.51:P, so the plan
 * uses `ports: { smtp: P }` and the TLSA records sit at _P._tcp (RFC 6698 §3: the port connected to).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createDnssecResolver } from '../../src/dns/dnssec.ts';
import type { DnssecResolver } from '../../src/dns/dnssec.ts';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { planDomain, summarizeDomain } from '../../src/scan/domain.ts';
import type { DomainSummary } from '../../src/scan/domain.ts';
import { checkMailPolicies } from '../../src/scan/mail-policy.ts';
import { renderHtml } from '../../src/scan/render-html.ts';
import { makeStyle, renderDomain } from '../../src/scan/render-text.ts';
import { scanEndpoint } from '../../src/scan/scan.ts';
import type { EndpointReport } from '../../src/scan/scan.ts';
import { CATALOG, startTestbed } from '../../src/testbed/index.ts';
import type { Testbed } from '../../src/testbed/index.ts';
import { dnssecLabAvailable, startDnssecLab } from './peers/dnssec.ts';
import type { DnssecLab } from './peers/dnssec.ts';
import { policyText, startHttpsPolicyServer } from './peers/https-policy.ts';
import type { HttpsPolicyServer } from './peers/https-policy.ts';
import { freePort } from './peers/ports.ts';
import { peerSkipReason } from './peers/require.ts';
import { makeTempDir } from './peers/tmp.ts';
import type { TempDir } from './peers/tmp.ts';

const skip = peerSkipReason(dnssecLabAvailable(), 'nsd, ldnsutils and unbound (scripts/install-peers.sh)');

const Z = 'testbed.postern.test';
const GOOD_MX = `smtp-good.${Z}`;
const ADDR = '127.0.0.51';
const BIN = new URL('../../bin/postern.js', import.meta.url).pathname;

describe('scan: DANE, MTA-STS and TLS-RPT of mail domains', { skip }, () => {
  let tb: Testbed;
  let state: TempDir;
  let lab: DnssecLab;
  let https: HttpsPolicyServer;
  let dns: DnsClient;
  let resolver: DnssecResolver;
  let port = 0;
  let caPem = '';
  let goodHash = '';

  async function scan(domain: string): Promise<{ summary: DomainSummary; reports: EndpointReport[] }> {
    const plan = await planDomain(domain, ['mx'], dns, { ports: { smtp: port } });
    assert.ok(plan.endpoints.length > 0, `${domain}: ${JSON.stringify(plan.problems)}`);
    const reports: EndpointReport[] = [];
    for (const ep of plan.endpoints)
      reports.push(
        await scanEndpoint(ep, {
          name: ep.name,
          ca: [caPem],
          timeoutMs: 5000,
          injectionTest: false,
          rateLimitBackoffMs: 200,
        }),
      );
    const policies = await checkMailPolicies(plan, reports, {
      dns,
      resolver,
      ca: [https.ca],
      timeoutMs: 5000,
      mtaStsPort: https.port,
      allowPrivateAddresses: true, // the policy host is on loopback
    });
    assert.ok(policies);
    return { summary: summarizeDomain(plan, reports, policies), reports };
  }

  const ids = (s: DomainSummary, prefix: RegExp): Array<[string, string]> =>
    s.findings.filter((f) => prefix.test(f.id)).map((f) => [f.id, f.severity]);

  before(async () => {
    state = await makeTempDir('scan-dane');
    port = await freePort(ADDR);
    const index = CATALOG.findIndex((e) => e.id === 'smtp-good');
    tb = await startTestbed({ address: ADDR, basePort: port - index, only: ['smtp-good'], stateDir: state.path });
    assert.equal(tb.manifest.servers[0]?.port, port);
    caPem = tb.manifest.caPem;
    // The served leaf, as the scanner captures it: its SPKI digest is the correct 3 1 1 record.
    const probe = await scanEndpoint(
      { url: `smtp://${GOOD_MX}:${port}`, service: 'smtp', host: GOOD_MX, port, dialect: 'smtp', address: ADDR },
      { ca: [caPem], timeoutMs: 5000, injectionTest: false },
    );
    const leaf = probe.certificateChains?.[0]?.[0];
    assert.ok(leaf, 'no chain captured');
    goodHash = createHash('sha256')
      .update(new X509Certificate(Buffer.from(leaf, 'base64')).publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex');
    const wrong = 'ab'.repeat(32);
    const next = 'cd'.repeat(32);

    https = await startHttpsPolicyServer();
    const tcp = `_${port}._tcp`;
    const signed = [
      `${GOOD_MX}. 300 IN A ${ADDR}`,
      `${tcp}.${GOOD_MX}. 300 IN TLSA 3 1 1 ${goodHash}`,
      // good: correct TLSA, MTA-STS enforce covering the MX, TLS-RPT present.
      `good.${Z}. 300 IN MX 10 ${GOOD_MX}.`,
      `_mta-sts.good.${Z}. 300 IN TXT "v=STSv1; id=20260101"`,
      `mta-sts.good.${Z}. 300 IN A 127.0.0.1`,
      `_smtp._tls.good.${Z}. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.${Z}"`,
      // rollover: current + pre-published next record.
      `rollover.${Z}. 300 IN MX 10 mx-rollover.${Z}.`,
      `mx-rollover.${Z}. 300 IN A ${ADDR}`,
      `${tcp}.mx-rollover.${Z}. 300 IN TLSA 3 1 1 ${goodHash}`,
      `${tcp}.mx-rollover.${Z}. 300 IN TLSA 3 1 1 ${next}`,
      // mismatch: TLSA for another key; MTA-STS enforce whose mx list leaves this MX out; TLS-RPT broken.
      `mismatch.${Z}. 300 IN MX 10 mx-mismatch.${Z}.`,
      `mx-mismatch.${Z}. 300 IN A ${ADDR}`,
      `${tcp}.mx-mismatch.${Z}. 300 IN TLSA 3 1 1 ${wrong}`,
      `_mta-sts.mismatch.${Z}. 300 IN TXT "v=STSv1; id=1"`,
      `mta-sts.mismatch.${Z}. 300 IN A 127.0.0.1`,
      `_smtp._tls.mismatch.${Z}. 300 IN TXT "v=TLSRPTv1; rua=ftp://reports.mismatch.${Z}"`,
      // unsigned: the MX host lives in the insecure child zone; MTA-STS in testing mode.
      `unsigned.${Z}. 300 IN MX 10 mx.insecure.${Z}.`,
      `_mta-sts.unsigned.${Z}. 300 IN TXT "v=STSv1; id=2"`,
      `mta-sts.unsigned.${Z}. 300 IN A 127.0.0.1`,
      // bogus: correct TLSA data, but its signature is broken.
      `bogus.${Z}. 300 IN MX 10 mx-bogus.${Z}.`,
      `mx-bogus.${Z}. 300 IN A ${ADDR}`,
      `${tcp}.mx-bogus.${Z}. 300 IN TLSA 3 1 1 ${goodHash}`,
    ];
    const insecure = [`mx.insecure.${Z}. 300 IN A ${ADDR}`, `${tcp}.mx.insecure.${Z}. 300 IN TLSA 3 1 1 ${goodHash}`];
    lab = await startDnssecLab({
      zone: Z,
      signed,
      insecure,
      corrupt: [{ name: `${tcp}.mx-bogus.${Z}`, type: 'TLSA' }],
    });
    dns = createDnsClient({ servers: [lab.resolver], timeoutMs: 2000, tries: 1 });
    resolver = createDnssecResolver({ server: lab.resolver, timeoutMs: 2000 });
    await https.route(`mta-sts.good.${Z}`, { body: policyText('enforce', [GOOD_MX], 604800) });
    await https.route(`mta-sts.mismatch.${Z}`, { body: policyText('enforce', [GOOD_MX], 86400) });
    await https.route(`mta-sts.unsigned.${Z}`, { body: policyText('testing', [`*.insecure.${Z}`], 86400) });
  });

  after(async () => {
    await lab?.stop();
    await https?.stop();
    await tb?.stop();
    await state?.remove();
  });

  it('correct TLSA, MTA-STS enforce covering the MX, TLS-RPT: compliant; only the rollover advice', async () => {
    const { summary } = await scan(`good.${Z}`);
    const host = summary.dane?.hosts[0];
    assert.ok(host);
    assert.equal(summary.dane?.mxStatus, 'secure');
    assert.equal(summary.dane?.validatingResolver, true);
    assert.equal(host.mxHost, GOOD_MX);
    assert.equal(host.tlsaName, `_${port}._tcp.${GOOD_MX}`);
    assert.deepEqual([host.addressStatus, host.tlsaStatus, host.state], ['secure', 'secure', 'dane']);
    assert.deepEqual(host.records, [
      { record: `3 1 1 ${goodHash}`, usable: true, unusableReason: null, matchesServed: true },
    ]);
    assert.deepEqual(
      host.addresses.map((a) => [a.address, a.match, a.matched]),
      [[ADDR, true, `3 1 1 ${goodHash}`]],
    );
    assert.equal(host.rollover?.ready, false);
    assert.deepEqual(ids(summary, /^dane-/), [['dane-rollover-not-ready', 'info']]);

    assert.deepEqual(summary.mtaSts?.record, {
      name: `_mta-sts.good.${Z}`,
      found: true,
      valid: true,
      id: '20260101',
      reason: null,
    });
    assert.equal(summary.mtaSts?.policy?.valid, true);
    assert.equal(summary.mtaSts?.policy?.mode, 'enforce');
    assert.equal(summary.mtaSts?.policy?.maxAge, 604800);
    assert.deepEqual(summary.mtaSts?.mx, [
      { host: GOOD_MX, covered: true, addresses: [{ address: ADDR, certValid: true, failure: null }] },
    ]);
    assert.deepEqual(ids(summary, /^mta-sts-/), []);

    assert.deepEqual(summary.tlsRpt, {
      name: `_smtp._tls.good.${Z}`,
      found: true,
      valid: true,
      rua: [`mailto:tlsrpt@good.${Z}`],
      reason: null,
    });
    assert.deepEqual(ids(summary, /^tlsrpt-/), []);
    assert.equal(summary.compliant, true, JSON.stringify(summary.findings));

    // The renderers show the sections.
    const text = renderDomain(summary, makeStyle(false));
    assert.match(text, /DANE {9}MX RRset secure/);
    assert.match(text, new RegExp(`3 1 1 ${goodHash.slice(0, 20)}`));
    assert.match(text, /mode enforce, max_age 604800/);
    const html = renderHtml({
      schemaVersion: 1,
      profile: 'bsi',
      generatedAt: new Date().toISOString(),
      targets: [],
      domains: [summary],
    });
    assert.match(html, /<h3>DANE \(RFC 7672\)<\/h3>/);
    assert.match(html, /<h3>MTA-STS \(RFC 8461\)<\/h3>/);
  });

  it('current + next TLSA records: rollover-ready, no DANE finding', async () => {
    const { summary } = await scan(`rollover.${Z}`);
    const host = summary.dane?.hosts[0];
    assert.deepEqual(host?.rollover && [host.rollover.ready, host.rollover.basis], [true, 'current+next']);
    // Records are sorted by presentation form in the report.
    assert.deepEqual(
      host?.records.map((r) => [r.record, r.matchesServed]),
      [
        [`3 1 1 ${goodHash}`, true],
        [`3 1 1 ${'cd'.repeat(32)}`, false],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    assert.deepEqual(ids(summary, /^dane-/), []);
  });

  it('TLSA for another key: dane-mismatch; MTA-STS enforce leaving the MX out; broken TLS-RPT', async () => {
    const { summary } = await scan(`mismatch.${Z}`);
    const host = summary.dane?.hosts[0];
    assert.equal(host?.state, 'dane');
    assert.equal(host?.addresses[0]?.match, false);
    assert.match(host?.addresses[0]?.reason ?? '', /does not match/);
    assert.deepEqual(ids(summary, /^dane-/), [['dane-mismatch', 'critical']]);

    assert.equal(summary.mtaSts?.mx[0]?.covered, false);
    // The MX name is not on the certificate (smtp-good's): a policy-honouring sender refuses it too.
    assert.deepEqual(summary.mtaSts?.mx[0]?.addresses, [
      { address: ADDR, certValid: false, failure: 'certificate-host-mismatch' },
    ]);
    assert.deepEqual(ids(summary, /^mta-sts-/), [
      ['mta-sts-mx-not-covered', 'high'],
      ['mta-sts-cert-invalid', 'high'],
    ]);
    assert.equal(summary.tlsRpt?.valid, false);
    assert.deepEqual(ids(summary, /^tlsrpt-/), [['tlsrpt-invalid', 'low']]);
    assert.equal(summary.compliant, false);
  });

  it('an MX host in an unsigned zone with TLSA records: dane-missing (low), statuses insecure; MTA-STS testing', async () => {
    const { summary } = await scan(`unsigned.${Z}`);
    const host = summary.dane?.hosts[0];
    assert.deepEqual([host?.addressStatus, host?.tlsaStatus, host?.state], ['insecure', 'insecure', 'none']);
    assert.equal(host?.records.length, 1, 'the ignored record is still shown');
    assert.equal(host?.addresses[0]?.match, null);
    assert.deepEqual(ids(summary, /^dane-/), [['dane-missing', 'low']]);
    assert.match(
      summary.findings.find((f) => f.id === 'dane-missing')?.message ?? '',
      /not DNSSEC-signed \(insecure\)/,
    );

    assert.equal(summary.mtaSts?.policy?.mode, 'testing');
    assert.equal(summary.mtaSts?.mx[0]?.covered, true);
    assert.deepEqual(ids(summary, /^mta-sts-/), [
      ['mta-sts-cert-invalid', 'low'],
      ['mta-sts-testing', 'info'],
    ]);
    assert.deepEqual(ids(summary, /^tlsrpt-/), [['tlsrpt-missing', 'info']]);
  });

  it('a TLSA RRset with a broken signature: dane-dnssec-bogus (critical); no MTA-STS record', async () => {
    const { summary } = await scan(`bogus.${Z}`);
    const host = summary.dane?.hosts[0];
    assert.deepEqual([host?.addressStatus, host?.tlsaStatus, host?.state], ['secure', 'bogus', 'failed']);
    assert.deepEqual(host?.records, []);
    assert.deepEqual(ids(summary, /^dane-/), [['dane-dnssec-bogus', 'critical']]);
    assert.match(summary.findings.find((f) => f.id === 'dane-dnssec-bogus')?.message ?? '', /bogus/);
    assert.equal(summary.mtaSts?.record.found, false);
    assert.equal(summary.mtaSts?.policy, null);
    assert.deepEqual(ids(summary, /^mta-sts-/), [['mta-sts-missing', 'info']]);
    assert.equal(summary.compliant, false);
  });

  it('CLI: `postern scan <domain> --dns-server --json` carries the dane, mtaSts and tlsRpt objects', async () => {
    // Port 25 on 127.0.0.51: nothing is expected to listen there, so the endpoint may be
    // unreachable; the DNS-side verdicts do not depend on it.
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'scan', `bogus.${Z}`, '--dns-server', lab.resolver, '--json', '--timeout', '2000', '--no-injection-test'],
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } },
        (err, stdout, stderr) => resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr }),
      );
    });
    assert.ok(out.code === 1 || out.code === 3, `exit ${out.code}: ${out.stderr}`);
    const report = JSON.parse(out.stdout) as { schemaVersion: number; domains: DomainSummary[] };
    assert.equal(report.schemaVersion, 1);
    const d = report.domains[0];
    assert.equal(d?.dane?.hosts[0]?.tlsaName, `_25._tcp.mx-bogus.${Z}`);
    // _25._tcp has no TLSA in the zone: securely absent, so no DANE there (signed zone → low).
    assert.deepEqual([d?.dane?.hosts[0]?.addressStatus, d?.dane?.hosts[0]?.tlsaStatus], ['secure', 'secure']);
    assert.ok(d?.findings.some((f) => f.id === 'dane-missing' && f.severity === 'low'));
    assert.equal(d?.mtaSts?.record.found, false);
    assert.equal(d?.tlsRpt?.found, false);
  });
});
