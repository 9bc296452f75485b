/**
 * A real DNSSEC lab on loopback, no mocks: NSD serves a zone signed with a freshly made local key
 * (ldns-keygen + ldns-signzone) plus an unsigned child zone delegated without DS, and a validating
 * Unbound with that key as its trust anchor answers the tests. What the tests see is what a
 * validating resolver says about real signatures:
 *  - names in the signed zone: NOERROR/NXDOMAIN with AD (RFC 4035 §3.2.3);
 *  - names in `insecure.<zone>`: no AD, provably insecure (the parent's signed NSEC at the
 *    delegation shows NS but no DS, RFC 4035 §5.2);
 *  - RRsets listed in `corrupt`: their RRSIG is broken after signing, so they are bogus: SERVFAIL,
 *    or the data without AD when the query sets CD (RFC 4035 §3.2.2).
 *
 * Both daemons run in the foreground as our children; stop() ends exactly their PIDs (NSD in its own
 * process group, which holds its xfrd and server children) and removes the temp dir. Unbound may
 * query 127.0.0.1 and nothing else; nothing listens on port 53.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PosternError } from '../../../src/core/errors.ts';
import { freePort, waitForPort } from './ports.ts';
import { runOk, stopDaemon, trackDaemon, untrackDaemon } from './proc.ts';
import { makeTempDir } from './tmp.ts';
import { startUnbound, unboundAvailable } from './unbound.ts';
import type { UnboundInstance } from './unbound.ts';

const NSD = '/usr/sbin/nsd';
const NSD_CHECKCONF = '/usr/sbin/nsd-checkconf';
const NSD_CHECKZONE = '/usr/sbin/nsd-checkzone';
const LDNS_KEYGEN = '/usr/bin/ldns-keygen';
const LDNS_SIGNZONE = '/usr/bin/ldns-signzone';
const HOST = '127.0.0.1';

/** True when nsd, ldns-keygen, ldns-signzone and unbound are installed (scripts/install-peers.sh). */
export function dnssecLabAvailable(): boolean {
  return (
    [NSD, NSD_CHECKCONF, NSD_CHECKZONE, LDNS_KEYGEN, LDNS_SIGNZONE].every((p) => existsSync(p)) && unboundAvailable()
  );
}

export interface DnssecLabOptions {
  /** Apex of the signed zone (default 'dane.test'). */
  zone?: string;
  /** RRs of the signed zone, one per string, zone-file syntax, absolute owner names. SOA/NS/glue are added. */
  signed: string[];
  /** RRs of the unsigned child zone `insecure.<zone>`, delegated from the parent without DS. */
  insecure?: string[];
  /** RRsets of the signed zone whose RRSIG is broken after signing: bogus (SERVFAIL; data with +cd). */
  corrupt?: Array<{ name: string; type: string }>;
  /** Extra Unbound local-data outside the zone (unsigned), e.g. names for an HTTPS server. */
  localData?: string[];
  /** Deny with NSEC3 (RFC 5155; 0 extra iterations, empty salt per RFC 9276 §3.1) instead of NSEC. */
  nsec3?: boolean;
}

export interface DnssecLab {
  /** The validating Unbound, `ip:port`. */
  resolver: string;
  /** NSD, `ip:port` (answers authoritatively, with RRSIGs when DO is set). */
  authoritative: string;
  /** The signed zone's apex, without trailing dot (e.g. 'dane.test'). */
  zone: string;
  /** The unsigned child zone's apex (`insecure.<zone>`). */
  insecureZone: string;
  /** Our two daemons (NSD's pid leads its own process group with its xfrd and server children). */
  pids: { nsd: number; unbound: number };
  /** Temp dir with keys, zone files and configs; removed by stop(). */
  dir: string;
  /** Milliseconds startDnssecLab() took (keys, signing, both daemons, the self-check). */
  startMs: number;
  stop(): Promise<void>;
  /** NSD's and Unbound's logs so far (Unbound logs validation failures at val-log-level 2). */
  log(): Promise<string>;
}

/** Lower-case absolute form ('a.b.' ) of a name given with or without the trailing dot. */
function fqdn(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n : `${n}.`;
}

function inZone(owner: string, apex: string): boolean {
  return owner === apex || owner.endsWith(`.${apex}`);
}

/** Owner name of a one-line RR; refuses relative names and multi-line RRs (we add no $ORIGIN). */
function ownerOf(rr: string, what: string): string {
  if (/[\n\r()]/.test(rr)) throw new PosternError('peer-bad-config', `${what}: one RR per line, no parentheses: ${rr}`);
  const owner = rr.trim().split(/\s+/)[0] ?? '';
  if (!owner.endsWith('.')) throw new PosternError('peer-bad-config', `${what}: owner must be absolute: ${rr}`);
  return owner.toLowerCase();
}

