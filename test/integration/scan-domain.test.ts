/**
 * Domain scans end to end: a real DNS server (private Unbound on loopback) publishes MX records
 * whose hosts resolve to loopback addresses where testbed servers listen; planDomain → scanEndpoint
 * → summarizeDomain must let the weakest MX decide and flag MX hosts that differ (seed 002).
 *
 * The testbed listens on a free port, not 25: each testbed instance gets its own loopback address
 * and a basePort chosen so its one server lands on the same port P, and planDomain's `ports`
 * override points the MX endpoints at P.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { planDomain, summarizeDomain } from '../../src/scan/domain.ts';
import type { DomainPlan, DomainSummary } from '../../src/scan/domain.ts';
import { scanEndpoint } from '../../src/scan/scan.ts';
import type { EndpointReport } from '../../src/scan/scan.ts';
import { CATALOG, startTestbed } from '../../src/testbed/index.ts';
import type { Testbed } from '../../src/testbed/index.ts';
import { freePort } from './peers/ports.ts';
import { peerSkipReason } from './peers/require.ts';
import { makeTempDir } from './peers/tmp.ts';
import type { TempDir } from './peers/tmp.ts';
import { startUnbound, unboundAvailable } from './peers/unbound.ts';
import type { UnboundInstance } from './peers/unbound.ts';

const skip = peerSkipReason(unboundAvailable(), 'unbound');

const GOOD = 'smtp-good.testbed.postern.test';
const WEAK = 'smtp-tls10.testbed.postern.test';
const ADDR_GOOD = '127.0.0.31';
const ADDR_WEAK = '127.0.0.32';
const ADDR_GOOD2 = '127.0.0.33';

describe('domain scan: weakest MX decides, differing MX hosts are a finding', { skip }, () => {
  let ub: UnboundInstance;
  let dns: DnsClient;
  let state: TempDir;
  const testbeds: Testbed[] = [];
  let port = 0;
  let caPem = '';

  async function scanDomain(
    domain: string,
  ): Promise<{ plan: DomainPlan; reports: EndpointReport[]; summary: DomainSummary }> {
    const plan = await planDomain(domain, ['mx'], dns, { ports: { smtp: port } });
    const reports: EndpointReport[] = [];
    for (const ep of plan.endpoints)
      reports.push(await scanEndpoint(ep, { name: ep.name, ca: [caPem], timeoutMs: 5000, rateLimitBackoffMs: 200 }));
    return { plan, reports, summary: summarizeDomain(plan, reports) };
  }

  before(async () => {
    state = await makeTempDir('scan-domain');
    port = await freePort(ADDR_GOOD);
    // One server per testbed, each on its own address, all on port P (basePort + catalog index).
    for (const [address, id] of [
      [ADDR_GOOD, 'smtp-good'],
      [ADDR_WEAK, 'smtp-tls10'],
      [ADDR_GOOD2, 'smtp-good'],
    ] as const) {
      const index = CATALOG.findIndex((e) => e.id === id);
      assert.ok(index >= 0 && port - index > 0);
      // A shared stateDir makes every instance reuse one CA, so one trust anchor covers all.
      const tb = await startTestbed({ address, basePort: port - index, only: [id], stateDir: state.path });
      testbeds.push(tb);
      assert.equal(tb.manifest.servers[0]?.port, port);
      caPem ||= tb.manifest.caPem;
      assert.equal(tb.manifest.caPem, caPem);
    }
    ub = await startUnbound({
      localData: [
        // example.test: a good primary and a TLS 1.0-only secondary (the seed 002 estate).
        `example.test. 300 IN MX 10 ${GOOD}.`,
        `example.test. 300 IN MX 20 ${WEAK}.`,
        `${GOOD}. 300 IN A ${ADDR_GOOD}`,
        `${WEAK}. 300 IN A ${ADDR_WEAK}`,
        // twin.test: one MX name on two machines that are configured alike.
        `twin.test. 300 IN MX 10 ${GOOD}.`,
        `twin.test. 300 IN MX 10 mx.twin.test.`,
        `mx.twin.test. 300 IN A ${ADDR_GOOD2}`,
      ],
    });
    dns = createDnsClient({ servers: [ub.server], timeoutMs: 2000, tries: 1 });
  });
  after(async () => {
    await ub?.stop();
    for (const tb of testbeds) await tb.stop();
    await state?.remove();
  });

  it('scans every MX in preference order; the weak secondary decides and the difference is reported', async () => {
    const { plan, reports, summary } = await scanDomain('example.test');
    assert.deepEqual(
      plan.endpoints.map((e) => [e.url, e.address, e.name]),
      [
        [`smtp://${GOOD}:${port}`, ADDR_GOOD, GOOD],
        [`smtp://${WEAK}:${port}`, ADDR_WEAK, WEAK],
      ],
    );
    // Per endpoint: the primary is clean, the secondary is not.
    assert.equal(reports[0]?.compliant, true, JSON.stringify(reports[0]?.findings));
    assert.equal(reports[1]?.compliant, false);
    assert.ok(reports[1]?.findings.some((f) => f.id === 'protocol-tls1.0'));

    assert.equal(summary.domain, 'example.test');
    assert.deepEqual(summary.mx, [GOOD, WEAK]);
    assert.equal(summary.compliant, false);
    assert.equal(summary.weakest, `smtp://${WEAK}:${port}`);
    assert.equal(summary.weakestAddress, ADDR_WEAK);

    const inc = summary.findings.find((f) => f.id === 'mx-inconsistent');
    assert.ok(inc, `no mx-inconsistent in ${JSON.stringify(summary.findings)}`);
    assert.equal(inc.severity, 'medium');
    const evidence = inc.evidence ?? [];
    // Host by host, for each aspect that differs: protocols, suites and compliance at least.
    for (const aspect of ['protocols', 'suites', 'compliant']) {
      assert.ok(
        evidence.some((e) => e.startsWith(`${aspect}: ${GOOD} [${ADDR_GOOD}]`)),
        `${aspect} for ${GOOD}: ${evidence.join(' | ')}`,
      );
      assert.ok(
        evidence.some((e) => e.startsWith(`${aspect}: ${WEAK} [${ADDR_WEAK}]`)),
        `${aspect} for ${WEAK}`,
      );
    }
    assert.ok(evidence.includes(`protocols: ${WEAK} [${ADDR_WEAK}]: TLSv1.0`), evidence.join(' | '));
    assert.ok(evidence.includes(`compliant: ${GOOD} [${ADDR_GOOD}]: yes`));
    // STARTTLS is offered by both: an aspect that agrees is not listed.
    assert.ok(!evidence.some((e) => e.startsWith('STARTTLS:')));
  });

  it('two MX hosts alike but for the certificate name: the certificate difference is the finding', async () => {
    const { plan, reports, summary } = await scanDomain('twin.test');
    assert.deepEqual(
      plan.endpoints.map((e) => [e.mxHost, e.address]),
      [
        ['mx.twin.test', ADDR_GOOD2],
        [GOOD, ADDR_GOOD],
      ],
    );
    // mx.twin.test serves a certificate for another name: both are then NOT alike.
    assert.equal(reports[0]?.certificate?.hostnameMatches, false);
    const inc = summary.findings.find((f) => f.id === 'mx-inconsistent');
    assert.ok(inc);
    assert.deepEqual(
      (inc.evidence ?? []).filter((e) => !e.startsWith('compliant:')),
      [
        `certificate: mx.twin.test [${ADDR_GOOD2}]: trusted=yes name-match=no validity=valid`,
        `certificate: ${GOOD} [${ADDR_GOOD}]: trusted=yes name-match=yes validity=valid`,
      ],
    );
    assert.equal(summary.compliant, false);
    assert.equal(summary.weakest, `smtp://mx.twin.test:${port}`);
  });

  it('one MX name on two machines configured alike: compliant and consistent', async () => {
    await ub.stop();
    ub = await startUnbound({
      localData: [
        `alike.test. 300 IN MX 10 ${GOOD}.`,
        `${GOOD}. 300 IN A ${ADDR_GOOD}`,
        `${GOOD}. 300 IN A ${ADDR_GOOD2}`,
      ],
    });
    dns = createDnsClient({ servers: [ub.server], timeoutMs: 2000, tries: 1 });
    const { plan, reports, summary } = await scanDomain('alike.test');
    assert.deepEqual(
      plan.endpoints.map((e) => e.address),
      [ADDR_GOOD, ADDR_GOOD2],
    );
    assert.ok(reports.every((r) => r.compliant));
    assert.equal(summary.compliant, true);
    assert.equal(summary.weakest, null);
    assert.deepEqual(summary.findings, []);
  });
});
