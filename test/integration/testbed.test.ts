/**
 * The whole testbed on loopback: every server speaks its dialect, advertises STARTTLS as the
 * manifest says, and accepts exactly the manifest's protocol versions and cipher suites with the
 * certificate properties its weaknesses claim. No timing assertions here (see bench/).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestbed, CATALOG } from '../../src/testbed/index.ts';
import type { Testbed, ManifestServer } from '../../src/testbed/index.ts';
import type { SmtpTestServer } from '../../src/testbed/servers/smtp.ts';
import { FORGED_SMTP_REPLY } from '../../src/testbed/servers/smtp.ts';
import type { VersionName } from '../../src/tls/wire/constants.ts';
import { suiteByCode, suiteByName } from '../../src/tls/wire/suites.ts';
import { buildClientHello, buildSslv2ClientHello } from '../../src/tls/wire/client-hello.ts';
import { ServerFlightParser } from '../../src/tls/wire/server-flight.ts';
import type { ServerFlight } from '../../src/tls/wire/server-flight.ts';
import { PosternError } from '../../src/core/errors.ts';
import { LineClient, WEAK_SIGNATURE_OIDS, signatureOid } from '../unit/testbed/helpers.ts';

let tb: Testbed;
let caCert: X509Certificate;

before(async () => {
  tb = await startTestbed({ basePort: 0 });
  caCert = new X509Certificate(tb.manifest.caPem);
});

after(async () => {
  await tb.stop();
});

const LENIENT: tls.ConnectionOptions = {
  rejectUnauthorized: false,
  minVersion: 'TLSv1',
  ciphers: `${tls.DEFAULT_CIPHERS}:@SECLEVEL=0`,
};

const NODE_VERSION: Partial<Record<VersionName, tls.SecureVersion>> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

function versionOf(nodeProtocol: string | null): string | null {
  return nodeProtocol === 'TLSv1' ? 'TLSv1.0' : nodeProtocol;
}

function catalogEntry(id: string): (typeof CATALOG)[number] {
  const e = CATALOG.find((x) => x.id === id);
  assert.ok(e, id);
  return e;
}

function server(id: string): ManifestServer {
  const s = tb.manifest.servers.find((x) => x.id === id);
  assert.ok(s, id);
  return s;
}

const STLS_KEYWORD = { smtp: 'STARTTLS', imap: 'STARTTLS', pop3: 'STLS' } as const;

interface Session {
  client: LineClient;
  greeting: string;
  capabilities: string[];
}

/** Connects (TLS first for implicit servers), reads the greeting and the capability list. */
async function openDialect(s: ManifestServer, tlsOptions: tls.ConnectionOptions = LENIENT): Promise<Session> {
  const client =
    s.mode === 'implicit'
      ? await LineClient.connectTls(s.port, s.address, { ...tlsOptions, servername: s.hostname })
      : await LineClient.connect(s.port, s.address);
  if (s.protocol === 'smtp') {
    const greeting = (await client.smtp()).join('\n');
    client.write('EHLO client.test\r\n');
    const ehlo = await client.smtp();
    assert.match(ehlo[0] ?? '', /^250/);
    return { client, greeting, capabilities: ehlo.slice(1).map((l) => l.slice(4)) };
  }
  if (s.protocol === 'imap') {
    const greeting = await client.line();
    client.write('c1 CAPABILITY\r\n');
    const lines = await client.imap('c1');
    const caps = lines.find((l) => l.startsWith('* CAPABILITY '));
    assert.ok(caps);
    return { client, greeting, capabilities: caps.slice('* CAPABILITY '.length).split(' ') };
  }
  const greeting = await client.line();
  client.write('CAPA\r\n');
  const capa = await client.pop3Multi();
  return { client, greeting, capabilities: capa.slice(1) };
}

