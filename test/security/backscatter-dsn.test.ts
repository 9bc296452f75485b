/**
 * Attack: backscatter through bounces. From outside `relay.networks`, unauthenticated, a client
 * forges `MAIL FROM:<victim@third.test>` and sends to a domain postern relays for; the next hop
 * refuses the recipient (550), and postern's bounce goes to the forged sender. It must not carry
 * the message itself (the attacker's payload, delivered to a third party by postern): the bounce
 * returns the headers only. Controls: the sender asking RET=FULL, and a client inside `networks`,
 * get the full message back — the rule, not a broken bounce, is what held the body back.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { makeCert } from '../helpers/certs.ts';
import { openSession, startTestGateway, waitFor } from '../helpers/gateway.ts';
import type { TestGateway } from '../helpers/gateway.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import type { SmtpSink } from '../helpers/smtp-sink.ts';

const OUTSIDE = '127.0.0.2';
const INSIDE = '127.0.0.1';
const PAYLOAD = 'BUY CHEAP WATCHES at http://spam.example/';

/** A next hop that refuses every recipient: 550 5.1.1 (the relay.domains case of the review). */
async function refusingNextHop(): Promise<{ server: Server; port: number }> {
  const server = createServer((s: Socket) => {
    s.setEncoding('latin1');
    s.on('error', () => s.destroy());
    let buf = '';
    s.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\r\n')) >= 0) {
        const verb = buf.slice(0, 4).toUpperCase();
        buf = buf.slice(nl + 2);
        if (verb === 'EHLO') s.write('250-next.test\r\n250 PIPELINING\r\n');
        else if (verb === 'RCPT') s.write('550 5.1.1 no such user here\r\n');
        else if (verb === 'QUIT') return void s.end('221 bye\r\n');
        else s.write('250 2.0.0 ok\r\n');
      }
    });
    s.write('220 next.test ESMTP\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0 };
}

describe('backscatter: a bounce to a possibly forged sender carries no message body', { timeout: 120_000 }, () => {
  let g: TestGateway;
  let victim: SmtpSink;
  let next: { server: Server; port: number };

  before(async () => {
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    victim = await startSmtpSink();
    next = await refusingNextHop();
    g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      listeners: [{ name: 'mx', mode: 'starttls', role: 'mx', auth: 'none' }],
      relay: { domains: ['relay.test'], networks: [`${INSIDE}/32`] },
      routes: { 'relay.test': `127.0.0.1:${next.port}`, 'third.test': `127.0.0.1:${victim.port}` },
    });
  });
  after(async () => {
    await g?.close();
    await victim?.close();
    await new Promise<void>((r) => next.server.close(() => r()));
  });

  /** Send one message and return the bounce the forged sender received. */
  async function bounceFor(from: string, mailParams: string, localAddress: string): Promise<string> {
    const before = victim.messages.length;
    const c = await openSession(g.port['mx'] as number, { localAddress });
    try {
      assert.equal((await c.cmd(`MAIL FROM:<${from}>${mailParams}`)).code, 250);
      assert.equal((await c.cmd('RCPT TO:<nobody@relay.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      const done = await c.cmd(
        `Subject: hello\r\nMessage-ID: <bs-${Date.now()}@attacker.example>\r\n\r\n${PAYLOAD}\r\n.`,
      );
      assert.equal(done.code, 250, done.raw);
    } finally {
      c.close();
    }
    const m = await waitFor(() => victim.messages[before] ?? null, 30_000, 'the bounce at the sender');
    assert.equal(m.from, '', 'a bounce comes from the null sender');
    assert.deepEqual(m.to, [from]);
    return m.data.toString('latin1');
  }

  test('unauthenticated, from outside networks: headers only', async () => {
    const dsn = await bounceFor('victim@third.test', '', OUTSIDE);
    assert.match(dsn, /^Action: failed\r$/m);
    assert.match(dsn, /^Content-Type: text\/rfc822-headers/m);
    assert.match(dsn, /^Subject: hello\r$/m, 'the headers identify the message');
    assert.ok(!dsn.includes(PAYLOAD), 'the payload must not be delivered to the forged sender');
  });

  test('control: RET=FULL asked by the sender returns the message', async () => {
    const dsn = await bounceFor('victim@third.test', ' RET=FULL', OUTSIDE);
    assert.match(dsn, /^Content-Type: message\/rfc822/m);
    assert.ok(dsn.includes(PAYLOAD));
  });

  test('control: a client inside networks gets the message back', async () => {
    const dsn = await bounceFor('app@third.test', '', INSIDE);
    assert.ok(dsn.includes(PAYLOAD));
  });
});
