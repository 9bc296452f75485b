import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plain, session, SmtpTestClient, startHarness, testPki, type Harness } from '../../helpers/smtp-harness.ts';
import { ManualTimers, until } from '../../helpers/manual-timers.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

const mx = (): number => h.port['mx'] as number;
const sub = (): number => h.port['sub'] as number;
const smtps = (): number => h.port['smtps'] as number;

describe('greeting and EHLO', () => {
  test('220 with hostname and ESMTP; EHLO before TLS offers STARTTLS but no AUTH or REQUIRETLS', async () => {
    const c = await SmtpTestClient.connect(sub());
    const g = await c.reply();
    assert.equal(g.raw, '220 mx.postern.test ESMTP postern\r\n');
    const e = await c.cmd('EHLO client.example');
    assert.equal(e.code, 250);
    assert.deepEqual(
      e.lines.map((l) => l.slice(4)),
      [
        'mx.postern.test',
        'PIPELINING',
        'SIZE 100000',
        '8BITMIME',
        'SMTPUTF8',
        'ENHANCEDSTATUSCODES',
        'DSN',
        'STARTTLS',
      ],
    );
    c.close();
  });
  test('after STARTTLS: AUTH PLAIN LOGIN and REQUIRETLS, no STARTTLS, no CHUNKING', async () => {
    const c = await session(sub(), { tls: true });
    const e = await c.cmd('EHLO client.example');
    const kw = e.lines.map((l) => l.slice(4));
    assert.ok(kw.includes('AUTH PLAIN LOGIN'), kw.join('|'));
    assert.ok(kw.includes('REQUIRETLS'));
    assert.ok(!kw.includes('STARTTLS'));
    assert.ok(!kw.some((k) => k.startsWith('CHUNKING')));
    c.close();
  });
  test('MX listener never offers AUTH, even after TLS', async () => {
    const c = await session(mx(), { tls: true });
    const e = await c.cmd('EHLO client.example');
    assert.ok(!e.lines.some((l) => l.includes('AUTH')));
    const a = await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`);
    assert.equal(a.code, 503);
    c.close();
  });
  test('HELO gives a plain 250 and no extensions; MAIL parameters then need EHLO', async () => {
    const c = await SmtpTestClient.connect(mx());
    await c.reply();
    const r = await c.cmd('HELO client.example');
    assert.equal(r.raw, '250 mx.postern.test\r\n');
    const m = await c.cmd('MAIL FROM:<a@local.test> BODY=8BITMIME');
    assert.equal(m.code, 555);
    c.close();
  });
  test('EHLO without a name → 501 5.5.4', async () => {
    const c = await SmtpTestClient.connect(mx());
    await c.reply();
    assert.match((await c.cmd('EHLO')).raw, /^501 5\.5\.4 /);
    c.close();
  });
});

describe('STARTTLS', () => {
  test('220 2.0.0, state reset afterwards (EHLO again), second STARTTLS → 503 5.5.1', async () => {
    const c = await SmtpTestClient.connect(mx());
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('STARTTLS')).raw, '220 2.0.0 Ready to start TLS\r\n');
    const t = await c.upgrade();
    assert.equal(t.getProtocol(), 'TLSv1.3');
    assert.match((await c.cmd('MAIL FROM:<a@local.test>')).raw, /^503 5\.5\.1 /);
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd('STARTTLS')).raw, /^503 5\.5\.1 /);
    c.close();
  });
  test('STARTTLS on an implicit-TLS listener → 503 5.5.1', async () => {
    const c = await session(smtps(), { implicitTls: true });
    assert.match((await c.cmd('STARTTLS')).raw, /^503 5\.5\.1 /);
    c.close();
  });
});

describe('AUTH', () => {
  test('before TLS → 538 5.7.11 (RFC 4954 §4), and the password is never checked', async () => {
    const before = h.authCalls.length;
    const c = await session(sub());
    assert.match((await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`)).raw, /^538 5\.7\.11 /);
    assert.match((await c.cmd('AUTH LOGIN')).raw, /^538 5\.7\.11 /);
    assert.equal(h.authCalls.length, before);
    c.close();
  });
  test('MAIL before AUTH on a submission listener → 530 5.7.0', async () => {
    const c = await session(sub(), { tls: true });
    assert.match((await c.cmd('MAIL FROM:<alice@local.test>')).raw, /^530 5\.7\.0 /);
    c.close();
  });
  test('PLAIN with initial response → 235 2.7.0; AUTH twice → 503 5.5.1', async () => {
    const c = await session(sub(), { tls: true });
    assert.equal(
      (await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`)).raw,
      '235 2.7.0 Authentication successful\r\n',
    );
    assert.match((await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`)).raw, /^503 5\.5\.1 /);
    assert.equal((await c.cmd('MAIL FROM:<alice@local.test>')).code, 250);
    c.close();
  });
  test('PLAIN via 334 challenge, and LOGIN', async () => {
    const c = await session(sub(), { tls: true });
    assert.equal((await c.cmd('AUTH PLAIN')).raw, '334 \r\n');
    assert.equal((await c.cmd(plain('alice', 'secret'))).code, 235);
    c.close();
    const d = await session(sub(), { tls: true });
    assert.equal((await d.cmd('AUTH LOGIN')).raw, '334 VXNlcm5hbWU6\r\n');
    assert.equal((await d.cmd(Buffer.from('alice').toString('base64'))).raw, '334 UGFzc3dvcmQ6\r\n');
    assert.equal((await d.cmd(Buffer.from('secret').toString('base64'))).code, 235);
    d.close();
  });
  test('"*" cancels → 501 5.0.0; bad base64 → 501 5.5.2; unknown mechanism → 504 5.5.4', async () => {
    const c = await session(sub(), { tls: true });
    await c.cmd('AUTH LOGIN');
    assert.match((await c.cmd('*')).raw, /^501 5\.0\.0 /);
    assert.match((await c.cmd('AUTH PLAIN !!notbase64')).raw, /^501 5\.5\.2 /);
    assert.match((await c.cmd('AUTH CRAM-MD5')).raw, /^504 5\.5\.4 /);
    // EXTERNAL is not offered without a verified client certificate.
    assert.match((await c.cmd('AUTH EXTERNAL =')).raw, /^504 5\.5\.4 /);
    // The session is still usable.
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`)).code, 235);
    c.close();
  });
  test('bad password → 535 5.7.8 after the error delay; rate-limited → 454 4.7.0', async () => {
    const timers = new ManualTimers();
    const slow = await startHarness({ limits: { errorDelayMs: 300 }, server: { timers } });
    try {
      const c = await session(slow.port['sub'] as number, { tls: true });
      c.send(`AUTH PLAIN ${plain('alice', 'wrong')}\r\n`);
      // The reply waits on the error delay: nothing can arrive before the clock reaches 300 ms.
      await until(() => timers.delays().includes(300), 'the error delay started');
      timers.advance(299);
      assert.equal(await c.drainFor(0), '');
      timers.advance(1);
      assert.equal((await c.reply()).raw, '535 5.7.8 Authentication credentials invalid\r\n');
      c.send(`AUTH PLAIN ${plain('limited', 'x')}\r\n`);
      await until(() => timers.delays().includes(300), 'the error delay started');
      timers.advance(300);
      assert.match((await c.reply()).raw, /^454 4\.7\.0 /);
      c.close();
    } finally {
      await slow.close();
    }
  });
  test('authzid other than the user is refused (no proxy authorization)', async () => {
    const c = await session(sub(), { tls: true });
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('alice', 'secret', 'bob')}`)).code, 535);
    c.close();
  });
  test('SASL EXTERNAL with a verified client certificate (implicit TLS)', async () => {
    const pki = await testPki();
    const c = await session(smtps(), { implicitTls: true, cert: pki.client });
    const e = await c.cmd('EHLO client.example');
    assert.ok(
      e.lines.some((l) => l.slice(4) === 'AUTH PLAIN LOGIN EXTERNAL'),
      e.raw,
    );
    assert.equal((await c.cmd('AUTH EXTERNAL =')).code, 235);
    await c.cmd('MAIL FROM:<alice@local.test>');
    await c.cmd('RCPT TO:<bob@local.test>');
    await c.cmd('DATA');
    const r = await c.cmd('Subject: x\r\n\r\nhi\r\n.');
    assert.equal(r.code, 250);
    const stored = h.queue.at(-1);
    assert.equal(stored?.envelope.arrival.authUser, 'alice');
    assert.match(stored?.envelope.arrival.tls?.clientCertSubject ?? '', /CN=alice/);
    assert.match(stored?.message.toString() ?? '', /client certificate "CN=alice, O=Postern Test" verified OK/);
    c.close();
  });
  test('untrusted client certificate: no EXTERNAL, and STARTTLS listeners request certs too', async () => {
    const pki = await testPki();
    const c = await session(smtps(), { implicitTls: true, cert: pki.rogue });
    const e = await c.cmd('EHLO client.example');
    assert.ok(e.lines.some((l) => l.slice(4) === 'AUTH PLAIN LOGIN'));
    assert.match((await c.cmd('AUTH EXTERNAL')).raw, /^504 /);
    c.close();
    const d = await session(sub(), { tls: true, cert: pki.client });
    assert.ok((await d.cmd('EHLO x')).lines.some((l) => l.endsWith('EXTERNAL')));
    assert.equal((await d.cmd('AUTH EXTERNAL YWxpY2U=')).code, 235); // authzid "alice"
    d.close();
  });
});

