/**
 * Attack: using postern as an open relay. The real gateway (config file → startGateway) is driven
 * over SMTP from 127.0.0.2, outside `relay.networks` (127.0.0.1/32), with the classic relay
 * tricks in RCPT TO — '%' and '!' routing, quoted local parts, source routes, address literals,
 * look-alike and trailing-dot domains, mixed case — cleartext and after STARTTLS. Every one must
 * be refused with 5xx, and nothing may reach the queue. Controls show that each refusal is the
 * relay rule at work: the same client may mail our own domain, a client inside `networks` may
 * relay, and a logged-in user may relay but only with an own sender address (Postfix
 * permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination,
 * reject_sender_login_mismatch).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCert } from '../helpers/certs.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { openSmtpSession } from '../helpers/smtp-client.ts';
import type { Reply, SmtpTestClient } from '../helpers/smtp-client.ts';
import { freePort } from '../integration/peers/ports.ts';

const OUTSIDE = '127.0.0.2';
const INSIDE = '127.0.0.1';
const USER = 'alice@example.org';
const PASSWORD = 'open sesame, but only over TLS';

/**
 * RCPT TO arguments that must never be accepted from an unauthenticated client outside `networks`,
 * with how each must be refused: by the relay rule (valid syntax, foreign or routed destination)
 * or already by the path syntax (RFC 5321 §4.1.2).
 */
const TRICKS: ReadonlyArray<readonly [rcpt: string, refusal: 'relay' | 'syntax' | 'utf8']> = [
  ['<user@evil.example>', 'relay'],
  ['<USER@EVIL.EXAMPLE>', 'relay'],
  ['<user@Evil.Example>', 'relay'],
  ['<user@evil.example> NOTIFY=NEVER', 'relay'],
  ['<postmaster@evil.example>', 'relay'],
  // '%' and '!' routing (Postfix allow_untrusted_routing = no)
  ['<user%evil.example@example.org>', 'relay'],
  ['<user%evil.example@EXAMPLE.ORG>', 'relay'],
  ['<"user%evil.example"@example.org>', 'relay'],
  ['<evil.example!user@example.org>', 'relay'],
  ['<user!evil.example@example.org>', 'relay'],
  ['<"evil.example!user"@example.org>', 'relay'],
  // quoted local parts hiding an '@'
  ['<"user@evil.example"@example.org>', 'relay'],
  ['<"user@evil.example">', 'syntax'],
  ['<user\\@evil.example@example.org>', 'syntax'],
  ['<user@evil.example@example.org>', 'syntax'],
  ['<user@example.org@evil.example>', 'syntax'],
  // source routes: discarded (RFC 5321 §4.1.1.3, Appendix C), the mailbox decides
  ['<@example.org:user@evil.example>', 'relay'],
  ['<@example.org,@example.org:user@evil.example>', 'relay'],
  // address literals and numeric hosts
  ['<user@[192.0.2.1]>', 'relay'],
  ['<user@[127.0.0.1]>', 'relay'],
  ['<user@[IPv6:2001:db8::1]>', 'relay'],
  ['<user@[IPv6:::ffff:192.0.2.1]>', 'relay'],
  ['<user@127.0.0.1>', 'relay'],
  // look-alike domains
  ['<user@example.org.evil.example>', 'relay'],
  ['<user@sub.example.org>', 'relay'],
  ['<user@localhost>', 'relay'],
  ['<user@evil.example.>', 'syntax'],
  ['<user@example.org.>', 'syntax'],
  ['<user@example.org%evil.example>', 'syntax'],
  ['user@evil.example', 'syntax'],
  // full-width letters, without SMTPUTF8 (RFC 6531 §3.5)
  ['<user@\uff45\uff56\uff49\uff4c.example>', 'utf8'],
];

const REFUSAL = {
  relay: /^5\.7\.1 <.*>: Relay access denied$/,
  syntax: /^5\.1\.3 Bad recipient address syntax/,
  utf8: /^5\.6\.7 .*SMTPUTF8/,
};

