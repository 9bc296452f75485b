// Interop: a real SMTP client (swaks) against postern's inbound server on loopback — AUTH PLAIN
// over STARTTLS on a submission listener, AUTH over implicit TLS (RFC 8314), pipelining, and AUTH
// before STARTTLS refused (RFC 4954 §4: not advertised, 538 5.7.11 when sent anyway).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { peerSkipReason } from './peers/require.ts';
import { run } from './peers/proc.ts';
import { startHarness, type Harness } from '../helpers/smtp-harness.ts';
import { openSmtpSession, saslPlain } from '../helpers/smtp-client.ts';

function swaksAvailable(): boolean {
  try {
    execFileSync('swaks', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = peerSkipReason(swaksAvailable(), 'swaks');

// swaks runs as a child process; the server lives in this process, so only async spawning works.
function swaks(port: number, extra: string[]): ReturnType<typeof run> {
  return run(
    'swaks',
    [
      '--to',
      'bob@local.test',
      '--from',
      'alice@local.test',
      '--server',
      '127.0.0.1',
      '--port',
      String(port),
      '--helo',
      'swaks.client.test',
      ...extra,
    ],
    { timeoutMs: 30_000 },
  );
}

describe('smtpd with swaks', { skip }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  test('AUTH PLAIN over STARTTLS on the submission listener', async () => {
    const n = h.queue.length;
    const r = await swaks(h.port['sub'] as number, [
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'alice',
      '--auth-password',
      'secret',
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<~ {2}235 2\.7\.0 Authentication successful/);
    assert.match(r.stdout, /<~ {2}250 2\.0\.0 Ok: queued as Q\d+/);
    assert.equal(h.queue.length, n + 1);
    const m = h.queue.at(-1);
    assert.equal(m?.envelope.arrival.authUser, 'alice');
    assert.equal(m?.envelope.arrival.listener, 'sub');
    const text = m?.message.toString() ?? '';
    assert.match(text, /^Received: from swaks\.client\.test \(\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher /);
    assert.match(text, /with ESMTPSA id /);
    assert.match(text, /This is a test mailing\r\n/);
  });

  test('AUTH LOGIN over implicit TLS (--tlsc), pipelined', async () => {
    const n = h.queue.length;
    const r = await swaks(h.port['smtps'] as number, [
      '--tlsc',
      '--pipeline',
      '--auth',
      'LOGIN',
      '--auth-user',
      'alice',
      '--auth-password',
      'secret',
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /235 2\.7\.0/);
    assert.equal(h.queue.length, n + 1);
  });

  test('wrong password: 535 5.7.8 and nothing queued', async () => {
    const n = h.queue.length;
    const r = await swaks(h.port['sub'] as number, [
      '--tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      'alice',
      '--auth-password',
      'nope',
    ]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /535 5\.7\.8/);
    assert.equal(h.queue.length, n);
  });

  test('AUTH before STARTTLS: not advertised (swaks refuses), and 538 5.7.11 when sent anyway', async () => {
    const r = await swaks(h.port['sub'] as number, [
      '--auth',
      'PLAIN',
      '--auth-user',
      'alice',
      '--auth-password',
      'secret',
    ]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /250-AUTH/);
    assert.match(r.stdout + r.stderr, /did not advertise authentication/);
    // swaks will not send an unadvertised AUTH; a raw client does, and gets 538.
    const c = await openSmtpSession(h.port['sub'] as number);
    assert.match((await c.cmd(`AUTH PLAIN ${saslPlain('alice', 'secret')}`)).raw, /^538 5\.7\.11 /);
    c.close();
  });

  test('unauthenticated submission after STARTTLS is refused with 530 5.7.0', async () => {
    const n = h.queue.length;
    const r = await swaks(h.port['sub'] as number, ['--tls']);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /530 5\.7\.0 Authentication required/);
    assert.equal(h.queue.length, n);
  });
});
