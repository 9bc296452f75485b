// Attack: header injection through ORCPT (issue 9). xtext (RFC 3461 §4) can encode any octet, so
// `ORCPT=rfc822;a+0D+0ABcc:+20x@evil.example` decoded to a CR LF and was stored; it ends up in the
// Original-Recipient field of a DSN (RFC 3461 §6.3), where a CR LF starts a new header. A decoded
// control character is refused with 501 5.5.4, the recipient is not added, the session goes on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { session, startHarness, type Harness } from '../helpers/smtp-harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

const BAD = [
  'rfc822;a+0D+0ABcc:+20x@evil.example',
  'rfc822;a+0Ab@example.org',
  'rfc822;a+0Db@example.org',
  'rfc822;a+00b@example.org',
  'rfc822;a+1Bb@example.org',
  'rfc822;a+7Fb@example.org',
];

describe('ORCPT with control characters', () => {
  test('501 5.5.4 for each, only the clean ORCPT is stored', async () => {
    const c = await session(h.port['mx'] as number);
    assert.equal((await c.cmd('MAIL FROM:<a@local.test>')).code, 250);
    for (const orcpt of BAD) {
      const r = await c.cmd(`RCPT TO:<b@local.test> ORCPT=${orcpt}`);
      assert.match(r.raw, /^501 5\.5\.4 .*ORCPT/, `${orcpt}: ${r.raw}`);
    }
    assert.equal((await c.cmd('RCPT TO:<b@local.test> ORCPT=rfc822;b+2Bx@example.org')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: x\r\n\r\nhi\r\n.')).code, 250);
    const stored = h.queue.at(-1);
    assert.deepEqual(
      stored?.envelope.recipients.map((r) => r.dsn.orcpt),
      ['rfc822;b+x@example.org'],
    );
    c.close();
  });
});
