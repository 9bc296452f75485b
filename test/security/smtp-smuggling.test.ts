// Attack: SMTP smuggling (CVE-2023-51764 / -51765 / -51766 class, SEC Consult 2023). The sender
// hides a second message behind an end-of-data sequence that the receiver accepts but the
// sender's outbound MTA does not (LF.LF, CR.CR, LF.CRLF, ...). The smuggled message then passes
// SPF/DMARC as the first sender's domain. Only CRLF.CRLF may end DATA; messages with bare LF or
// bare CR are refused, and never two messages come out of one DATA.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { session, startHarness, type Harness } from '../helpers/smtp-harness.ts';
import { until } from '../helpers/manual-timers.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

const SMUGGLED =
  'MAIL FROM:<ceo@local.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nFrom: ceo@local.test\r\nSubject: smuggled\r\n\r\nwire money\r\n';

const variants: Array<[string, string]> = [
  ['LF.LF', '\n.\n'],
  ['CR.CR', '\r.\r'],
  ['LF.CRLF', '\n.\r\n'],
  ['CRLF.LF', '\r\n.\n'],
  ['CR.CRLF', '\r.\r\n'],
  ['CRLF.CR', '\r\n.\r'],
  ['LF.CR', '\n.\r'],
  ['CR.LF', '\r.\n'],
];

describe('SMTP smuggling', () => {
  for (const [name, seq] of variants) {
    test(`${name}: never ends DATA, never two messages, message refused`, async () => {
      const c = await session(h.port['mx'] as number);
      const before = h.queue.length;
      assert.equal((await c.cmd('MAIL FROM:<a@local.test>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@local.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.send(`Subject: innocent\r\n\r\nhello${seq}${SMUGGLED}.\r\n`);
      const r = await c.reply();
      assert.match(r.raw, /^550 5\.6\.0 .*bare LF or CR/);
      // Exactly one reply: the smuggled MAIL/RCPT/DATA were message content, not commands (had
      // they been answered, the next reply read would be theirs, not the NOOP's), and the session
      // is still in sync.
      assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 Ok\r\n');
      assert.equal(h.queue.length, before, 'nothing may be queued');
      assert.match((await c.cmd('RCPT TO:<b@local.test>')).raw, /^503 /);
      c.close();
    });
  }

  test('bare LF elsewhere in the body is refused too', async () => {
    const c = await session(h.port['mx'] as number);
    const before = h.queue.length;
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    assert.match((await c.cmd('line one\nline two\r\n.')).raw, /^550 5\.6\.0 /);
    assert.equal(h.queue.length, before);
    c.close();
  });

  test('the terminator split across many segments still ends DATA once', async () => {
    const c = await session(h.port['mx'] as number);
    const before = h.queue.length;
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    // Each part reaches the server as its own read before the next is sent.
    let expected = h.server.stats().bytesReceived;
    for (const part of ['Subject: ok\r\n\r\nbody\r', '\n', '.', '\r', '\nNOOP\r\n']) {
      c.send(part);
      expected += part.length;
      await until(() => h.server.stats().bytesReceived >= expected, 'the part received');
    }
    assert.equal((await c.reply()).code, 250);
    assert.equal((await c.reply()).raw, '250 2.0.0 Ok\r\n'); // the NOOP pipelined after "."
    assert.equal(h.queue.length, before + 1);
    assert.ok(h.queue.at(-1)?.message.toString().endsWith('Subject: ok\r\n\r\nbody\r\n'));
    c.close();
  });
});
