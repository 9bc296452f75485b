/**
 * Policy enforcement against the testbed: for every broken SMTP server, delivery under `verify`
 * (trusting the testbed CA), `encrypt + bsi`, `encrypt` and `may`, with a route pointing the
 * recipient domain at that server. A refusal must name the failing thing, and the server must
 * have received nothing; what is delivered must arrive byte for byte, and never in cleartext when
 * the policy requires TLS.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestbed } from '../../src/testbed/index.ts';
import type { Testbed, ManifestServer } from '../../src/testbed/index.ts';
import type { SmtpTestServer } from '../../src/testbed/servers/smtp.ts';
import { deliverMessage, policyCheck } from '../../src/delivery/deliver.ts';
import type { AdmittedSession, DeliveryDeps } from '../../src/delivery/deliver.ts';
import { PolicyTable } from '../../src/policy/table.ts';
import type { PolicyEntrySpec } from '../../src/policy/table.ts';
import { ConnectionPool } from '../../src/smtp/client/pool.ts';
import { createDnsClient } from '../../src/dns/resolver.ts';
import type { DnsClient, MxLookup } from '../../src/dns/resolver.ts';
import type { QueuedMessage, RecipientStatus } from '../../src/queue/types.ts';
import { queuedMessage, TEST_TIMEOUTS } from '../helpers/queued.ts';

const DOMAIN = 'dest.test';
const BODY = Buffer.from(
  'From: <alice@sender.test>\r\nTo: <bob@dest.test>\r\nSubject: policy test\r\n\r\n' +
    'line one\r\n.leading dot\r\n..two dots\r\n\r\n8-bit: \xe4\xf6\xfc\r\nlast line\r\n',
  'latin1',
);

const message = (id: string, rcpts = ['bob@dest.test']): QueuedMessage =>
  queuedMessage(id, rcpts, BODY, { body: '8BITMIME' });

type Expect = 'tls' | 'cleartext' | RegExp;
interface Row {
  verify: Expect;
  bsi: Expect;
  encrypt: Expect;
  may: Expect;
}

const HANDSHAKE = /TLS handshake with .* failed/;
// What each server must produce under each policy: a RegExp is a refusal whose reason matches it.
const MATRIX: Record<string, Row> = {
  'smtp-good': { verify: 'tls', bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-expired': { verify: /certificate expired on \d{4}-\d\d-\d\d/, bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-self-signed': { verify: /self-signed and not trusted/, bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-wrong-name': { verify: /valid for abc\.xy, not for smtp-wrong-name/, bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-sha1': {
    verify: /ecdsa-with-SHA1.*cert-weak-signature/,
    bsi: /SHA1.*cert-weak-signature/,
    encrypt: 'tls',
    may: 'tls',
  },
  'smtp-rsa1024': {
    verify: /RSA-1024 key.*cert-weak-key/,
    bsi: /RSA-1024 \(cert-weak-key\)/,
    encrypt: 'tls',
    may: 'tls',
  },
  'smtp-tls10': {
    verify: /negotiated TLS 1\.0.*protocol-tls1\.0/,
    bsi: /TLS 1\.0 \(protocol-tls1\.0\).*cipher suite .* \(cipher-not-allowed\).*requires encrypt and BSI TR-02102-2/,
    encrypt: /TLS 1\.0, which RFC 8996 forbids/,
    may: 'tls',
  },
  'smtp-tls11': {
    verify: /TLS 1\.1/,
    bsi: /TLS 1\.1 \(protocol-tls1\.1\).*cipher-not-allowed/,
    encrypt: /TLS 1\.1/,
    may: 'tls',
  },
  'smtp-shame': {
    verify: /expired on 1970.*forgeable hash/,
    bsi: /TLS 1\.0 \(protocol-tls1\.0\).*cert-weak-key.*cert-weak-signature/,
    encrypt: /TLS 1\.0/,
    may: 'tls',
  },
  'smtp-no-starttls': {
    verify: /did not offer STARTTLS/,
    bsi: /did not offer STARTTLS/,
    encrypt: /did not offer STARTTLS/,
    may: 'cleartext',
  },
  'smtp-starttls-454': {
    verify: /refused STARTTLS \(454/,
    bsi: /refused STARTTLS \(454/,
    encrypt: /refused STARTTLS/,
    may: 'cleartext',
  },
  'smtp-starttls-stripped': { verify: /stripped/, bsi: /stripped/, encrypt: /stripped/, may: 'cleartext' },
  'smtp-cmd-injection': { verify: 'tls', bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-response-injection': { verify: 'tls', bsi: 'tls', encrypt: 'tls', may: 'tls' },
  'smtp-client-reneg': { verify: 'tls', bsi: 'tls', encrypt: 'tls', may: 'tls' },
  // Raw responders that never complete a handshake: TLS is unavailable, so `may` retries in
  // cleartext on a new connection (Postfix behaviour); everything else refuses.
  'legacy-sslv3': { verify: HANDSHAKE, bsi: HANDSHAKE, encrypt: HANDSHAKE, may: 'cleartext' },
  'legacy-null': { verify: HANDSHAKE, bsi: HANDSHAKE, encrypt: HANDSHAKE, may: 'cleartext' },
  'legacy-export': { verify: HANDSHAKE, bsi: HANDSHAKE, encrypt: HANDSHAKE, may: 'cleartext' },
};

const POLICIES: Record<keyof Row, PolicyEntrySpec> = {
  verify: { level: 'verify' },
  bsi: { level: 'encrypt', profile: 'bsi' },
  encrypt: { level: 'encrypt' },
  may: { level: 'may' },
};

let tb: Testbed;
const servers = new Map<string, ManifestServer>();

before(async () => {
  tb = await startTestbed({ basePort: 0, only: Object.keys(MATRIX), idleTimeoutMs: 10_000 });
  for (const s of tb.manifest.servers) servers.set(s.id, s);
});
after(async () => {
  await tb?.stop();
});

function smtp(id: string): SmtpTestServer {
  const s = tb.servers.get(id) as SmtpTestServer | undefined;
  assert.ok(s !== undefined && 'messageCount' in s, id);
  return s;
}

function deps(policy: PolicyEntrySpec, route: Record<string, string>, extra: Partial<DeliveryDeps> = {}): DeliveryDeps {
  return {
    dns: createDnsClient({}),
    policy: new PolicyTable({ default: { level: 'may' }, domains: { [DOMAIN]: policy } }),
    routes: route,
    heloName: 'postern.client.test',
    ca: [tb.manifest.caPem],
    now: () => new Date(),
    // Route host names are the testbed names (so verify checks them); connect to loopback.
    connectOverride: (host) => {
      const s = [...servers.values()].find((x) => x.hostname === host);
      return s === undefined ? null : { address: s.address, port: s.port };
    },
    timeouts: TEST_TIMEOUTS,
    ...extra,
  };
}

async function deliverTo(id: string, policy: PolicyEntrySpec, msgId: string): Promise<RecipientStatus> {
  const s = servers.get(id);
  assert.ok(s !== undefined);
  const [st] = await deliverMessage(message(msgId), BODY, deps(policy, { [DOMAIN]: `${s.hostname}:${s.port}` }));
  assert.ok(st !== undefined);
  return st;
}

describe('delivery against the testbed, per policy', () => {
  for (const [id, row] of Object.entries(MATRIX)) {
    for (const key of Object.keys(POLICIES) as Array<keyof Row>) {
      const want = row[key];
      it(`${id} under ${key}: ${want instanceof RegExp ? `refused (${want.source.slice(0, 40)})` : `delivered over ${want}`}`, async () => {
        const server = smtp(id);
        const before = server.messageCount;
        const st = await deliverTo(id, POLICIES[key], `${id}-${key}`);
        if (want instanceof RegExp) {
          assert.equal(st.state, 'deferred', `${st.state}: ${st.reason ?? ''}`);
          assert.match(st.reason ?? '', want);
          assert.match(st.lastReply ?? '', /^451 4\.7\.[45] TLS policy not met: policy dest\.test: /);
          assert.equal(st.attempts, 1);
          assert.equal(server.messageCount, before, 'the server received nothing');
        } else {
          assert.equal(st.state, 'delivered', st.reason ?? '');
          assert.equal(server.messageCount, before + 1, 'exactly one message arrived');
          const got = server.lastMessage;
          assert.ok(got !== undefined);
          assert.deepEqual(got.data, BODY, 'the message arrives byte for byte');
          assert.equal(got.from, 'alice@sender.test');
          assert.deepEqual(got.to, ['bob@dest.test']);
          assert.equal(got.tls, want === 'tls', `expected ${want}`);
          assert.match(st.lastReply ?? '', /^250 /);
          if (key !== 'may') assert.equal(got.tls, true, 'never cleartext when the policy requires TLS');
        }
      });
    }
  }

  it('the forged 250 of the response-injection server is not taken as a reply', async () => {
    // If it were, the EHLO over TLS would be answered by it and the TLS handshake would have
    // started on top of plaintext; instead the transaction completes with the server's real replies.
    const st = await deliverTo('smtp-response-injection', { level: 'verify', profile: 'bsi' }, 'ri');
    assert.equal(st.state, 'delivered');
    assert.match(st.lastReply ?? '', /^250 2\.0\.0 Ok: queued as \d+$/);
    assert.doesNotMatch(st.lastReply ?? '', /forged/);
  });
});

describe('MX selection, reuse and policy check', () => {
  // A DnsClient double for MX data (the resolver has its own tests); addresses come from connectOverride.
  function fakeDns(mx: Record<string, MxLookup>): DnsClient {
    return {
      servers: null,
      mx: async (d) => mx[d]?.records ?? [],
      mxLookup: async (d) => mx[d] ?? { records: [], nullMx: false, implicit: false, nullMxMixed: false },
      addresses: async () => {
        throw new Error('not used');
      },
      txt: async () => [],
      srv: async () => ({ records: [], notAvailable: false }),
    };
  }
  const host = (id: string): string => servers.get(id)?.hostname ?? id;

  it('tries MX hosts in preference order and skips one that fails the policy', async () => {
    const dns = fakeDns({
      [DOMAIN]: {
        records: [
          { exchange: host('smtp-wrong-name'), priority: 10 },
          { exchange: host('smtp-good'), priority: 20 },
        ],
        nullMx: false,
        implicit: false,
        nullMxMixed: false,
      },
    });
    const bad = smtp('smtp-wrong-name').messageCount;
    const good = smtp('smtp-good').messageCount;
    const logs: Array<Record<string, unknown>> = [];
    const log = {
      info: (o: Record<string, unknown>) => logs.push(o),
      warn: (o: Record<string, unknown>) => logs.push(o),
    };
    const [st] = await deliverMessage(message('mx-order'), BODY, {
      ...deps({ level: 'verify', profile: 'bsi' }, {}),
      dns,
      log: log as unknown as DeliveryDeps['log'],
    });
    assert.equal(st?.state, 'delivered');
    assert.match(st?.reason ?? '', /smtp-good/);
    assert.equal(smtp('smtp-wrong-name').messageCount, bad);
    assert.equal(smtp('smtp-good').messageCount, good + 1);
    // Every attempt is logged with the rule that was met or failed.
    const attempts = logs.filter((l) => l['event'] === 'delivery.attempt');
    assert.deepEqual(
      attempts.map((a) => [a['mx'], a['outcome']]),
      [
        [host('smtp-wrong-name'), 'policy-fail'],
        [host('smtp-good'), 'policy-ok'],
      ],
    );
    assert.match(String(attempts[0]?.['rule']), /^policy dest\.test: verify \+ bsi — certificate name does not match/);
    assert.ok(logs.some((l) => l['event'] === 'delivery.recipient' && l['state'] === 'delivered'));
  });

  it('defers with every MX reason when the policy fails everywhere; null MX bounces 5.1.10', async () => {
    const dns = fakeDns({
      [DOMAIN]: {
        records: [
          { exchange: host('smtp-tls10'), priority: 10 },
          { exchange: host('smtp-no-starttls'), priority: 20 },
        ],
        nullMx: false,
        implicit: false,
        nullMxMixed: false,
      },
      'nullmx.test': { records: [], nullMx: true, implicit: false, nullMxMixed: false },
    });
    const m = message('all-fail', ['bob@dest.test', 'carol@nullmx.test']);
    const res = await deliverMessage(m, BODY, { ...deps({ level: 'encrypt', profile: 'bsi' }, {}), dns });
    const bob = res.find((r) => r.address === 'bob@dest.test');
    const carol = res.find((r) => r.address === 'carol@nullmx.test');
    assert.equal(bob?.state, 'deferred');
    assert.match(bob?.reason ?? '', /TLS 1\.0 \(protocol-tls1\.0\)/);
    assert.match(bob?.reason ?? '', /did not offer STARTTLS/);
    assert.equal(carol?.state, 'bounced');
    assert.match(carol?.lastReply ?? '', /^556 5\.1\.10 /);
  });

  it('reuses a connection for the next message to the same destination', async () => {
    const pool = new ConnectionPool<AdmittedSession>({ idleMs: 5000 });
    const s = servers.get('smtp-good');
    assert.ok(s !== undefined);
    const server = smtp('smtp-good');
    const before = server.stats.connections;
    const d = deps({ level: 'verify', profile: 'bsi' }, { [DOMAIN]: `${s.hostname}:${s.port}` }, { pool });
    const [a] = await deliverMessage(message('reuse-1'), BODY, d);
    const [b] = await deliverMessage(message('reuse-2'), BODY, d);
    assert.equal(a?.state, 'delivered');
    assert.equal(b?.state, 'delivered');
    assert.equal(pool.reused, 1);
    assert.equal(server.stats.connections - before, 1, 'one TCP connection for two messages');
    await pool.close();
  });

  it('policy check probes every MX without sending mail', async () => {
    const dns = fakeDns({
      [DOMAIN]: {
        records: [
          { exchange: host('smtp-expired'), priority: 5 },
          { exchange: host('smtp-good'), priority: 10 },
        ],
        nullMx: false,
        implicit: false,
        nullMxMixed: false,
      },
    });
    const counts = [smtp('smtp-expired').messageCount, smtp('smtp-good').messageCount];
    const r = await policyCheck(DOMAIN, { ...deps({ level: 'verify' }, {}), dns });
    assert.deepEqual(r.policy, { level: 'verify', profile: null, matched: 'domain dest.test' });
    assert.deepEqual(
      r.mx.map((m) => [m.host, m.outcome]),
      [
        [host('smtp-expired'), 'fail'],
        [host('smtp-good'), 'ok'],
      ],
    );
    assert.match(r.mx[0]?.reason ?? '', /expired/);
    assert.equal(r.mx[1]?.tls?.protocol, 'TLSv1.3');
    assert.equal(r.verdict.outcome, 'deliver');
    assert.equal(r.verdict.host, host('smtp-good'));
    assert.deepEqual([smtp('smtp-expired').messageCount, smtp('smtp-good').messageCount], counts);
  });
});
