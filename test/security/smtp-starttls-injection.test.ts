// Attack: STARTTLS command injection (CVE-2011-0411 class; "NO STARTTLS", USENIX Security 2021).
// A man in the middle appends plaintext commands to the client's STARTTLS in the same segment; a
// vulnerable server keeps them buffered and executes them inside the TLS session as if the client
// had sent them there. RFC 3207 §4.2: the server must discard them. Two replies after the
// handshake (one for the injected command) means vulnerable.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, type Harness } from '../helpers/smtp-harness.ts';
import { saslPlain, SmtpTestClient } from '../helpers/smtp-client.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

async function greeted(port: number): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  return c;
}

describe('STARTTLS injection', () => {
  test('STARTTLS\\r\\nRSET\\r\\n in one segment: exactly one reply after TLS (for our own NOOP)', async () => {
    const c = await greeted(h.port['mx'] as number);
    const before = h.server.stats().starttlsInjections;
    c.send('STARTTLS\r\nRSET\r\n');
    const r = await c.reply();
    assert.equal(r.raw, '220 2.0.0 Ready to start TLS\r\n');
    assert.equal(await c.drainFor(50), '', 'no plaintext reply to the injected RSET before TLS');
    await c.upgrade();
    assert.equal(await c.drainFor(300), '', 'the injected RSET must not be answered inside TLS');
    c.send('NOOP\r\n');
    assert.equal((await c.reply()).raw, '250 2.0.0 Ok\r\n');
    assert.equal(await c.drainFor(200), '');
    assert.equal(h.server.stats().starttlsInjections, before + 1);
    c.close();
  });

  test('an injected MAIL FROM is not executed inside TLS', async () => {
    const c = await greeted(h.port['mx'] as number);
    c.send('STARTTLS\r\nEHLO evil\r\nMAIL FROM:<attacker@local.test>\r\n');
    assert.equal((await c.reply()).code, 220);
    await c.upgrade();
    assert.equal(await c.drainFor(200), '');
    // No EHLO and no MAIL were carried over: a RCPT now is out of sequence.
    assert.match((await c.cmd('RCPT TO:<b@local.test>')).raw, /^503 5\.5\.1 /);
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd('RCPT TO:<b@local.test>')).raw, /^503 5\.5\.1 /);
    c.close();
  });

  test('an injected AUTH never reaches the authenticate hook', async () => {
    const c = await greeted(h.port['sub'] as number);
    const calls = h.authCalls.length;
    c.send(`STARTTLS\r\nEHLO evil\r\nAUTH PLAIN ${saslPlain('alice', 'secret')}\r\n`);
    assert.equal((await c.reply()).code, 220);
    await c.upgrade();
    assert.equal(await c.drainFor(200), '');
    assert.equal(h.authCalls.length, calls);
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd('MAIL FROM:<alice@local.test>')).raw, /^530 5\.7\.0 /);
    c.close();
  });

  test('STARTTLS and a NOOP in two writes of one segment: the handshake succeeds and the NOOP is never answered', async () => {
    const c = await greeted(h.port['mx'] as number);
    // cork/uncork: both writes leave in one segment, so the server reads them together and must
    // discard the NOOP with its buffer (RFC 3207 §4.2). The handshake is required to succeed: a
    // failure here is a defect, not an acceptable outcome.
    c.socket.cork();
    c.send('STARTTLS\r\n');
    c.send('NOOP\r\n');
    c.socket.uncork();
    assert.equal((await c.reply()).raw, '220 2.0.0 Ready to start TLS\r\n');
    await c.upgrade();
    assert.equal(await c.drainFor(300), '', 'the pipelined NOOP must not be answered inside TLS');
    assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 Ok\r\n');
    assert.equal(await c.drainFor(200), '', 'exactly one reply for our own NOOP');
    c.close();
  });

  test('plaintext sent after the 220 instead of a ClientHello is never answered as SMTP', async () => {
    const c = await greeted(h.port['mx'] as number);
    assert.equal((await c.cmd('STARTTLS')).raw, '220 2.0.0 Ready to start TLS\r\n');
    // The server has handed the socket to TLS: "NOOP\r\n" is now a malformed TLS record. The only
    // acceptable answers are a TLS alert record (content type 21, RFC 8446 §5.1/§6) or a bare
    // close; a "250" (the command executed in plaintext) or any other SMTP reply is the defect.
    const received: Buffer[] = [];
    c.socket.on('data', (d: Buffer) => received.push(d));
    c.send('NOOP\r\n');
    assert.equal(await c.waitClosed(5000), true, 'the server closes the connection');
    const bytes = Buffer.concat(received);
    assert.doesNotMatch(bytes.toString('latin1'), /\d{3}[ -]/, 'no SMTP reply after the 220');
    if (bytes.length > 0) {
      assert.equal(bytes[0], 21, `a TLS alert record, got ${bytes.toString('hex')}`);
      assert.equal(bytes[1], 3, 'TLS record version major 3');
    }
    c.close();
  });
});
