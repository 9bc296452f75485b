// Attack: a mail server that holds the scanner by answering just inside every per-line timeout —
// one `250-` line at a time after EHLO (500 lines × 10 s ≈ 83 minutes were allowed), or a server
// that stalls after STARTTLS. `postern scan` must stop within its budgets and say why, as the
// finding `server-too-slow`, not "server closed the connection". No wall-clock assertions: the
// endpoint budget runs on an injected timer, the per-connection budget is a short one.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { renderEndpoint, makeStyle } from '../../src/scan/render-text.ts';
import { scanEndpoint } from '../../src/scan/scan.ts';
import type { ResolvedTarget } from '../../src/scan/target.ts';

interface FakeServer {
  port: number;
  connections: number;
  /** Resolves when the first ClientHello (or any byte after the STARTTLS go-ahead) arrives. */
  helloSeen: Promise<void>;
  close(): Promise<void>;
}

/**
 * A fake ESMTP server. `drip`: after EHLO, one `250-` line every `dripMs`, up to 2,000 lines (so
 * the 500-line reply cap would be reached only after the fact). `stall`: a normal EHLO with
 * STARTTLS, a 220 go-ahead, then silence — whatever the client sends.
 */
async function startFake(mode: 'drip' | 'stall', dripMs = 20): Promise<FakeServer> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let seenHello: () => void = () => undefined;
  const helloSeen = new Promise<void>((r) => (seenHello = r));
  const fake = { connections: 0 };
  const server: Server = createServer((s) => {
    fake.connections++;
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.write('220 slow.test ESMTP\r\n');
    let tls = false;
    let buf = '';
    s.on('data', (chunk: Buffer) => {
      if (tls) {
        seenHello();
        return;
      }
      buf += chunk.toString('latin1');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'EHLO' && mode === 'drip') {
          let n = 0;
          const t = setInterval(() => {
            if (s.destroyed || ++n > 2000) {
              clearInterval(t);
              timers.delete(t);
              s.destroy();
              return;
            }
            s.write(`250-slow.test drip line ${n}\r\n`);
          }, dripMs);
          timers.add(t);
        } else if (verb === 'EHLO') s.write('250-slow.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n');
        else if (verb === 'STARTTLS') {
          s.write('220 2.0.0 go ahead\r\n');
          tls = true;
          if (buf.length > 0) seenHello();
          return;
        } else if (verb === 'QUIT') s.end('221 bye\r\n');
        else s.write('250 ok\r\n');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return fake.connections;
    },
    helloSeen,
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function target(port: number): ResolvedTarget {
  return {
    url: `smtp://127.0.0.1:${port}`,
    service: 'smtp',
    host: '127.0.0.1',
    address: '127.0.0.1',
    port,
    dialect: 'smtp',
  };
}

/** A timer that fires only when the test says so; records what it was asked for. */
function fakeTimer(): {
  setTimer: (ms: number, fire: () => void) => () => void;
  fire: () => void;
  asked: number[];
  cancelled: () => boolean;
} {
  let pending: (() => void) | null = null;
  let cancelled = false;
  const asked: number[] = [];
  return {
    setTimer: (ms, fire) => {
      asked.push(ms);
      pending = fire;
      return () => {
        cancelled = true;
        pending = null;
      };
    },
    fire: () => pending?.(),
    asked,
    cancelled: () => cancelled,
  };
}

describe('scan: a slow-drip server cannot hold the scanner', () => {
  test('EHLO answered one 250- line at a time: the per-connection budget ends it as server-too-slow', async () => {
    const fake = await startFake('drip', 20);
    const clock = fakeTimer();
    try {
      // 20 ms per line is far inside the 300 ms per-line timeout; the dialogue budget (3 × 300 ms)
      // is what must stop each connection. The endpoint budget never fires here.
      const r = await scanEndpoint(target(fake.port), {
        timeoutMs: 300,
        endpointTimeoutMs: 120_000,
        setTimer: clock.setTimer,
      });
      const slow = r.findings.find((f) => f.id === 'server-too-slow');
      assert.ok(slow, `a server-too-slow finding, got ${r.findings.map((f) => f.id).join(', ')}`);
      assert.equal(slow.severity, 'medium');
      assert.match(slow.evidence?.[0] ?? '', /^first connection: greeting and capabilities not complete after 900 ms/);
      assert.match(slow.evidence?.[0] ?? '', /server lines received\); last line: 250-slow\.test drip line \d+$/);
      // Not mistaken for a dead server, nor for a missing STARTTLS.
      assert.equal(r.reachable, true);
      assert.equal(r.compliant, false);
      assert.ok(!r.findings.some((f) => f.id === 'unreachable' || f.id === 'starttls-missing'));
      // The endpoint budget was armed with the configured value and disarmed at the end.
      assert.deepEqual(clock.asked, [120_000]);
      assert.equal(clock.cancelled(), true);
      // The text report shows what was slow.
      const text = renderEndpoint(r, makeStyle(false));
      assert.match(text, /server-too-slow/);
      assert.match(text, /greeting and capabilities not complete after 900 ms/);
      // JSON carries the same finding.
      const json = JSON.parse(JSON.stringify(r)) as typeof r;
      assert.equal(json.findings.find((f) => f.id === 'server-too-slow')?.evidence?.length, slow.evidence?.length);
    } finally {
      await fake.close();
    }
  });

  test('a server that stalls after STARTTLS: the endpoint budget stops the whole scan, with evidence', async () => {
    const fake = await startFake('stall');
    const clock = fakeTimer();
    try {
      // Per-step timeouts of a minute: only the (injected) endpoint budget can end this test in time.
      const scan = scanEndpoint(target(fake.port), {
        timeoutMs: 60_000,
        endpointTimeoutMs: 45_000,
        setTimer: clock.setTimer,
      });
      await fake.helloSeen; // the probe is waiting for a ServerHello that never comes
      clock.fire();
      const r = await scan;
      const slow = r.findings.find((f) => f.id === 'server-too-slow');
      assert.ok(slow, `a server-too-slow finding, got ${r.findings.map((f) => f.id).join(', ')}`);
      assert.match(slow.message, /scan stopped after 45000 ms/);
      const evidence = (slow.evidence ?? []).join('\n');
      assert.match(evidence, /first connection: interrupted by the endpoint budget/);
      assert.match(evidence, /endpoint budget of 45000 ms \(--endpoint-timeout\) ran out/);
      assert.equal(r.reachable, true);
      assert.equal(r.compliant, false);
      assert.ok(!r.findings.some((f) => f.id === 'unreachable'));
      assert.ok(fake.connections >= 1);
    } finally {
      await fake.close();
    }
  });
});
