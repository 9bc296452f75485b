/**
 * Benchmark (issue 9, "memory is a budget"): `postern serve` holding 1,000 concurrent SMTP
 * sessions on loopback. Measures the server's memory and its accept latency under that load.
 *
 *   1,000 clients (this process) -> postern serve (bin/postern.js, as users run it) -> smtp-sink
 *
 * One wave: session i connects at i × ramp / n ms (`--ramp-ms`, default 1000; 0 = all in one
 * burst); each reads the banner, says EHLO, MAIL, RCPT, DATA and a small message, then waits
 * until every session of the wave has had its 250 (so the server really holds all of them at the
 * same time) before QUIT. Per session it times
 * - connect → 220: from calling connect() to reading the complete banner (the accept path:
 *   accept(2), the limits, the greeting);
 * - DATA end → 250: from writing the final "." line to reading the 250 (the durable queue commit).
 * The client is one thread: its own event-loop delay is reported beside the latencies.
 * The server's memory is sampled from /proc/<pid>/status (VmRSS every 50 ms, and VmHWM, the
 * kernel's own high-water mark, at the end), so the peak is not missed between samples.
 *
 * The flood comes from one address range, so the server's connection limits have to allow it:
 * the bench config sets them explicitly — `maxConnections` above the wave size, and
 * `maxConnectionsPerIp: 20` (the default) with the clients bound round-robin to source addresses
 * 127.0.0.2 … 127.0.0.N (N = ceil(sessions / 20) + 1), so no address exceeds its share. Loopback
 * only; bounded in count (`--sessions`, `--waves`) and time (`--timeout` per wave).
 *
 *   node bench/smtp-sessions.ts [--sessions 1000] [--waves 3] [--ramp-ms 1000] [--size 2048] [--timeout 120] [--no-doc]
 *
 * Needs Debian's postfix package for smtp-sink(1) (the next hop the messages are relayed to).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { makeSelfSignedCert } from '../test/integration/peers/certs.ts';
import { freePort, waitForBanner } from '../test/integration/peers/ports.ts';
import { makeTempDir } from '../test/integration/peers/tmp.ts';
import { REPO_ROOT, haveCommand, writeDocSection } from './common.ts';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '1000' },
    waves: { type: 'string', default: '3' },
    size: { type: 'string', default: '2048' },
    timeout: { type: 'string', default: '120' },
    'per-ip': { type: 'string', default: '20' },
    'ramp-ms': { type: 'string', default: '1000' },
    'no-doc': { type: 'boolean', default: false },
  },
});
const RAMP_MS = Number(values['ramp-ms']);
if (!(RAMP_MS >= 0 && RAMP_MS <= 60_000)) throw new Error('--ramp-ms: 0..60000');
const SESSIONS = Number(values.sessions);
const WAVES = Number(values.waves);
const SIZE = Number(values.size);
const WAVE_TIMEOUT_MS = Number(values.timeout) * 1000;
const PER_IP = Number(values['per-ip']);
if (!(SESSIONS >= 1 && SESSIONS <= 20_000)) throw new Error('--sessions: 1..20000');
if (!(WAVES >= 1 && WAVES <= 20)) throw new Error('--waves: 1..20');
const SOURCES = Math.ceil(SESSIONS / PER_IP);
if (SOURCES > 250) throw new Error('too many source addresses needed; raise --per-ip');
const HOST = '127.0.0.1';
const SENDER = 'bench@source.test';
const RCPT = 'rcpt@dest.test';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function message(n: number): string {
  const line = 'y'.repeat(70) + '\r\n';
  let body = '';
  while (body.length < SIZE) body += line;
  return `From: <${SENDER}>\r\nTo: <${RCPT}>\r\nSubject: session ${n}\r\nMessage-ID: <${n}.${Date.now()}@source.test>\r\n\r\n${body}.\r\n`;
}

interface SessionTimes {
  banner: number;
  dataEnd: number;
}

/**
 * One session up to the 250 after DATA; resolves with its times and a `quit()` that ends it.
 * Rejects on any unexpected reply, error or close.
 */
