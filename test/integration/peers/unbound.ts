/**
 * A private Unbound instance on loopback that answers from `local-data` only: a real DNS server for
 * postern's DNS client tests, with no mocks. It never recurses or forwards: `local-zone: "." static`
 * makes every name outside the given data NXDOMAIN (or NODATA), and `do-not-query-address` covers
 * all of IPv4 and IPv6 as a second guard (this machine has no outside network, and the tests must
 * not try). Runs in the foreground (`-d`), so stop() kills exactly the PID we spawned.
 *
 * For DNSSEC (test/integration/peers/dnssec.ts): `moduleConfig` turns the validator on, `queryOnly`
 * lets it query exactly one loopback address (a stub zone's authoritative server) and nothing else,
 * `serverLines` carry trust anchors verbatim and `extraClauses` the `stub-zone:` blocks.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../../../src/core/errors.ts';
import { assertLoopback, freePort, waitForPort } from './ports.ts';
import { pidAlive, run, trackDaemon, untrackDaemon, waitPidGone } from './proc.ts';
import { makeTempDir } from './tmp.ts';

const UNBOUND = '/usr/sbin/unbound';

/** True when Debian's unbound binary is installed (scripts/install-peers.sh). */
export function unboundAvailable(): boolean {
  return existsSync(UNBOUND);
}

export interface UnboundOptions {
  /** RRs in zone-file syntax, e.g. 'example.test. 300 IN MX 10 mx1.example.test.'. */
  localData: string[];
  /** Extra `local-zone: "<name>" <type>` entries, e.g. { name: 'refused.test.', type: 'refuse' }. */
  localZones?: Array<{ name: string; type: string }>;
  /** Extra lines for the `server:` clause. */
  serverLines?: string[];
  /** Extra top-level clauses (e.g. an `auth-zone:` block), verbatim. */
  extraClauses?: string[];
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
  /** `module-config` value (default 'iterator'; 'validator iterator' validates DNSSEC). */
  moduleConfig?: string;
  /**
   * The one loopback IPv4 address Unbound may send queries to (for `stub-zone:` servers). Default:
   * none at all. Every other IPv4 and IPv6 address stays in `do-not-query-address`.
   */
  queryOnly?: string;
}

export interface UnboundInstance {
  host: string;
  port: number;
  /** `host:port`, as `--dns-server` takes it. */
  server: string;
  pid: number;
  dir: string;
  /** Unbound's log so far (stderr), for failure messages. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Unbound accepts "…" or '…'; TXT data carries double quotes, so those values get single ones. */
function quote(s: string): string {
  if (/[\n\r]/.test(s) || (s.includes('"') && s.includes("'")))
    throw new PosternError('peer-bad-config', `unbound config value cannot be quoted: ${s}`);
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

/**
 * CIDR blocks covering all of IPv4 except `addr`/32: for each bit, the prefix of `addr` up to that
 * bit with the bit flipped. `do-not-query-address` has no "except", so the complement is listed.
 */
export function ipv4ComplementOf(addr: string): string[] {
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new PosternError('peer-bad-config', `not an IPv4 address: ${addr}`);
  }
  const n = parts.reduce((acc, p) => acc * 256 + p, 0);
  const out: string[] = [];
  for (let len = 1; len <= 32; len++) {
    const bit = 2 ** (32 - len);
    const flipped = Math.floor(n / bit) % 2 === 0 ? n + bit : n - bit;
    const net = Math.floor(flipped / bit) * bit;
    const dotted = [24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.');
    out.push(`${dotted}/${len}`);
  }
  return out;
}

/** Starts Unbound on host:<free port> (UDP and TCP) and resolves once it answers on TCP. */
export async function startUnbound(opts: UnboundOptions): Promise<UnboundInstance> {
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  if (opts.queryOnly !== undefined) {
    assertLoopback(opts.queryOnly);
    if (opts.queryOnly.includes(':')) throw new PosternError('peer-bad-config', 'queryOnly must be IPv4');
  }
  // Never send a query anywhere: no upstream exists for these tests. With `queryOnly`, exactly
  // that one loopback address is reachable (`do-not-query-localhost: no` lifts the 127/8 block).
  const noQuery =
    opts.queryOnly === undefined
      ? ['  do-not-query-localhost: yes', '  do-not-query-address: 0.0.0.0/0']
      : [
          '  do-not-query-localhost: no',
          ...ipv4ComplementOf(opts.queryOnly).map((c) => `  do-not-query-address: ${c}`),
        ];
  // Quote every value before anything is created, so a bad value leaves nothing behind.
  const zoneLines = [
    ...(opts.localZones ?? []).map((z) => `  local-zone: ${quote(z.name)} ${z.type}`),
    ...opts.localData.map((rr) => `  local-data: ${quote(rr)}`),
  ];
  const port = await freePort(host);
  const dir = await makeTempDir('unbound');
  const conf = [
    'server:',
    '  verbosity: 1',
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: ${quote(dir.path)}`,
    '  pidfile: ""',
    '  use-syslog: no',
    '  logfile: ""',
    `  interface: ${host}@${port}`,
    `  port: ${port}`,
    `  do-ip4: ${host.includes(':') ? 'no' : 'yes'}`,
    `  do-ip6: ${host.includes(':') ? 'yes' : 'no'}`,
    '  do-udp: yes',
    '  do-tcp: yes',
    '  access-control: 127.0.0.0/8 allow',
    '  access-control: ::1 allow',
    ...noQuery,
    '  do-not-query-address: ::/0',
    '  num-threads: 1',
    `  module-config: ${quote(opts.moduleConfig ?? 'iterator')}`,
    '  local-zone: "." static',
    ...zoneLines,
    ...(opts.serverLines ?? []).map((l) => `  ${l}`),
    'remote-control:',
    '  control-enable: no',
    ...(opts.extraClauses ?? []),
    '',
  ].join('\n');
  const confPath = join(dir.path, 'unbound.conf');
  await writeFile(confPath, conf);
  const check = await run('/usr/sbin/unbound-checkconf', [confPath], { timeoutMs: 15_000 });
  if (check.code !== 0) {
    await dir.remove();
    throw new PosternError('peer-bad-config', `unbound-checkconf: ${(check.stderr || check.stdout).trim()}`);
  }

  const logPath = join(dir.path, 'unbound.log');
  const out = await open(logPath, 'a', 0o600);
  const child = spawn(UNBOUND, ['-d', '-c', confPath], { stdio: ['ignore', out.fd, out.fd] });
  await out.close();
  const pid = child.pid;
  if (pid === undefined) {
    await dir.remove();
    throw new PosternError('peer-exec-failed', 'cannot spawn unbound');
  }
  trackDaemon(pid);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const readLog = (): Promise<string> => readFile(logPath, 'utf8').catch(() => '');
  const stop = async (): Promise<void> => {
    if (!exited && (await pidAlive(pid))) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone
      }
      if (!(await waitPidGone(pid, 5000))) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
        await waitPidGone(pid, 2000);
      }
    }
    untrackDaemon(pid);
    await dir.remove();
  };
  try {
    await waitForPort(host, port, 15_000);
  } catch (e) {
    const log = await readLog();
    await stop();
    throw new PosternError('peer-start-failed', `unbound did not start: ${(e as Error).message}\n${log.slice(-2000)}`);
  }
  return {
    host,
    port,
    server: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    pid,
    dir: dir.path,
    log: readLog,
    stop,
  };
}