/** Sends the dialect's STARTTLS command; returns the reply line and whether it is a go-ahead. */
async function sendStarttls(s: ManifestServer, client: LineClient): Promise<{ reply: string; goAhead: boolean }> {
  if (s.protocol === 'smtp') {
    client.write('STARTTLS\r\n');
    const reply = (await client.smtp())[0] ?? '';
    return { reply, goAhead: reply.startsWith('220 ') };
  }
  if (s.protocol === 'imap') {
    client.write('s1 STARTTLS\r\n');
    const reply = (await client.imap('s1')).at(-1) ?? '';
    return { reply, goAhead: reply.startsWith('s1 OK') };
  }
  client.write('STLS\r\n');
  const reply = await client.line();
  return { reply, goAhead: reply.startsWith('+OK') };
}

/**
 * Everything before the TLS handshake: for STARTTLS servers the greeting, EHLO and the go-ahead.
 * Failures here are assertion failures of the test, never a "refusal" of the handshake.
 */
async function preamble(s: ManifestServer): Promise<LineClient> {
  const c = await LineClient.connect(s.port, s.address);
  try {
    if (s.protocol === 'smtp') {
      await c.smtp();
      c.write('EHLO client.test\r\n');
      await c.smtp();
    } else {
      await c.line();
    }
    const r = await sendStarttls(s, c);
    assert.ok(r.goAhead, `${s.id}: ${r.reply}`);
    return c;
  } catch (err) {
    c.close();
    throw err;
  }
}

/** A TLS session with the server, via STARTTLS where needed. Rejects if the handshake fails. */
async function openTls(s: ManifestServer, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const full = { ...options, servername: s.hostname };
  if (s.mode === 'implicit') {
    const c = await LineClient.connectTls(s.port, s.address, full);
    return c.socket as tls.TLSSocket;
  }
  const c = await preamble(s);
  try {
    await c.upgrade(full);
    return c.socket as tls.TLSSocket;
  } catch (err) {
    c.close();
    throw err;
  }
}

type HandshakeResult = { ok: true; version: string | null; suite: string | undefined } | { ok: false; code: string };

/**
 * The handshake's outcome. Only the handshake itself may fail into `{ ok: false }`, carrying
 * OpenSSL's error code so that a refusal can be asserted to be the right one; a failure before it
 * (connection, greeting, STARTTLS go-ahead) throws.
 */
async function handshakeResult(s: ManifestServer, options: tls.ConnectionOptions): Promise<HandshakeResult> {
  const full = { ...options, servername: s.hostname };
  const c = s.mode === 'implicit' ? null : await preamble(s);
  let t: tls.TLSSocket;
  try {
    if (c === null) t = (await LineClient.connectTls(s.port, s.address, full)).socket as tls.TLSSocket;
    else {
      await c.upgrade(full);
      t = c.socket as tls.TLSSocket;
    }
  } catch (err) {
    c?.close();
    const code = (err as { code?: unknown }).code;
    return { ok: false, code: typeof code === 'string' ? code : String(err) };
  }
  const result = { ok: true as const, version: versionOf(t.getProtocol()), suite: t.getCipher().standardName };
  t.destroy();
  return result;
}

/**
 * OpenSSL's client-side codes for a server that refuses a version: a protocol_version alert
 * (RFC 8446 §6.2, RFC 5246 Appendix E.1), or a ServerHello at a lower version than the one the
 * client pinned, which the client then refuses itself.
 */
const VERSION_REFUSED = new Set(['ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', 'ERR_SSL_UNSUPPORTED_PROTOCOL']);
/**
 * A server with no suite or group in common with the client: a handshake_failure alert (40,
 * RFC 8446 §4.1.1, RFC 5246 §7.4.1.3). Node 24's OpenSSL 3 names it SSL/TLS_…, OpenSSL 1.1 SSLV3_….
 */
