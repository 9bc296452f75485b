/**
 * Outbound TLS policy enforcement through the WHOLE gateway (SMTP in → spool → qmgr → delivery)
 * against the testbed's broken SMTP servers. One gateway routes one recipient domain per
 * (server, policy) pair; messages are submitted over SMTP from a trusted network.
 *
 * - Refused cases: the server receives nothing (never cleartext when TLS is required), the message
 *   stays deferred with a reason naming the failing thing, is retried and refused again, and after
 *   queue.maxLifetime bounces with an RFC 3464 DSN (to a recording sink) carrying that reason.
 * - Strict deliveries (smtp-good; encrypt+bsi to servers whose only flaw is trust, which `encrypt`
 *   does not check; servers whose flaw is invisible to a client) go over TLS.
 * - `may`: everything arrives, byte for byte after postern's Received header; in cleartext exactly
 *   where TLS is unavailable (no/refused/stripped STARTTLS, a handshake that cannot complete).
 *
 * The clock is injected: retries and the lifetime pass without waiting.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { startGateway } from '../../src/gateway/gateway.ts';
import type { Gateway } from '../../src/gateway/gateway.ts';
import type { QueuedMessage } from '../../src/queue/types.ts';
import { CATALOG, startTestbed } from '../../src/testbed/index.ts';
import type { Testbed } from '../../src/testbed/index.ts';
import type { SmtpTestServer } from '../../src/testbed/servers/smtp.ts';
import { makeCert } from '../helpers/certs.ts';
import { openSmtpSession } from '../helpers/smtp-client.ts';
import type { SmtpTestClient } from '../helpers/smtp-client.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import type { SinkMessage, SmtpSink } from '../helpers/smtp-sink.ts';

type Pol = 'v' | 'b' | 'vb' | 'm';
const POLICIES: Record<Pol, string> = {
  v: '{ level: verify }',
  b: '{ level: encrypt, profile: bsi }',
  vb: '{ level: verify, profile: bsi }',
  m: '{ level: may }',
};
const STRICT: Pol[] = ['v', 'b', 'vb'];

interface Expect {
  /** Strict policies under which delivery must be refused; the others must deliver over TLS. */
  refuse: Pol[];
  /** What the reason must name (all must match). */
  reason: RegExp[];
  /** Under `may`: TLS (true) or cleartext because TLS is unavailable (false). */
  mayTls: boolean;
}

const TRUST: Pol[] = ['v', 'vb']; // encrypt does not authenticate the server (Postfix semantics)
const LEGACY: Expect = {
  refuse: STRICT,
  reason: [/the TLS handshake with legacy-[a-z0-9-]+\S* failed/],
  mayTls: false,
};

