/**
 * attempt.ts with a fake connector: STARTTLS only when the level attempts TLS, SNI and chain
 * capture from the DANE state (RFC 7672 §8.1, §3.1.2), typed results, connections closed on
 * failure.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attempt } from '../../../src/delivery/attempt.ts';
import type { AttemptInput } from '../../../src/delivery/attempt.ts';
import type { HostUse, Target } from '../../../src/delivery/types.ts';
import type { TlsaRecord } from '../../../src/dns/dnssec.ts';
import type { TlsLevel } from '../../../src/policy/levels.ts';
import { FakeConnector } from './fakes.ts';
import type { ServerScript } from './fakes.ts';

const T: Target = { mxHost: 'mx.dest.test', port: 25, nextHop: 'dest.test', via: 'mx' };
const host = (level: TlsLevel, dane: HostUse['dane'] = null): HostUse => ({
  kind: 'use',
  level,
  profile: null,
  source: dane !== null ? 'dane' : 'table',
  dane,
  stsTesting: null,
  why: 'test',
  report: { type: 'no-policy-found', strings: [], testing: false },
});
const input = (h: HostUse, reconnect = true): AttemptInput => ({
  target: T,
  to: { host: T.mxHost, address: '192.0.2.1', port: 25 },
  host: h,
  policy: { level: h.level, profile: null, matched: 'default' },
  domain: 'dest.test',
  now: new Date('2026-01-01T00:00:00Z'),
  reconnect,
});
const run = async (s: ServerScript, h: HostUse, reconnect = true) => {
  const c = new FakeConnector({ [T.mxHost]: s });
  return { c, r: await attempt(c, input(h, reconnect)) };
};

describe('attempt', () => {
  it('level none never sends STARTTLS, even when offered', async () => {
    const { c, r } = await run({ starttls: true }, host('none'));
    assert.equal(r.kind, 'admitted');
    assert.ok(!c.log.some((l) => l.includes('STARTTLS')));
  });

  it('SNI is the TLSA base domain and DANE-TA asks for the chain as sent', async () => {
    const ta: TlsaRecord = { usage: 2, selector: 0, matchingType: 1, data: Buffer.alloc(32) };
    const { c, r } = await run(
      { starttls: true },
      host('dane', { records: [ta], names: ['base.dest.test', 'mx.dest.test'] }),
    );
    assert.equal(r.kind, 'policy-fail'); // the fake chain is empty: no certificate to match
    assert.equal(c.tlsOptions[0]?.servername, 'base.dest.test');
    assert.equal(c.tlsOptions[0]?.captureChain, true);
    assert.ok(c.log.includes('mx.dest.test: QUIT'), 'a refused session is closed with QUIT');
  });

  it('a failed connect is an error result, not an exception', async () => {
    const { r } = await run({ down: true }, host('may'));
    assert.equal(r.kind === 'error' && r.error.code, 'net-connect');
  });

  it('probe (reconnect false): a may handshake failure is reported, no second connection', async () => {
    const { c, r } = await run({ starttls: true, tls: 'handshake-fail' }, host('may'), false);
    assert.equal(r.kind === 'admitted' && r.decision.action, 'cleartext-reconnect');
    assert.equal(c.log.filter((l) => l.includes('connect')).length, 1);
  });

  it('facts carry what TLS-RPT needs (offered, our address, the server EHLO name)', async () => {
    const { r } = await run({ starttls: false }, host('encrypt'));
    assert.equal(r.kind, 'policy-fail');
    assert.deepEqual(r.kind === 'policy-fail' && [r.facts.offered, r.facts.localAddress, r.facts.ehloName], [
      false,
      '127.0.0.9',
      'mx.dest.test',
    ]);
  });
});