function soaAndNs(apex: string, ns: string): string[] {
  // Negative TTL 60 s (RFC 2308 §5), so a test that adds nothing later still gets fresh answers.
  return [`${apex} 3600 IN SOA ${ns} hostmaster.${apex} 1 3600 600 86400 60`, `${apex} 3600 IN NS ${ns}`];
}

/**
 * Breaks the RRSIG(s) covering `name`/`type` in ldns-signzone's output (one RR per line): one bit
 * of the signature value is flipped, so the RRset stays well-formed but fails verification.
 */
function corruptSignatures(signed: string, targets: Array<{ name: string; type: string }>): string {
  const lines = signed.split('\n');
  for (const t of targets) {
    const owner = fqdn(t.name);
    const type = t.type.toUpperCase();
    let hits = 0;
    for (let i = 0; i < lines.length; i++) {
      const f = (lines[i] ?? '').split(/\s+/);
      // owner TTL class RRSIG covered alg labels origTTL expiration inception keytag signer sig
      if (f.length < 13 || f[3] !== 'RRSIG' || f[0]?.toLowerCase() !== owner || f[4]?.toUpperCase() !== type) continue;
      const sig = Buffer.from(f.slice(12).join(''), 'base64');
      sig[0] = (sig[0] ?? 0) ^ 0x01;
      lines[i] = [...f.slice(0, 12), sig.toString('base64')].join('\t');
      hits++;
    }
    if (hits === 0)
      throw new PosternError('peer-bad-config', `corrupt: no RRSIG for ${owner} ${type} in the signed zone`);
  }
  return lines.join('\n');
}

/** Header of a DNS reply: what the harness needs to know that a server answers as expected. */
interface ProbeReply {
  rcode: number;
  aa: boolean;
  ad: boolean;
}

/** One UDP query (EDNS0 with DO, RFC 6891 §6.1.2; AD set, RFC 6840 §5.7) for `name`/SOA. */
function probe(
  host: string,
  port: number,
  name: string,
  recurse: boolean,
  timeoutMs: number,
): Promise<ProbeReply | null> {
  const labels = fqdn(name).slice(0, -1).split('.');
  const qname = Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
  const id = Math.floor(Math.random() * 0x10000);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE((recurse ? 0x0100 : 0) | 0x0020, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT RR
  const question = Buffer.from([0, 6, 0, 1]); // SOA IN
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]); // root, OPT, 1232, DO
  const msg = Buffer.concat([header, qname, question, opt]);
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let finished = false;
    const done = (r: ProbeReply | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    sock.on('error', () => done(null));
    sock.on('message', (buf) => {
      if (buf.length < 12 || buf.readUInt16BE(0) !== id || (buf[2] ?? 0) < 0x80) return;
      const flags = buf.readUInt16BE(2);
      done({ rcode: flags & 0x0f, aa: (flags & 0x0400) !== 0, ad: (flags & 0x0020) !== 0 });
    });
    // Connected, so a port nobody listens on yet fails at once (ECONNREFUSED) instead of timing out.
    sock.connect(port, host, () => sock.send(msg));
  });
}

/** Poll `probe` until `ok` holds for a reply or `timeoutMs` passes; returns the last reply. */
async function probeUntil(
  host: string,
  port: number,
  name: string,
  recurse: boolean,
  ok: (r: ProbeReply) => boolean,
  timeoutMs: number,
): Promise<ProbeReply | null> {
  const deadline = Date.now() + timeoutMs;
  let last: ProbeReply | null = null;
  while (Date.now() < deadline) {
    last = await probe(host, port, name, recurse, Math.min(500, Math.max(1, deadline - Date.now())));
    if (last !== null && ok(last)) return last;
    await new Promise((r) => setTimeout(r, 30));
  }
  return last;
}

/** Makes a key with ldns-keygen in `dir`; returns its base name (K<zone>+013+<tag>). */
async function keygen(dir: string, apex: string, ksk: boolean): Promise<string> {
  const args = ['-a', 'ECDSAP256SHA256', ...(ksk ? ['-k'] : []), apex];
  const base = (await runOk(LDNS_KEYGEN, args, { cwd: dir, timeoutMs: 15_000 })).stdout.trim();
  if (!/^K[\w.-]+\+013\+\d{5}$/.test(base)) throw new PosternError('peer-start-failed', `ldns-keygen printed ${base}`);
  return base;
}

