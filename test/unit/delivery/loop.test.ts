/**
 * The delivery loop with a fake Connector (test/unit/delivery/fakes.ts): MX order, a policy
 * failure then the next MX, temporary vs permanent replies, REQUIRETLS refusal, the `may`
 * cleartext reconnect, connection reuse, RFC 3461 §6.2 dsnPassedOn, typed events and the
 * outbound-TLS counter, and `policyCheck` never sending MAIL.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { deliverMessage, policyCheck } from '../../../src/delivery/deliver.ts';
import type { AdmittedSession, DeliveryConnection } from '../../../src/delivery/deliver.ts';
import { countOutboundTls } from '../../../src/gateway/metrics.ts';
import { Counter } from 'prom-client';
import type { QueuedMessage } from '../../../src/queue/types.ts';
import { SmtpClientError } from '../../../src/smtp/client/errors.ts';
import { ConnectionPool } from '../../../src/smtp/client/pool.ts';
import { queuedMessage } from '../../helpers/queued.ts';
import { baseDeps, FakeConnector, RecordingSink, tableDns } from './fakes.ts';
import type { ServerScript } from './fakes.ts';

const BODY = Buffer.from('Subject: t\r\n\r\nhi\r\n');
const D = 'dest.test';
const level = (l: 'none' | 'may' | 'encrypt' | 'verify') => ({ default: { level: l, profile: null }, domains: {} });

function setup(
  servers: Record<string, ServerScript>,
  mx: string[] = ['mx1.dest.test', 'mx2.dest.test'],
  l: 'none' | 'may' | 'encrypt' | 'verify' = 'encrypt',
) {
  const connector = new FakeConnector(servers);
  const events = new RecordingSink();
  const deps = baseDeps(level(l), connector, tableDns({ [D]: mx }), { events });
  return { connector, events, deps };
}

const msg = (rcpts: string[], o: Parameters<typeof queuedMessage>[3] = {}): QueuedMessage =>
  queuedMessage('m1', rcpts, BODY, o);

describe('delivery loop (fake connector)', () => {
  it('tries MX hosts in preference order; a policy failure moves on to the next MX', async () => {
    const { connector, events, deps } = setup({
      'mx1.dest.test': { starttls: false },
      'mx2.dest.test': { starttls: true },
    });
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.match(st?.reason ?? '', /mx2\.dest\.test .* over TLS 1\.3/);
    assert.deepEqual(
      connector.log.filter((l) => !l.includes('connect')),
      [
        'mx1.dest.test: QUIT',
        'mx2.dest.test: STARTTLS',
        'mx2.dest.test: MAIL FROM:<alice@sender.test>',
        'mx2.dest.test: QUIT',
      ],
    );
    assert.deepEqual(
      events.of('delivery.attempt').map((e) => [e.mx, e.outcome, e.check, e.hostLevel]),
      [
        ['mx1.dest.test', 'policy-fail', 'starttls', 'encrypt'],
        ['mx2.dest.test', 'policy-ok', 'encrypt', 'encrypt'],
      ],
    );
    assert.equal(events.of('delivery.recipient')[0]?.state, 'delivered');
  });

  it('defers with the TLS policy rule when every MX fails the policy', async () => {
    const { connector, deps } = setup({ 'mx1.dest.test': {}, 'mx2.dest.test': { starttls: true, tls: 'refused' } });
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'deferred');
    assert.match(st?.lastReply ?? '', /^451 4\.7\.4 TLS policy not met: /);
    assert.ok(!connector.log.some((l) => l.includes('MAIL')), 'nothing was sent in cleartext');
  });

  it('a reply code decides per recipient: 550 4.7.1 bounces, 450 defers; each by its own entry', async () => {
    const { deps } = setup(
      { 'mx1.dest.test': { starttls: true, rcpt: { [`b@${D}`]: '550 4.7.1 policy', [`c@${D}`]: '450 4.2.1 later' } } },
      ['mx1.dest.test'],
    );
    const out = await deliverMessage(msg([`a@${D}`, `b@${D}`, `c@${D}`]), BODY, deps);
    assert.deepEqual(
      out.map((s) => [s.address, s.state, s.lastReply]),
      [
        [`a@${D}`, 'delivered', '250 2.0.0 queued'],
        [`b@${D}`, 'bounced', '550 4.7.1 policy'],
        [`c@${D}`, 'deferred', '450 4.2.1 later'],
      ],
    );
  });

  it('matches results by position, so extra RecipientStatus fields pass through per entry', async () => {
    const { deps } = setup({ 'mx1.dest.test': { starttls: true } }, ['mx1.dest.test']);
    const m = msg([`a@${D}`, `b@${D}`]);
    m.recipients = m.recipients.map((r, i) => ({ ...r, id: 100 + i }));
    const out = await deliverMessage(m, BODY, deps);
    assert.deepEqual(
      out.map((s) => [(s as unknown as { id: number }).id, s.address, s.state, s.attempts]),
      [
        [100, `a@${D}`, 'delivered', 1],
        [101, `b@${D}`, 'delivered', 1],
      ],
    );
  });

  it('a network failure tries the next MX; all down defers 4.4.1', async () => {
    const { deps } = setup({ 'mx1.dest.test': { down: true }, 'mx2.dest.test': { down: true } });
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'deferred');
    assert.match(
      st?.lastReply ?? '',
      /^451 4\.4\.1 mx1\.dest\.test \[192\.0\.2\.\d+\]:25: connect to mx1\.dest\.test failed/,
    );
  });

  it('a permanent pre-MAIL refusal (5.6.7) bounces when no other MX can take it', async () => {
    const err = new SmtpClientError('smtputf8-unsupported', 'the message needs SMTPUTF8', {
      stage: 'mail',
      temporary: false,
      smtpCode: 553,
      enhanced: '5.6.7',
    });
    const { deps } = setup({ 'mx1.dest.test': { starttls: true, sendThrows: err } }, ['mx1.dest.test']);
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'bounced');
    assert.equal(st?.lastReply, '553 5.6.7 the message needs SMTPUTF8');
  });

  it('REQUIRETLS to a next hop the policy does not authenticate bounces 5.7.30 without connecting', async () => {
    const { connector, deps } = setup({ 'mx1.dest.test': { starttls: true } }, ['mx1.dest.test'], 'encrypt');
    const [st] = await deliverMessage(msg([`a@${D}`], { requireTls: true }), BODY, deps);
    assert.equal(st?.state, 'bounced');
    assert.equal(st?.lastReply, '550 5.7.30 REQUIRETLS support required');
    assert.match(st?.reason ?? '', /'encrypt'.*does not authenticate the receiving server/);
    assert.deepEqual(connector.log, []);
  });

  it('may: a failed handshake is followed by a new cleartext connection (no second STARTTLS)', async () => {
    const { connector, deps } = setup(
      { 'mx1.dest.test': { starttls: true, tls: 'handshake-fail' } },
      ['mx1.dest.test'],
      'may',
    );
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.match(st?.reason ?? '', /in cleartext/);
    assert.deepEqual(
      connector.log.map((l) => l.replace(/ \d+\.\d+\.\d+\.\d+:\d+$/, '')),
      [
        'mx1.dest.test: connect',
        'mx1.dest.test: STARTTLS',
        'mx1.dest.test: connect',
        'mx1.dest.test: MAIL FROM:<alice@sender.test>',
        'mx1.dest.test: QUIT',
      ],
    );
  });

  it('encrypt: a failed handshake is never followed by cleartext', async () => {
    const { connector, deps } = setup(
      { 'mx1.dest.test': { starttls: true, tls: 'handshake-fail' } },
      ['mx1.dest.test'],
      'encrypt',
    );
    const [st] = await deliverMessage(msg([`a@${D}`]), BODY, deps);
    assert.equal(st?.state, 'deferred');
    assert.equal(connector.log.filter((l) => l.endsWith('connect 192.0.2.14:25')).length, 1);
    assert.ok(!connector.log.some((l) => l.includes('MAIL')));
  });

  it('reuses an admitted connection from the pool (RSET, no new connect or STARTTLS)', async () => {
    const { connector, events, deps } = setup({ 'mx1.dest.test': { starttls: true } }, ['mx1.dest.test']);
    const pool = new ConnectionPool<AdmittedSession, DeliveryConnection>({ idleMs: 60_000 });
    try {
      await deliverMessage(msg([`a@${D}`]), BODY, deps, pool);
      await deliverMessage(queuedMessage('m2', [`b@${D}`], BODY), BODY, deps, pool);
    } finally {
      await pool.close();
    }
    assert.equal(pool.reused, 1);
    assert.equal(connector.log.filter((l) => l.includes('connect')).length, 1);
    assert.equal(connector.log.filter((l) => l.includes('STARTTLS')).length, 1);
    assert.equal(connector.log.filter((l) => l.includes('RSET')).length, 1);
    assert.deepEqual(
      events.of('delivery.attempt').map((e) => e.reused),
      [false, true],
    );
  });

  it('RFC 3461 §6.2: NOTIFY passed on to a DSN-capable next hop sets dsnPassedOn', async () => {
    const { deps } = setup({ 'mx1.dest.test': { starttls: true, dsn: true } }, ['mx1.dest.test']);
    const m = msg([`a@${D}`, `b@${D}`]);
    const [ra, rb] = m.envelope.recipients;
    assert.ok(ra !== undefined && rb !== undefined);
    ra.dsn = { notify: ['SUCCESS'], orcpt: null };
    const out = await deliverMessage(m, BODY, deps);
    assert.deepEqual(
      out.map((s) => [s.address, s.state, s.dsnPassedOn ?? false]),
      [
        [`a@${D}`, 'delivered', true],
        // No NOTIFY given: nothing was passed on.
        [`b@${D}`, 'delivered', false],
      ],
    );
  });

  it('RFC 3461 §6.2: a next hop without DSN does not take over the reporting', async () => {
    const { deps } = setup({ 'mx1.dest.test': { starttls: true, dsn: false } }, ['mx1.dest.test']);
    const m = msg([`a@${D}`]);
    const [ra] = m.envelope.recipients;
    assert.ok(ra !== undefined);
    ra.dsn = { notify: ['SUCCESS'], orcpt: null };
    const [st] = await deliverMessage(m, BODY, deps);
    assert.equal(st?.state, 'delivered');
    assert.equal(st?.dsnPassedOn, undefined);
  });

  it('counts outbound TLS outcomes by level and rule from delivery events', async () => {
    const { events, deps } = setup({ 'mx1.dest.test': { starttls: false }, 'mx2.dest.test': { starttls: true } });
    await deliverMessage(msg([`a@${D}`]), BODY, deps);
    const registry = new Registry();
    const outboundTls = new Counter({
      name: 't_outbound_tls_total',
      help: 't',
      labelNames: ['level', 'check', 'outcome'],
      registers: [registry],
    });
    for (const e of events.events) countOutboundTls({ outboundTls }, e);
    const values = (await outboundTls.get()).values.map((v) => [
      v.labels['level'],
      v.labels['check'],
      v.labels['outcome'],
      v.value,
    ]);
    assert.deepEqual(values, [
      ['encrypt', 'starttls', 'fail', 1],
      ['encrypt', 'encrypt', 'ok', 1],
    ]);
  });
});

describe('policyCheck: the same loop, probing', () => {
  it('connects, decides and QUITs at every MX address without MAIL', async () => {
    const { connector, events, deps } = setup({
      'mx1.dest.test': { starttls: false },
      'mx2.dest.test': { starttls: true },
    });
    const r = await policyCheck(D, deps);
    assert.ok(!connector.log.some((l) => l.includes('MAIL')), connector.log.join('\n'));
    assert.deepEqual(
      r.mx.map((m) => [m.host, m.outcome]),
      [
        ['mx1.dest.test', 'fail'],
        ['mx2.dest.test', 'ok'],
      ],
    );
    assert.equal(r.verdict.outcome, 'deliver');
    assert.equal(r.verdict.host, 'mx2.dest.test');
    assert.equal(connector.log.filter((l) => l.endsWith('QUIT')).length, 2);
    assert.ok(events.of('delivery.attempt').every((e) => e.probe === true));
  });

  it('reports the plan failure of a null MX as a bounce', async () => {
    const connector = new FakeConnector({});
    const deps = baseDeps(
      level('may'),
      connector,
      tableDns({ [D]: { records: [], nullMx: true, implicit: false, nullMxMixed: false } }),
    );
    const r = await policyCheck(D, deps);
    assert.equal(r.verdict.outcome, 'bounce');
    assert.match(r.verdict.rule, /^556 5\.1\.10 /);
    assert.deepEqual(connector.log, []);
  });
});
