/**
 * Attack: backscatter and lost postmaster mail (issue 9). From outside `relay.networks`,
 * unauthenticated: `MAIL FROM:<victim@third.test>`, `RCPT TO:<Postmaster>` was accepted with
 * nowhere to deliver it, so the full message bounced to the forged sender; with `MAIL FROM:<>`
 * it was dropped. RFC 5321 §4.5.1: Postmaster must be accepted AND delivered, so it is rewritten
 * to `relay.postmaster`. Recipients of a domain in `relay.recipients` are checked before the 250
 * (550 5.1.1), so a next hop's "user unknown" cannot become a DSN to a forged sender; and with
 * `relay.rejectUnauthenticatedLocalSenders` outsiders cannot use our own domain as sender.
 * The real gateway is driven from 127.0.0.2, outside networks (127.0.0.1/32).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCert } from '../helpers/certs.ts';
import { openSession, startTestGateway } from '../helpers/gateway.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../integration/peers/ports.ts';

const OUTSIDE = '127.0.0.2';
const INSIDE = '127.0.0.1';

async function gateway(relay: Record<string, unknown>): Promise<TestGateway> {
  const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
  const closed = await freePort();
  return startTestGateway({
    certPem: cert.pem,
    keyPem: cert.keyPem,
    listeners: [{ name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' }],
    relay: { networks: [`${INSIDE}/32`], ...relay },
    // Queued mail goes nowhere (a closed loopback port, deferred), never off the machine.
    routes: { 'example.org': `127.0.0.1:${closed}`, 'third.test': `127.0.0.1:${closed}` },
    limits: { maxErrors: 100 },
    // No MTA-STS lookups (the test DNS is a dead port): delivery attempts end at once.
    extraConfig: { mtaSts: { enabled: false } },
  });
}

/** One transaction from `from` (source address) with MAIL FROM `sender` to `rcpt`; the queued recipients. */
async function send(g: TestGateway, sender: string, rcpt: string): Promise<string[]> {
  const c = await openSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls: false });
  try {
    assert.equal((await c.cmd(`MAIL FROM:${sender}`)).code, 250);
    const r = await c.cmd(`RCPT TO:${rcpt}`);
    assert.equal(r.code, 250, r.raw);
    assert.equal((await c.cmd('DATA')).code, 354);
    const done = await c.cmd('Subject: to the postmaster\r\n\r\nhello\r\n.');
    assert.equal(done.code, 250, done.raw);
    const id = /queued as (\S+)/.exec(done.text)?.[1] ?? '';
    const msg = await g.gw.spool.get(id);
    assert.ok(msg, 'queued');
    return msg.recipients.map((x) => x.address);
  } finally {
    c.close();
  }
}

describe('backscatter and postmaster mail', { timeout: 60_000 }, () => {
  let g: TestGateway; // defaults only: relay.domains example.org
  let strict: TestGateway; // recipients listed, local senders checked

  before(async () => {
    g = await gateway({ domains: ['example.org'] });
    strict = await gateway({
      localDomains: ['example.org'],
      postmaster: 'hostmaster@example.org',
      recipients: { 'example.org': ['user', 'Alice'] },
      rejectUnauthenticatedLocalSenders: true,
    });
  });
  after(async () => {
    await g?.close();
    await strict?.close();
  });

  test('RCPT TO:<Postmaster> from a forged sender is delivered to the postmaster, not bounced', async () => {
    for (const rcpt of ['<Postmaster>', '<postmaster>', '<POSTMASTER>']) {
      // Default postmaster: postmaster@ our first domain (RFC 5321 §4.5.1).
      assert.deepEqual(await send(g, '<victim@third.test>', rcpt), ['postmaster@example.org']);
    }
  });

  test('MAIL FROM:<> to <Postmaster> is delivered, not dropped', async () => {
    assert.deepEqual(await send(g, '<>', '<Postmaster>'), ['postmaster@example.org']);
    assert.deepEqual(await send(strict, '<>', '<Postmaster>'), ['hostmaster@example.org']);
  });

  test('MAIL FROM:<Postmaster> and bad senders: 501 5.1.7 (sender syntax), no internal error', async () => {
    const c = await openSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls: false });
    try {
      for (const from of ['<Postmaster>', '<no-domain>', '<a@@b>', '<a@example.org.>']) {
        const r = await c.cmd(`MAIL FROM:${from}`);
        assert.match(r.raw, /^501 5\.1\.7 Bad sender address syntax/, `${from}: ${r.raw}`);
      }
      assert.equal((await c.cmd('MAIL FROM:<a@third.test>')).code, 250, 'the session is still usable');
    } finally {
      c.close();
    }
    assert.deepEqual(
      g.logs.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50),
      [],
      'nothing logged as an error',
    );
  });

  test('relay.recipients: unknown users get 550 5.1.1 before the 250; listed ones and postmaster pass', async () => {
    const c = await openSession(strict.port['mx'] as number, { localAddress: OUTSIDE, starttls: false });
    try {
      assert.equal((await c.cmd('MAIL FROM:<victim@third.test>')).code, 250);
      for (const rcpt of ['<nobody@example.org>', '<user+tag@example.org>', '<USERX@Example.org>']) {
        const r = await c.cmd(`RCPT TO:${rcpt}`);
        assert.match(r.raw, /^550 5\.1\.1 <.*>: Recipient address rejected: User unknown/, `${rcpt}: ${r.raw}`);
      }
      for (const rcpt of ['<user@example.org>', '<alice@EXAMPLE.org>', '<Postmaster@example.org>']) {
        assert.equal((await c.cmd(`RCPT TO:${rcpt}`)).code, 250, rcpt);
      }
    } finally {
      c.close();
    }
    // Also from inside networks: an unknown user is unknown for everyone.
    const i = await openSession(strict.port['mx'] as number, { localAddress: INSIDE, starttls: false });
    try {
      assert.equal((await i.cmd('MAIL FROM:<a@third.test>')).code, 250);
      assert.match((await i.cmd('RCPT TO:<nobody@example.org>')).raw, /^550 5\.1\.1 /);
    } finally {
      i.close();
    }
  });

  test('rejectUnauthenticatedLocalSenders: an outsider using our domain as sender gets 553 5.7.1', async () => {
    const c = await openSession(strict.port['mx'] as number, { localAddress: OUTSIDE, starttls: false });
    try {
      const r = await c.cmd('MAIL FROM:<user@Example.ORG>');
      assert.match(r.raw, /^553 5\.7\.1 <user@Example\.ORG>: Sender address rejected/);
      // The null sender (bounces, RFC 5321 §4.5.5) and foreign senders are not affected.
      assert.equal((await c.cmd('MAIL FROM:<>')).code, 250);
    } finally {
      c.close();
    }
    const i = await openSession(strict.port['mx'] as number, { localAddress: INSIDE, starttls: false });
    try {
      assert.equal((await i.cmd('MAIL FROM:<user@example.org>')).code, 250, 'inside networks it is ours');
    } finally {
      i.close();
    }
    // Off by default.
    const o = await openSession(g.port['mx'] as number, { localAddress: OUTSIDE, starttls: false });
    try {
      assert.equal((await o.cmd('MAIL FROM:<user@example.org>')).code, 250);
    } finally {
      o.close();
    }
  });
});