/** Every STARTTLS SMTP server of the testbed (smtps-good is implicit TLS, not an MX). */
const EXPECT: Record<string, Expect> = {
  'smtp-good': { refuse: [], reason: [], mayTls: true },
  'smtp-expired': { refuse: TRUST, reason: [/its certificate expired on \d{4}-\d\d-\d\d/], mayTls: true },
  'smtp-self-signed': { refuse: TRUST, reason: [/certificate is self-signed and not trusted/], mayTls: true },
  'smtp-wrong-name': {
    refuse: TRUST,
    reason: [/valid for abc\.xy, not for smtp-wrong-name\.testbed\.postern\.test/],
    mayTls: true,
  },
  'smtp-sha1': { refuse: STRICT, reason: [/SHA1/i, /cert-weak-signature/], mayTls: true },
  'smtp-rsa1024': { refuse: STRICT, reason: [/RSA-1024/, /cert-weak-key/], mayTls: true },
  'smtp-tls10': { refuse: STRICT, reason: [/negotiated TLS 1\.0/, /protocol-tls1\.0/], mayTls: true },
  'smtp-tls11': { refuse: STRICT, reason: [/negotiated TLS 1\.1/, /protocol-tls1\.1/], mayTls: true },
  'smtp-shame': { refuse: STRICT, reason: [/TLS 1\.0/, /RSA-1024/, /cert-weak-signature/], mayTls: true },
  'smtp-no-starttls': { refuse: STRICT, reason: [/did not offer STARTTLS/], mayTls: false },
  'smtp-starttls-454': { refuse: STRICT, reason: [/refused STARTTLS \(454 4\.7\.0/], mayTls: false },
  'smtp-starttls-stripped': { refuse: STRICT, reason: [/did not offer STARTTLS/], mayTls: false },
  // Flaws of the server side that a delivering client neither sees nor suffers from (the client
  // drops the forged reply after "220 Ready to start TLS" and never pipelines after STARTTLS).
  'smtp-cmd-injection': { refuse: [], reason: [], mayTls: true },
  'smtp-response-injection': { refuse: [], reason: [], mayTls: true },
  'smtp-client-reneg': { refuse: [], reason: [], mayTls: true },
  // The hand-written legacy responders never complete a handshake with a real client: under a
  // strict policy that is a refusal, under `may` TLS is unavailable and the mail goes in cleartext.
  'legacy-sslv2': LEGACY,
  'legacy-sslv3': LEGACY,
  'legacy-export': LEGACY,
  'legacy-null': LEGACY,
  'legacy-anon': LEGACY,
  'legacy-exotic': LEGACY,
  'legacy-compression': LEGACY,
  'legacy-heartbleed': LEGACY,
  'legacy-insecure-reneg': LEGACY,
  'legacy-heartbeat': LEGACY,
  'legacy-no-fallback-scsv': LEGACY,
};

const SERVER_IDS = CATALOG.filter((e) => e.protocol === 'smtp' && e.mode === 'starttls').map((e) => e.id);
const domainOf = (id: string, p: Pol): string => `${id}.${p}.test`;
const senderOf = (id: string, p: Pol): string => `s-${id}-${p}@sender.test`;

interface LogEvent {
  event?: string;
  msgId?: string;
  recipient?: string;
  state?: string;
  reason?: string;
  rule?: string;
  outcome?: string;
  domain?: string;
}

let tb: Testbed;
let sink: SmtpSink;
let gw: Gateway;
let dir: string;
let clock = Date.now();
let adminUrl = '';
let adminToken = '';
const events: LogEvent[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function eventsFor(domain: string): LogEvent[] {
  return events.filter((e) => e.domain === domain || e.recipient === `rcpt@${domain}`);
}

function count(id: string): number {
  return (tb.servers.get(id) as SmtpTestServer).messageCount;
}

/** A message with things that must survive the trip: a leading dot, trailing white space, a long line. */
function messageFor(domain: string, from: string): string {
  return [
    `From: <${from}>`,
    `To: <rcpt@${domain}>`,
    `Subject: policy test for ${domain}`,
    `Message-ID: <${domain}@postern.test>`,
    '',
    `Hello ${domain}.`,
    '.a line that starts with a dot',
    'trailing white space   ',
    'x'.repeat(900),
    '',
  ].join('\r\n');
}

async function submit(c: SmtpTestClient, id: string, p: Pol): Promise<void> {
  const d = domainOf(id, p);
  for (const [line, code] of [
    [`MAIL FROM:<${senderOf(id, p)}>`, 250],
    [`RCPT TO:<rcpt@${d}>`, 250],
    ['DATA', 354],
  ] as const) {
    const r = await c.cmd(line);
    assert.equal(r.code, code, `${line}: ${r.raw}`);
  }
  // Dot-stuffing (RFC 5321 §4.5.2) on the way in.
  const body = messageFor(d, senderOf(id, p)).replace(/^\./gm, '..');
  const r = await c.cmd(`${body}.`, 10_000);
  assert.equal(r.code, 250, `DATA for ${d}: ${r.raw}`);
}

async function queued(): Promise<Map<string, QueuedMessage>> {
  const list = await gw.spool.list();
  return new Map(list.map((m) => [m.recipients[0]?.address ?? '', m]));
}

const refused = SERVER_IDS.flatMap((id) => (EXPECT[id]?.refuse ?? []).map((p) => ({ id, p })));
const strictDeliveries = SERVER_IDS.flatMap((id) =>
  STRICT.filter((p) => !(EXPECT[id]?.refuse ?? []).includes(p)).map((p) => ({ id, p })),
);

before(async () => {
  assert.deepEqual(
    SERVER_IDS.toSorted(),
    Object.keys(EXPECT).toSorted(),
    'every STARTTLS SMTP server has an expectation',
  );
  tb = await startTestbed({ only: SERVER_IDS });
  sink = await startSmtpSink();
  dir = await mkdtemp(join(tmpdir(), 'postern-gw-policy-'));
  const cert = await makeCert({ subject: 'CN=gw.postern.test', dnsNames: ['gw.postern.test'] });
  await writeFile(join(dir, 'cert.pem'), cert.pem);
  await writeFile(join(dir, 'key.pem'), cert.keyPem);

  // Routes name the testbed host (so `verify` checks its real name); connectOverride maps it to loopback.
  const routes = [`  sender.test: 127.0.0.1:${sink.port}`];
  const domains: string[] = [];
  for (const s of tb.manifest.servers) {
    for (const p of Object.keys(POLICIES) as Pol[]) {
      routes.push(`  ${domainOf(s.id, p)}: ${s.hostname}:${s.port}`);
      domains.push(`    ${domainOf(s.id, p)}: ${POLICIES[p]}`);
    }
  }
  const [smtpPort, adminPort] = [await freePort(), await freePort()];
  const yaml = [
    'hostname: gw.postern.test',
    'tls: { cert: cert.pem, key: key.pem }',
    `listen: [{ name: mx, address: 127.0.0.1, port: ${smtpPort}, mode: starttls, role: mx }]`,
    'relay: { networks: [127.0.0.0/8] }',
    'queue: { dir: queue, maxLifetime: 1h, delayWarning: 50m, retry: { initial: 1s, max: 2s } }',
    'routes:',
    ...routes,
    'policy:',
    '  default: { level: may }',
    '  domains:',
    ...domains,
    `admin: { address: 127.0.0.1, port: ${adminPort} }`,
    '',
  ].join('\n');
  const config = await parseConfig(yaml, join(dir, 'postern.yaml'), dir);
  const byHost = new Map(tb.manifest.servers.map((s) => [s.hostname, s]));
  const log = pino({ level: 'info' }, { write: (s: string) => void events.push(JSON.parse(s) as LogEvent) });
  gw = await startGateway(config, {
    log,
    ca: [tb.manifest.caPem],
    pollMs: 50,
    now: () => new Date(clock),
    connectOverride: (host) => {
      const s = byHost.get(host);
      return s === undefined ? null : { address: '127.0.0.1', port: s.port };
    },
  });
  adminUrl = `http://127.0.0.1:${gw.admin?.port ?? adminPort}`;
  adminToken = (await readFile(join(dir, 'queue', 'admin.token'), 'utf8')).trim();
});

after(async () => {
  await gw?.stop({ timeoutMs: 5000 });
  await tb?.stop();
  await sink?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The human-readable part of a DSN, quoted-printable decoded, white space collapsed. */
function dsnText(m: SinkMessage): { text: string; raw: string } {
  const raw = m.data.toString('utf8');
  const unfolded = raw.replace(/=\r\n/g, '');
  const decoded = Buffer.from(
    unfolded.replace(/=([0-9A-F]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16))),
    'latin1',
  ).toString('utf8');
  return { text: decoded.replace(/\s+/g, ' '), raw };
}

test(
  'strict policies: broken servers receive nothing; deferred with the reason; bounced after the lifetime',
  {
    timeout: 120_000,
  },
  async () => {
    const c = await openSmtpSession(gw.listeners[0]?.port ?? 0);
    for (const { id, p } of refused) await submit(c, id, p);
    for (const p of STRICT) await submit(c, 'smtp-good', p);
    await c.cmd('QUIT');
    c.close();

    // First attempt: smtp-good gets its three, every refused message is deferred.
    await waitFor('first attempts', async () => {
      const q = await queued();
      return refused.every(({ id, p }) => {
        const d = domainOf(id, p);
        const m = q.get(`rcpt@${d}`);
        // Gone from the queue = delivered (or bounced) although the policy had to refuse it.
        if (m === undefined) assert.fail(`${d}: left the queue; events: ${JSON.stringify(eventsFor(d))}`);
        return (m.recipients[0]?.attempts ?? 0) >= 1;
      });
    });
    await waitFor('smtp-good deliveries', () => count('smtp-good') === 3);
    const checkDeferred = async (attempts: number): Promise<void> => {
      const q = await queued();
      for (const { id, p } of refused) {
        const d = domainOf(id, p);
        const r = q.get(`rcpt@${d}`)?.recipients[0];
        assert.ok(r, `${d}: still queued`);
        assert.equal(r.state, 'deferred', d);
        assert.ok(r.attempts >= attempts, `${d}: ${r.attempts} attempts`);
        assert.match(r.lastReply ?? '', /^451 4\.7\.[45] TLS policy not met: /, d);
        for (const re of EXPECT[id]?.reason ?? []) assert.match(r.reason ?? '', re, `${d}: ${r.reason}`);
        assert.ok(r.reason?.includes(`your policy for ${d}`), `${d}: the reason names the policy: ${r.reason}`);
      }
      for (const id of new Set(refused.map((x) => x.id))) {
        assert.equal(count(id), 0, `${id} must receive nothing under a strict policy`);
      }
    };
    await checkDeferred(1);

    // The admin API (what `postern queue list` shows) agrees.
    const api = (await (
      await fetch(`${adminUrl}/queue?state=deferred`, { headers: { authorization: `Bearer ${adminToken}` } })
    ).json()) as {
      counts: Record<string, number>;
      messages: QueuedMessage[];
    };
    assert.equal(api.counts.deferred, refused.length);
    assert.equal(api.messages.length, refused.length);
    assert.ok(api.messages.every((m) => m.recipients[0]?.reason?.includes('your policy for')));

    // Every failed attempt was logged with the rule that failed.
    for (const { id, p } of refused) {
      const d = domainOf(id, p);
      assert.ok(
        events.some((e) => e.event === 'delivery.attempt' && e.domain === d && e.outcome === 'policy-fail' && e.rule),
        `${d}: a policy-fail attempt is logged`,
      );
    }

    // Retry: past the retry interval every message is tried again and refused again.
    clock += 10_000;
    await waitFor('second attempts', async () => {
      const q = await queued();
      return refused.every(({ id, p }) => (q.get(`rcpt@${domainOf(id, p)}`)?.recipients[0]?.attempts ?? 0) >= 2);
    });
    await checkDeferred(2);

    // Past queue.maxLifetime: every message bounces with a DSN to its sender.
    const before = new Map((await queued()).entries());
    clock += 2 * 3_600_000;
    await waitFor('bounces at the sink', () => sink.messages.length >= refused.length, 30_000);
    await waitFor('the spool to drain', async () => (await gw.spool.list()).length === 0);
    assert.equal(sink.messages.length, refused.length, 'exactly one DSN per refused message');
    for (const { id, p } of refused) {
      const d = domainOf(id, p);
      const dsns = sink.messages.filter((m) => m.to.includes(senderOf(id, p)));
      assert.equal(dsns.length, 1, `${d}: one DSN`);
      const m = dsns[0] as SinkMessage;
      assert.equal(m.from, '', 'a DSN comes from the null sender (RFC 3461 §6.2)');
      const { text, raw } = dsnText(m);
      assert.match(raw, /^Content-Type: multipart\/report;[^]*report-type="?delivery-status/im, d);
      assert.match(raw, /^Content-Type: message\/delivery-status/im, d);
      assert.match(raw, /^Action: failed\r?$/m, d);
      assert.match(raw, /^Status: [45]\.\d{1,3}\.\d{1,3}\r?$/m, d);
      assert.match(raw, new RegExp(`^Final-Recipient: rfc822; ?rcpt@${d.replace(/\./g, '\\.')}\\r?$`, 'mi'), d);
      const reason = (before.get(`rcpt@${d}`)?.recipients[0]?.reason ?? '').replace(/\s+/g, ' ');
      assert.ok(reason.length > 0);
      assert.ok(text.includes(reason), `${d}: the DSN says why in plain words: ${reason}\n--- DSN ---\n${text}`);
      for (const re of EXPECT[id]?.reason ?? []) assert.match(text, re, d);
      // The original comes back (RET default: full message, it is small).
      assert.ok(raw.includes(`Message-ID: <${d}@postern.test>`), `${d}: the original is returned`);
    }
    // DSNs went to the sink, the broken servers still have nothing.
    for (const { id } of refused) assert.equal(count(id), 0, `${id} never received anything`);
  },
);

test('strict policies deliver over TLS where the policy is met', { timeout: 60_000 }, async () => {
  const c = await openSmtpSession(gw.listeners[0]?.port ?? 0);
  const todo = strictDeliveries.filter((x) => x.id !== 'smtp-good');
  const start = new Map(SERVER_IDS.map((id) => [id, count(id)]));
  for (const { id, p } of todo) await submit(c, id, p);
  await c.cmd('QUIT');
  c.close();
  await waitFor('strict deliveries', () =>
    todo.every(({ id }) => count(id) - (start.get(id) ?? 0) === todo.filter((x) => x.id === id).length),
  );
  for (const { id, p } of [...todo, ...STRICT.map((pp) => ({ id: 'smtp-good', p: pp }))]) {
    const d = domainOf(id, p);
    const ev = events.find((e) => e.event === 'delivery.recipient' && e.recipient === `rcpt@${d}`);
    assert.equal(ev?.state, 'delivered', d);
    assert.match(ev?.reason ?? '', /over TLS 1\.[23] /, `${d}: over TLS 1.2+: ${ev?.reason}`);
    if (p !== 'b') assert.match(ev?.reason ?? '', /trusted chain, name \S+ matches/, `${d}: ${ev?.reason}`);
    if (p !== 'v') assert.match(ev?.reason ?? '', /bsi-compliant/, `${d}: ${ev?.reason}`);
  }
  await waitFor('the spool to drain', async () => (await gw.spool.list()).length === 0);
});

test(
  'may: delivered wherever TLS works, in cleartext only where it does not, intact',
  { timeout: 60_000 },
  async () => {
    const c = await openSmtpSession(gw.listeners[0]?.port ?? 0);
    const start = new Map(SERVER_IDS.map((id) => [id, count(id)]));
    for (const id of SERVER_IDS) await submit(c, id, 'm');
    await c.cmd('QUIT');
    c.close();
    await waitFor('may deliveries', () => SERVER_IDS.every((id) => count(id) === (start.get(id) ?? 0) + 1));
    for (const id of SERVER_IDS) {
      const d = domainOf(id, 'm');
      const got = (tb.servers.get(id) as SmtpTestServer).lastMessage;
      assert.ok(got, d);
      assert.equal(got.from, senderOf(id, 'm'));
      assert.deepEqual(got.to, [`rcpt@${d}`]);
      assert.equal(got.tls, EXPECT[id]?.mayTls, `${d}: TLS ${String(EXPECT[id]?.mayTls)}`);
      const original = Buffer.from(messageFor(d, senderOf(id, 'm')));
      const data = got.data;
      assert.ok(
        data.length > original.length && data.subarray(data.length - original.length).equals(original),
        `${d}: the message arrives byte for byte`,
      );
      const prefix = data.subarray(0, data.length - original.length).toString('latin1');
      assert.match(
        prefix,
        /^Received: from [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n$/,
        `${d}: only postern's Received header is added`,
      );
      const ev = events.find((e) => e.event === 'delivery.recipient' && e.recipient === `rcpt@${d}`);
      assert.equal(ev?.state, 'delivered', d);
      assert.match(
        ev?.reason ?? '',
        EXPECT[id]?.mayTls ? / over TLS 1\.[0-3] / : / in cleartext; /,
        `${d}: ${ev?.reason}`,
      );
    }
    await waitFor('the spool to drain', async () => (await gw.spool.list()).length === 0);
  },
);