describe('mail transaction', () => {
  test('bad sequences → 503 5.5.1; DATA without recipients → 554', async () => {
    const c = await SmtpTestClient.connect(mx());
    await c.reply();
    assert.match((await c.cmd('MAIL FROM:<a@local.test>')).raw, /^503 5\.5\.1 /);
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd('RCPT TO:<b@local.test>')).raw, /^503 5\.5\.1 /);
    assert.match((await c.cmd('DATA')).raw, /^503 5\.5\.1 /);
    assert.equal((await c.cmd('MAIL FROM:<a@local.test>')).raw, '250 2.1.0 Ok\r\n');
    assert.match((await c.cmd('MAIL FROM:<a@local.test>')).raw, /^503 5\.5\.1 /);
    assert.match((await c.cmd('RCPT TO:<b@elsewhere.example>')).raw, /^554 5\.7\.1 Relay access denied/);
    assert.match((await c.cmd('DATA')).raw, /^554 5\.5\.1 /);
    c.close();
  });
  test('hook replies are passed through; bad paths and SIZE', async () => {
    const c = await session(mx());
    assert.equal((await c.cmd('MAIL FROM:<blocked@x.example>')).raw, '550 5.7.1 Sender refused\r\n');
    assert.match((await c.cmd('MAIL FROM:<a@local.test> SIZE=100001')).raw, /^552 5\.3\.4 /);
    assert.match((await c.cmd('MAIL FROM:not-a-path')).raw, /^501 5\.1\.3 /);
    assert.match((await c.cmd('MAIL FROM:<a@local.test> FOO=BAR')).raw, /^555 5\.5\.4 /);
    assert.match((await c.cmd('MAIL FROM:<a@local.test> REQUIRETLS')).raw, /^530 5\.7\.10 /);
    assert.equal((await c.cmd('MAIL FROM:<a@local.test> SIZE=100000')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<unknown@local.test>')).raw, '550 5.1.1 No such user\r\n');
    assert.equal((await c.cmd('RCPT TO:<b@local.test>')).raw, '250 2.1.5 Ok\r\n');
    c.close();
  });
  test('too many recipients → 452 4.5.3 (limit 5)', async () => {
    const c = await session(mx());
    await c.cmd('MAIL FROM:<a@local.test>');
    for (let i = 0; i < 5; i++) assert.equal((await c.cmd(`RCPT TO:<r${i}@local.test>`)).code, 250);
    assert.match((await c.cmd('RCPT TO:<r5@local.test>')).raw, /^452 4\.5\.3 /);
    c.close();
  });
  test('accepted message: Received first, dot-unstuffed, envelope with DSN and REQUIRETLS, 250 only with the queue id', async () => {
    const c = await session(mx(), { tls: true });
    assert.equal(
      (await c.cmd('MAIL FROM:<a@local.test> BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id+2B1 SIZE=50')).code,
      250,
    );
    assert.equal((await c.cmd('RCPT TO:<b@local.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40local.test')).code, 250);
    assert.equal((await c.cmd('DATA')).raw, '354 End data with <CR><LF>.<CR><LF>\r\n');
    const r = await c.cmd('Subject: t\r\n\r\n..leading dot\r\nend\r\n.');
    assert.equal(r.raw, `250 2.0.0 Ok: queued as Q${h.queue.length}\r\n`);
    const s = h.queue.at(-1);
    assert.ok(s);
    const text = s.message.toString('utf8');
    assert.match(
      text,
      /^Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher TLS_AES_\d+_GCM_SHA\d+ \(\d+\/\d+ bits\)\)\r\n\tby mx\.postern\.test \(postern\) with ESMTPS id [A-Z0-9]+\.1\r\n\tfor <b@local\.test>; /,
    );
    assert.ok(text.endsWith('Subject: t\r\n\r\n.leading dot\r\nend\r\n'));
    assert.deepEqual(s.envelope.recipients, [
      { address: 'b@local.test', dsn: { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;b@local.test' } },
    ]);
    assert.equal(s.envelope.requireTls, true);
    assert.equal(s.envelope.smtputf8, true);
    assert.equal(s.envelope.dsnRet, 'HDRS');
    assert.equal(s.envelope.dsnEnvid, 'id+1');
    assert.equal(s.envelope.arrival.listener, 'mx');
    assert.equal(s.envelope.arrival.tls?.protocol, 'TLSv1.3');
    c.close();
  });
  test('enqueue failure → 451 4.3.0, nothing stored; the next transaction works', async () => {
    const c = await session(mx());
    const n = h.queue.length;
    h.failEnqueue.on = true;
    try {
      await c.cmd('MAIL FROM:<a@local.test>');
      await c.cmd('RCPT TO:<b@local.test>');
      await c.cmd('DATA');
      assert.match((await c.cmd('x\r\n.')).raw, /^451 4\.3\.0 /);
    } finally {
      h.failEnqueue.on = false;
    }
    assert.equal(h.queue.length, n);
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    assert.equal((await c.cmd('x\r\n.')).code, 250);
    assert.equal(h.queue.length, n + 1);
    c.close();
  });
  test('8-bit data without BODY=8BITMIME is accepted and recorded as 8BITMIME', async () => {
    const c = await session(mx());
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    c.send(Buffer.from('Subject: caf\u00e9\r\n\r\n.\r\n', 'utf8'));
    assert.equal((await c.reply()).code, 250);
    assert.equal(h.queue.at(-1)?.envelope.body, '8BITMIME');
    c.close();
  });
  test('duplicate recipients are stored once', async () => {
    const c = await session(mx());
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    assert.equal((await c.cmd('RCPT TO:<b@local.test>')).code, 250);
    await c.cmd('DATA');
    await c.cmd('x\r\n.');
    assert.equal(h.queue.at(-1)?.envelope.recipients.length, 1);
    c.close();
  });
});

describe('other verbs', () => {
  test('RSET, NOOP, HELP, VRFY, EXPN, unknown, QUIT', async () => {
    const c = await session(mx());
    await c.cmd('MAIL FROM:<a@local.test>');
    assert.equal((await c.cmd('RSET')).raw, '250 2.0.0 Ok\r\n');
    assert.match((await c.cmd('RCPT TO:<b@local.test>')).raw, /^503 /); // RSET ended the transaction
    assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 Ok\r\n');
    assert.equal((await c.cmd('HELP')).code, 214);
    assert.match((await c.cmd('VRFY bob')).raw, /^252 2\.5\.2 /);
    assert.match((await c.cmd('EXPN staff')).raw, /^502 5\.5\.1 /);
    assert.match((await c.cmd('BDAT 10 LAST')).raw, /^500 5\.5\.2 /);
    assert.match((await c.cmd('XYZZY')).raw, /^500 5\.5\.2 /);
    assert.equal((await c.cmd('QUIT')).raw, '221 2.0.0 Bye\r\n');
    assert.equal(await c.waitClosed(), true);
  });
  test('an HTTP request gets 421 and the connection is closed', async () => {
    const c = await SmtpTestClient.connect(mx());
    await c.reply();
    assert.match((await c.cmd('GET / HTTP/1.1')).raw, /^421 4\.7\.0 /);
    assert.equal(await c.waitClosed(), true);
  });
});

describe('PIPELINING (RFC 2920)', () => {
  test('a whole transaction in one write: replies in order, message after 354 is data', async () => {
    const c = await session(mx());
    const n = h.queue.length;
    c.send(
      'MAIL FROM:<a@local.test>\r\nRCPT TO:<nobody@elsewhere.example>\r\nRCPT TO:<b@local.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nNOOP\r\n',
    );
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await c.reply()).code);
    assert.deepEqual(codes, [250, 554, 250, 354, 250, 250]);
    assert.equal(h.queue.length, n + 1);
    c.close();
  });
});

