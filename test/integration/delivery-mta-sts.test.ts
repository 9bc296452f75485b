/**
 * MTA-STS (RFC 8461) in the delivery loop: policies fetched over HTTPS from a local server with a
 * test CA, `_mta-sts` TXT and MX records from a real DNS server (Unbound, local data), and the
 * testbed's SMTP servers as MX hosts (their certificates are for `<id>.testbed.postern.test`,
 * from the testbed CA). TLS-RPT results are collected for each case.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestbed } from '../../src/testbed/index.ts';
import type { ManifestServer, Testbed } from '../../src/testbed/index.ts';
import type { SmtpTestServer } from '../../src/testbed/servers/smtp.ts';
import { deliverMessage } from '../../src/delivery/deliver.ts';
import type { DeliveryDeps, TlsRptSink } from '../../src/delivery/deliver.ts';
import { PolicyTable } from '../../src/policy/table.ts';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { StsPolicyCache } from '../../src/policy/mta-sts/cache.ts';
import type { RecipientStatus } from '../../src/queue/types.ts';
import { queuedMessage, RecordingTlsRptSink, TEST_TIMEOUTS } from '../helpers/queued.ts';
import { policyText, startHttpsPolicyServer } from './peers/https-policy.ts';
import type { HttpsPolicyServer } from './peers/https-policy.ts';
import { startUnbound, unboundAvailable } from './peers/unbound.ts';
import type { UnboundInstance } from './peers/unbound.ts';
import { peerSkipReason } from './peers/require.ts';

const skip = peerSkipReason(unboundAvailable(), 'unbound (scripts/install-peers.sh)');
const TB = 'testbed.postern.test';
const BODY = Buffer.from('From: <alice@sender.test>\r\nSubject: sts\r\n\r\nhello under MTA-STS\r\n');

let tb: Testbed;
let web: HttpsPolicyServer;
let dnsd: UnboundInstance;
let dir: string;
const servers = new Map<string, ManifestServer>();
/** `_mta-sts` id served for recheck.test, changed by a test (the DNS seam below). */
let recheckId = 'r1';

/**
 * Each case: recipient domain `<name>.sts.test`, MX = the testbed server's name, a policy served
 * at mta-sts.<domain>. The `id` values are what `_mta-sts` TXT says.
 */
const CASES: Array<{ name: string; server: string; policy: Parameters<HttpsPolicyServer['route']>[1] }> = [
  { name: 'enforce', server: 'smtp-good', policy: { body: policyText('enforce', [`*.${TB}`], 86400) } },
  { name: 'notlisted', server: 'smtp-good', policy: { body: policyText('enforce', ['mx.elsewhere.test'], 86400) } },
  { name: 'wrongname', server: 'smtp-wrong-name', policy: { body: policyText('enforce', [`*.${TB}`], 86400) } },
  { name: 'testing', server: 'smtp-wrong-name', policy: { body: policyText('testing', ['mx.elsewhere.test'], 86400) } },
  { name: 'nostarttls', server: 'smtp-no-starttls', policy: { body: policyText('enforce', [`*.${TB}`], 86400) } },
  {
    name: 'redirect',
    server: 'smtp-no-starttls',
    policy: { redirect: 'https://mta-sts.enforce.sts.test/.well-known/mta-sts.txt' },
  },
  {
    name: 'oversized',
    server: 'smtp-no-starttls',
    policy: { body: policyText('enforce', ['mx.elsewhere.test'], 86400) + '#'.repeat(70_000) },
  },
  { name: 'recheck', server: 'smtp-good', policy: { body: policyText('enforce', ['mx.elsewhere.test'], 86400) } },
];