const SUITE_REFUSED = new Set(['ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE', 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE']);

function assertRefused(r: HandshakeResult, codes: ReadonlySet<string>, what: string): void {
  assert.equal(r.ok, false, `${what}: the handshake succeeded`);
  if (r.ok) return;
  assert.ok(codes.has(r.code), `${what}: refused with ${r.code}, expected one of ${[...codes].join(', ')}`);
}

const tlsReachableNode = (): ManifestServer[] =>
  tb.manifest.servers.filter((s) => s.expected.protocols.length > 0 && catalogEntry(s.id).tls.kind === 'node');

test('manifest lists every catalog server once, on distinct loopback ports, with the CA on disk', () => {
  const m = tb.manifest;
  assert.equal(m.schemaVersion, 1);
  assert.deepEqual(
    m.servers.map((s) => s.id),
    CATALOG.map((e) => e.id),
  );
  assert.equal(new Set(m.servers.map((s) => s.port)).size, m.servers.length);
  for (const s of m.servers) {
    assert.equal(s.address, '127.0.0.1');
    assert.ok(s.port > 0);
    const scheme = s.mode === 'implicit' ? `${s.protocol}s` : s.protocol;
    assert.equal(s.url, `${scheme}://127.0.0.1:${s.port}`);
    assert.equal(s.hostname, `${s.id}.testbed.postern.test`);
    assert.deepEqual(s.weaknesses, catalogEntry(s.id).weaknesses);
  }
  assert.equal(readFileSync(m.caFile, 'utf8'), m.caPem);
  assert.equal(caCert.ca, true);
  assert.ok(!Number.isNaN(Date.parse(m.startedAt)));
});

test('each server speaks its dialect and handles STARTTLS as the manifest says', async (t) => {
  for (const s of tb.manifest.servers) {
    await t.test(s.id, async () => {
      const { client, greeting, capabilities } = await openDialect(s);
      try {
        const greetRe = { smtp: /^220 /, imap: /^\* OK /, pop3: /^\+OK / }[s.protocol];
        assert.match(greeting, greetRe);
        assert.ok(greeting.includes(s.hostname), greeting);
        const advertised = capabilities.includes(STLS_KEYWORD[s.protocol]);
        const st = s.expected.starttls;
        assert.equal(
          advertised,
          st === 'offered' || st === 'refused',
          `${s.id} capabilities: ${capabilities.join(' ')}`,
        );
        if (s.protocol === 'imap') {
          // RFC 2595 §3.2: LOGINDISABLED until TLS whenever STARTTLS exists; gone once in TLS.
          assert.equal(
            capabilities.includes('LOGINDISABLED'),
            st === 'offered' || st === 'refused' || st === 'stripped',
          );
        }
        const { reply, goAhead } = await sendStarttls(s, client);
        assert.equal(goAhead, st === 'offered' || st === 'stripped', `${s.id}: ${reply}`);
        if (st === 'refused') {
          assert.match(reply, { smtp: /^454 4\.7\.0/, imap: /^s1 NO /, pop3: /^-ERR /u }[s.protocol]);
        }
        if (st === 'missing') assert.match(reply, { smtp: /^502 /, imap: /^s1 BAD /, pop3: /^-ERR /u }[s.protocol]);
        if (st === null) assert.match(reply, { smtp: /^503 /, imap: /^s1 BAD /, pop3: /^-ERR /u }[s.protocol]);
      } finally {
        client.close();
      }
    });
  }
});

test('node-served servers: lenient handshake at the best version, cert properties match weaknesses', async (t) => {
  for (const s of tlsReachableNode()) {
    await t.test(s.id, async () => {
      const sock = await openTls(s, LENIENT);
      try {
        const best = s.expected.protocols.at(-1);
        assert.equal(versionOf(sock.getProtocol()), best);
        const code = suiteByName(sock.getCipher().standardName)?.code;
        assert.ok(code !== undefined && (s.expected.suites[best as VersionName] ?? []).includes(code));

        const x = sock.getPeerX509Certificate();
        assert.ok(x);
        const has = (w: string): boolean => s.weaknesses.includes(w as never);
        // Signed by its own key (checkIssued() would also demand keyCertSign, which leaves lack).
        const selfSigned = x.issuer === x.subject && x.verify(x.publicKey);
        const byCa = x.checkIssued(caCert) && x.verify(caCert.publicKey);
        const details = x.publicKey.asymmetricKeyDetails;
        assert.equal(x.validToDate.getTime() < Date.now(), has('cert-expired'), 'expiry');
        assert.equal(selfSigned, has('cert-self-signed'), 'self-signed');
        assert.equal(!byCa, has('cert-untrusted'), 'trust');
        assert.equal(
          x.checkHost(s.hostname, { subject: 'never' }) === undefined,
          has('cert-hostname-mismatch'),
          'name',
        );
        assert.equal(WEAK_SIGNATURE_OIDS.has(signatureOid(Buffer.from(x.raw))), has('cert-weak-signature'), 'sig');
        assert.equal(
          x.publicKey.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) < 2048,
          has('cert-weak-key'),
          'key',
        );
      } finally {
        sock.destroy();
      }
    });
  }
});

test('the good servers verify with a strict default client that trusts only the testbed CA', async (t) => {
  for (const s of tb.manifest.servers.filter((x) => x.id.endsWith('-good'))) {
    await t.test(s.id, async () => {
      const sock = await openTls(s, { ca: tb.manifest.caPem, rejectUnauthorized: true });
      assert.equal(sock.authorized, true);
      sock.destroy();
    });
  }
  const strict = { ca: tb.manifest.caPem, rejectUnauthorized: true, ciphers: `${tls.DEFAULT_CIPHERS}:@SECLEVEL=0` };
  await assert.rejects(openTls(server('smtp-expired'), strict), { code: 'CERT_HAS_EXPIRED' });
  await assert.rejects(openTls(server('smtp-wrong-name'), strict), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  await assert.rejects(openTls(server('smtp-self-signed'), strict), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
});

test('node-served servers accept exactly the expected versions and suites', async (t) => {
  for (const s of tlsReachableNode()) {
    await t.test(s.id, async () => {
      for (const v of ['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const) {
        const nv = NODE_VERSION[v];
        const expected = s.expected.suites[v] ?? [];
        const pinned = { ...LENIENT, minVersion: nv, maxVersion: nv };
        if (expected.length === 0) {
          assertRefused(await handshakeResult(s, pinned), VERSION_REFUSED, `${s.id} must refuse ${v}`);
          continue;
        }
        const names = expected.map((c) => suiteByCode(c)?.openssl ?? '');
        for (const [i, name] of names.entries()) {
          // TLS 1.3 names go to ciphersuites; the 1.2 list must not be empty or OpenSSL fails.
          const ciphers = v === 'TLSv1.3' ? `${name}:ALL:@SECLEVEL=0` : `${name}:@SECLEVEL=0`;
          const r = await handshakeResult(s, { ...pinned, ciphers });
          assert.ok(r.ok, `${s.id} ${v} ${name}`);
          assert.equal(r.version, v);
          assert.equal(suiteByName(r.suite ?? '')?.code, expected[i], `${s.id} ${v} ${name}`);
        }
        // Everything else OpenSSL can offer at this version must be refused.
        const others =
          v === 'TLSv1.3'
            ? 'TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_8_SHA256:ALL:@SECLEVEL=0'
            : `ALL:COMPLEMENTOFALL:${names.map((n) => `!${n}`).join(':')}:@SECLEVEL=0`;
        assertRefused(await handshakeResult(s, { ...pinned, ciphers: others }), SUITE_REFUSED, `${s.id} ${v} others`);
      }
    });
  }
});

test('good servers offer only BSI groups (no X25519 or ML-KEM hybrids), brainpool included', async () => {
  const s = server('smtp-good');
  const groupOf = async (options: tls.ConnectionOptions): Promise<string | undefined> => {
    const sock = await openTls(s, { ...LENIENT, ...options });
    const name = sock.getEphemeralKeyInfo() as { name?: string };
    sock.destroy();
    return name.name;
  };
  const tls13 = { minVersion: 'TLSv1.3' } as const;
  assertRefused(
    await handshakeResult(s, { ...LENIENT, ...tls13, ecdhCurve: 'X25519:X25519MLKEM768' }),
    SUITE_REFUSED,
    'smtp-good with X25519 and ML-KEM only',
  );
  assert.equal(await groupOf({ ...tls13, ecdhCurve: 'P-384' }), 'secp384r1');
  assert.equal(await groupOf({ ...tls13, ecdhCurve: 'brainpoolP256r1tls13' }), 'brainpoolP256r1');
  // TLS 1.2: the client's groups also constrain the P-256 certificate (RFC 8422 §5.1), so P-256
  // must stay in the list; the server still never picks X25519.
  assert.equal(await groupOf({ maxVersion: 'TLSv1.2', ecdhCurve: 'X25519:P-256' }), 'prime256v1');
});

/** Sends a ClientHello after STARTTLS to a legacy server and parses its answer. */
async function legacyProbe(s: ManifestServer, version: VersionName, suites: number[]): Promise<ServerFlight> {
  const c = await LineClient.connect(s.port, s.address);
  try {
    await c.smtp();
    c.write('EHLO client.test\r\nSTARTTLS\r\n');
    await c.smtp();
    assert.match((await c.smtp())[0] ?? '', /^220 /);
    c.write(
      version === 'SSLv2'
        ? buildSslv2ClientHello({ ciphers: suites })
        : buildClientHello({ version, suites, serverName: s.hostname }),
    );
    const parser = new ServerFlightParser({ stopAfterServerHello: false });
    for (;;) {
      const flight = parser.push(await c.chunk());
      if (flight !== null) return flight;
    }
  } finally {
    c.close();
  }
}

test('legacy servers answer exactly the expected suites (hand-written responder)', async (t) => {
  for (const s of tb.manifest.servers.filter((x) => catalogEntry(x.id).tls.kind === 'raw')) {
    await t.test(s.id, async () => {
      for (const v of s.expected.protocols) {
        for (const code of s.expected.suites[v] ?? []) {
          const flight = await legacyProbe(s, v, [code]);
          if (v === 'SSLv2') {
            assert.equal(flight.kind, 'sslv2');
            if (flight.kind === 'sslv2') assert.ok(flight.cipherKinds.includes(code));
            continue;
          }
          assert.equal(flight.kind, 'hello', `${s.id} ${v} ${code.toString(16)}`);
          if (flight.kind !== 'hello') continue;
          assert.equal(flight.hello.cipherSuite, code);
          assert.equal(flight.hello.version, v);
          if (!(suiteByCode(code)?.anon ?? false)) {
            assert.ok(flight.certificates[0] !== undefined);
            assert.ok(new X509Certificate(flight.certificates[0]).checkIssued(caCert));
          }
        }
        if (v !== 'SSLv2') {
          // TLS_RSA_WITH_AES_128_GCM_SHA256 (0x009C) is in no legacy server's list.
          const refused = await legacyProbe(s, v, [0x009c]);
          assert.equal(refused.kind, 'alert', `${s.id} ${v} must refuse 0x009C`);
          // handshake_failure (40): no suite in common (RFC 5246 §7.4.1.3), not some other fault.
          if (refused.kind === 'alert') assert.equal(refused.description, 40, `${s.id} ${v}: ${refused.name}`);
        }
      }
    });
  }
});

test('smtp-cmd-injection answers the injected NOOP inside TLS; smtp-good discards it', async () => {
  for (const id of ['smtp-cmd-injection', 'smtp-good']) {
    const s = server(id);
    const c = await LineClient.connect(s.port, s.address);
    await c.smtp();
    c.write('EHLO client.test\r\n');
    await c.smtp();
    // CVE-2011-0411: the command rides in the same segment as STARTTLS.
    c.write('STARTTLS\r\nNOOP\r\n');
    assert.match((await c.smtp())[0] ?? '', /^220 /);
    await c.upgrade({ ...LENIENT, servername: s.hostname });
    c.write('QUIT\r\n');
    const replies: string[] = [];
    for (;;) {
      const r = (await c.smtp())[0] ?? '';
      replies.push(r);
      if (r.startsWith('221')) break;
    }
    assert.deepEqual(replies, id === 'smtp-good' ? ['221 2.0.0 Bye'] : ['250 2.0.0 Ok', '221 2.0.0 Bye']);
    c.close();
  }
});

test('smtp-response-injection sends the forged line after the 220; smtp-good sends nothing', async () => {
  for (const id of ['smtp-response-injection', 'smtp-good']) {
    const s = server(id);
    const c = await LineClient.connect(s.port, s.address);
    await c.smtp();
    c.write('STARTTLS\r\n');
    assert.deepEqual(await c.smtp(), ['220 2.0.0 Ready to start TLS']);
    const leftover = await c.upgrade({ ...LENIENT, servername: s.hostname });
    assert.equal(leftover.toString(), id === 'smtp-good' ? '' : FORGED_SMTP_REPLY);
    c.close();
  }
});

test('smtp-good accepts a message over TLS and keeps it for inspection', async () => {
  const s = server('smtp-good');
  const sock = await openTls(s, LENIENT);
  const c = new LineClient(sock);
  c.write('EHLO client.test\r\n');
  assert.ok(!(await c.smtp()).some((l) => l.includes('STARTTLS')));
  c.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@testbed.postern.test>\r\nDATA\r\n');
  await c.smtp();
  await c.smtp();
  assert.match((await c.smtp())[0] ?? '', /^354 /);
  c.write('Subject: testbed\r\n\r\nhello\r\n.\r\nQUIT\r\n');
  assert.match((await c.smtp())[0] ?? '', /^250 2\.0\.0 Ok: queued as \d+/);
  const srv = tb.servers.get('smtp-good') as SmtpTestServer;
  assert.equal(srv.lastMessage?.tls, true);
  assert.equal(srv.lastMessage?.data.toString(), 'Subject: testbed\r\n\r\nhello\r\n');
  assert.deepEqual(srv.lastMessage?.to, ['b@testbed.postern.test']);
  c.close();
});

test('unknown `only` names and busy ports are PosternErrors; nothing is left listening', async () => {
  await assert.rejects(startTestbed({ only: ['smtp-good', 'does-not-exist'] }), (err: unknown) => {
    return (
      err instanceof PosternError && err.code === 'testbed-unknown-server' && (err.hint ?? '').includes('smtp-good')
    );
  });
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const busy = (blocker.address() as net.AddressInfo).port;
  // smtp-good is catalog index 0, so basePort = busy puts it on the busy port.
  await assert.rejects(
    startTestbed({ basePort: busy, only: ['smtp-good', 'pop3-good'] }),
    (err: unknown) =>
      err instanceof PosternError && err.code === 'testbed-port-in-use' && err.message.includes(String(busy)),
  );
  // pop3-good's port (started in parallel) was released again.
  const pop3Port = busy + CATALOG.findIndex((e) => e.id === 'pop3-good');
  await assert.rejects(LineClient.connect(pop3Port, '127.0.0.1'), { code: 'ECONNREFUSED' });
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
  await assert.rejects(startTestbed({ address: '0.0.0.0' }), { code: 'testbed-not-loopback' });
});

test('stateDir: the CA, keys and certificates are cached and reused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'postern-testbed-state-'));
  try {
    const a = await startTestbed({ stateDir: dir, only: ['smtp-good', 'smtp-shame'] });
    await a.stop();
    const cache1 = await readFile(join(dir, 'testbed-pki.json'), 'utf8');
    const b = await startTestbed({ stateDir: dir, only: ['smtp-good', 'smtp-shame'] });
    try {
      assert.equal(b.manifest.caPem, a.manifest.caPem);
      assert.equal(b.manifest.caFile, join(dir, 'testbed-ca.pem'));
      assert.equal(await readFile(join(dir, 'testbed-pki.json'), 'utf8'), cache1);
      const sock = await openTls(b.manifest.servers[0] as ManifestServer, LENIENT);
      const cached = JSON.parse(cache1) as { certs: Record<string, { certPem: string }> };
      const served = sock.getPeerX509Certificate()?.toString();
      assert.ok(Object.values(cached.certs).some((c) => c.certPem === served));
      sock.destroy();
      assert.ok(existsSync(dir), 'stop() must not delete a caller-provided stateDir');
    } finally {
      await b.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('stop() closes every listener and leaves no sockets behind', async () => {
  const caFile = tb.manifest.caFile;
  await tb.stop();
  await tb.stop(); // idempotent
  for (const s of tb.manifest.servers) {
    await assert.rejects(LineClient.connect(s.port, s.address), { code: 'ECONNREFUSED' }, s.id);
  }
  assert.equal(existsSync(caFile), false, 'temp dir removed');
  // Handles close asynchronously after destroy(); give them a few turns of the loop.
  const netHandles = (): string[] =>
    process.getActiveResourcesInfo().filter((r) => /TCP|TLS|Pipe/.test(r) && r !== 'PipeWrap');
  for (let i = 0; i < 50 && netHandles().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(netHandles(), []);
});
