import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSmtpServer, FORGED_SMTP_REPLY } from '../../../src/testbed/servers/smtp.ts';
import type { SmtpServerOptions } from '../../../src/testbed/servers/smtp.ts';
import { createImapServer, FORGED_IMAP_RESPONSE } from '../../../src/testbed/servers/imap.ts';
import { createPop3Server, FORGED_POP3_RESPONSE } from '../../../src/testbed/servers/pop3.ts';
import type { DialectServerOptions, LineServer, ServerSwitches } from '../../../src/testbed/servers/common.ts';
import { issueCertificate } from '../../../src/tls/cert/pki.ts';
import { LineClient } from './helpers.ts';

const HOST = '127.0.0.1';
const CLIENT_TLS = { rejectUnauthorized: false } as const;
let tlsSpec: DialectServerOptions['tls'];
const started: LineServer[] = [];

before(async () => {
  const day = 86_400_000;
  const cert = await issueCertificate({
    ca: null,
    names: ['unit.test'],
    keyType: { kind: 'ec', curve: 'P-256' },
    signatureHash: 'SHA-256',
    notBefore: new Date(Date.now() - day),
    notAfter: new Date(Date.now() + day),
  });
  tlsSpec = { kind: 'node', secureContext: { cert: cert.certPem, key: cert.keyPem, minVersion: 'TLSv1.2' } };
});

after(async () => {
  await Promise.all(started.map((s) => s.close()));
});

async function run<T extends LineServer>(
  make: (o: SmtpServerOptions) => T,
  extra: Partial<SmtpServerOptions> & { switches?: Partial<ServerSwitches> } = {},
): Promise<{ server: T; port: number }> {
  const server = make({ hostname: 'unit.test', mode: 'starttls', tls: tlsSpec, ...extra });
  const port = await server.listen(0, HOST);
  started.push(server);
  return { server, port };
}

async function smtpClient(port: number): Promise<LineClient> {
  const c = await LineClient.connect(port, HOST);
  assert.match((await c.smtp())[0] ?? '', /^220 unit\.test ESMTP/);
  return c;
}

test('SMTP: EHLO lists the extensions; STARTTLS only while offered and not yet in TLS', async () => {
  const { port } = await run(createSmtpServer);
  const c = await smtpClient(port);
  c.write('EHLO client.test\r\n');
  const ehlo = await c.smtp();
  assert.equal(ehlo[0], '250-unit.test');
  for (const kw of ['PIPELINING', 'SIZE 10485760', '8BITMIME', 'ENHANCEDSTATUSCODES', 'STARTTLS']) {
    assert.ok(
      ehlo.some((l) => l.slice(4) === kw),
      `${kw} in ${ehlo.join('|')}`,
    );
  }
  assert.match(ehlo.at(-1) ?? '', /^250 /);
  c.write('STARTTLS\r\n');
  assert.deepEqual(await c.smtp(), ['220 2.0.0 Ready to start TLS']);
  assert.equal((await c.upgrade(CLIENT_TLS)).length, 0);
  // RFC 3207 §4.2: state reset (MAIL needs a new EHLO), STARTTLS no longer advertised or accepted.
  c.write('MAIL FROM:<a@b.test>\r\n');
  assert.match((await c.smtp())[0] ?? '', /^503 5\.5\.1/);
  c.write('EHLO client.test\r\n');
  assert.ok(!(await c.smtp()).some((l) => l.includes('STARTTLS')));
  c.write('STARTTLS\r\n');
  assert.match((await c.smtp())[0] ?? '', /^503 /);
  c.write('QUIT\r\n');
  assert.match((await c.smtp())[0] ?? '', /^221 /);
  await c.closed();
});

