/**
 * Interop of `postern serve` with real peers, all on loopback (issue 4 acceptance):
 * - swaks submits with AUTH PLAIN over STARTTLS (587-style) and over implicit TLS (RFC 8314,
 *   465-style); AUTH before STARTTLS gets 538 5.7.11 (RFC 4954 §4), a wrong password 535 5.7.8,
 *   MAIL before AUTH on submission 530 5.7.0;
 * - postern delivers to a real Postfix acting as the destination MX over STARTTLS (policy
 *   `encrypt`) and the message arrives byte-for-byte, with both hops' TLS in the Received headers;
 * - a real Postfix with `smtp_tls_security_level = encrypt` relays into postern's MX listener;
 * - `postern queue list` and the metrics endpoint of the running gateway report what happened.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeSelfSignedCert } from './peers/certs.ts';
import { freePort } from './peers/ports.ts';
import { postfixAvailable, startPostfix } from './peers/postfix.ts';
import type { PostfixInstance } from './peers/postfix.ts';
import { run } from './peers/proc.ts';
import { peerSkipReason } from './peers/require.ts';
import { startTestGateway, waitFor } from '../helpers/gateway.ts';
import { openSmtpSession, saslPlain } from '../helpers/smtp-client.ts';
import type { TestGateway } from '../helpers/gateway.ts';

function swaksAvailable(): boolean {
  try {
    execFileSync('swaks', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = peerSkipReason(postfixAvailable() && swaksAvailable(), 'postfix and swaks');
const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));
const USER = 'alice@example.org';
const PASSWORD = 'correct horse battery staple';

/** A message with a unique token; lines with leading dots exercise dot-stuffing on both hops. */
function message(token: string, from: string, to: string): string {
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: postern interop ${token}`,
    `Message-ID: <${token}@client.example>`,
    'Date: Mon, 6 Jan 2025 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `Token ${token}.`,
    '.a line that starts with a dot',
    '..',
    'tab\there and trailing space ',
    'x'.repeat(900),
    '',
    'last line',
    '',
  ].join('\r\n');
}

/** Maildir file (new/ or cur/) containing `token`, or null. */
async function findInMaildir(maildir: string, token: string): Promise<string | null> {
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(maildir, sub)).catch(() => [] as string[]);
    for (const n of names) {
      const text = await readFile(join(maildir, sub, n), 'latin1').catch(() => '');
      if (text.includes(token)) return text;
    }
  }
  return null;
}

/** The header block of a stored message, unfolded into one string per field. */
function headerFields(text: string): string[] {
  const head = text.slice(0, text.search(/\r?\n\r?\n/));
  return head.split(/\r?\n(?![ \t])/);
}

/** swaks terminates DATA with CRLF.CRLF itself, so its input must not end with the final CRLF. */
function swaksData(body: string): string {
  return body.replace(/\r\n$/, '');
}

function swaks(args: string[]): ReturnType<typeof run> {
  return run('swaks', ['--helo', 'client.example', '--timeout', '20', ...args], { timeoutMs: 60_000 });
}

describe('postern serve with real peers (swaks, Postfix)', { skip, timeout: 240_000 }, () => {
  let dest: PostfixInstance;
  /** Second Postfix: relays into postern (smtp client, TLS `encrypt`); its smtpd offers no TLS. */
  let relayClient: PostfixInstance;
  let g: TestGateway;
  let tmp: string;
  /** Accepted per listener by the tests below, to check the metrics exactly. */
  const accepted: Record<string, number> = { mx: 0, submission: 0, submissions: 0 };

  before(async () => {
    const [posternCert, peerCert, clientCert] = await Promise.all([
      makeSelfSignedCert({ dnsNames: ['mx.postern.test'] }),
      makeSelfSignedCert({ dnsNames: ['mx.peer.test'] }),
      makeSelfSignedCert({ dnsNames: ['relay.client.test'] }),
    ]);
    dest = await startPostfix({ certPem: peerCert.certPem, keyPem: peerCert.keyPem });
    // Known before the gateway starts so it can be a route target (cleartext-only next hop).
    const relayPort = await freePort();
    g = await startTestGateway({
      certPem: posternCert.certPem,
      keyPem: posternCert.keyPem,
      listeners: [
        { name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' },
        { name: 'submission', mode: 'starttls', role: 'submission', auth: 'required' },
        { name: 'submissions', mode: 'implicit', role: 'submission', auth: 'required' },
      ],
      users: [{ name: USER, password: PASSWORD }],
      // No trusted networks: everything on loopback must earn its permission (AUTH, relay domain).
      relay: { domains: ['peer.test'], networks: [] },
      routes: { 'peer.test': `127.0.0.1:${dest.port}`, 'cleartext.test': `127.0.0.1:${relayPort}` },
      policy: { default: { level: 'encrypt' }, domains: { 'peer.test': { level: 'encrypt' } } },
    });
    tmp = g.dir;
    relayClient = await startPostfix({
      port: relayPort,
      certPem: clientCert.certPem,
      keyPem: clientCert.keyPem,
      extra: {
        myhostname: 'relay.client.test',
        mydomain: 'client.test',
        myorigin: 'client.test',
        mydestination: '',
        default_transport: 'smtp',
        relay_transport: 'smtp',
        relayhost: `[127.0.0.1]:${g.port['mx']}`,
        smtp_tls_security_level: 'encrypt',
        smtp_tls_loglevel: '1',
        // Its smtpd (only used to inject mail) offers no STARTTLS: a cleartext-only next hop.
        smtpd_tls_security_level: 'none',
      },
    });
  });

  after(async () => {
    await relayClient?.stop();
    await g?.close();
    await dest?.stop();
  });

  test('swaks: AUTH PLAIN over STARTTLS on submission, delivered intact to Postfix over TLS', async () => {
    const token = `sub-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const body = message(token, USER, 'bob@peer.test');
    const file = join(tmp, `${token}.eml`);
    await writeFile(file, swaksData(body));
    const r = await swaks([
      '--server',
      `127.0.0.1:${g.port['submission']}`,
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      USER,
      '--auth-password',
      PASSWORD,
      '--from',
      USER,
      '--to',
      'bob@peer.test',
      '--data',
      `@${file}`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<- {2}220 .*\n(?:.*\n)*?.*<~ {2}250-/, 'STARTTLS then EHLO inside TLS');
    assert.match(r.stdout, /<~ {2}235 2\.7\.0 /);
    const queued = /<~ {2}250 2\.0\.0 Ok: queued as (\S+)/.exec(r.stdout);
    assert.ok(queued, r.stdout);
    accepted['submission'] = (accepted['submission'] ?? 0) + 1;
    const id = queued[1] as string;

    const stored = await waitFor(() => findInMaildir(dest.maildir, token), 30_000, 'delivery to Postfix');
    // Postfix's Maildir holds LF line endings; everything we sent must follow the trace headers
    // unchanged (dot-unstuffed exactly once per hop, nothing rewrapped or re-encoded).
    assert.ok(stored.endsWith(body.replaceAll('\r\n', '\n')), `message altered in transit:\n${stored}`);
    const fields = headerFields(stored);
    const received = fields.filter((f) => /^Received:/i.test(f));
    // Newest first: Postfix's own hop (postern → Postfix) and then postern's (swaks → postern).
    assert.ok(received.length >= 2, stored);
    assert.match(received[0] as string, /^Received: from mx\.postern\.test \(.*\[127\.0\.0\.1\]\)/);
    assert.match(received[0] as string, /\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)/);
    assert.match(received[0] as string, /by mx\.peer\.test \(Postfix\) with ESMTPS id /);
    assert.match(received[1] as string, /^Received: from client\.example \(\[127\.0\.0\.1\]\)/);
    assert.match(received[1] as string, /\(using TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)\)/);
    assert.match(received[1] as string, /by mx\.postern\.test \(postern\) with ESMTPSA id \S+/);
    assert.match(received[1] as string, /for <bob@peer\.test>;/);

    // Delivered to every recipient, so the message has left postern's queue (as in Postfix).
    await waitFor(async () => ((await g.gw.spool.get(id)) === null ? true : null), 10_000, 'message leaves the queue');
    const attempt = g.logs.find((l) => l['event'] === 'delivery.attempt' && l['msgId'] === id);
    assert.ok(attempt, 'delivery.attempt logged');
    assert.equal(attempt['level'], 'encrypt');
    assert.equal(attempt['outcome'], 'policy-ok');
    assert.match(String((attempt['tls'] as { protocol?: string } | null)?.protocol), /^TLSv1\.[23]$/);
    // Postfix's log confirms the TLS session from its side.
    const tlsLine = /Anonymous TLS connection established from .*\[127\.0\.0\.1\]: TLSv1\.[23]/;
    await waitFor(async () => (tlsLine.test(await dest.logs()) ? true : null), 5000, 'Postfix to log the TLS session');
  });

  test('swaks: AUTH PLAIN over implicit TLS on submissions (RFC 8314)', async () => {
    const token = `smtps-${Date.now()}`;
    const r = await swaks([
      '--server',
      `127.0.0.1:${g.port['submissions']}`,
      '--tlsc',
      '--auth',
      'PLAIN',
      '--auth-user',
      USER,
      '--auth-password',
      PASSWORD,
      '--from',
      USER,
      '--to',
      'carol@peer.test',
      '--header',
      `Subject: ${token}`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // The greeting itself arrives over TLS: swaks marks TLS reads with '<~'.
    assert.match(r.stdout, /<~ {2}220 /);
    assert.match(r.stdout, /<~ {2}235 2\.7\.0 /);
    assert.match(r.stdout, /<~ {2}250 2\.0\.0 Ok: queued as /);
    accepted['submissions'] = (accepted['submissions'] ?? 0) + 1;
    const stored = await waitFor(() => findInMaildir(dest.maildir, token), 30_000, 'delivery to Postfix');
    assert.match(stored, /by mx\.postern\.test \(postern\) with ESMTPSA id /);
  });

  test('AUTH before STARTTLS: not advertised, and 538 5.7.11 when sent anyway', async () => {
    const c = await openSmtpSession(g.port['submission'] as number);
    try {
      const ehlo = await c.cmd('EHLO again.example');
      assert.ok(
        ehlo.lines.some((l) => /^250[- ]STARTTLS$/.test(l)),
        ehlo.raw,
      );
      assert.ok(!ehlo.lines.some((l) => /^250[- ]AUTH\b/.test(l)), `AUTH advertised in cleartext: ${ehlo.raw}`);
      const r = await c.cmd(`AUTH PLAIN ${saslPlain(USER, PASSWORD)}`);
      assert.equal(r.code, 538, r.raw);
      assert.match(r.text, /^5\.7\.11 /);
      // The refused AUTH did not log the session in.
      const m = await c.cmd(`MAIL FROM:<${USER}>`);
      assert.equal(m.code, 530, m.raw);
    } finally {
      c.close();
    }
  });

  test('wrong password: 535 5.7.8; MAIL before AUTH on submission: 530 5.7.0', async () => {
    const c = await openSmtpSession(g.port['submission'] as number, { starttls: true });
    try {
      const m = await c.cmd(`MAIL FROM:<${USER}>`);
      assert.equal(m.code, 530, m.raw);
      assert.match(m.text, /^5\.7\.0 /);
      const bad = await c.cmd(`AUTH PLAIN ${saslPlain(USER, 'wrong password')}`);
      assert.equal(bad.code, 535, bad.raw);
      assert.match(bad.text, /^5\.7\.8 /);
      const good = await c.cmd(`AUTH PLAIN ${saslPlain(USER, PASSWORD)}`);
      assert.equal(good.code, 235, good.raw);
      assert.equal((await c.cmd(`MAIL FROM:<${USER}>`)).code, 250);
      assert.equal((await c.cmd('QUIT')).code, 221);
    } finally {
      c.close();
    }
  });

  test('a real Postfix with smtp_tls_security_level = encrypt relays into postern’s MX', async () => {
    const token = `relay-${Date.now()}`;
    const body = message(token, 'dave@client.test', 'erin@peer.test');
    const file = join(tmp, `${token}.eml`);
    await writeFile(file, swaksData(body));
    // Inject into the relay client's own smtpd (127.0.0.1 is in its mynetworks).
    const r = await swaks([
      '--server',
      `127.0.0.1:${relayClient.port}`,
      '--from',
      'dave@client.test',
      '--to',
      'erin@peer.test',
      '--data',
      `@${file}`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);

    const stored = await waitFor(
      () => findInMaildir(dest.maildir, token),
      45_000,
      'relay client → postern → destination Postfix',
    ).catch(async (e: unknown) => {
      throw new Error(`${String(e)}\n--- relay client log:\n${await relayClient.logs()}`);
    });
    assert.ok(stored.endsWith(body.replaceAll('\r\n', '\n')), `message altered in transit:\n${stored}`);
    const received = headerFields(stored).filter((f) => /^Received:/i.test(f));
    // destination Postfix ← postern ← relay client Postfix ← swaks
    assert.ok(received.length >= 3, stored);
    assert.match(received[0] as string, /by mx\.peer\.test \(Postfix\) with ESMTPS id /);
    assert.match(received[1] as string, /^Received: from relay\.client\.test \(\[127\.0\.0\.1\]\)/);
    assert.match(received[1] as string, /\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)/);
    assert.match(received[1] as string, /by mx\.postern\.test \(postern\) with ESMTPS id \S+/);
    assert.doesNotMatch(received[1] as string, /ESMTPSA/);
    assert.match(received[2] as string, /by relay\.client\.test \(Postfix\) with ESMTP id /);
    accepted['mx'] = (accepted['mx'] ?? 0) + 1;

    // The relay client's side: its smtp(8) negotiated TLS with postern and got 250 for the hop.
    const log = await waitFor(
      async () => {
        const l = await relayClient.logs();
        return / status=sent /.test(l) ? l : null;
      },
      10_000,
      'the relay client to log the delivery',
    );
    assert.match(log, /TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23]/);
    assert.match(log, new RegExp(`relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${g.port['mx']}.*status=sent`));
  });

  test('policy encrypt never falls back to cleartext: a next hop without STARTTLS gets no mail', async () => {
    const before = await relayClient.logs();
    const mailSessions = (log: string): number => (log.match(/ disconnect from .* mail=/g) ?? []).length;
    const c = await openSmtpSession(g.port['submissions'] as number, {
      implicitTls: true,
      auth: { user: USER, password: PASSWORD },
    });
    let id: string;
    try {
      assert.equal((await c.cmd(`MAIL FROM:<${USER}>`)).code, 250);
      assert.equal((await c.cmd('RCPT TO:<frank@cleartext.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const done = await c.cmd(`Subject: must not travel in cleartext\r\n\r\nsecret\r\n.`);
      assert.equal(done.code, 250, done.raw);
      id = /queued as (\S+)/.exec(done.text)?.[1] ?? '';
      assert.notEqual(id, '');
      await c.cmd('QUIT');
    } finally {
      c.close();
    }
    accepted['submissions'] = (accepted['submissions'] ?? 0) + 1;
    const msg = await waitFor(
      async () => {
        const m = await g.gw.spool.get(id);
        return m?.recipients[0]?.state === 'deferred' ? m : null;
      },
      15_000,
      'the recipient deferred',
    );
    // The reason says in plain words what happened and which rule decided (kept for the bounce).
    assert.match(msg.recipients[0]?.reason ?? '', /did not offer STARTTLS/);
    assert.match(msg.recipients[0]?.reason ?? '', /requires TLS \(encrypt\)/);
    const attempt = g.logs.find((l) => l['event'] === 'delivery.attempt' && l['msgId'] === id);
    assert.ok(attempt, 'delivery.attempt logged');
    assert.equal(attempt['outcome'], 'policy-fail');
    assert.equal(attempt['tls'], null);
    // Postfix saw postern connect and leave without a MAIL command (an EHLO/QUIT session only).
    // (postlogd writes asynchronously, so wait for the line.)
    const log = await waitFor(
      async () => {
        const l = await relayClient.logs();
        return / disconnect from /.test(l.slice(before.length)) ? l : null;
      },
      5000,
      'the cleartext peer to log the session',
    );
    assert.match(log.slice(before.length), / disconnect from \S+\[127\.0\.0\.1\] ehlo=1 (?!.*mail=).*commands=\d+/);
    assert.equal(mailSessions(log), mailSessions(before));
  });

  test('`postern queue list` and the metrics endpoint of the running gateway', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [BIN, 'queue', ...args, '--config', g.configPath], { timeoutMs: 30_000 });
    // Everything but the cleartext.test message was delivered and has left the queue.
    const r = await cli('list');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^queued: 0 {2}deferred: 1 {2}delivered: 0 {2}bounced: 0\n/);
    const rows = [...r.stdout.matchAll(/^(\S+) {2}\S+ {2}\d+ bytes {2}from <([^>]*)>\n {4}(\S+) (\w+)/gm)];
    assert.equal(rows.length, 1, r.stdout);
    const [, id, from, rcpt, state] = rows[0] as RegExpMatchArray;
    assert.deepEqual([from, rcpt, state], [USER, 'frank@cleartext.test', 'deferred']);

    const json = await cli('list', '--json');
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { counts: Record<string, number>; messages: Array<{ id: string }> };
    assert.deepEqual(parsed.counts, { queued: 0, deferred: 1, delivered: 0, bounced: 0 });
    assert.deepEqual(
      parsed.messages.map((m) => m.id),
      [id],
    );

    const show = await cli('show', id as string);
    assert.equal(show.code, 0, show.stderr);
    assert.equal((JSON.parse(show.stdout) as { id: string }).id, id);
    const del = await cli('delete', id as string);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(await g.gw.spool.counts(), { queued: 0, deferred: 0, delivered: 0, bounced: 0 });
    assert.match((await cli('list')).stdout, /^queued: 0 {2}deferred: 0 {2}delivered: 0 {2}bounced: 0\n$/);

    const res = await fetch(`${g.adminUrl}/metrics`, { headers: { authorization: `Bearer ${g.adminToken}` } });
    assert.equal(res.status, 200);
    const metrics = await res.text();
    for (const [listener, n] of Object.entries(accepted)) {
      assert.ok(n > 0, `no message was accepted on ${listener}`);
      assert.match(metrics, new RegExp(`^postern_messages_accepted_total\\{listener="${listener}"\\} ${n}$`, 'm'));
    }
    const delivered = (accepted['submission'] ?? 0) + (accepted['submissions'] ?? 0) - 1 + (accepted['mx'] ?? 0);
    assert.match(metrics, new RegExp(`^postern_recipient_results_total\\{state="delivered"\\} ${delivered}$`, 'm'));
    assert.match(metrics, /^postern_recipient_results_total\{state="deferred"\} [1-9]\d*$/m);
    assert.match(metrics, /^postern_auth_attempts_total\{result="bad"\} 1$/m);

    // An unreachable admin endpoint is an error, not an empty queue.
    const dead = await run(
      process.execPath,
      [BIN, 'queue', 'list', '--admin', 'http://127.0.0.1:1', '--token-file', g.config.admin?.tokenFile ?? ''],
      { timeoutMs: 30_000 },
    );
    assert.notEqual(dead.code, 0);
    assert.match(dead.stderr, /cannot reach the running server/);
  });
});
