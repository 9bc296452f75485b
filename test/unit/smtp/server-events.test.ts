/**
 * smtpd's security events are typed (src/core/events.ts SmtpdEvent) and reach the sink given to
 * the server: each one is logged and counted in postern_events_total{event} (prom-client).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createEventSink, type PosternEvent } from '../../../src/core/events.ts';
import { session, startHarness, type Harness } from '../../helpers/smtp-harness.ts';

const seen: PosternEvent[] = [];
const registry = new Registry();
let h: Harness;
before(async () => {
  h = await startHarness({
    limits: { junkCommandLimit: 2, maxRecipients: 1 },
    server: { events: createEventSink({ registry, extra: (e) => seen.push(e) }) },
  });
});
after(async () => {
  await h.close();
});

async function counts(): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('postern_events_total')?.get();
  return Object.fromEntries((m?.values ?? []).map((v) => [String(v.labels['event']), v.value]));
}

describe('smtpd events', () => {
  test('a failed AUTH is a typed auth-failure event with user and mechanism', async () => {
    const c = await session(h.port['sub'] as number, { tls: true });
    assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`)).code, 535);
    assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
    assert.equal((await c.cmd(Buffer.from('bob').toString('base64'))).code, 334);
    assert.equal((await c.cmd(Buffer.from('nope').toString('base64'))).code, 535);
    c.close();
    const failures = seen.filter((e) => e.event === 'smtpd.auth-failure');
    assert.deepEqual(
      failures.map((e) => ('user' in e ? [e.user, 'mechanism' in e ? e.mechanism : ''] : [])),
      [
        ['alice', 'PLAIN'],
        ['bob', 'LOGIN'],
      ],
    );
    assert.equal((await counts())['smtpd.auth-failure'], 2);
  });

  test('bare LF, bare CR, NUL, STARTTLS injection, limits, HTTP: typed, with session and client, counted', async () => {
    const c = await session(h.port['mx'] as number);
    for (const body of ['a\nb\r\n.', 'a\rb\r\n.', 'a\x00b\r\n.']) {
      await c.cmd('MAIL FROM:<a@local.test>');
      await c.cmd('RCPT TO:<b@local.test>');
      assert.match((await c.cmd('RCPT TO:<c@local.test>')).raw, /^452 /);
      await c.cmd('DATA');
      assert.equal((await c.cmd(body)).code, 550);
    }
    await c.cmd('NOOP');
    await c.cmd('NOOP');
    assert.equal((await c.cmd('NOOP')).code, 421);
    c.close();

    const t = await session(h.port['mx'] as number);
    t.send('STARTTLS\r\nMAIL FROM:<evil@x.test>\r\n');
    assert.equal((await t.reply()).code, 220);
    t.close();

    const w = await session(h.port['mx'] as number);
    assert.equal((await w.cmd('GET / HTTP/1.1')).code, 421);
    w.close();

    const n = await counts();
    assert.equal(n['smtpd.bare-lf'], 1);
    assert.equal(n['smtpd.bare-cr'], 1);
    assert.equal(n['smtpd.nul'], 1);
    assert.equal(n['smtpd.http-request'], 1);
    assert.ok((n['smtpd.starttls-injection'] ?? 0) >= 1);
    assert.ok((n['smtpd.limit'] ?? 0) >= 4, JSON.stringify(n)); // 3 × recipients, 1 × junk-commands
    const junk = seen.find((e) => e.event === 'smtpd.limit' && e.limit === 'junk-commands');
    assert.ok(junk !== undefined && 'session' in junk && junk.client === '127.0.0.1', JSON.stringify(junk));
  });
});