test('SMTP: a mail transaction is accepted, dot-unstuffed, counted and kept', async () => {
  const { server, port } = await run(createSmtpServer);
  const c = await smtpClient(port);
  // Pipelined in one write (RFC 2920): replies come back in order.
  c.write('EHLO c.test\r\nMAIL FROM:<from@a.test> SIZE=100\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\nDATA\r\n');
  await c.smtp();
  assert.equal((await c.smtp())[0], '250 2.1.0 Ok');
  assert.equal((await c.smtp())[0], '250 2.1.5 Ok');
  assert.equal((await c.smtp())[0], '250 2.1.5 Ok');
  assert.match((await c.smtp())[0] ?? '', /^354 /);
  c.write('Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n');
  assert.equal((await c.smtp())[0], '250 2.0.0 Ok: queued as 1');
  const sm = server;
  assert.equal(sm.messageCount, 1);
  assert.equal(sm.lastMessage?.from, 'from@a.test');
  assert.deepEqual(sm.lastMessage?.to, ['x@b.test', 'y@b.test']);
  assert.equal(sm.lastMessage?.data.toString(), 'Subject: hi\r\n\r\n.leading dot\r\nbody\r\n');
  assert.equal(sm.lastMessage?.tls, false);
  // Sequencing errors.
  c.write('RCPT TO:<z@b.test>\r\nDATA\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n');
  assert.match((await c.smtp())[0] ?? '', /^503 5\.5\.1 .*MAIL/);
  assert.match((await c.smtp())[0] ?? '', /^503 /);
  assert.match((await c.smtp())[0] ?? '', /^250 /);
  assert.match((await c.smtp())[0] ?? '', /^503 5\.5\.1 .*nested/);
  c.close();
});

test('SMTP: long DATA lines are stored, over-size messages get 552 and are not kept', async () => {
  const { server, port } = await run(createSmtpServer, {
    maxLineLength: 64,
    maxMessageSize: 500,
  });
  const c = await smtpClient(port);
  c.write('HELO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n');
  for (let i = 0; i < 4; i++) await c.smtp();
  const long = 'x'.repeat(200);
  c.write(`${long}\r\n.\r\n`);
  assert.match((await c.smtp())[0] ?? '', /^250 /);
  assert.equal(server.lastMessage?.data.toString(), `${long}\r\n`);
  c.write('MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n');
  for (let i = 0; i < 3; i++) await c.smtp();
  c.write(`${'y'.repeat(60)}\r\n`.repeat(20) + '.\r\n');
  assert.match((await c.smtp())[0] ?? '', /^552 5\.3\.4/);
  assert.equal(server.messageCount, 1);
  c.write('NOOP\r\n');
  assert.equal((await c.smtp())[0], '250 2.0.0 Ok');
  c.close();
});

test('SMTP: an over-long command line gets 500 and the session continues; garbage never crashes', async () => {
  const { server, port } = await run(createSmtpServer, { maxLineLength: 128 });
  const c = await smtpClient(port);
  c.write(`EHLO ${'a'.repeat(300)}\r\n`);
  assert.equal((await c.smtp())[0], '500 5.5.2 Error: line too long');
  c.write('NOOP\r\n');
  assert.equal((await c.smtp())[0], '250 2.0.0 Ok');
  // Line length bound holds without any line end too (no unbounded buffering).
  c.write(Buffer.alloc(1000, 0x41));
  assert.equal((await c.smtp())[0], '500 5.5.2 Error: line too long');
  c.write('\r\nNOOP\r\n');
  assert.equal((await c.smtp())[0], '250 2.0.0 Ok');
  // A TLS ClientHello-ish binary blob on the plaintext port: error replies, then a 421 cut-off.
  c.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x0a, 0x00, 0x0d, 0x0a]));
  assert.match((await c.smtp())[0] ?? '', /^500 /);
  for (let i = 0; i < 30; i++) c.write('\x00\x01bogus\r\n');
  const lines: string[] = [];
  await assert.rejects(async () => {
    for (;;) lines.push(await c.line());
  }, /connection closed/);
  assert.match(lines.at(-1) ?? '', /^421 4\.7\.0/);
  assert.equal(server.stats.handlerErrors, 0);
});

test('SMTP: idle timeout closes with 421 4.4.2', async () => {
  const { port } = await run(createSmtpServer, { idleTimeoutMs: 150 });
  const c = await smtpClient(port);
  assert.match(await c.line(2000), /^421 4\.4\.2 /);
  await c.closed();
});

test('SMTP STARTTLS switches: none → 502, refuse-454 → 454 (advertised), strip → works unadvertised', async () => {
  const none = await smtpClient((await run(createSmtpServer, { switches: { starttls: 'none' } })).port);
  none.write('EHLO c\r\nSTARTTLS\r\n');
  assert.ok(!(await none.smtp()).some((l) => l.includes('STARTTLS')));
  assert.match((await none.smtp())[0] ?? '', /^502 5\.5\.1/);
  none.close();

  const refuse = await smtpClient((await run(createSmtpServer, { switches: { starttls: 'refuse-454' } })).port);
  refuse.write('EHLO c\r\nSTARTTLS\r\n');
  assert.ok((await refuse.smtp()).some((l) => l.endsWith('STARTTLS')));
  assert.match((await refuse.smtp())[0] ?? '', /^454 4\.7\.0/);
  refuse.close();

  const strip = await smtpClient((await run(createSmtpServer, { switches: { starttls: 'strip' } })).port);
  strip.write('EHLO c\r\nSTARTTLS\r\n');
  assert.ok(!(await strip.smtp()).some((l) => l.includes('STARTTLS')));
  assert.match((await strip.smtp())[0] ?? '', /^220 /);
  await strip.upgrade(CLIENT_TLS);
  strip.write('NOOP\r\n');
  assert.equal((await strip.smtp())[0], '250 2.0.0 Ok');
  strip.close();
});

