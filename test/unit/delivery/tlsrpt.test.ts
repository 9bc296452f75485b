/**
 * tlsrpt.ts through the loop with a fake connector: one session record per decided attempt to a
 * recipient domain's MX (RFC 8460 §4.3), none for routes, and a failing sink never costs the
 * delivery.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deliverMessage } from '../../../src/delivery/deliver.ts';
import type { TlsRptSink } from '../../../src/delivery/deliver.ts';
import { queuedMessage, RecordingTlsRptSink } from '../../helpers/queued.ts';
import { baseDeps, FakeConnector, RecordingSink, tableDns } from './fakes.ts';

const BODY = Buffer.from('Subject: t\r\n\r\nhi\r\n');
const D = 'dest.test';
const POLICY = { default: { level: 'encrypt' as const, profile: null }, domains: {} };

describe('TLS-RPT recording', () => {
  it('a failed and a successful attempt to MX hosts: one record each, with the server facts', async () => {
    const connector = new FakeConnector({ 'mx1.dest.test': { starttls: false }, 'mx2.dest.test': { starttls: true } });
    const tlsrpt = new RecordingTlsRptSink();
    const deps = baseDeps(POLICY, connector, tableDns({ [D]: ['mx1.dest.test', 'mx2.dest.test'] }), { tlsrpt });
    const [st] = await deliverMessage(queuedMessage('r1', [`a@${D}`], BODY), BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.equal(tlsrpt.ok.length, 1);
    assert.deepEqual(
      tlsrpt.failed.map((f) => [f.resultType, f.receivingMxHostname, f.sendingMtaIp, f.receivingMxHelo]),
      [['starttls-not-supported', 'mx1.dest.test', '127.0.0.9', 'mx1.dest.test']],
    );
  });

  it('a route is a local choice: nothing is recorded', async () => {
    const connector = new FakeConnector({ 'relay.test': { starttls: true } });
    const tlsrpt = new RecordingTlsRptSink();
    const deps = baseDeps(POLICY, connector, tableDns({}), { tlsrpt, routes: { [D]: 'relay.test:2525' } });
    const [st] = await deliverMessage(queuedMessage('r2', [`a@${D}`], BODY), BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.deepEqual([tlsrpt.ok.length, tlsrpt.failed.length], [0, 0]);
  });

  it('a sink that throws is reported as an event and the mail still goes', async () => {
    const connector = new FakeConnector({ 'mx1.dest.test': { starttls: true } });
    const broken: TlsRptSink = {
      recordSuccess: () => {
        throw new Error('disk full');
      },
      recordFailure: () => {
        throw new Error('disk full');
      },
    };
    const events = new RecordingSink();
    const deps = baseDeps(POLICY, connector, tableDns({ [D]: ['mx1.dest.test'] }), { tlsrpt: broken, events });
    const [st] = await deliverMessage(queuedMessage('r3', [`a@${D}`], BODY), BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.deepEqual(
      events.of('delivery.tlsrpt-failed').map((e) => e.err),
      ['disk full'],
    );
  });
});
