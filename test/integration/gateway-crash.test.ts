/**
 * Crash safety of `postern serve` under load: the real CLI runs as a child process, several SMTP
 * clients submit numbered messages concurrently, and the server is killed with SIGKILL at random
 * moments (while accepting, while delivering, and some inside the spool's open at start-up — shown
 * by evidence, test/helpers/crash.ts), at least 20 times, and restarted on the same config and
 * queue each time. At the end it drains to a recording sink (outbound policy `encrypt`, so every
 * delivery goes over STARTTLS) and every message that got a 250 must have arrived with its
 * envelope and its bytes: the sender, exactly its recipient, and the submitted message after the
 * gateway's own Received header. Duplicates are allowed (at-least-once: a kill between the sink's
 * 250 and the spool update means a second delivery); they are counted and reported.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SPOOL_FILE } from '../../src/queue/sqlite.ts';
import { makeCert } from '../helpers/certs.ts';
import { SmtpTestClient } from '../helpers/smtp-client.ts';
import { startSmtpSink } from '../helpers/smtp-sink.ts';
import type { SinkMessage, SmtpSink } from '../helpers/smtp-sink.ts';
import { hasOpen, holdSpoolLock, killPhase, ownerWritten, walBytes } from '../helpers/crash.ts';
import type { KillPhase } from '../helpers/crash.ts';

const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));
const KILLS = 24;
/** Kills aimed at the spool's open (every fifth) must land there at least this often (else aim again, bounded). */
const MIN_OPENING_KILLS = 4;
const MAX_EXTRA_KILLS = 4;
const CLIENTS = 8;
/** The whole test must end well within this. */
const BUDGET_MS = 170_000;