test('SMTP: plaintext pipelined after STARTTLS is discarded by default and executed when vulnerable', async () => {
  for (const vulnerable of [false, true]) {
    const { port } = await run(createSmtpServer, { switches: { commandInjection: vulnerable } });
    const c = await smtpClient(port);
    c.write('EHLO c\r\n');
    await c.smtp();
    c.write('STARTTLS\r\nHELO injected.test\r\n');
    assert.match((await c.smtp())[0] ?? '', /^220 /);
    await c.upgrade(CLIENT_TLS);
    c.write('QUIT\r\n');
    const first = (await c.smtp())[0];
    if (vulnerable) {
      assert.equal(first, '250 unit.test', 'injected HELO answered inside TLS');
      assert.match((await c.smtp())[0] ?? '', /^221 /);
    } else {
      assert.match(first ?? '', /^221 /);
    }
    c.close();
  }
});

test('SMTP: response injection appends the forged line to the 220 in plaintext', async () => {
  const { port } = await run(createSmtpServer, { switches: { responseInjection: true } });
  const c = await smtpClient(port);
  c.write('STARTTLS\r\n');
  assert.deepEqual(await c.smtp(), ['220 2.0.0 Ready to start TLS']);
  // A correct client discards this; the upgrade must still succeed.
  const leftover = await c.upgrade(CLIENT_TLS);
  assert.equal(leftover.toString(), FORGED_SMTP_REPLY);
  c.close();
});

test('SMTP implicit TLS: greeting comes inside TLS; STARTTLS is not available', async () => {
  const { port } = await run(createSmtpServer, { mode: 'implicit' });
  const c = await LineClient.connectTls(port, HOST, CLIENT_TLS);
  assert.match((await c.smtp())[0] ?? '', /^220 /);
  c.write('EHLO c\r\nSTARTTLS\r\n');
  assert.ok(!(await c.smtp()).some((l) => l.includes('STARTTLS')));
  assert.match((await c.smtp())[0] ?? '', /^503 /);
  c.close();
});

test('IMAP: greeting capabilities, LOGINDISABLED before TLS, LOGIN always NO, STARTTLS, LOGOUT', async () => {
  const { port } = await run(createImapServer);
  const c = await LineClient.connect(port, HOST);
  assert.equal(
    await c.line(),
    '* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] unit.test IMAP4rev1 postern testbed ready',
  );
  c.write('a1 CAPABILITY\r\n');
  assert.deepEqual(await c.imap('a1'), ['* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED', 'a1 OK CAPABILITY completed']);
  c.write('a2 LOGIN user pass\r\n');
  assert.match((await c.imap('a2'))[0] ?? '', /^a2 NO \[PRIVACYREQUIRED\]/);
  c.write('a3 SELECT INBOX\r\nnot-a-command\r\n');
  assert.match((await c.imap('a3'))[0] ?? '', /^a3 BAD /);
  assert.equal(await c.line(), '* BAD Invalid tag or command');
  c.write(`a4 NOOP ${'x'.repeat(3000)}\r\n`);
  assert.equal(await c.line(), '* BAD Line too long');
  c.write('a5 STARTTLS\r\n');
  assert.deepEqual(await c.imap('a5'), ['a5 OK Begin TLS negotiation now']);
  await c.upgrade(CLIENT_TLS);
  c.write('b1 CAPABILITY\r\nb2 LOGIN user pass\r\nb3 STARTTLS\r\n');
  assert.deepEqual(await c.imap('b1'), ['* CAPABILITY IMAP4rev1', 'b1 OK CAPABILITY completed']);
  assert.match((await c.imap('b2'))[0] ?? '', /^b2 NO \[AUTHENTICATIONFAILED\]/);
  assert.match((await c.imap('b3'))[0] ?? '', /^b3 BAD /);
  c.write('b4 LOGOUT\r\n');
  assert.deepEqual(await c.imap('b4'), ['* BYE unit.test logging out', 'b4 OK LOGOUT completed']);
  await c.closed();
});

