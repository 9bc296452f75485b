// Attack: memory exhaustion without logging in. A client pipelines commands and never reads the
// replies (issue 9: 5 MB of HELP made the server queue 80 MB of replies per connection, four
// connections took RSS from 94 to 810 MB). The server must stop reading a client whose replies
// are not drained (bounded output buffer per connection), and the command timeout must then end
// the session.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startHarness } from '../helpers/smtp-harness.ts';
import { ManualTimers, until } from '../helpers/manual-timers.ts';

const COMMAND_TIMEOUT = 300_000;
/**
 * The socket's write high-water mark (node 22+: 64 KiB) plus one reply at most: the check comes
 * before each command and HELP's reply is < 200 octets.
 */
const BOUND = 64 * 1024 + 4096;

describe('smtpd reply back-pressure', () => {
  for (const verb of ['HELP', 'NOOP']) {
    test(`5 MB of pipelined ${verb} never read: output buffered stays under ${BOUND} octets`, async (t) => {
      const timers = new ManualTimers();
      // A junk limit this high does not interfere: the output bound must hold on its own.
      const h = await startHarness({
        limits: { commandTimeoutMs: COMMAND_TIMEOUT, junkCommandLimit: 10_000_000 },
        server: { timers },
      });
      const s = connect({ host: '127.0.0.1', port: h.port['mx'] as number });
      try {
        s.on('error', () => undefined);
        await new Promise((r) => s.once('connect', r));
        // No 'data' listener: the client never reads; its kernel receive window fills up.
        const n = Math.ceil(5_000_000 / (verb.length + 2));
        const payload = Buffer.from(`${verb}\r\n`.repeat(n));
        s.write(payload);
        // Either the server stalls (fixed) or it processes all of the input (unbounded buffering).
        await until(() => h.server.stats().outputStalls > 0 || h.server.stats().commands >= n, 'a stall or all input');
        const st = h.server.stats();
        t.diagnostic(
          `peak output buffered ${st.outputBufferedPeak} octets, stalls ${st.outputStalls}, ${st.commands} of ${n} commands processed, RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`,
        );
        assert.ok(st.outputBufferedPeak <= BOUND, `peak output buffered ${st.outputBufferedPeak} > ${BOUND}`);
        assert.equal(st.outputStalls, 1);
        // The server stopped reading: most of the commands were never processed.
        const processed = h.server.stats().commands;
        assert.ok(processed < n / 2, `${processed} of ${n} commands processed`);
        // A client that never drains is ended by the command timeout, like any idle client.
        timers.advance(COMMAND_TIMEOUT);
        assert.equal(h.server.stats().timeouts, 1);
        timers.advance(2000); // the forced close of a client that does not read the 421 either
        await until(() => h.server.stats().connections === 0, 'session closed');
        assert.ok(h.server.stats().outputBufferedPeak <= BOUND);
      } finally {
        s.destroy();
        await h.close();
      }
    });
  }

  test('the same over implicit TLS (465): the TLS socket is bounded too', async () => {
    const timers = new ManualTimers();
    const h = await startHarness({
      limits: { commandTimeoutMs: COMMAND_TIMEOUT, junkCommandLimit: 10_000_000 },
      server: { timers },
    });
    const n = 400_000;
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: h.port['smtps'], rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    try {
      t.on('error', () => undefined);
      t.pause(); // never read (the greeting stays unread too)
      t.write('HELP\r\n'.repeat(n));
      await until(() => h.server.stats().outputStalls > 0 || h.server.stats().commands >= n, 'a stall or all input');
      const st = h.server.stats();
      assert.ok(st.outputBufferedPeak <= BOUND, `peak output buffered ${st.outputBufferedPeak} > ${BOUND}`);
      assert.ok(st.commands < n / 2, `${st.commands} of ${n} commands processed`);
      timers.advance(COMMAND_TIMEOUT);
      assert.equal(h.server.stats().timeouts, 1);
    } finally {
      t.destroy();
      await h.close();
    }
  });

  test('a client that reads slowly still gets every reply, in order', async () => {
    const h = await startHarness({ limits: { junkCommandLimit: 10_000_000 } });
    const s = connect({ host: '127.0.0.1', port: h.port['mx'] as number });
    try {
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      const n = 60_000; // ~6 MB of replies: more than the loopback socket buffers take
      s.write('HELP\r\n'.repeat(n) + 'QUIT\r\n');
      // Read only once the server has stalled, then everything.
      await until(() => h.server.stats().outputStalls > 0, 'stall');
      let text = '';
      s.on('data', (d: Buffer) => (text += d.toString('latin1')));
      await new Promise((r) => s.once('close', r));
      const lines = text.split('\r\n').filter((l) => l !== '');
      assert.equal(lines[0]?.slice(0, 3), '220');
      assert.equal(lines.filter((l) => l.startsWith('214 ')).length, n);
      assert.equal(lines.at(-1), '221 2.0.0 Bye');
      assert.ok(h.server.stats().outputBufferedPeak <= BOUND, String(h.server.stats().outputBufferedPeak));
    } finally {
      s.destroy();
      await h.close();
    }
  });
});
