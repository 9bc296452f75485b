// Attack: client-initiated TLS renegotiation (issue 9: accepted 3 times per connection on the
// listeners; postern's own scanner flagged its gateway with `client-renegotiation`). Each
// renegotiation makes the server do a full handshake for the price of a ClientHello, so it is a
// cheap CPU exhaustion (RFC 5746 §4.4 lets a server refuse it). The first attempt must fail and
// end the session, on the implicit-TLS and the STARTTLS listener, checked by node's TLS client and
// by postern's scanner check itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { probeEndpoint } from '../../src/tls/probe/index.ts';
import { session, startHarness, type Harness } from '../helpers/smtp-harness.ts';

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

/** Ask for a renegotiation; resolves with the error (or null when the server went along with it). */
function renegotiate(t: TLSSocket): Promise<Error | null> {
  return new Promise((resolve) => {
    t.once('close', () => resolve(new Error('closed')));
    const ok = t.renegotiate({ rejectUnauthorized: false }, (err) => resolve(err ?? null));
    if (!ok) resolve(new Error('renegotiate() refused locally'));
  });
}

describe('client-initiated TLS renegotiation', () => {
  test('implicit TLS (465): the first renegotiation fails and ends the session', async () => {
    const before = h.server.stats().renegotiationsRefused;
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect(
        { host: '127.0.0.1', port: h.port['smtps'], rejectUnauthorized: false, maxVersion: 'TLSv1.2' },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    t.on('error', () => undefined);
    t.resume();
    assert.equal(t.getProtocol(), 'TLSv1.2');
    const err = await renegotiate(t);
    assert.ok(err !== null, 'the renegotiation must not succeed');
    await new Promise((r) => (t.closed ? r(null) : t.once('close', r)));
    assert.equal(h.server.stats().renegotiationsRefused, before + 1);
  });

  test('after STARTTLS (25/587): the same', async () => {
    const before = h.server.stats().renegotiationsRefused;
    const c = await session(h.port['mx'] as number);
    assert.equal((await c.cmd('STARTTLS')).code, 220);
    const raw = c.socket;
    raw.removeAllListeners('data');
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: raw, rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => resolve(s));
      s.once('error', reject);
    });
    t.on('error', () => undefined);
    t.resume();
    assert.ok((await renegotiate(t)) !== null);
    await new Promise((r) => (t.closed ? r(null) : t.once('close', r)));
    assert.equal(h.server.stats().renegotiationsRefused, before + 1);
  });

  for (const [listener, dialect] of [
    ['smtps', 'implicit'],
    ['mx', 'smtp'],
  ] as const) {
    test(`postern's own scanner no longer finds client-renegotiation on ${listener}`, async () => {
      const port = h.port[listener] as number;
      const p = await probeEndpoint(
        { host: '127.0.0.1', address: '127.0.0.1', port, dialect, timeoutMs: 10_000 },
        { versions: ['TLSv1.2', 'TLSv1.3'], fullHandshake: false },
      );
      assert.equal(p.clientRenegotiation, false, JSON.stringify(p.checkEvidence));
      assert.match(p.checkEvidence.clientRenegotiation ?? '', /TLSv1\.2: /);
    });
  }

  test('control: without renegotiation the TLS session works', async () => {
    const c = await session(h.port['smtps'] as number, { implicitTls: true });
    assert.equal((await c.cmd('NOOP')).code, 250);
    c.close();
  });
});
