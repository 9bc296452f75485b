/**
 * Attack: outrunning the failed-login limit with parallel guesses. The limit (5 failures per
 * address in 15 minutes) was checked before hashing and the failure recorded after, so 20
 * simultaneous AUTH PLAIN guesses from one address were all checked (19 × 535 and a 235 for the
 * right password as the 20th guess). Now an attempt counts as in flight before its hash: at most
 * `limit` are checked, the rest get 454 4.7.0 saying when the lockout ends (RFC 4954 §6).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCert } from '../helpers/certs.ts';
import { openSession, saslPlain, startTestGateway } from '../helpers/gateway.ts';
import type { RawSmtp, Reply, TestGateway } from '../helpers/gateway.ts';

const USER = 'victim@postern.test';
const PASSWORD = 'correct horse battery';
const LIMIT = 5;
const GUESSES = 20;

describe('parallel AUTH PLAIN guesses from one address', { timeout: 120_000 }, () => {
  let g: TestGateway;
  const sessions: RawSmtp[] = [];
  before(async () => {
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      listeners: [{ name: 'submission', mode: 'starttls', role: 'submission', auth: 'required' }],
      users: [{ name: USER, password: PASSWORD }],
      limits: { maxConnectionsPerIp: GUESSES + 5 },
      extraConfig: { authRateLimit: { perIp: { failures: LIMIT, window: '15m' } } },
    });
  });
  after(async () => {
    for (const s of sessions) s.close();
    await g?.close();
  });

  test(`${GUESSES} at once over TLS: at most ${LIMIT} are checked, the rest get 454 with the end of the lockout`, async () => {
    const port = g.port['submission'] as number;
    // Every session ready (EHLO, STARTTLS, EHLO) before any guess, so the guesses really overlap.
    for (let i = 0; i < GUESSES; i++) sessions.push(await openSession(port, { starttls: true }));
    const replies: Reply[] = await Promise.all(
      sessions.map((s, i) =>
        s.cmd(`AUTH PLAIN ${saslPlain(USER, i === GUESSES - 1 ? PASSWORD : `guess-${i}`)}`, 60_000),
      ),
    );
    const checked = replies.filter((r) => r.code === 535 || r.code === 235);
    const limited = replies.filter((r) => r.code === 454);
    assert.equal(checked.length + limited.length, GUESSES, replies.map((r) => r.raw).join(''));
    assert.ok(checked.length <= LIMIT, `${checked.length} guesses were checked (limit ${LIMIT})`);
    assert.ok(limited.length >= GUESSES - LIMIT);
    for (const r of checked) assert.match(r.raw, /^(535 5\.7\.8|235 2\.7\.0) /);
    for (const r of limited)
      assert.match(
        r.raw,
        /^454 4\.7\.0 Too many failed logins from your address; try again after \d\d:\d\d:\d\d UTC \(in \d+ (minutes?|seconds?)\)\r\n$/,
      );
    // The limit holds afterwards too: even the right password is not checked now.
    const late = await openSession(port, { starttls: true });
    sessions.push(late);
    assert.match((await late.cmd(`AUTH PLAIN ${saslPlain(USER, PASSWORD)}`, 60_000)).raw, /^454 4\.7\.0 /);
  });
});
