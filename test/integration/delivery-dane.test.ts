/**
 * DANE (RFC 7672) in the delivery loop against real DNSSEC: NSD serves a zone signed with a local
 * key, Unbound validates it with that trust anchor (test/integration/peers/dnssec.ts), and the
 * testbed's SMTP servers receive. No CA is given to the client, so PKIX alone could never pass:
 * what is delivered was authenticated by TLSA. Every refusal must leave the receiver untouched.
 *
 * Names: `<case>.dane.test` is the recipient domain, its MX `mx-<case>.dane.test`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { startTestbed } from '../../src/testbed/index.ts';
import type { ManifestServer, Testbed } from '../../src/testbed/index.ts';
import type { SmtpTestServer } from '../../src/testbed/servers/smtp.ts';
import { deliverMessage, policyCheck } from '../../src/delivery/deliver.ts';
import type { DeliveryDeps, TlsRptSink } from '../../src/delivery/deliver.ts';
import { PolicyTable } from '../../src/policy/table.ts';
import type { PolicyEntrySpec } from '../../src/policy/table.ts';
import { createDnsClient } from '../../src/dns/resolver.ts';
import { createDnssecResolver } from '../../src/dns/dnssec.ts';
import { SmtpClient } from '../../src/smtp/client/session.ts';
import type { RecipientStatus } from '../../src/queue/types.ts';
import { queuedMessage, RecordingTlsRptSink, TEST_TIMEOUTS } from '../helpers/queued.ts';
import { dnssecLabAvailable, startDnssecLab } from './peers/dnssec.ts';
import type { DnssecLab } from './peers/dnssec.ts';
import { peerSkipReason } from './peers/require.ts';

const skip = peerSkipReason(dnssecLabAvailable(), 'nsd, ldnsutils and unbound (scripts/install-peers.sh)');

const BODY = Buffer.from('From: <alice@sender.test>\r\nSubject: dane\r\n\r\nhello over DANE\r\n');

let tb: Testbed;
let lab: DnssecLab;
const servers = new Map<string, ManifestServer>();
/** MX host name → testbed server id. */
const mxServer = new Map<string, string>();
const tlsa311 = (der: Buffer): string =>
  createHash('sha256')
    .update(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');

before(async () => {
  if (skip) return;
  tb = await startTestbed({
    basePort: 0,
    only: ['smtp-good', 'smtp-no-starttls', 'smtp-expired'],
    idleTimeoutMs: 10_000,
  });
  for (const s of tb.manifest.servers) servers.set(s.id, s);

  const good = tlsa311(await leafOf('smtp-good'));
  const expired = tlsa311(await leafOf('smtp-expired'));
  const wrong = 'ab'.repeat(32);
  const z = 'dane.test.';
  const cases: Array<{ name: string; server: string; tlsa: string | null; zone?: 'insecure' }> = [
    { name: 'good', server: 'smtp-good', tlsa: `3 1 1 ${good}` },
    { name: 'expired', server: 'smtp-expired', tlsa: `3 1 1 ${expired}` },
    { name: 'mismatch', server: 'smtp-good', tlsa: `3 1 1 ${wrong}` },
    { name: 'bogus', server: 'smtp-good', tlsa: `3 1 1 ${good}` },
    { name: 'strip', server: 'smtp-no-starttls', tlsa: `3 1 1 ${good}` },
    { name: 'pkix', server: 'smtp-good', tlsa: `1 1 1 ${good}` },
    { name: 'none', server: 'smtp-good', tlsa: null },
    { name: 'bogusmx', server: 'smtp-good', tlsa: `3 1 1 ${good}` },
  ];
  const signed: string[] = [];
  for (const c of cases) {
    const mx = `mx-${c.name}.${z}`;
    signed.push(`${c.name}.${z} 300 IN MX 10 ${mx}`, `${mx} 300 IN A 127.0.0.1`);
    if (c.tlsa !== null) signed.push(`_25._tcp.${mx} 300 IN TLSA ${c.tlsa}`);
    mxServer.set(mx.slice(0, -1), c.server);
  }
  // An insecure MX RRset pointing at a host whose TLSA is secure: still DANE (RFC 7672 §2.2.1).
  const insecure = [
    `mixed.insecure.${z} 300 IN MX 10 mx-mismatch.${z}`,
    `plain.insecure.${z} 300 IN MX 10 mx.plain.insecure.${z}`,
    `mx.plain.insecure.${z} 300 IN A 127.0.0.1`,
    `_25._tcp.mx.plain.insecure.${z} 300 IN TLSA 3 1 1 ${wrong}`,
  ];
  mxServer.set('mx.plain.insecure.dane.test', 'smtp-good');
  lab = await startDnssecLab({
    signed,
    insecure,
    corrupt: [
      { name: `_25._tcp.mx-bogus.${z}`, type: 'TLSA' },
      { name: `bogusmx.${z}`, type: 'MX' },
    ],
  });
});

after(async () => {
  await lab?.stop();
  await tb?.stop();
});

function smtp(id: string): SmtpTestServer {
  const s = tb.servers.get(id) as SmtpTestServer | undefined;
  assert.ok(s !== undefined && 'messageCount' in s, id);
  return s;
}

function deps(level: PolicyEntrySpec['level'], sink: TlsRptSink): DeliveryDeps {
  return {
    dns: createDnsClient({ servers: [lab.resolver] }),
    dnssec: createDnssecResolver({ server: lab.resolver }),
    policy: new PolicyTable({ default: { level } }),
    routes: {},
    heloName: 'postern.client.test',
    now: () => new Date(),
    tlsrpt: sink,
    // DNS says 127.0.0.1:25 for every MX; the testbed listens on its own ports.
    connectOverride: (host) => {
      const id = mxServer.get(host);
      const s = id === undefined ? undefined : servers.get(id);
      return s === undefined ? null : { address: s.address, port: s.port };
    },
    timeouts: TEST_TIMEOUTS,
  };
}

async function send(
  domain: string,
  level: PolicyEntrySpec['level'],
  opts: { requireTls?: boolean } = {},
): Promise<{ st: RecipientStatus; sink: RecordingTlsRptSink; received: number }> {
  const server = smtp(mxServer.get(`mx-${domain.split('.')[0]}.dane.test`) ?? 'smtp-good');
  const before = server.messageCount;
  const sink = new RecordingTlsRptSink();
  const [st] = await deliverMessage(
    queuedMessage(`${domain}-${level}`, [`bob@${domain}`], BODY, { requireTls: opts.requireTls ?? false }),
    BODY,
    deps(level, sink),
  );
  assert.ok(st !== undefined);
  return { st, sink, received: server.messageCount - before };
}

describe('delivery with DANE against real DNSSEC (NSD + Unbound) and the testbed', { skip }, () => {
  it('correct TLSA (3 1 1): delivered over TLS authenticated by TLSA alone (no CA configured)', async () => {
    const { st, sink, received } = await send('good.dane.test', 'dane');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1);
    assert.match(st.reason ?? '', /\(DANE\).*DANE: chain matches TLSA/);
    const got = smtp('smtp-good').lastMessage;
    assert.equal(got?.tls, true);
    assert.deepEqual(got?.data, BODY);
    assert.equal(sink.ok.length, 1);
    assert.equal(sink.ok[0]?.policy.type, 'tlsa');
    assert.deepEqual(sink.ok[0]?.policy.strings, [`3 1 1 ${tlsa311(await leafOf('smtp-good'))}`]);
  });

  it('DANE-EE ignores expiry: an expired certificate matching its TLSA is accepted (RFC 7672 §3.1.1)', async () => {
    const { st, received } = await send('expired.dane.test', 'dane-only');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.equal(received, 1);
  });

  it('mismatching TLSA: deferred with the reason, nothing sent, TLS-RPT validation-failure', async () => {
    for (const level of ['dane', 'dane-only'] as const) {
      const { st, sink, received } = await send('mismatch.dane.test', level);
      assert.equal(st.state, 'deferred', st.reason ?? '');
      assert.match(st.lastReply ?? '', /^451 4\.7\.5 TLS policy not met/);
      assert.match(st.reason ?? '', /TLSA records \(3 1 1 abab.*\) do not authenticate/);
      assert.equal(received, 0, 'the server received nothing');
      assert.equal(sink.failed[0]?.resultType, 'validation-failure');
      assert.equal(sink.failed[0]?.policy.type, 'tlsa');
      assert.equal(sink.failed[0]?.receivingMxHostname, 'mx-mismatch.dane.test');
    }
  });

  it('bogus TLSA signature: the MX is not used (deferred, dnssec-invalid), never a fallback to may', async () => {
    const { st, sink, received } = await send('bogus.dane.test', 'dane');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.reason ?? '', /bogus/);
    assert.equal(received, 0);
    assert.equal(sink.failed[0]?.resultType, 'dnssec-invalid');
  });

  it('bogus MX RRset signature: the domain is held (deferred), nothing sent to any MX', async () => {
    const { st, received } = await send('bogusmx.dane.test', 'dane');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.lastReply ?? '', /^451 /);
    assert.equal(received, 0);
  });

  it('secure TLSA and STARTTLS missing (stripped): deferred, not sent in cleartext', async () => {
    const { st, received } = await send('strip.dane.test', 'dane');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.reason ?? '', /did not offer STARTTLS/);
    assert.equal(received, 0);
  });

  it('insecure (unsigned) TLSA: dane behaves as may and delivers; dane-only defers (dane-required)', async () => {
    const may = await send('plain.insecure.dane.test', 'dane');
    assert.equal(may.st.state, 'delivered', may.st.reason ?? '');
    assert.equal(may.sink.ok[0]?.policy.type, 'no-policy-found');
    const only = await send('plain.insecure.dane.test', 'dane-only');
    assert.equal(only.st.state, 'deferred');
    assert.match(only.st.reason ?? '', /requires DANE \(dane-only\).*not DNSSEC-signed/);
    assert.equal(only.sink.failed[0]?.resultType, 'dane-required');
    assert.equal(only.received, 0);
  });

  it('insecure MX RRset, secure TLSA on the MX host: still DANE (RFC 7672 §2.2.1) — the mismatch defers', async () => {
    const { st, received } = await send('mixed.insecure.dane.test', 'dane');
    assert.equal(st.state, 'deferred', st.reason ?? '');
    assert.match(st.reason ?? '', /do not authenticate/);
    assert.equal(received, 0);
  });

  it('only PKIX usages (1 x x) on port 25: unusable, so TLS is required but not authenticated', async () => {
    const { st, received } = await send('pkix.dane.test', 'dane');
    assert.equal(st.state, 'delivered', st.reason ?? '');
    assert.match(st.reason ?? '', /policy default: encrypt/);
    assert.equal(received, 1);
  });

  it('no TLSA at all under dane-only: deferred; REQUIRETLS bounces when nothing authenticates', async () => {
    const only = await send('none.dane.test', 'dane-only');
    assert.equal(only.st.state, 'deferred');
    assert.match(only.st.reason ?? '', /publishes no TLSA records/);
    const req = await send('none.dane.test', 'dane', { requireTls: true });
    assert.equal(req.st.state, 'bounced');
    assert.match(req.st.lastReply ?? '', /^550 5\.7\.30/);
    assert.match(req.st.reason ?? '', /does not authenticate the receiving server/);
    assert.equal(req.received, 0);
    // DANE authenticates the next hop (RFC 8689 §4.1), so the policy lets it through to the
    // server — which must then itself offer REQUIRETLS; the testbed server does not.
    const ok = await send('good.dane.test', 'dane', { requireTls: true });
    assert.doesNotMatch(ok.st.reason ?? '', /does not authenticate/);
    assert.match(ok.st.reason ?? '', /REQUIRETLS/);
    assert.equal(ok.received, 0);
  });

  it('policy check reports the DANE rule per MX without sending mail', async () => {
    const sink = new RecordingTlsRptSink();
    const r = await policyCheck('mismatch.dane.test', deps('dane', sink));
    assert.equal(r.verdict.outcome, 'defer');
    assert.match(r.mx[0]?.rule ?? '', /\(DANE\)/);
  });
});

/** The leaf certificate a testbed server presents, fetched the way a client sees it. */
const leafCache = new Map<string, Buffer>();
async function leafOf(id: string): Promise<Buffer> {
  const hit = leafCache.get(id);
  if (hit) return hit;
  const s = servers.get(id) as ManifestServer;
  const c = await SmtpClient.connect({ host: s.hostname, address: s.address, port: s.port, heloName: 'probe.test' });
  await c.ehlo();
  const session = await c.startTls({ servername: s.hostname, ca: [tb.manifest.caPem] });
  await c.quit();
  const der = session.peerChain[0];
  assert.ok(der !== undefined, `${id} sent no certificate`);
  leafCache.set(id, der);
  return der;
}