before(async () => {
  if (skip) return;
  tb = await startTestbed({
    basePort: 0,
    only: ['smtp-good', 'smtp-wrong-name', 'smtp-no-starttls'],
    idleTimeoutMs: 10_000,
  });
  for (const s of tb.manifest.servers) servers.set(s.id, s);
  web = await startHttpsPolicyServer();
  const data: string[] = [];
  for (const c of CASES) {
    const d = `${c.name}.sts.test`;
    data.push(`${d}. 300 IN MX 10 ${c.server}.${TB}.`);
    data.push(`${c.server}.${TB}. 300 IN A 127.0.0.1`);
    data.push(`_mta-sts.${d}. 300 IN TXT "v=STSv1; id=${c.name}1"`);
    data.push(`mta-sts.${d}. 300 IN A 127.0.0.1`);
    await web.route(`mta-sts.${d}`, c.policy);
  }
  dnsd = await startUnbound({ localData: [...new Set(data)] });
  dir = await mkdtemp(join(tmpdir(), 'postern-sts-'));
});

after(async () => {
  await dnsd?.stop();
  await web?.stop();
  await tb?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function smtp(id: string): SmtpTestServer {
  const s = tb.servers.get(id) as SmtpTestServer | undefined;
  assert.ok(s !== undefined && 'messageCount' in s, id);
  return s;
}

function deps(sink: TlsRptSink, cacheDir: string): DeliveryDeps {
  const real = createDnsClient({ servers: [dnsd.server] });
  // The one seam: recheck.test's `_mta-sts` id changes during a test (Unbound's local data is fixed).
  const dns: DnsClient = {
    ...real,
    mx: (d) => real.mx(d),
    mxLookup: (d) => real.mxLookup(d),
    addresses: (h) => real.addresses(h),
    srv: (n) => real.srv(n),
    servers: real.servers,
    txt: async (name) => (name === '_mta-sts.recheck.sts.test' ? [[`v=STSv1; id=${recheckId}`]] : real.txt(name)),
  };
  return {
    dns,
    policy: new PolicyTable({ default: { level: 'may' } }),
    routes: {},
    heloName: 'postern.client.test',
    ca: [tb.manifest.caPem],
    now: () => new Date(),
    tlsrpt: sink,
    sts: new StsPolicyCache({
      dir: cacheDir,
      fetch: { dns, ca: [web.ca], port: web.port, timeoutMs: 5000, allowPrivateAddresses: true },
    }),
    connectOverride: (host) => {
      const s = [...servers.values()].find((x) => x.hostname === host);
      return s === undefined ? null : { address: s.address, port: s.port };
    },
    timeouts: TEST_TIMEOUTS,
  };
}

async function send(
  name: string,
  cacheDir = dir,
): Promise<{ st: RecipientStatus; sink: RecordingTlsRptSink; received: number }> {
  const c = CASES.find((x) => x.name === name);
  assert.ok(c !== undefined);
  const server = smtp(c.server);
  const before = server.messageCount;
  const sink = new RecordingTlsRptSink();
  const [st] = await deliverMessage(queuedMessage(name, [`bob@${name}.sts.test`], BODY), BODY, deps(sink, cacheDir));
  assert.ok(st !== undefined);
  return { st, sink, received: server.messageCount - before };
}

describe('delivery with MTA-STS (local HTTPS policy host, real DNS, testbed MX)', { skip }, () => {
  it('enforce, MX listed, certificate valid: delivered under verify, TLS-RPT success for the sts policy', async () => {
    const { st, sink, received } = await send('enforce');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1);
    assert.match(st.reason ?? '', /verify \(MTA-STS\)/);
    assert.equal(smtp('smtp-good').lastMessage?.tls, true);
    assert.equal(sink.ok.length, 1);
    assert.equal(sink.ok[0]?.policy.type, 'sts');
    assert.equal(sink.ok[0]?.policy.mxHost, `*.${TB}`);
    assert.ok(sink.ok[0]?.policy.strings.includes('mode: enforce'));
  });

  it('enforce, MX not listed: refused (nothing sent) and a validation-failure recorded', async () => {
    const { st, sink, received } = await send('notlisted');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.reason ?? '', /does not cover the MX host smtp-good\.testbed\.postern\.test/);
    assert.match(st.lastReply ?? '', /^451 4\.7\.5 /);
    assert.equal(received, 0);
    assert.equal(sink.failed.length, 1);
    assert.equal(sink.failed[0]?.resultType, 'validation-failure');
    assert.equal(sink.failed[0]?.policy.type, 'sts');
  });

  it('enforce, MX listed but its certificate is for another name: deferred, certificate-host-mismatch', async () => {
    const { st, sink, received } = await send('wrongname');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.reason ?? '', /valid for abc\.xy/);
    assert.equal(received, 0);
    assert.equal(sink.failed[0]?.resultType, 'certificate-host-mismatch');
  });

  it('enforce and STARTTLS missing: deferred (RFC 8461 §5: no cleartext), starttls-not-supported', async () => {
    const { st, sink, received } = await send('nostarttls');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.equal(received, 0);
    assert.equal(sink.failed[0]?.resultType, 'starttls-not-supported');
  });

  it('testing mode: delivered although MX and certificate fail, and the failure is reported', async () => {
    const { st, sink, received } = await send('testing');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1);
    assert.equal(sink.ok.length, 0);
    assert.equal(sink.failed.length, 1);
    assert.equal(sink.failed[0]?.resultType, 'validation-failure');
    assert.equal(sink.failed[0]?.receivingMxHostname, `smtp-wrong-name.${TB}`);
    assert.match(sink.failed[0]?.failureReasonCode ?? '', /not listed in the MTA-STS policy/);
  });

  it('a redirect is not followed: the policy is ignored (delivered as may) and the fetch error reported', async () => {
    const target = web.requests.filter((r) => r.host.startsWith('mta-sts.enforce.sts.test')).length;
    const { st, sink, received } = await send('redirect');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1, 'cleartext under may, as if there were no policy (RFC 8461 §3.3)');
    assert.equal(web.count('mta-sts.redirect.sts.test') >= 1, true, 'the policy host was asked');
    assert.equal(
      web.requests.filter((r) => r.host.startsWith('mta-sts.enforce.sts.test')).length,
      target,
      'the Location was not followed',
    );
    const fetchErr = sink.failed.find((f) => f.resultType === 'sts-policy-fetch-error');
    assert.ok(fetchErr, JSON.stringify(sink.failed));
  });

  it('an oversized policy (> 64 KiB) is ignored, not half-parsed', async () => {
    const { st, sink, received } = await send('oversized');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1);
    assert.ok(
      sink.failed.some((f) => f.resultType === 'sts-policy-invalid' || f.resultType === 'sts-policy-fetch-error'),
    );
  });

  it('before deferring, a changed _mta-sts id is fetched again and the new policy applies (RFC 8461 §5.1)', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'postern-sts-recheck-'));
    try {
      recheckId = 'r1';
      const first = await send('recheck', cache);
      assert.equal(first.st.state, 'deferred', 'the old policy does not list the MX');
      const fetchesBefore = web.count('mta-sts.recheck.sts.test');
      // The domain fixes its policy and publishes a new id; the message is retried.
      await web.route('mta-sts.recheck.sts.test', { body: policyText('enforce', [`*.${TB}`], 86400) });
      // Same id: the cached policy is used without a fetch and the message still defers...
      const again = await send('recheck', cache);
      assert.equal(again.st.state, 'deferred');
      // ...but the re-check before deferring saw the same id, so no new fetch either.
      assert.equal(web.count('mta-sts.recheck.sts.test'), fetchesBefore);
      recheckId = 'r2';
      const fixed = await send('recheck', cache);
      assert.equal(fixed.st.state, 'delivered', fixed.st.reason ?? '');
      assert.equal(fixed.received, 1);
      assert.equal(web.count('mta-sts.recheck.sts.test'), fetchesBefore + 1);
    } finally {
      await rm(cache, { recursive: true, force: true });
    }
  });
});