describe('errors, timeouts and shutdown', () => {
  test('maxErrors bad commands → 421 4.7.0 and close', async () => {
    const x = await startHarness({ limits: { maxErrors: 3 } });
    try {
      const c = await session(x.port['mx'] as number);
      await c.cmd('FOO');
      await c.cmd('BAR');
      const r = await c.cmd('BAZ');
      assert.match(r.raw, /^500 5\.5\.2 /);
      assert.match((await c.reply()).raw, /^421 4\.7\.0 /);
      assert.equal(await c.waitClosed(), true);
    } finally {
      await x.close();
    }
  });
  test('command timeout → 421 4.4.2 and close, even while a partial line trickles in', async () => {
    const timers = new ManualTimers();
    const x = await startHarness({ limits: { commandTimeoutMs: 400 }, server: { timers } });
    try {
      const c = await session(x.port['mx'] as number);
      // After EHLO the timer runs; each byte of a partial line reaches the server (its input
      // buffer grows) but must not restart it.
      const base = x.server.stats().bytesReceived;
      for (let i = 1; i <= 3; i++) {
        c.send('N');
        await until(() => x.server.stats().bytesReceived >= base + i, `byte ${i} received`);
        timers.advance(100);
      }
      assert.equal(x.server.stats().timeouts, 0);
      timers.advance(100); // 400 ms after the last complete command
      assert.match((await c.reply()).raw, /^421 4\.4\.2 /);
      timers.advance(2000);
      assert.equal(await c.waitClosed(), true);
      assert.equal(x.server.stats().timeouts, 1);
    } finally {
      await x.close();
    }
  });
  test('graceful close: idle sessions get 421 4.3.2', async () => {
    const x = await startHarness();
    const c = await session(x.port['mx'] as number);
    await x.server.close({ graceful: true, timeoutMs: 2000 });
    assert.match((await c.reply()).raw, /^421 4\.3\.2 /);
    assert.equal(await c.waitClosed(), true);
  });
  test('graceful close lets a transaction in DATA finish', async () => {
    const x = await startHarness();
    const c = await session(x.port['mx'] as number);
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    // close() tells every session to shut down before its first await.
    const closing = x.server.close({ graceful: true, timeoutMs: 3000 });
    assert.equal((await c.cmd('late body\r\n.')).code, 250);
    assert.match((await c.reply()).raw, /^421 4\.3\.2 /);
    await closing;
    assert.equal(x.queue.length, 1);
  });
});