function assertRefused(r: Reply, what: string): void {
  // A permanent refusal: 4xx would only make the relay attempt wait and retry.
  assert.ok(r.code >= 500 && r.code <= 559, `${what}: expected 5xx, got ${r.raw.trim()}`);
}

describe('open relay battery over SMTP against the gateway', { timeout: 120_000 }, () => {
  let g: TestGateway;

  before(async () => {
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    const closed = await freePort();
    g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      listeners: [
        { name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' },
        { name: 'submission', mode: 'starttls', role: 'submission', auth: 'required' },
      ],
      users: [{ name: USER, password: PASSWORD }],
      relay: { domains: ['example.org'], networks: [`${INSIDE}/32`], senderMustMatchLogin: true },
      // Any mail that did get queued goes nowhere (a closed loopback port), never off the machine.
      routes: { 'example.org': `127.0.0.1:${closed}`, 'evil.example': `127.0.0.1:${closed}` },
      // Each refusal counts as an error (Postfix smtpd_hard_error_limit); the battery runs many
      // sessions in parallel from one address.
      limits: { maxErrors: 100, maxConnectionsPerIp: 100, maxConnections: 200 },
    });
  });

  after(async () => {
    await g?.close();
  });

  async function attempt(rcpt: string, starttls: boolean): Promise<{ reply: Reply; data: Reply }> {
    const c = await openSmtpSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls });
    try {
      assert.equal(c.localAddress, OUTSIDE);
      assert.equal((await c.cmd('MAIL FROM:<someone@evil.example>')).code, 250);
      const r = await c.cmd(`RCPT TO:${rcpt}`);
      // With no accepted recipient there must be no transaction to send a message in.
      const d = await c.cmd('DATA');
      if (d.code === 354) c.send('Subject: relayed\r\n\r\nspam\r\n.\r\n');
      return { reply: r, data: d };
    } finally {
      c.close();
    }
  }

  test('every relay trick is refused with 5xx, cleartext and after STARTTLS, and nothing is queued', async () => {
    const runs = TRICKS.flatMap(([rcpt, refusal]) => [false, true].map((tls) => ({ rcpt, refusal, tls })));
    const results = await Promise.all(runs.map(async (a) => ({ ...a, ...(await attempt(a.rcpt, a.tls)) })));
    for (const r of results) {
      const what = `RCPT TO:${r.rcpt}${r.tls ? ' (after STARTTLS)' : ''}`;
      assertRefused(r.reply, what);
      // Refused for the right reason: a foreign destination by the relay rule, not by accident.
      assert.match(r.reply.text, REFUSAL[r.refusal], `${what}: ${r.reply.raw.trim()}`);
      assert.ok(r.data.code >= 500, `${what}: DATA got ${r.data.raw.trim()}`);
    }
    assert.deepEqual(await g.gw.spool.counts(), { queued: 0, deferred: 0, delivered: 0, bounced: 0 });
    assert.deepEqual(await g.gw.spool.list(), []);
    assert.ok(!g.logs.some((l) => l['event'] === 'queue.accepted'), 'a relay attempt was queued');
  });

  test('pipelined tricks in one transaction are refused one by one', async () => {
    const c = await openSmtpSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls: true });
    try {
      const rcpts = ['<a%evil.example@example.org>', '<b@evil.example>', '<"c@evil.example"@example.org>'];
      // RFC 2920: the whole group in one write; each RCPT still gets its own reply.
      c.send(['MAIL FROM:<x@evil.example>', ...rcpts.map((r) => `RCPT TO:${r}`), 'DATA', ''].join('\r\n'));
      assert.equal((await c.reply()).code, 250);
      for (const r of rcpts) {
        const reply = await c.reply();
        assertRefused(reply, r);
        assert.match(reply.text, REFUSAL.relay, r);
      }
      assert.ok((await c.reply()).code >= 500, 'DATA without recipients');
    } finally {
      c.close();
    }
    assert.equal((await g.gw.spool.counts()).queued, 0);
  });

  test('control: submission without AUTH is refused (530) even for our own domain', async () => {
    const c = await openSmtpSession(g.port['submission'] as number, { localAddress: OUTSIDE, starttls: true });
    try {
      const m = await c.cmd('MAIL FROM:<someone@example.org>');
      assert.equal(m.code, 530, m.raw);
      assert.match(m.text, /^5\.7\.0 /);
      const r = await c.cmd('RCPT TO:<user@evil.example>');
      assert.ok(r.code >= 500, r.raw);
    } finally {
      c.close();
    }
  });

  test('control: a client inside relay.networks may relay (so the refusals above are the network rule)', async () => {
    const c = await openSmtpSession(g.port['mx'] as number, { localAddress: INSIDE });
    try {
      assert.equal((await c.cmd('MAIL FROM:<someone@example.org>')).code, 250);
      const r = await c.cmd('RCPT TO:<user@evil.example>');
      assert.equal(r.code, 250, r.raw);
      assert.equal((await c.cmd('RSET')).code, 250);
      assert.equal((await c.cmd('QUIT')).code, 221);
    } finally {
      c.close();
    }
    assert.equal((await g.gw.spool.counts()).queued, 0);
  });

  test('control: authenticated on submission, relaying is allowed; the sender must be the user’s own', async () => {
    const c = await openSmtpSession(g.port['submission'] as number, {
      localAddress: OUTSIDE,
      starttls: true,
      auth: { user: USER, password: PASSWORD },
    });
    try {
      for (const sender of [
        '<bob@example.org>',
        '<alice@example.org.evil.example>',
        '<"alice@example.org"@evil.example>',
        '<alice%example.org@evil.example>',
      ]) {
        const m = await c.cmd(`MAIL FROM:${sender}`);
        assert.equal(m.code, 553, `${sender}: ${m.raw}`);
        assert.match(m.text, /^5\.7\.1 .*not owned by user alice@example\.org/);
      }
      assert.equal((await c.cmd(`MAIL FROM:<${USER}>`)).code, 250);
      const r = await c.cmd('RCPT TO:<user@evil.example>');
      assert.equal(r.code, 250, r.raw);
      // Cancel: the transaction is dropped, nothing is queued.
      assert.equal((await c.cmd('RSET')).code, 250);
      assert.equal((await c.cmd('QUIT')).code, 221);
    } finally {
      c.close();
    }
    assert.deepEqual(await g.gw.spool.counts(), { queued: 0, deferred: 0, delivered: 0, bounced: 0 });
  });

  test('control: mail for our own domain from outside is accepted, and only that recipient is queued', async () => {
    const c: SmtpTestClient = await openSmtpSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls: true });
    let id: string;
    try {
      assert.equal((await c.cmd('MAIL FROM:<someone@evil.example>')).code, 250);
      for (const ok of ['<user@example.org>', '<Other.User@EXAMPLE.ORG>', '<Postmaster>']) {
        const r = await c.cmd(`RCPT TO:${ok}`);
        assert.equal(r.code, 250, `${ok}: ${r.raw}`);
      }
      const evil = await c.cmd('RCPT TO:<user@evil.example>');
      assertRefused(evil, 'evil recipient mixed in');
      assert.match(evil.text, REFUSAL.relay);
      assert.equal((await c.cmd('DATA')).code, 354);
      const done = await c.cmd('Subject: hello\r\n\r\nfor us only\r\n.');
      assert.equal(done.code, 250, done.raw);
      id = /queued as (\S+)/.exec(done.text)?.[1] ?? '';
      await c.cmd('QUIT');
    } finally {
      c.close();
    }
    const msg = await g.gw.spool.get(id);
    assert.ok(msg, 'the accepted message is in the queue');
    assert.deepEqual(msg.recipients.map((r) => r.address).sort(), [
      'Other.User@EXAMPLE.ORG',
      // <Postmaster> is rewritten to relay.postmaster (RFC 5321 §4.5.1; default: our first domain).
      'postmaster@example.org',
      'user@example.org',
    ]);
    assert.ok(!msg.recipients.some((r) => /evil/i.test(r.address)));
    assert.equal(msg.envelope.arrival.authUser, null);
    // Leave nothing behind for other tests (the route goes to a closed port anyway).
    assert.equal(await g.gw.spool.delete(id), true);
  });
});