function openSession(
  port: number,
  localAddress: string,
  n: number,
): Promise<{ times: SessionTimes; quit: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = connect({ host: HOST, port, localAddress, noDelay: true });
    sock.setEncoding('latin1');
    const steps = ['', 'EHLO c.source.test\r\n', `MAIL FROM:<${SENDER}>\r\n`, `RCPT TO:<${RCPT}>\r\n`, 'DATA\r\n'];
    const expect = ['220', '250', '250', '250', '354', '250', '221'];
    let step = 0;
    let buf = '';
    let banner = 0;
    let tData = 0;
    let settled = false;
    let onQuit: (() => void) | null = null;
    let closed = false;
    const fail = (why: string): void => {
      sock.destroy();
      if (!settled) {
        settled = true;
        reject(new Error(`session ${n} (${localAddress}): ${why}`));
      }
    };
    sock.on('error', (e) => fail(e.message));
    sock.on('close', () => {
      closed = true;
      if (onQuit !== null) onQuit();
      else fail(`closed at step ${step}`);
    });
    sock.on('data', (s: string) => {
      buf += s;
      for (;;) {
        const m = /(?:^|\n)(\d{3}) [^\n]*\n/.exec(buf);
        if (m === null) return;
        const code = m[1] ?? '';
        buf = buf.slice(m.index + m[0].length);
        if (code !== expect[step]) return fail(`step ${step}: expected ${expect[step]}, got ${m[0].trim()}`);
        const now = performance.now();
        if (step === 0) banner = now - t0;
        step++;
        if (step <= 4) sock.write(steps[step] ?? '');
        else if (step === 5) {
          tData = performance.now();
          sock.write(message(n));
        } else if (step === 6) {
          settled = true;
          resolve({
            times: { banner, dataEnd: now - tData },
            quit: () =>
              new Promise<void>((r) => {
                if (closed) return r();
                onQuit = r;
                sock.write('QUIT\r\n');
              }),
          });
        } else if (step === 7) sock.end();
      }
    });
  });
}

async function vm(pid: number): Promise<{ rssKiB: number; hwmKiB: number }> {
  const st = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return {
    rssKiB: Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0),
    hwmKiB: Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0),
  };
}

