// Attack: SASL EXTERNAL with someone else's authorization identity (issue 9). The client
// authenticates with its certificate (alice) and names `bob` as authzid (RFC 4422 Appendix A.1);
// postern ignored the authzid and logged the client in, as whom depended on the hook. postern does
// no proxy authorization: an authzid other than the certificate's user fails with 535 5.7.8, in
// the session itself, whatever the mapping hook does with it (the gateway's ignores it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PosternEvent } from '../../src/core/events.ts';
import { session, startHarness, testPki, type Harness } from '../helpers/smtp-harness.ts';

const events: PosternEvent[] = [];
let h: Harness;
before(async () => {
  h = await startHarness({
    // Like the gateway's hook: maps the certificate, ignores the authzid.
    hooks: { authenticateExternal: async (subject) => (subject.includes('CN=alice') ? 'alice' : null) },
    server: { events: { emit: (e) => events.push(e) } },
  });
});
after(async () => {
  await h.close();
});

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('SASL EXTERNAL authzid', () => {
  test('an authzid that is not the certificate user: 535, not logged in', async () => {
    const pki = await testPki();
    const c = await session(h.port['smtps'] as number, { implicitTls: true, cert: pki.client });
    await c.cmd('EHLO client.example');
    assert.match((await c.cmd(`AUTH EXTERNAL ${b64('bob')}`)).raw, /^535 5\.7\.8 /);
    assert.match((await c.cmd('MAIL FROM:<bob@local.test>')).raw, /^530 5\.7\.0 /, 'still not authenticated');
    assert.ok(events.some((e) => e.event === 'smtpd.authzid-mismatch' && e.user === 'alice'));
    // Two-step form (empty initial response, then the authzid) is checked the same way.
    assert.equal((await c.cmd('AUTH EXTERNAL')).raw, '334 \r\n');
    assert.match((await c.cmd(b64('bob'))).raw, /^535 5\.7\.8 /);
    c.close();
  });

  test('control: no authzid, or the user itself, logs in', async () => {
    const pki = await testPki();
    for (const arg of ['=', b64('alice')]) {
      const c = await session(h.port['smtps'] as number, { implicitTls: true, cert: pki.client });
      await c.cmd('EHLO client.example');
      assert.equal((await c.cmd(`AUTH EXTERNAL ${arg}`)).code, 235, arg);
      c.close();
    }
  });
});
