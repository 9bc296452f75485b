// Attack: connection-slot exhaustion (issue 9). 10 addresses × 20 idle sessions filled the 200
// shared slots, so new clients were refused on MX and submission alike; a session lived for ever
// on one NOOP every few minutes; a DATA phase dripping 1 byte per 2 s lasted 10 × dataTimeout.
// Defences (Postfix's): a junk-command limit, an overall DATA deadline (smtp-limits.test.ts
// drives it too), short timeouts when a pool is nearly full (smtpd_timeout under stress), and
// submission slots kept apart from MX slots. All timing runs on a manual clock.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PosternEvent } from '../../src/core/events.ts';
import { session, SmtpTestClient, startHarness } from '../helpers/smtp-harness.ts';
import { ManualTimers, until } from '../helpers/manual-timers.ts';

function collector(): { events: PosternEvent[]; sink: { emit(e: PosternEvent): void } } {
  const events: PosternEvent[] = [];
  return { events, sink: { emit: (e) => events.push(e) } };
}

describe('smtpd connection slots', () => {
  test('junk commands: the 101st NOOP/RSET/VRFY/HELP gets 421 4.7.0 and the session ends', async () => {
    const { events, sink } = collector();
    const h = await startHarness({ server: { events: sink } });
    try {
      const c = await session(h.port['mx'] as number);
      const verbs = ['NOOP', 'RSET', 'VRFY x@local.test', 'HELP'];
      for (let i = 0; i < 100; i++) assert.ok((await c.cmd(verbs[i % 4] as string)).code < 300);
      assert.match((await c.cmd('NOOP')).raw, /^421 4\.7\.0 .*too many NOOP commands/);
      assert.equal(await c.waitClosed(), true);
      assert.equal(h.server.stats().junkLimitHits, 1);
      assert.ok(events.some((e) => e.event === 'smtpd.limit' && e.limit === 'junk-commands'));
    } finally {
      await h.close();
    }
  });

  test('junk commands: a session that delivers mail starts counting again', async () => {
    const h = await startHarness({ limits: { junkCommandLimit: 3 } });
    try {
      const c = await session(h.port['mx'] as number);
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 3; i++) assert.equal((await c.cmd('NOOP')).code, 250);
        await c.cmd('MAIL FROM:<a@local.test>');
        await c.cmd('RCPT TO:<b@local.test>');
        await c.cmd('DATA');
        assert.equal((await c.cmd('x\r\n.')).code, 250);
      }
      await c.cmd('NOOP');
      await c.cmd('NOOP');
      await c.cmd('NOOP');
      assert.equal((await c.cmd('NOOP')).code, 421);
    } finally {
      await h.close();
    }
  });

  test('stress: above 80 % of the slots, idle sessions get the short timeout at once', async () => {
    const timers = new ManualTimers();
    const { events, sink } = collector();
    const h = await startHarness({
      limits: { maxConnections: 10, commandTimeoutMs: 300_000, stressTimeoutMs: 10_000 },
      server: { timers, events: sink },
    });
    const clients: SmtpTestClient[] = [];
    try {
      // 8 of 10 slots: not yet under stress (80 % is the threshold, more than it is stress).
      for (let i = 0; i < 8; i++) clients.push(await session(h.port['mx'] as number));
      timers.advance(10_000);
      assert.equal(h.server.stats().timeouts, 0);
      // The 9th takes the pool over 80 %: every idle session now has 10 s, not 5 minutes.
      clients.push(await session(h.port['mx'] as number));
      assert.ok(events.some((e) => e.event === 'smtpd.stress' && e.on && e.pool === 'mx'));
      timers.advance(10_000);
      assert.equal(h.server.stats().timeouts, 9);
      for (const c of clients) assert.match((await c.reply()).raw, /^421 4\.4\.2 /);
      assert.equal(
        events.filter((e) => e.event === 'smtpd.timeout' && e.stressed).length,
        9,
        'timeouts marked as stress timeouts',
      );
      timers.advance(2000);
      await until(() => h.server.stats().connections === 0, 'all closed');
      // Back under the threshold: the normal timeout again.
      assert.ok(events.some((e) => e.event === 'smtpd.stress' && !e.on));
      const calm = await session(h.port['mx'] as number);
      timers.advance(10_000);
      assert.equal((await calm.cmd('NOOP')).code, 250);
      calm.close();
    } finally {
      for (const c of clients) c.close();
      await h.close();
    }
  });

  test('stress: a busy session is held only by real work (junk and error limits drop to 1)', async () => {
    const h = await startHarness({ limits: { maxConnections: 10, maxErrors: 10, junkCommandLimit: 100 } });
    const idle: SmtpTestClient[] = [];
    try {
      // Eight idle sessions; the ninth of ten slots puts the pool over 80 %, under stress.
      for (let i = 0; i < 8; i++) idle.push(await session(h.port['mx'] as number));
      const c = await session(h.port['mx'] as number);
      assert.equal((await c.cmd('NOOP')).code, 250);
      assert.match((await c.cmd('NOOP')).raw, /^421 4\.7\.0 .*too many NOOP/);
      await until(() => h.server.stats().connections === 8, 'the slot given back');
      const e = await session(h.port['mx'] as number);
      assert.match((await e.cmd('FOO')).raw, /^500 5\.5\.2 /);
      assert.match((await e.reply()).raw, /^421 4\.7\.0 .*too many errors/);
      // Mail still flows under stress.
      await until(() => h.server.stats().connections === 8, 'the slot given back');
      const m = await session(h.port['mx'] as number);
      await m.cmd('MAIL FROM:<a@local.test>');
      await m.cmd('RCPT TO:<b@local.test>');
      await m.cmd('DATA');
      assert.equal((await m.cmd('x\r\n.')).code, 250);
      m.close();
      // Without stress the normal limits apply.
      for (const x of idle) x.close();
      await until(() => h.server.stats().connections === 0, 'calm');
      const calm = await session(h.port['mx'] as number);
      for (let i = 0; i < 5; i++) assert.equal((await calm.cmd('NOOP')).code, 250);
      assert.match((await calm.cmd('FOO')).raw, /^500 /);
      assert.equal((await calm.cmd('NOOP')).code, 250);
      calm.close();
    } finally {
      for (const x of idle) x.close();
      await h.close();
    }
  });

  test('a flood that fills the MX slots does not lock users out of submission', async () => {
    const { events, sink } = collector();
    const h = await startHarness({
      limits: { maxConnections: 5, maxSubmissionConnections: 3, maxConnectionsPerIp: 100 },
      server: { events: sink },
    });
    const flood: SmtpTestClient[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const c = await SmtpTestClient.connect(h.port['mx'] as number);
        assert.equal((await c.reply()).code, 220);
        flood.push(c);
      }
      const sixth = await SmtpTestClient.connect(h.port['mx'] as number);
      assert.match((await sixth.reply()).raw, /^421 4\.3\.2 /);
      // Submission (587 and 465 share the submission pool) still has its own slots.
      const user = await session(h.port['sub'] as number, { tls: true, auth: true });
      assert.equal((await user.cmd('NOOP')).code, 250);
      const smtps = await session(h.port['smtps'] as number, { implicitTls: true, auth: true });
      assert.equal((await smtps.cmd('NOOP')).code, 250);
      user.close();
      smtps.close();
      assert.ok(events.some((e) => e.event === 'smtpd.connection-refused' && e.reason === 'slots' && e.pool === 'mx'));
    } finally {
      for (const c of flood) c.close();
      await h.close();
    }
  });

  test('the submission pool is bounded too', async () => {
    const h = await startHarness({ limits: { maxConnections: 50, maxSubmissionConnections: 2 } });
    const open: SmtpTestClient[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const c = await SmtpTestClient.connect(h.port['sub'] as number);
        assert.equal((await c.reply()).code, 220);
        open.push(c);
      }
      const third = await SmtpTestClient.connect(h.port['sub'] as number);
      assert.match((await third.reply()).raw, /^421 4\.3\.2 /);
      const mx = await session(h.port['mx'] as number);
      assert.equal((await mx.cmd('NOOP')).code, 250);
      mx.close();
    } finally {
      for (const c of open) c.close();
      await h.close();
    }
  });
});
