/**
 * The test peers other tests rest on: the raw SMTP client (test/helpers/smtp-client.ts) against
 * the scriptable sink (test/helpers/smtp-sink.ts). If these were wrong, every test built on them
 * would check the wrong thing, so they get tests of their own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { makeCert } from '../../helpers/certs.ts';
import { openSmtpSession, saslPlain, SmtpTestClient } from '../../helpers/smtp-client.ts';
import { startSmtpSink } from '../../helpers/smtp-sink.ts';
import type { SinkCommand, SmtpSink } from '../../helpers/smtp-sink.ts';
import { RawSmtp, openSession } from '../../helpers/gateway.ts';
import { plain, session } from '../../helpers/smtp-harness.ts';

describe('scriptable sink and raw client', () => {
  let sink: SmtpSink;
  const seen: SinkCommand[] = [];
  before(async () => {
    const cert = await makeCert({ subject: 'CN=sink.postern.test', dnsNames: ['sink.postern.test'] });
    sink = await startSmtpSink({
      tls: { cert: cert.pem, key: cert.keyPem },
      extensions: ['PIPELINING', 'DSN'],
      script: (c) => {
        seen.push(c);
        if (c.verb === 'RCPT' && c.line.includes('<refused@')) return '550 5.1.1 no such user\r\n';
        if (c.verb === '.' && c.data?.includes('Subject: defer') === true) return '451 4.3.0 try later\r\n';
        return null;
      },
    });
  });
  after(async () => {
    await sink.close();
  });

  it('answers as scripted, records only what it accepted, and counts', async () => {
    const before = { connections: sink.connections, quits: sink.quits, messages: sink.messages.length };
    const c = await openSmtpSession(sink.port, { starttls: true, servername: 'sink.postern.test' });
    assert.equal(c.tls, true);
    const ehlo = await c.cmd('EHLO again.example');
    assert.deepEqual(ehlo.lines, ['250-sink.postern.test', '250-PIPELINING', '250 DSN']);
    assert.equal(ehlo.text, 'sink.postern.test\nPIPELINING\nDSN');
    assert.equal((await c.cmd('MAIL FROM:<a@client.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<refused@sink.test>')).raw, '550 5.1.1 no such user\r\n');
    assert.equal((await c.cmd('RCPT TO:<ok@sink.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: defer\r\n\r\nx\r\n.')).raw, '451 4.3.0 try later\r\n');
    assert.equal((await c.cmd('MAIL FROM:<a@client.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<ok@sink.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: keep\r\n\r\n..dot\r\n.')).code, 250);
    assert.equal((await c.cmd('QUIT')).code, 221);
    assert.equal(await c.waitClosed(), true);

    const kept = sink.messages.slice(before.messages);
    assert.equal(kept.length, 1, 'the deferred message is not recorded');
    assert.deepEqual(kept[0]?.to, ['ok@sink.test']);
    assert.equal(kept[0]?.data.toString(), 'Subject: keep\r\n\r\n.dot\r\n');
    assert.equal(kept[0]?.tls, true);
    assert.equal(sink.connections, before.connections + 1);
    assert.equal(sink.quits, before.quits + 1);
    const end = seen.find((x) => x.verb === '.' && x.data?.includes('Subject: defer') === true);
    assert.deepEqual(end?.to, ['ok@sink.test'], 'the script sees the transaction');
  });

  it('the old helper names are aliases of the one client', async () => {
    assert.equal(RawSmtp, SmtpTestClient);
    assert.equal(plain, saslPlain);
    assert.equal(saslPlain('u', 'p', 'z'), Buffer.from('z\0u\0p').toString('base64'));
    const a = await openSession(sink.port);
    const b = await session(sink.port, { tls: true });
    assert.ok(a instanceof SmtpTestClient && b instanceof SmtpTestClient);
    assert.equal(b.tls, true);
    a.close();
    b.close();
  });
});