/**
 * Starts the lab: keys, signed parent zone and unsigned child, NSD and a validating Unbound on
 * 127.0.0.1 (free ports), and resolves once Unbound answers the zone's SOA with AD (so a lab that
 * resolves is a lab whose chain of trust works).
 */
export async function startDnssecLab(opts: DnssecLabOptions): Promise<DnssecLab> {
  const t0 = performance.now();
  const apex = fqdn(opts.zone ?? 'dane.test');
  const child = `insecure.${apex}`;
  const ns = `ns.${apex}`;
  const childNs = `ns.${child}`;
  // Check every input before anything is created, so a bad call leaves nothing behind.
  for (const rr of opts.signed) {
    const o = ownerOf(rr, 'signed');
    if (!inZone(o, apex) || inZone(o, child))
      throw new PosternError('peer-bad-config', `signed: ${o} not in ${apex} (outside ${child})`);
  }
  for (const rr of opts.insecure ?? []) {
    if (!inZone(ownerOf(rr, 'insecure'), child))
      throw new PosternError('peer-bad-config', `insecure: ${rr} not in ${child}`);
  }
  for (const rr of opts.localData ?? []) {
    if (inZone(ownerOf(rr, 'localData'), apex))
      throw new PosternError('peer-bad-config', `localData: ${rr} is inside ${apex}`);
  }

  const dir = await makeTempDir('dnssec');
  let nsdPid: number | undefined;
  let port = 0;
  let unbound: UnboundInstance | undefined;
  const nsdLog = join(dir.path, 'nsd.log');
  const stop = async (): Promise<void> => {
    await unbound?.stop();
    if (nsdPid !== undefined) {
      await stopDaemon(nsdPid, 5000);
      untrackDaemon(nsdPid);
    }
    await dir.remove();
  };
  const log = async (): Promise<string> =>
    `--- nsd ---\n${await readFile(nsdLog, 'utf8').catch(() => '')}--- unbound ---\n${(await unbound?.log()) ?? ''}`;
  try {
    const ksk = await keygen(dir.path, apex, true);
    const zsk = await keygen(dir.path, apex, false);
    const dnskey = (await readFile(join(dir.path, `${ksk}.key`), 'utf8'))
      .replace(/;.*$/s, '')
      .trim()
      .split(/\s+/)
      .join(' ');

    port = await freePort(HOST);
    // Parent: the delegation to the child carries NS + glue and no DS, so ldns-signzone's NSEC at
    // insecure.<zone> lists only NS, RRSIG, NSEC: the signed proof that the child is insecure.
    const parent = [
      '$TTL 300',
      ...soaAndNs(apex, ns),
      `${ns} 3600 IN A ${HOST}`,
      `${child} 3600 IN NS ${childNs}`,
      `${childNs} 3600 IN A ${HOST}`,
      ...opts.signed,
      '',
    ].join('\n');
    await writeFile(join(dir.path, 'parent.zone'), parent);
    const now = Math.floor(Date.now() / 1000);
    await runOk(
      LDNS_SIGNZONE,
      [
        ...(opts.nsec3 === true ? ['-n', '-t', '0'] : []),
        '-i',
        String(now - 3600),
        '-e',
        String(now + 30 * 86400),
        '-o',
        apex,
        '-f',
        'parent.signed',
        'parent.zone',
        ksk,
        zsk,
      ],
      { cwd: dir.path, timeoutMs: 15_000 },
    );
    if ((opts.corrupt ?? []).length > 0) {
      const signedPath = join(dir.path, 'parent.signed');
      await writeFile(signedPath, corruptSignatures(await readFile(signedPath, 'utf8'), opts.corrupt ?? []));
    }
    const childZone = [
      '$TTL 300',
      ...soaAndNs(child, childNs),
      `${childNs} 3600 IN A ${HOST}`,
      ...(opts.insecure ?? []),
      '',
    ];
    await writeFile(join(dir.path, 'child.zone'), childZone.join('\n'));
    await runOk(NSD_CHECKZONE, [apex, join(dir.path, 'parent.signed')], { timeoutMs: 15_000 });
    await runOk(NSD_CHECKZONE, [child, join(dir.path, 'child.zone')], { timeoutMs: 15_000 });

    const q = (s: string): string => JSON.stringify(s);
    const nsdConf = [
      'server:',
      `  ip-address: ${HOST}@${port}`,
      `  port: ${port}`,
      '  do-ip4: yes',
      '  do-ip6: no',
      '  server-count: 1',
      '  reuseport: no',
      '  username: ""',
      '  chroot: ""',
      `  zonesdir: ${q(dir.path)}`,
      '  database: ""',
      `  zonelistfile: ${q(join(dir.path, 'zone.list'))}`,
      `  xfrdfile: ${q(join(dir.path, 'xfrd.state'))}`,
      `  xfrdir: ${q(dir.path)}`,
      `  pidfile: ${q(join(dir.path, 'nsd.pid'))}`,
      '  verbosity: 1',
      '  hide-version: yes',
      '  zonefiles-write: 0',
      'remote-control:',
      '  control-enable: no',
      'zone:',
      `  name: ${q(apex)}`,
      '  zonefile: "parent.signed"',
      'zone:',
      `  name: ${q(child)}`,
      '  zonefile: "child.zone"',
      '',
    ].join('\n');
    const confPath = join(dir.path, 'nsd.conf');
    await writeFile(confPath, nsdConf);
    await runOk(NSD_CHECKCONF, [confPath], { timeoutMs: 15_000 });

    // -d: foreground; detached: its own process group, holding exactly its xfrd and server children.
    const out = await open(nsdLog, 'a', 0o600);
    const proc = spawn(NSD, ['-d', '-c', confPath], { stdio: ['ignore', out.fd, out.fd], detached: true });
    await out.close();
    if (proc.pid === undefined) throw new PosternError('peer-exec-failed', 'cannot spawn nsd');
    nsdPid = proc.pid;
    trackDaemon(nsdPid);
    proc.unref();
    const nsdReady = (async (): Promise<void> => {
      const r = await probeUntil(HOST, port, apex, false, (x) => x.rcode === 0 && x.aa, 10_000);
      if (r === null || r.rcode !== 0 || !r.aa) {
        throw new PosternError('peer-start-failed', `nsd does not answer SOA ${apex} authoritatively`);
      }
      await waitForPort(HOST, port, 5000);
    })();
    // Unbound starts while NSD loads its zones (it queries NSD only on demand); allSettled so a
    // failure of one still lets stop() see the other.
    const ubStarted = startUnbound({
      localData: opts.localData ?? [],
      // Overrides Unbound's built-in static `test.` zone (RFC 6761 §6.2) for our subtree only.
      localZones: [{ name: apex, type: 'transparent' }],
      moduleConfig: 'validator iterator',
      queryOnly: HOST,
      serverLines: [`trust-anchor: ${q(dnskey)}`, 'val-log-level: 2', 'ede: yes'],
      // One stub per zone: the NS names resolve to 127.0.0.1, which would mean port 53.
      extraClauses: [apex, child].map((z) => `stub-zone:\n  name: ${q(z)}\n  stub-addr: ${HOST}@${port}`),
    });
    const [n, u] = await Promise.allSettled([nsdReady, ubStarted]);
    if (u.status === 'fulfilled') unbound = u.value;
    if (n.status === 'rejected') throw n.reason as Error;
    if (u.status === 'rejected') throw u.reason as Error;
    if (unbound === undefined) throw new PosternError('peer-start-failed', 'unbound did not start');
    // Self-check: the apex SOA validates. Unless the caller broke the apex itself on purpose (a
    // corrupt DNSKEY or SOA signature), then any answer means Unbound is up.
    const apexBroken = (opts.corrupt ?? []).some(
      (c) => fqdn(c.name) === apex && ['SOA', 'DNSKEY'].includes(c.type.toUpperCase()),
    );
    const secure = (r: ProbeReply): boolean => r.rcode === 0 && r.ad;
    const ubReady = await probeUntil(HOST, unbound.port, apex, true, apexBroken ? () => true : secure, 10_000);
    if (ubReady === null || (!apexBroken && !secure(ubReady))) {
      throw new PosternError('peer-start-failed', `unbound does not validate SOA ${apex}: ${JSON.stringify(ubReady)}`);
    }
  } catch (e) {
    const text = await log();
    await stop();
    if (e instanceof PosternError && e.code === 'peer-start-failed') {
      throw new PosternError('peer-start-failed', `${e.message}\n${text.slice(-3000)}`, { cause: e });
    }
    throw e;
  }
  const ub = unbound;
  return {
    pids: { nsd: nsdPid ?? 0, unbound: ub.pid },
    dir: dir.path,
    resolver: ub.server,
    authoritative: `${HOST}:${port}`,
    zone: apex.slice(0, -1),
    insecureZone: child.slice(0, -1),
    startMs: Math.round(performance.now() - t0),
    stop,
    log,
  };
}
