/**
 * SSRF guard on the MTA-STS policy fetch, against real peers: a private Unbound says
 * `mta-sts.inside.test A 127.0.0.1` (what a hostile domain can publish), and a local HTTPS server
 * is ready to answer there. By default postern refuses to connect; only the explicit, insecure
 * `allowPrivateAddresses` lets it (tests, deliberately internal policy hosts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { StsPolicyCache } from '../../src/policy/mta-sts/cache.ts';
import { fetchStsPolicy } from '../../src/policy/mta-sts/fetch.ts';
import { policyText, startHttpsPolicyServer } from './peers/https-policy.ts';
import type { HttpsPolicyServer } from './peers/https-policy.ts';
import { peerSkipReason } from './peers/require.ts';
import { startUnbound, unboundAvailable } from './peers/unbound.ts';
import type { UnboundInstance } from './peers/unbound.ts';

const skip = peerSkipReason(unboundAvailable(), 'unbound');

const ZONE = [
  '_mta-sts.inside.test. 300 IN TXT "v=STSv1; id=i1"',
  'mta-sts.inside.test. 300 IN A 127.0.0.1',
  '_mta-sts.mapped.test. 300 IN TXT "v=STSv1; id=m1"',
  'mta-sts.mapped.test. 300 IN AAAA ::ffff:127.0.0.1',
];

describe('MTA-STS: a policy host on a non-public address is refused unless allowed', { skip }, () => {
  let ub: UnboundInstance;
  let web: HttpsPolicyServer;
  let dns: DnsClient;
  const POLICY = policyText('enforce', ['mx.inside.test'], 86400);

  before(async () => {
    ub = await startUnbound({ localData: ZONE });
    dns = createDnsClient({ servers: [ub.server], timeoutMs: 2000, tries: 1 });
    web = await startHttpsPolicyServer();
    await web.route('mta-sts.inside.test', { body: POLICY });
    await web.route('mta-sts.mapped.test', { body: POLICY });
  });
  after(async () => {
    await web?.stop();
    await ub?.stop();
  });

  it('refuses by default, naming the address, and sends nothing', async () => {
    const r = await fetchStsPolicy('inside.test', { dns, ca: [web.ca], port: web.port, timeoutMs: 3000 });
    assert.equal(r.ok, false);
    assert.equal(r.ok ? '' : r.error, 'sts-policy-fetch-error');
    assert.match(
      r.ok ? '' : r.reason,
      /mta-sts\.inside\.test resolves to the non-public address 127\.0\.0\.1 \(loopback\)/,
    );
    assert.equal(web.count('mta-sts.inside.test'), 0);
  });

  it('refuses the IPv4-mapped form of loopback too', async () => {
    const r = await fetchStsPolicy('mapped.test', { dns, ca: [web.ca], port: web.port, timeoutMs: 3000 });
    assert.equal(r.ok ? '' : r.error, 'sts-policy-fetch-error');
    assert.match(r.ok ? '' : r.reason, /::ffff:127\.0\.0\.1 \(loopback, 127\.0\.0\.1 inside\)/);
    assert.equal(web.count('mta-sts.mapped.test'), 0);
  });

  it('the policy cache (what delivery uses) reports the refusal as a fetch error', async () => {
    const cache = new StsPolicyCache({ dir: null, fetch: { dns, ca: [web.ca], port: web.port, timeoutMs: 3000 } });
    const l = await cache.lookup('inside.test');
    assert.equal(l.policy, null);
    assert.equal(l.error?.type, 'sts-policy-fetch-error');
    assert.equal(web.count('mta-sts.inside.test'), 0);
  });

  it('fetches with allowPrivateAddresses (the explicit, insecure opt-in)', async () => {
    const r = await fetchStsPolicy('inside.test', {
      dns,
      ca: [web.ca],
      port: web.port,
      timeoutMs: 3000,
      allowPrivateAddresses: true,
    });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.ok ? r.policy.mode : '', 'enforce');
    assert.equal(web.count('mta-sts.inside.test'), 1);
  });
});
