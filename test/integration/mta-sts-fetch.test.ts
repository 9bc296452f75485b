/**
 * MTA-STS policy fetch and discovery against real peers: a private Unbound answering the
 * `_mta-sts` TXT and `mta-sts.<domain>` A records, and a local HTTPS server playing each
 * domain's policy host with certificates from a test CA (RFC 8461 §3.1–§3.3).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { StsPolicyCache } from '../../src/policy/mta-sts/cache.ts';
import { fetchStsPolicy } from '../../src/policy/mta-sts/fetch.ts';
import type { StsFetchOptions, StsFetchResult } from '../../src/policy/mta-sts/fetch.ts';
import { MAX_POLICY_BYTES } from '../../src/policy/mta-sts/policy.ts';
import { policyText, startHttpsPolicyServer } from './peers/https-policy.ts';
import type { HttpsPolicyServer } from './peers/https-policy.ts';
import { peerSkipReason } from './peers/require.ts';
import { startUnbound, unboundAvailable } from './peers/unbound.ts';
import type { UnboundInstance } from './peers/unbound.ts';
import { tracked, turns, until } from '../helpers/timers.ts';

const skip = peerSkipReason(unboundAvailable(), 'unbound');

const DOMAINS = [
  'good',
  'redirect',
  'missing',
  'html',
  'big',
  'bigchunked',
  'untrusted',
  'wrongname',
  'expired',
  'slow',
  'stall',
  'garbage',
  'cached',
];

const ZONE = [
  ...DOMAINS.flatMap((d) => [
    `_mta-sts.${d}.test. 300 IN TXT "v=STSv1; id=${d}1"`,
    `mta-sts.${d}.test. 300 IN A 127.0.0.1`,
  ]),
  // A record but no policy host address.
  '_mta-sts.noaddr.test. 300 IN TXT "v=STSv1; id=n1"',
  // Two STS records: invalid (RFC 8461 §3.1).
  '_mta-sts.tworecords.test. 300 IN TXT "v=STSv1; id=a1"',
  '_mta-sts.tworecords.test. 300 IN TXT "v=STSv1; id=a2"',
  'mta-sts.tworecords.test. 300 IN A 127.0.0.1',
];

function failure(r: StsFetchResult): { error: string; reason: string } {
  assert.equal(r.ok, false, `expected a failure, got ${JSON.stringify(r)}`);
  return r.ok ? { error: '', reason: '' } : { error: r.error, reason: r.reason };
}

describe('MTA-STS fetch against unbound and a local HTTPS policy host', { skip }, () => {
  let ub: UnboundInstance;
  let web: HttpsPolicyServer;
  let dns: DnsClient;
  let opts: StsFetchOptions;
  const GOOD = policyText('enforce', ['mx1.good.test', '*.mx.good.test'], 604800);

  before(async () => {
    ub = await startUnbound({ localData: ZONE });
    dns = createDnsClient({ servers: [ub.server], timeoutMs: 2000, tries: 1 });
    web = await startHttpsPolicyServer();
    // The policy hosts are on loopback: an explicit opt-in (refused by default, see the last test).
    opts = { dns, ca: [web.ca], port: web.port, timeoutMs: 3000, allowPrivateAddresses: true };
    await web.route('mta-sts.good.test', { body: GOOD });
    await web.route('mta-sts.redirect.test', { redirect: 'https://mta-sts.good.test/.well-known/mta-sts.txt' });
    // A large error page, sent in chunks: the fetch stops at the status line without reading it.
    await web.route('mta-sts.missing.test', { status: 404, body: 'gone\n'.repeat(200_000), chunked: true });
    await web.route('mta-sts.html.test', { body: GOOD, headers: { 'content-type': 'text/html; charset=utf-8' } });
    await web.route('mta-sts.big.test', { body: GOOD + 'x'.repeat(MAX_POLICY_BYTES) });
    await web.route('mta-sts.bigchunked.test', { body: GOOD + 'x'.repeat(MAX_POLICY_BYTES), chunked: true });
    await web.route('mta-sts.untrusted.test', { body: GOOD, cert: 'untrusted' });
    await web.route('mta-sts.wrongname.test', { body: GOOD, cert: 'wrong-name' });
    await web.route('mta-sts.expired.test', { body: GOOD, cert: 'expired' });
    await web.route('mta-sts.slow.test', { body: GOOD, delayMs: 10_000 });
    await web.route('mta-sts.stall.test', {
      body: GOOD,
      stall: true,
      headers: { 'content-length': String(GOOD.length) },
    });
    await web.route('mta-sts.garbage.test', { body: 'this is not a policy\n' });
    await web.route('mta-sts.cached.test', { body: policyText('testing', ['mx.cached.test'], 86400) });
  });
  after(async () => {
    await web?.stop();
    await ub?.stop();
  });

  it('fetches and parses a valid enforce policy, resolving the host through the given DNS server', async () => {
    const r = await fetchStsPolicy('Good.Test.', opts);
    assert.deepEqual(r, {
      ok: true,
      policy: { version: 'STSv1', mode: 'enforce', mx: ['mx1.good.test', '*.mx.good.test'], maxAge: 604800 },
      text: GOOD,
    });
    const req = web.requests.find((q) => q.host === 'mta-sts.good.test');
    assert.ok(req);
    assert.equal(req.method, 'GET');
    assert.equal(req.path, '/.well-known/mta-sts.txt');
    // No credentials, cookies or conditional (cached) requests.
    for (const h of ['cookie', 'authorization', 'if-modified-since', 'if-none-match'])
      assert.equal(req.headers[h], undefined);
  });

  it('does not follow a redirect (RFC 8461 §3.3)', async () => {
    const before = web.count('mta-sts.good.test');
    const f = failure(await fetchStsPolicy('redirect.test', opts));
    assert.equal(f.error, 'sts-policy-fetch-error');
    assert.match(f.reason, /HTTP 301 redirect/);
    assert.equal(web.count('mta-sts.good.test'), before, 'the redirect target was requested');
  });

  it('treats a 404 as a fetch error', async () => {
    const f = failure(await fetchStsPolicy('missing.test', opts));
    assert.equal(f.error, 'sts-policy-fetch-error');
    assert.match(f.reason, /HTTP 404/);
  });

  it('rejects a media type other than text/plain (RFC 8461 §3.2)', async () => {
    const f = failure(await fetchStsPolicy('html.test', opts));
    assert.equal(f.error, 'sts-policy-invalid');
    assert.match(f.reason, /text\/html/);
  });

  it('rejects a body over 64 KiB, with or without Content-Length', async () => {
    for (const d of ['big.test', 'bigchunked.test']) {
      const f = failure(await fetchStsPolicy(d, opts));
      assert.equal(f.error, 'sts-policy-fetch-error', d);
      assert.match(f.reason, /larger than 65536/, d);
    }
  });

  it('rejects a body that is not a policy', async () => {
    assert.equal(failure(await fetchStsPolicy('garbage.test', opts)).error, 'sts-policy-invalid');
  });

  it('reports sts-webpki-invalid for an untrusted CA, a wrong name or an expired certificate (RFC 8461 §3.3)', async () => {
    for (const d of ['untrusted.test', 'wrongname.test', 'expired.test']) {
      const f = failure(await fetchStsPolicy(d, opts));
      assert.equal(f.error, 'sts-webpki-invalid', `${d}: ${f.reason}`);
    }
    // And no request was sent to a host that failed verification.
    for (const d of ['untrusted', 'wrongname', 'expired']) assert.equal(web.count(`mta-sts.${d}.test`), 0);
  });

  it('rejects the test CA certificate when only the default trust store is used', async () => {
    const f = failure(
      await fetchStsPolicy('good.test', { dns, port: web.port, timeoutMs: 3000, allowPrivateAddresses: true }),
    );
    assert.equal(f.error, 'sts-webpki-invalid');
  });

  it('bounds a slow or stalling server by the overall timeout', async (t) => {
    // Mocked timers (the slow server's 10 s delay is one of them): the deadline is proven by
    // ticking the clock to 1 ms before it (still waiting) and to it (failed), not by measuring.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    for (const d of ['slow.test', 'stall.test']) {
      const host = `mta-sts.${d}`;
      const before = web.count(host);
      const q = tracked(fetchStsPolicy(d, { ...opts, timeoutMs: 700 }));
      await until(() => web.count(host) === before + 1 || q.settled, `the request reaches ${host}`);
      assert.equal(q.settled, false, `${d}: ended before the deadline`);
      t.mock.timers.tick(699);
      await turns(50);
      assert.equal(q.settled, false, `${d}: ended 1 ms before the deadline`);
      t.mock.timers.tick(1);
      await until(() => q.settled, `${d}: the fetch ends at the deadline`, 100_000);
      const f = failure(await q.promise);
      assert.equal(f.error, 'sts-policy-fetch-error', d);
      assert.match(f.reason, /within 700 ms/, d);
    }
  });

  it('fails cleanly when the policy host has no address or the domain name is unusable', async () => {
    const f = failure(await fetchStsPolicy('noaddr.test', opts));
    assert.equal(f.error, 'sts-policy-fetch-error');
    assert.match(f.reason, /cannot resolve mta-sts\.noaddr\.test/);
    assert.equal(failure(await fetchStsPolicy('../etc', opts)).error, 'sts-policy-fetch-error');
  });

  it('discovers through the TXT record and caches: same id, no second request', async () => {
    const cache = new StsPolicyCache({ dir: null, fetch: opts });
    const a = await cache.lookup('cached.test');
    assert.equal(a.state, 'policy');
    assert.equal(a.source, 'fetched');
    assert.equal(a.id, 'cached1');
    assert.equal(a.policy?.mode, 'testing');
    const b = await cache.lookup('cached.test');
    assert.equal(b.source, 'cache');
    assert.equal(web.count('mta-sts.cached.test'), 1);
  });

  it('reports a domain without a record as none, and two STS records as invalid (RFC 8461 §3.1)', async () => {
    const cache = new StsPolicyCache({ dir: null, fetch: opts });
    const none = await cache.lookup('nothing.test');
    assert.equal(none.state, 'none');
    assert.equal(none.error, null);
    const two = await cache.lookup('tworecords.test');
    assert.equal(two.state, 'error');
    assert.equal(two.error?.type, 'sts-record-invalid');
    assert.equal(web.count('mta-sts.tworecords.test'), 0);
  });
});