let dir = '';
let sink: SmtpSink | null = null;
let child: ChildProcess | null = null;
after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await sink?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Running {
  proc: ChildProcess;
  /** Resolves when the CLI has printed its listeners (they are bound by then). */
  ready: Promise<void>;
  /** The ready line has been printed (checked after the exit, so no event turn is missed). */
  readonly isReady: boolean;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function startServer(config: string): Running {
  const proc = spawn(process.execPath, [BIN, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  let isReady = false;
  void ready.then(() => (isReady = true));
  proc.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    // serve prints its listeners after they are bound; the queue line is the last one.
    if (/\n {2}queue {8}/.test(stderr)) onReady();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return {
    proc,
    ready,
    get isReady() {
      return isReady || /\n {2}queue {8}/.test(stderr);
    },
    exited,
  };
}

interface Sent {
  /** The message as submitted (before the final "."), which the sink must receive after the trace headers. */
  message: Buffer;
  rcpt: string;
}

interface Load {
  acked: Set<number>;
  sent: Map<number, Sent>;
  /** Submitted, but the 250 never came (server killed mid-transaction). */
  unacked: Set<number>;
  stop(): Promise<void>;
}

/** CLIENTS concurrent submitters of numbered messages; reconnect whenever the server is gone. */
function startLoad(port: number): Load {
  const acked = new Set<number>();
  const unacked = new Set<number>();
  const sent = new Map<number, Sent>();
  let next = 0;
  let stopping = false;
  const one = async (): Promise<void> => {
    while (!stopping) {
      let c: SmtpTestClient | null = null;
      try {
        c = await SmtpTestClient.connect(port);
        if ((await c.reply(3000)).code !== 220) throw new Error('greeting');
        if ((await c.cmd('EHLO load.postern.test', 3000)).code !== 250) throw new Error('EHLO');
        while (!stopping) {
          const n = next++;
          unacked.add(n);
          if ((await c.cmd(`MAIL FROM:<load@client.test>`, 3000)).code !== 250) throw new Error('MAIL');
          const rcpt = `n${n}@sink.test`;
          if ((await c.cmd(`RCPT TO:<${rcpt}>`, 3000)).code !== 250) throw new Error('RCPT');
          if ((await c.cmd('DATA', 3000)).code !== 354) throw new Error('DATA');
          const body =
            `From: <load@client.test>\r\nTo: <n${n}@sink.test>\r\nSubject: crash test ${n}\r\n` +
            `Message-ID: <crash-${n}@postern.test>\r\n\r\nmessage number ${n}\r\n${'y'.repeat(100 + (n % 7) * 120)}\r\n.`;
          sent.set(n, { message: Buffer.from(body.slice(0, -1), 'latin1'), rcpt });
          const r = await c.cmd(body, 5000);
          if (r.code !== 250) throw new Error(`end of DATA: ${r.raw}`);
          unacked.delete(n);
          acked.add(n);
        }
        await c.cmd('QUIT', 1000).catch(() => undefined);
      } catch {
        // Killed server, refused connection, timeout: try again shortly.
        await sleep(20 + Math.random() * 40);
      } finally {
        c?.close();
      }
    }
  };
  const workers = Array.from({ length: CLIENTS }, () => one());
  return {
    acked,
    sent,
    unacked,
    stop: async () => {
      stopping = true;
      await Promise.all(workers);
    },
  };
}

/** Why a delivery differs from the submission, or null when it is the same mail. */
function deliveredWrong(m: SinkMessage, want: Sent): string | null {
  if (m.from !== 'load@client.test') return `MAIL FROM ${m.from}`;
  if (m.to.length !== 1 || m.to[0] !== want.rcpt) return `RCPT TO ${m.to.join(',')}`;
  if (m.data.length < want.message.length) return `${m.data.length} bytes, submitted ${want.message.length}`;
  const head = m.data.subarray(0, m.data.length - want.message.length);
  if (!m.data.subarray(head.length).equals(want.message)) return 'the message bytes differ';
  // What precedes the submitted message: only trace header fields (Received and its folded lines).
  if (!/^(Received:[^\r\n]*\r\n([ \t][^\r\n]*\r\n)*)+$/.test(head.toString('latin1')))
    return `unexpected prefix ${JSON.stringify(head.toString('latin1').slice(0, 200))}`;
  return null;
}

test(
  `every acknowledged message reaches the sink across ${KILLS} SIGKILLs under load`,
  {
    timeout: BUDGET_MS + 10_000,
  },
  async (t) => {
    const started = Date.now();
    dir = await mkdtemp(join(tmpdir(), 'postern-gw-crash-'));
    const cert = await makeCert({ subject: 'CN=gw.postern.test', dnsNames: ['gw.postern.test'] });
    await writeFile(join(dir, 'cert.pem'), cert.pem);
    await writeFile(join(dir, 'key.pem'), cert.keyPem);
    const sinkCert = await makeCert({ subject: 'CN=sink.postern.test', dnsNames: ['sink.postern.test'] });
    sink = await startSmtpSink({ tls: { cert: sinkCert.pem, key: sinkCert.keyPem } });

    const seen = new Map<number, number>();
    const deliveries = new Map<number, SinkMessage[]>();
    let cleartext = 0;
    sink.onMessage = (m) => {
      const id = /^Message-ID: <crash-(\d+)@postern\.test>\r$/m.exec(m.data.toString('latin1'));
      if (id?.[1] !== undefined) {
        const n = Number(id[1]);
        seen.set(n, (seen.get(n) ?? 0) + 1);
        deliveries.set(n, [...(deliveries.get(n) ?? []), m]);
      }
      if (!m.tls) cleartext++;
    };

    const port = await freePort();
    const config = join(dir, 'postern.yaml');
    await writeFile(
      config,
      [
        'hostname: gw.postern.test',
        'tls: { cert: cert.pem, key: key.pem }',
        `listen: [{ name: mx, address: 127.0.0.1, port: ${port}, mode: starttls, role: mx }]`,
        'relay: { networks: [127.0.0.0/8] }',
        'queue: { dir: queue, retry: { initial: 1s, max: 2s } }',
        `routes: { sink.test: '127.0.0.1:${sink.port}' }`,
        'policy: { default: { level: may }, domains: { sink.test: { level: encrypt } } }',
        'log: { level: error }',
        '',
      ].join('\n'),
    );

    const load = startLoad(port);
    const queueDir = join(dir, 'queue');
    const phases = new Map<KillPhase, number>();
    let kills = 0;
    /** Kills inside the spool's open with the previous run's WAL pending recovery. */
    let recoveringKills = 0;
    const uptimes: number[] = [];
    try {
      for (let round = 0; round < KILLS + MAX_EXTRA_KILLS; round++) {
        const opening = phases.get('opening-spool') ?? 0;
        if (round >= KILLS && opening >= MIN_OPENING_KILLS) break;
        // Every fifth kill, and every extra one, is aimed at the spool's open during start-up.
        const aimAtOpen = round >= KILLS || round % 5 === 2;
        const pendingWal = walBytes(queueDir);
        // Aimed at the open: SQLite's shared-lock bytes are held, so the server's open waits (up
        // to its 3 s busy timeout) with the database file open, and the kill lands inside it on
        // any load. Evidence still decides: the file seen open, no owner row written.
        const lock = aimAtOpen ? await holdSpoolLock(queueDir) : null;
        const s = startServer(config);
        child = s.proc;
        const t0 = Date.now();
        let sawSpoolOpen = false;
        if (lock !== null) {
          const db = join(queueDir, SPOOL_FILE);
          for (let i = 0; i < 3000 && !sawSpoolOpen && s.proc.exitCode === null; i++) {
            sawSpoolOpen = hasOpen(s.proc.pid ?? -1, db);
            if (!sawSpoolOpen) await sleep(5);
          }
          await sleep(Math.random() * 300);
          s.proc.kill('SIGKILL');
          await s.exited;
          await lock.release();
        } else {
          const ok = await Promise.race([s.ready.then(() => true), sleep(15_000).then(() => false)]);
          assert.ok(ok, `round ${round}: the server did not come up`);
          await sleep(150 + Math.random() * 1200);
          s.proc.kill('SIGKILL');
        }
        const ex = await s.exited;
        assert.equal(ex.signal, 'SIGKILL', `round ${round}: the server exited on its own (${ex.code}): ${ex.stderr}`);
        const phase = killPhase({
          sawSpoolOpen,
          ownerWritten: ownerWritten(queueDir, s.proc.pid ?? -1),
          ready: s.isReady,
        });
        phases.set(phase, (phases.get(phase) ?? 0) + 1);
        if (phase === 'opening-spool' && pendingWal > 0) recoveringKills++;
        if (process.env['POSTERN_CRASH_TRACE'] === '1')
          process.stderr.write(`round ${round}: ${phase} after ${Date.now() - t0} ms, ${load.acked.size} acked\n`);
        uptimes.push(Date.now() - t0);
        kills++;
      }

      // Last start: keep loading briefly, then stop the clients and let the queue drain.
      const s = startServer(config);
      child = s.proc;
      await s.ready;
      await sleep(500);
      await load.stop();
      const deadline = started + BUDGET_MS;
      const missing = (): number[] => [...load.acked].filter((n) => !seen.has(n));
      while (missing().length > 0 && Date.now() < deadline) await sleep(100);

      const lost = missing();
      // Every acknowledged message arrived as submitted: its envelope, and its bytes after the
      // gateway's Received header (RFC 5321 §4.4) — not just something with the same Message-ID.
      const wrong: string[] = [];
      for (const n of load.acked) {
        const want = load.sent.get(n);
        assert.ok(want !== undefined);
        for (const m of deliveries.get(n) ?? []) {
          const why = deliveredWrong(m, want);
          if (why !== null) wrong.push(`${n}: ${why}`);
        }
      }
      const duplicates = [...seen.values()].filter((v) => v > 1).length;
      const extraCopies = [...seen.values()].reduce((a, v) => a + v - 1, 0);
      const unackedDelivered = [...load.unacked].filter((n) => seen.has(n)).length;
      t.diagnostic(
        `${load.acked.size} messages acknowledged, ${sink.messages.length} deliveries at the sink, ` +
          `${kills} SIGKILLs (by phase: ${[...phases].map(([p, n]) => `${p} ${n}`).join(', ')}; ` +
          `${recoveringKills} inside the spool open with a WAL to recover; mean uptime ${Math.round(uptimes.reduce((a, b) => a + b, 0) / uptimes.length)} ms), ` +
          `${duplicates} messages delivered more than once (${extraCopies} extra copies), ` +
          `${unackedDelivered}/${load.unacked.size} unacknowledged messages delivered anyway, ` +
          `${Math.round((Date.now() - started) / 1000)} s`,
      );
      assert.deepEqual(lost.slice(0, 20), [], `${lost.length} acknowledged messages never reached the sink`);
      assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} deliveries differ from what was submitted`);
      // Where the kills landed, from evidence: some inside the spool's open at start-up, most
      // while serving (accepting and delivering).
      const summary = [...phases].map(([p, n]) => `${p} ${n}`).join(', ');
      assert.ok((phases.get('opening-spool') ?? 0) >= MIN_OPENING_KILLS, `kills inside the spool open: ${summary}`);
      assert.ok((phases.get('serving') ?? 0) >= 15, `kills while serving: ${summary}`);
      assert.ok(load.acked.size >= 500, `only ${load.acked.size} messages were acknowledged: the load was too light`);
      assert.equal(cleartext, 0, 'policy encrypt: nothing reached the sink in cleartext');

      // A graceful stop still works on the queue that survived all of this.
      s.proc.kill('SIGTERM');
      const ex = await s.exited;
      assert.equal(ex.code, 0, `SIGTERM: ${ex.stderr}`);
    } finally {
      await load.stop();
    }
  },
);