/** The kernel's count of connections dropped because a listen queue was full (system-wide). */
async function listenOverflows(): Promise<number> {
  const t = await readFile('/proc/net/netstat', 'utf8').catch(() => '');
  const lines = t.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const keys = lines[0]?.split(/\s+/) ?? [];
  const vals = lines[1]?.split(/\s+/) ?? [];
  return Number(vals[keys.indexOf('ListenOverflows')] ?? NaN);
}

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** smtp-sink(1) as the next hop; returns its port, a message counter and a stop function. */
async function startSink(): Promise<{ port: number; count: () => number; stop: () => void }> {
  const port = await freePort(HOST);
  const child = spawn('/usr/sbin/smtp-sink', ['-c', '-u', 'nobody', `${HOST}:${port}`, '1024'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let n = 0;
  child.stdout.setEncoding('latin1');
  child.stdout.on('data', (s: string) => {
    for (const m of s.matchAll(/mesg=(\d+)/g)) n = Math.max(n, Number(m[1]));
  });
  await waitForBanner(HOST, port, '220', 10_000);
  return { port, count: () => n, stop: () => child.kill('SIGTERM') };
}

// --- main ------------------------------------------------------------------------------------

if (!haveCommand('smtp-sink')) throw new Error('smtp-sink (Debian postfix) is not installed: scripts/install-peers.sh');
const sink = await startSink();
const tmp = await makeTempDir('bench-sessions', 0o700);
const cert = await makeSelfSignedCert({ dnsNames: ['relay.bench.test'] });
await writeFile(join(tmp.path, 'cert.pem'), cert.certPem);
await writeFile(join(tmp.path, 'key.pem'), cert.keyPem, { mode: 0o600 });
const port = await freePort(HOST);
await writeFile(
  join(tmp.path, 'postern.yaml'),
  [
    'hostname: relay.bench.test',
    'tls: { cert: cert.pem, key: key.pem }',
    'listen:',
    `  - { name: mx, address: ${HOST}, port: ${port}, mode: starttls, role: mx, auth: none }`,
    'relay:',
    '  networks: [127.0.0.0/8]',
    'queue: { dir: queue }',
    'routes:',
    `  dest.test: '${HOST}:${sink.port}'`,
    'policy:',
    '  default: { level: may }',
    // The limits the flood needs, stated rather than inherited (see the header comment).
    `limits: { maxConnections: ${SESSIONS + 100}, maxConnectionsPerIp: ${PER_IP} }`,
    'log: { level: info }',
    '',
  ].join('\n'),
);
const logFile = join(tmp.path, 'postern.log');
const fd = openSync(logFile, 'a', 0o600);
const server = spawn(
  process.execPath,
  [
    ...(process.env['BENCH_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
    join(REPO_ROOT, 'bin/postern.js'),
    'serve',
    '--config',
    join(tmp.path, 'postern.yaml'),
  ],
  { stdio: ['ignore', fd, fd], cwd: tmp.path },
);
closeSync(fd);
const pid = server.pid ?? 0;
let exited = false;
server.once('exit', () => (exited = true));

const loadStart = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const mem = { idleKiB: 0, peakKiB: 0, hwmKiB: 0, overflows: 0 };
interface Wave {
  banner: number[];
  dataEnd: number[];
  wallMs: number;
  failed: number;
  firstError: string;
  /** This process's own event-loop delay, p99 (ms): how much of the latency is the client's. */
  clientLagP99: number;
}
const waves: Wave[] = [];
try {
  await waitForBanner(HOST, port, '220', 30_000).catch(async (e: unknown) => {
    throw new Error(`postern did not start: ${await readFile(logFile, 'utf8').catch(() => '')}`, { cause: e });
  });
  // Warm-up: one small wave so the hot paths are compiled before measuring.
  await runWave(Math.min(100, SESSIONS), -1);
  await sleep(1000);
  mem.idleKiB = (await vm(pid)).rssKiB;
  let sampling = true;
  const sampler = (async () => {
    while (sampling && !exited) {
      mem.peakKiB = Math.max(mem.peakKiB, (await vm(pid)).rssKiB);
      await sleep(50);
    }
  })();
  const overflowsBefore = await listenOverflows();
  for (let w = 0; w < WAVES; w++) {
    waves.push(await runWave(SESSIONS, w));
    await sleep(500);
  }
  sampling = false;
  await sampler;
  mem.overflows = (await listenOverflows()) - overflowsBefore;
  mem.hwmKiB = (await vm(pid)).hwmKiB;
  // Every message of every wave reaches the next hop (the server accepted, and did not lose, them).
  const want = Math.min(100, SESSIONS) + SESSIONS * WAVES - waves.reduce((a, w) => a + w.failed, 0);
  const deadline = Date.now() + 120_000;
  while (sink.count() < want && Date.now() < deadline) await sleep(100);
  console.log(`sink counted ${sink.count()} of ${want} messages`);
} finally {
  if (!exited) {
    const gone = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await Promise.race([gone, sleep(15_000)]);
    if (!exited) server.kill('SIGKILL');
  }
  sink.stop();
  await tmp.remove();
}

async function runWave(n: number, w: number): Promise<Wave> {
  const t0 = performance.now();
  let failed = 0;
  let firstError = '';
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), WAVE_TIMEOUT_MS).unref());
  // Session i starts at i × ramp / n ms: with --ramp-ms 0 all connects are issued in one burst
  // (then the client, one thread, reads no banner before it has issued them all, which shows in
  // connect → 220); either way every session stays open until the whole wave has its 250s.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const all = Array.from({ length: n }, (_, i) =>
    (RAMP_MS === 0 ? Promise.resolve() : sleep((i * RAMP_MS) / n))
      .then(() => openSession(port, `127.0.0.${2 + (i % SOURCES)}`, i + 1_000_000 * (w + 2)))
      .catch((e: unknown) => {
        failed++;
        if (firstError === '') firstError = (e as Error).message;
        return null;
      }),
  );
  const done = await Promise.race([Promise.all(all), timer]);
  lag.disable();
  const clientLagP99 = lag.percentile(99) / 1e6;
  if (done === 'timeout') throw new Error(`wave ${w}: not done within ${WAVE_TIMEOUT_MS} ms`);
  const ok = done.filter((s) => s !== null);
  const wallMs = performance.now() - t0;
  await Promise.all(ok.map((s) => s.quit()));
  const banner = ok.map((s) => s.times.banner).sort((a, b) => a - b);
  const dataEnd = ok.map((s) => s.times.dataEnd).sort((a, b) => a - b);
  if (w >= 0) {
    console.log(
      `wave ${w + 1}: ${ok.length}/${n} sessions in ${(wallMs / 1000).toFixed(2)} s; connect→220 p50 ${pct(banner, 0.5).toFixed(1)} ms p99 ${pct(banner, 0.99).toFixed(1)} ms; ` +
        `DATA end→250 p50 ${pct(dataEnd, 0.5).toFixed(1)} ms p99 ${pct(dataEnd, 0.99).toFixed(1)} ms` +
        (failed > 0 ? `; ${failed} failed, first: ${firstError}` : ''),
    );
  }
  return { banner, dataEnd, wallMs, failed, firstError, clientLagP99 };
}