test('IMAP switches: none (no STARTTLS, no LOGINDISABLED), injection both ways', async () => {
  const none = await LineClient.connect((await run(createImapServer, { switches: { starttls: 'none' } })).port, HOST);
  assert.match(await none.line(), /^\* OK \[CAPABILITY IMAP4rev1\] /);
  none.write('a STARTTLS\r\n');
  assert.match(await none.line(), /^a BAD /);
  none.close();

  const inj = await LineClient.connect(
    (await run(createImapServer, { switches: { commandInjection: true, responseInjection: true } })).port,
    HOST,
  );
  await inj.line();
  inj.write('a STARTTLS\r\nx CAPABILITY\r\n');
  assert.equal(await inj.line(), 'a OK Begin TLS negotiation now');
  assert.equal((await inj.upgrade(CLIENT_TLS)).toString(), FORGED_IMAP_RESPONSE);
  assert.deepEqual(await inj.imap('x'), ['* CAPABILITY IMAP4rev1', 'x OK CAPABILITY completed']);
  inj.close();
});

test('POP3: CAPA with STLS, USER/PASS fail, STLS, CAPA after TLS without STLS, QUIT', async () => {
  const { port } = await run(createPop3Server);
  const c = await LineClient.connect(port, HOST);
  assert.equal(await c.line(), '+OK unit.test POP3 postern testbed ready');
  c.write('CAPA\r\n');
  assert.deepEqual(await c.pop3Multi(), [
    '+OK Capability list follows',
    'USER',
    'STLS',
    'IMPLEMENTATION postern-testbed',
  ]);
  c.write('PASS x\r\nUSER bob\r\nPASS secret\r\nNOOP\r\nXYZZY\r\n');
  assert.match(await c.line(), /^-ERR /);
  assert.equal(await c.line(), '+OK');
  assert.equal(await c.line(), '-ERR [AUTH] Authentication failed');
  assert.equal(await c.line(), '+OK');
  assert.equal(await c.line(), '-ERR Unknown command');
  c.write('STLS\r\n');
  assert.equal(await c.line(), '+OK Begin TLS negotiation');
  await c.upgrade(CLIENT_TLS);
  c.write('CAPA\r\nSTLS\r\n');
  assert.deepEqual(await c.pop3Multi(), ['+OK Capability list follows', 'USER', 'IMPLEMENTATION postern-testbed']);
  assert.match(await c.line(), /^-ERR /);
  c.write('QUIT\r\n');
  assert.match(await c.line(), /^\+OK /);
  await c.closed();
});

test('POP3 switches: refuse (advertised, -ERR) and response injection', async () => {
  const refuse = await LineClient.connect(
    (await run(createPop3Server, { switches: { starttls: 'refuse-454' } })).port,
    HOST,
  );
  await refuse.line();
  refuse.write('CAPA\r\nSTLS\r\n');
  assert.ok((await refuse.pop3Multi()).includes('STLS'));
  assert.match(await refuse.line(), /^-ERR \[SYS\/TEMP\]/);
  refuse.close();

  const inj = await LineClient.connect(
    (await run(createPop3Server, { switches: { responseInjection: true } })).port,
    HOST,
  );
  await inj.line();
  inj.write('STLS\r\n');
  assert.equal(await inj.line(), '+OK Begin TLS negotiation');
  assert.equal((await inj.upgrade(CLIENT_TLS)).toString(), FORGED_POP3_RESPONSE);
  inj.close();
});

test('a failed TLS handshake costs one connection, not the server', async () => {
  const { server, port } = await run(createSmtpServer);
  const c = await smtpClient(port);
  c.write('STARTTLS\r\n');
  await c.smtp();
  c.write(Buffer.from('this is not a ClientHello\r\n'.repeat(10)));
  await c.closed();
  const d = await smtpClient(port);
  d.write('NOOP\r\n');
  assert.equal((await d.smtp())[0], '250 2.0.0 Ok');
  d.close();
  assert.equal(server.stats.tlsFailures, 1);
  assert.equal(server.stats.handlerErrors, 0);
});

test('close() destroys open connections and stops listening', async () => {
  const server = createSmtpServer({ hostname: 'unit.test', mode: 'starttls', tls: tlsSpec });
  const port = await server.listen(0, HOST);
  const c = await smtpClient(port);
  await server.close();
  await c.closed();
  await assert.rejects(LineClient.connect(port, HOST), { code: 'ECONNREFUSED' });
});
