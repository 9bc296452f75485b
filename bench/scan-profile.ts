/**
 * Where postern's full audit spends its time, phase by phase, measured in-process against the
 * same relay-fronted server `bench/scan` uses. Each phase runs alone and sequentially (one
 * connection at a time) so its cost is visible; the last rows are the real engine with its
 * default concurrency for comparison.
 */
import { probeCommandInjection, openStartTls } from '../src/tls/starttls/index.ts';
import { tlsHandshake } from '../src/tls/handshake.ts';
import { ConnectionLimiter, probeEndpoint } from '../src/tls/probe/index.ts';
import {
  detectServerPreference,
  enumerateSslv2,
  enumerateTls12Groups,
  enumerateTls13Groups,
  enumerateVersion,
} from '../src/tls/probe/enumerate.ts';
import type { HelloContext } from '../src/tls/probe/hello.ts';
import { VERSIONS } from '../src/tls/wire/constants.ts';
import type { VersionName } from '../src/tls/wire/constants.ts';
import { suiteByCode } from '../src/tls/wire/suites.ts';
import { median, timedRun } from './common.ts';
import type { CountingRelay } from './relay.ts';

interface Row {
  phase: string;
  ms: number;
  connections: number;
}

/** Per-phase timings of a postern audit of `relay` (SMTP STARTTLS), as a markdown section. */
export async function profileAudit(host: string, relay: CountingRelay): Promise<string> {
  const port = relay.port;
  const rows: Row[] = [];
  const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    relay.reset();
    const t0 = performance.now();
    const v = await fn();
    rows.push({ phase: name, ms: performance.now() - t0, connections: relay.connections() });
    return v;
  };
  const ctx = (): HelloContext => ({
    target: { host, address: host, port, dialect: 'smtp' },
    limiter: new ConnectionLimiter(1),
    rateLimitRetries: 0,
    rateLimitBackoffMs: 0,
    injectionWindowMs: 0,
  });

  // Start-up of a fresh `node bin/postern.js` (no network), and with a warm compile cache.
  const startup: number[] = [];
  for (let i = 0; i < 3; i++) startup.push((await timedRun(process.execPath, ['bin/postern.js', '--version'])).wallMs);
  const ccDir = `/tmp/postern-bench-cc-${process.pid}`;
  const ccEnv = { ...process.env, NODE_COMPILE_CACHE: ccDir };
  await timedRun(process.execPath, ['bin/postern.js', '--version'], { env: ccEnv });
  const startupCached: number[] = [];
  for (let i = 0; i < 3; i++)
    startupCached.push((await timedRun(process.execPath, ['bin/postern.js', '--version'], { env: ccEnv })).wallMs);
  await timedRun('rm', ['-rf', ccDir]);

  // Warm the JIT so the phases below measure the network and the server, not compilation.
  await probeEndpoint({ host, address: host, port, dialect: 'smtp' });

  await phase('STARTTLS dialogue only (connect, 220, EHLO, STARTTLS), ×20', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await openStartTls({ host, port, dialect: 'smtp', injectionWindowMs: 0 });
      r.socket.destroy();
    }
  });
  await phase('STARTTLS dialogue with the 150 ms response-injection window, ×1', async () => {
    const r = await openStartTls({ host, port, dialect: 'smtp' });
    r.socket.destroy();
  });
  const suites = new Map<VersionName, number[]>();
  for (const v of VERSIONS) {
    const r = await phase(`enumerate ${v}`, () => (v === 'SSLv2' ? enumerateSslv2(ctx()) : enumerateVersion(ctx(), v)));
    suites.set(v, r.suites);
  }
  await phase('server preference (each version with ≥ 2 suites)', async () => {
    for (const v of VERSIONS) {
      const s = suites.get(v) ?? [];
      if (v !== 'SSLv2' && s.length >= 2) await detectServerPreference(ctx(), v, s);
    }
  });
  await phase('TLS 1.3 groups (HelloRetryRequest)', () => enumerateTls13Groups(ctx(), suites.get('TLSv1.3') ?? []));
  await phase('TLS 1.2 ECDHE groups (ServerKeyExchange)', () =>
    enumerateTls12Groups(
      ctx(),
      (suites.get('TLSv1.2') ?? []).filter((c) => suiteByCode(c)?.kx === 'ECDHE'),
      'TLSv1.2',
    ),
  );
  await phase('full handshake (node:tls, chain capture)', async () => {
    const ready = await openStartTls({ host, port, dialect: 'smtp', injectionWindowMs: 0 });
    const { tlsSocket } = await tlsHandshake({
      socket: ready.socket,
      host,
      port,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.3',
      ciphers: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0',
    });
    tlsSocket.destroy();
  });
  await phase('CVE-2011-0411 command-injection check', () => probeCommandInjection({ host, port, dialect: 'smtp' }));
  for (const m of [1, 2]) {
    await phase(`probeEndpoint, whole engine, --max-conn-per-ip ${m}`, () =>
      probeEndpoint({ host, address: host, port, dialect: 'smtp' }, { maxConnPerIp: m }),
    );
  }

  const lines = [
    "### Where postern's time goes (in-process, sequential phases, JIT warm)",
    '',
    `Node start-up, \`node bin/postern.js --version\`: median ${median(startup).toFixed(0)} ms; with a warm ` +
      `\`NODE_COMPILE_CACHE\` ${median(startupCached).toFixed(0)} ms.`,
    '',
    '| phase | ms | connections | ms / connection |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.phase} | ${r.ms.toFixed(0)} | ${r.connections} | ${r.connections > 0 ? (r.ms / r.connections).toFixed(1) : '–'} |`,
    ),
  ];
  return lines.join('\n');
}