const loadEnd = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const banner = waves.flatMap((w) => w.banner).sort((a, b) => a - b);
const dataEnd = waves.flatMap((w) => w.dataEnd).sort((a, b) => a - b);
const failed = waves.reduce((a, w) => a + w.failed, 0);
const mib = (kib: number): string => (kib / 1024).toFixed(1);
const rows = waves.map(
  (w, i) =>
    `| ${i + 1} | ${w.banner.length} | ${w.failed} | ${(w.wallMs / 1000).toFixed(2)} | ${pct(w.banner, 0.5).toFixed(1)} | ${pct(w.banner, 0.99).toFixed(1)} | ${pct(w.dataEnd, 0.5).toFixed(1)} | ${pct(w.dataEnd, 0.99).toFixed(1)} | ${w.clientLagP99.toFixed(1)} |`,
);
const summary =
  `- server peak RSS **${mib(Math.max(mem.peakKiB, mem.hwmKiB))} MiB** (VmHWM ${mib(mem.hwmKiB)} MiB, sampled VmRSS peak ${mib(mem.peakKiB)} MiB; ${mib(mem.idleKiB)} MiB after the warm-up; target < 200 MB = 190.7 MiB)\n` +
  `- connect → 220 over all waves: p50 ${pct(banner, 0.5).toFixed(1)} ms, **p99 ${pct(banner, 0.99).toFixed(1)} ms** (target < 50 ms)\n` +
  `- DATA end → 250 over all waves: p50 ${pct(dataEnd, 0.5).toFixed(1)} ms, **p99 ${pct(dataEnd, 0.99).toFixed(1)} ms** (target < 50 ms)\n` +
  `- failed sessions: ${failed}; listen-queue overflows during the waves (kernel ListenOverflows, system-wide): ${mem.overflows}`;
const table = [
  '| wave | sessions ok | failed | wall (s) | connect→220 p50 (ms) | p99 (ms) | DATA end→250 p50 (ms) | p99 (ms) | client loop delay p99 (ms) |',
  '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
].join('\n');
console.log(`\n${table}\n\n${summary}`);

if (!values['no-doc']) {
  const date = new Date().toISOString().slice(0, 10);
  await writeDocSection(
    'smtp-sessions',
    `## \`bench/smtp-sessions\`: ${SESSIONS} concurrent SMTP sessions against \`postern serve\`

\`\`\`sh
node bench/smtp-sessions.ts${RAMP_MS !== 1000 ? ` --ramp-ms ${RAMP_MS}` : ''}   # ~1 min; needs smtp-sink (Debian postfix)
\`\`\`

Measured ${date} on this project's machine (${cpus().length} cores), Node ${process.versions.node}. \`postern serve\` started through \`bin/postern.js\` (as users run it), one plain-SMTP MX listener on ${HOST}, relaying to smtp-sink on loopback. Each wave opens ${SESSIONS} sessions, ${RAMP_MS === 0 ? 'all connects issued at once' : `their connects spread evenly over ${RAMP_MS} ms`}; each sends EHLO, MAIL, RCPT, DATA and a ${SIZE}-byte message as soon as it has its 220 and holds its connection until the whole wave has its 250s, then QUITs, so the server holds all ${SESSIONS} sessions at once. "Client loop delay" is the benchmark process's own event-loop delay (it drives all sessions from one thread), the part of the latencies that is not the server's. Clients are bound round-robin to ${SOURCES} source addresses (127.0.0.2–127.0.0.${SOURCES + 1}) and the config states the limits (\`maxConnections: ${SESSIONS + 100}\`, \`maxConnectionsPerIp: ${PER_IP}\`), so no session is refused by a limit. One untimed warm-up wave of ${Math.min(100, SESSIONS)} sessions, then ${WAVES} measured waves on the same server. Memory: the server's VmRSS sampled every 50 ms and its VmHWM. Load average (1/5/15 min) at the start ${loadStart}, at the end ${loadEnd} (the machine is shared).

${table}

${summary}
`,
  );
  console.log('\nwrote docs/benchmarks.md (section smtp-sessions)');
}
process.exit(0);
