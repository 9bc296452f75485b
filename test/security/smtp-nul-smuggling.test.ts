// Attack: NUL octets in DATA (issue 9). `CRLF NUL "." CRLF` was relayed unchanged; a next hop that
// strips NULs reads it as the end of data, so whatever follows becomes a second message there:
// smuggling one hop later. RFC 5321 §4.5.2 / RFC 5322 §2.3 exclude NUL from text; postern refuses
// the message like one with a bare LF (550 5.6.0), nothing is queued, and the session stays in
// sync (only CRLF "." CRLF ended this DATA).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PosternEvent } from '../../src/core/events.ts';
import { session, startHarness, type Harness } from '../helpers/smtp-harness.ts';

const events: PosternEvent[] = [];
let h: Harness;
before(async () => {
  h = await startHarness({ server: { events: { emit: (e) => events.push(e) } } });
});
after(async () => {
  await h.close();
});

const SMUGGLED =
  'MAIL FROM:<ceo@local.test>\r\nRCPT TO:<victim@local.test>\r\nDATA\r\nFrom: ceo@local.test\r\nSubject: smuggled\r\n\r\nwire money\r\n';

const variants: Array<[string, string]> = [
  ['CRLF NUL . CRLF', '\r\n\x00.\r\n'],
  ['CRLF . NUL CRLF', '\r\n.\x00\r\n'],
  ['NUL inside a line', '\r\nhello\x00world\r\n'],
  ['NUL at the end of a line', '\r\nhello\x00\r\n'],
];

describe('NUL in DATA', () => {
  for (const [name, seq] of variants) {
    test(`${name}: 550 5.6.0, nothing queued, one reply, session in sync`, async () => {
      const c = await session(h.port['mx'] as number);
      const queued = h.queue.length;
      const nul = events.filter((e) => e.event === 'smtpd.nul').length;
      assert.equal((await c.cmd('MAIL FROM:<a@local.test>')).code, 250);
      assert.equal((await c.cmd('RCPT TO:<b@local.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.send(`Subject: innocent\r\n\r\nhello${seq}${SMUGGLED}.\r\n`);
      assert.match((await c.reply()).raw, /^550 5\.6\.0 .*NUL/);
      assert.equal((await c.cmd('NOOP')).raw, '250 2.0.0 Ok\r\n', 'the smuggled commands were content');
      assert.equal(h.queue.length, queued, 'nothing may be queued');
      assert.equal(events.filter((e) => e.event === 'smtpd.nul').length, nul + 1);
      c.close();
    });
  }

  test('control: the same message without the NUL is accepted', async () => {
    const c = await session(h.port['mx'] as number);
    const queued = h.queue.length;
    await c.cmd('MAIL FROM:<a@local.test>');
    await c.cmd('RCPT TO:<b@local.test>');
    await c.cmd('DATA');
    assert.equal((await c.cmd('Subject: innocent\r\n\r\nhello\r\nworld\r\n.')).code, 250);
    assert.equal(h.queue.length, queued + 1);
    assert.equal(h.server.stats().nulBytes, variants.length);
    c.close();
  });
});
