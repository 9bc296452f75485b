/**
 * The DNSSEC lab (test/integration/peers/dnssec.ts) against `dig`: NSD serving a zone signed with a
 * local key, Unbound validating it with that key as trust anchor. These tests pin down what the
 * DANE/DNS tests built on the lab may rely on: AD for secure data and signed denials, no AD for the
 * provably insecure child, SERVFAIL for a broken signature (and the data with CD), and a stop()
 * that leaves no process, port or directory behind.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PosternError } from '../../src/core/errors.ts';
import { dnssecLabAvailable, startDnssecLab } from './peers/dnssec.ts';
import type { DnssecLab } from './peers/dnssec.ts';
import { groupMembers, pidAlive, run } from './peers/proc.ts';
import { peerSkipReason } from './peers/require.ts';
import { ipv4ComplementOf } from './peers/unbound.ts';

const skip = peerSkipReason(dnssecLabAvailable() && existsSync('/usr/bin/dig'), 'nsd, ldnsutils, unbound, dig');

const HASH_OK = '8f'.repeat(32);
const HASH_OTHER = '00'.repeat(32);

interface Dig {
  status: string;
  flags: Set<string>;
  /** Answer-section RRs, whitespace collapsed, e.g. '_25._tcp.mx.dane.test. 300 IN TLSA 3 1 1 8F…'. */
  answer: string[];
  ede: string;
  raw: string;
}

async function dig(server: string, type: string, name: string, ...extra: string[]): Promise<Dig> {
  const [host = '', port = ''] = server.split(':');
  const r = await run(
    'dig',
    [`@${host}`, '-p', port, '+tries=1', '+time=3', '+noall', '+comments', '+answer', ...extra, type, name],
    { timeoutMs: 10_000 },
  );
  assert.equal(r.code, 0, `dig ${type} ${name}: ${r.stderr}`);
  const status = /status: ([A-Z]+)/.exec(r.stdout)?.[1] ?? '';
  const flags = new Set((/;; flags: ([a-z ]+);/.exec(r.stdout)?.[1] ?? '').trim().split(/\s+/));
  const answer = r.stdout
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith(';'))
    .map((l) => l.trim().split(/\s+/).join(' '));
  const ede = /; EDE: (.*)/.exec(r.stdout)?.[1] ?? '';
  return { status, flags, answer, ede, raw: r.stdout };
}

/**
 * Answer lines equal to `want`, except that a TTL may have counted down from the published one
 * (Unbound answers a repeated query from its cache, and a second may have passed).
 */
function assertAnswer(got: string[], want: string[]): void {
  const split = (l: string): { ttl: number; rest: string } => {
    const f = l.split(' ');
    return { ttl: Number(f[1]), rest: [f[0], ...f.slice(2)].join(' ') };
  };
  assert.deepEqual(
    got.map((l) => split(l).rest),
    want.map((l) => split(l).rest),
  );
  got.forEach((l, i) => {
    const published = split(want[i] ?? '').ttl;
    const ttl = split(l).ttl;
    assert.ok(ttl <= published && ttl >= published - 30, `TTL ${ttl} not within 30 s below ${published}: ${l}`);
  });
}

/** True when both TCP and UDP `port` on 127.0.0.1 can be bound again. */
async function portFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
  const udp = await new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
  return tcp && udp;
}

/**
 * Lab daemons whose temp dir is gone: a lab that failed half-way and did not clean up. Labs of
 * other test files running at the same time still have their dir, so they never count.
 */
async function orphanedLabDaemons(): Promise<number[]> {
  const prefix = join(tmpdir(), 'postern-dnssec-');
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const conf = argv[argv.indexOf('-c') + 1] ?? '';
    if (
      argv.includes('-c') &&
      conf.startsWith(prefix) &&
      !existsSync(dirname(conf)) &&
      (await pidAlive(Number(name)))
    ) {
      out.push(Number(name));
    }
  }
  return out;
}

describe('DNSSEC lab: nsd + ldns-signzone + validating unbound', { skip }, () => {
  let lab: DnssecLab;
  before(async () => {
    lab = await startDnssecLab({
      signed: [
        'mx.dane.test. 300 IN A 127.0.0.5',
        `_25._tcp.mx.dane.test. 300 IN TLSA 3 1 1 ${HASH_OK}`,
        `_25._tcp.other.dane.test. 300 IN TLSA 3 1 1 ${HASH_OTHER}`,
        'bad.dane.test. 300 IN A 127.0.0.6',
        `_25._tcp.bad.dane.test. 300 IN TLSA 3 1 1 ${HASH_OK}`,
      ],
      insecure: [
        'mx.insecure.dane.test. 300 IN A 127.0.0.7',
        `_25._tcp.mx.insecure.dane.test. 300 IN TLSA 3 1 1 ${HASH_OK}`,
      ],
      corrupt: [{ name: '_25._tcp.bad.dane.test.', type: 'TLSA' }],
      localData: ['mta-sts.example.test. 300 IN A 127.0.0.8'],
    });
    console.log(`# dnssec lab started in ${lab.startMs} ms`);
  });
  after(async () => {
    await lab?.stop();
  });

  it('listens on loopback high ports, never 53', () => {
    for (const s of [lab.resolver, lab.authoritative]) {
      assert.match(s, /^127\.0\.0\.1:\d+$/);
      assert.notEqual(Number(s.split(':')[1]), 53);
    }
    assert.equal(lab.zone, 'dane.test');
    assert.equal(lab.insecureZone, 'insecure.dane.test');
  });

  it('validates A and TLSA in the signed zone (AD set)', async () => {
    const a = await dig(lab.resolver, 'A', 'mx.dane.test');
    assert.equal(a.status, 'NOERROR');
    assert.ok(a.flags.has('ad'), a.raw);
    assertAnswer(a.answer, ['mx.dane.test. 300 IN A 127.0.0.5']);
    const tlsa = await dig(lab.resolver, 'TLSA', '_25._tcp.mx.dane.test');
    assert.equal(tlsa.status, 'NOERROR');
    assert.ok(tlsa.flags.has('ad'), tlsa.raw);
    assert.equal(tlsa.answer.length, 1);
    assert.equal(tlsa.answer[0]?.replace(/ /g, '').toLowerCase().endsWith(HASH_OK), true, tlsa.answer[0]);
  });

  it('a mismatching TLSA record is still secure DNS data (the mismatch is DANE’s to find)', async () => {
    const r = await dig(lab.resolver, 'TLSA', '_25._tcp.other.dane.test');
    assert.equal(r.status, 'NOERROR');
    assert.ok(r.flags.has('ad'), r.raw);
    assert.ok(r.answer[0]?.replace(/ /g, '').endsWith(HASH_OTHER), r.raw);
  });

  it('signed denials are secure: NXDOMAIN and NODATA carry AD', async () => {
    const nx = await dig(lab.resolver, 'TLSA', '_25._tcp.nowhere.dane.test');
    assert.equal(nx.status, 'NXDOMAIN');
    assert.ok(nx.flags.has('ad'), nx.raw);
    const nodata = await dig(lab.resolver, 'TLSA', 'mx.dane.test');
    assert.equal(nodata.status, 'NOERROR');
    assert.deepEqual(nodata.answer, []);
    assert.ok(nodata.flags.has('ad'), nodata.raw);
  });

  it('the child zone is provably insecure: signed no-DS proof, data without AD', async () => {
    const ds = await dig(lab.resolver, 'DS', 'insecure.dane.test');
    assert.equal(ds.status, 'NOERROR');
    assert.deepEqual(ds.answer, []);
    assert.ok(ds.flags.has('ad'), `no DS must be proven by a validated NSEC: ${ds.raw}`);
    for (const [type, name] of [
      ['A', 'mx.insecure.dane.test'],
      ['TLSA', '_25._tcp.mx.insecure.dane.test'],
    ] as const) {
      const r = await dig(lab.resolver, type, name);
      assert.equal(r.status, 'NOERROR', r.raw);
      assert.equal(r.answer.length, 1, r.raw);
      assert.ok(!r.flags.has('ad'), r.raw);
    }
  });

  it('a broken RRSIG is bogus: SERVFAIL (EDE DNSSEC Bogus); with +cd the data, without AD', async () => {
    const r = await dig(lab.resolver, 'TLSA', '_25._tcp.bad.dane.test');
    assert.equal(r.status, 'SERVFAIL', r.raw);
    assert.deepEqual(r.answer, []);
    assert.match(r.ede, /^6 \(DNSSEC Bogus\)/, r.raw);
    const cd = await dig(lab.resolver, 'TLSA', '_25._tcp.bad.dane.test', '+cd');
    assert.equal(cd.status, 'NOERROR', cd.raw);
    assert.equal(cd.answer.length, 1, cd.raw);
    assert.ok(!cd.flags.has('ad'), cd.raw);
    // Only that RRset is broken: another RRset (bad.dane.test A) still validates.
    const ok = await dig(lab.resolver, 'A', 'bad.dane.test');
    assert.equal(ok.status, 'NOERROR');
    assert.ok(ok.flags.has('ad'), ok.raw);
    assert.match(await lab.log(), /validation failure <_25\._tcp\.bad\.dane\.test\. TLSA IN>/);
  });

  it('nsd answers authoritatively with signatures', async () => {
    const r = await dig(lab.authoritative, 'TLSA', '_25._tcp.mx.dane.test', '+norec', '+dnssec');
    assert.equal(r.status, 'NOERROR');
    assert.ok(r.flags.has('aa'), r.raw);
    assert.deepEqual(
      r.answer.map((l) => l.split(' ')[3]),
      ['TLSA', 'RRSIG'],
    );
  });

  it('serves localData outside the zone unsigned, and nothing else', async () => {
    const r = await dig(lab.resolver, 'A', 'mta-sts.example.test');
    assert.equal(r.status, 'NOERROR');
    assertAnswer(r.answer, ['mta-sts.example.test. 300 IN A 127.0.0.8']);
    assert.ok(!r.flags.has('ad'));
    // No recursion beyond the lab: any other name is answered locally, never looked up.
    const out = await dig(lab.resolver, 'A', 'example.com');
    assert.equal(out.status, 'NXDOMAIN');
  });
});

describe('DNSSEC lab lifecycle', { skip }, () => {
  it('starts, answers, and stop() leaves no process, port or directory', async (t) => {
    const lab = await startDnssecLab({ zone: 'life.test', signed: ['a.life.test. 60 IN A 127.0.0.9'] });
    // Reported, not asserted: start-up time depends on the machine's load (timing is for bench/).
    t.diagnostic(`lab start took ${lab.startMs} ms`);
    const a = await dig(lab.resolver, 'A', 'a.life.test');
    assert.ok(a.flags.has('ad'), a.raw);
    const { nsd, unbound } = lab.pids;
    assert.ok((await pidAlive(nsd)) && (await pidAlive(unbound)));
    const ports = [lab.resolver, lab.authoritative].map((s) => Number(s.split(':')[1]));
    await lab.stop();
    await lab.stop(); // idempotent
    assert.equal(await pidAlive(nsd), false);
    assert.equal(await pidAlive(unbound), false);
    assert.deepEqual(await groupMembers(nsd), [], 'nsd xfrd/server children must be gone too');
    for (const p of ports) assert.ok(await portFree(p), `port ${p} still bound`);
    assert.equal(existsSync(lab.dir), false);
  });

  it('a corrupt DNSKEY signature makes the whole zone bogus (and the lab still starts)', async () => {
    const lab = await startDnssecLab({
      zone: 'broken.test',
      signed: ['a.broken.test. 60 IN A 127.0.0.9'],
      corrupt: [{ name: 'broken.test', type: 'DNSKEY' }],
    });
    try {
      const a = await dig(lab.resolver, 'A', 'a.broken.test');
      assert.equal(a.status, 'SERVFAIL', a.raw);
      const cd = await dig(lab.resolver, 'A', 'a.broken.test', '+cd');
      assertAnswer(cd.answer, ['a.broken.test. 60 IN A 127.0.0.9']);
    } finally {
      await lab.stop();
    }
  });

  it('rejects records outside their zone, relative owners, unknown corrupt targets and bad localData, leaving no daemon', async () => {
    await assert.rejects(
      startDnssecLab({ signed: ['mx.elsewhere.test. 300 IN A 127.0.0.1'] }),
      (e: unknown) => e instanceof PosternError && e.code === 'peer-bad-config',
    );
    await assert.rejects(
      startDnssecLab({ signed: ['x.insecure.dane.test. 300 IN A 127.0.0.1'] }),
      (e: unknown) => e instanceof PosternError && e.code === 'peer-bad-config',
    );
    await assert.rejects(
      startDnssecLab({ signed: ['mx.dane.test 300 IN A 127.0.0.1'] }),
      (e: unknown) => e instanceof PosternError && e.code === 'peer-bad-config',
    );
    await assert.rejects(
      startDnssecLab({ signed: [], corrupt: [{ name: 'typo.dane.test', type: 'TLSA' }] }),
      (e: unknown) => e instanceof PosternError && e.code === 'peer-bad-config' && /typo\.dane\.test/.test(e.message),
    );
    // Fails in unbound-checkconf, after NSD is already running: NSD must be stopped again.
    await assert.rejects(
      startDnssecLab({ signed: [], localData: ['bad.example.test. 300 IN A not-an-address'] }),
      (e: unknown) => e instanceof PosternError && e.code === 'peer-bad-config' && /unbound-checkconf/.test(e.message),
    );
    assert.deepEqual(await orphanedLabDaemons(), []);
  });
});

describe('DNSSEC lab with NSEC3', { skip }, () => {
  let lab: DnssecLab;
  before(async () => {
    lab = await startDnssecLab({ zone: 'n3.test', nsec3: true, signed: ['mx.n3.test. 300 IN A 127.0.0.5'] });
  });
  after(async () => {
    await lab?.stop();
  });

  it('proves NXDOMAIN and the unsigned delegation with NSEC3', async () => {
    const auth = await dig(lab.authoritative, 'A', 'nowhere.n3.test', '+norec', '+dnssec', '+authority');
    assert.match(auth.raw, /\sNSEC3\s+1 0 0 -/, auth.raw);
    const nx = await dig(lab.resolver, 'A', 'nowhere.n3.test');
    assert.equal(nx.status, 'NXDOMAIN');
    assert.ok(nx.flags.has('ad'), nx.raw);
    const ds = await dig(lab.resolver, 'DS', 'insecure.n3.test');
    assert.equal(ds.status, 'NOERROR');
    assert.ok(ds.flags.has('ad'), ds.raw);
    const soa = await dig(lab.resolver, 'SOA', 'insecure.n3.test');
    assert.equal(soa.status, 'NOERROR');
    assert.equal(soa.answer.length, 1);
    assert.ok(!soa.flags.has('ad'), soa.raw);
  });
});

describe('unbound queryOnly: do-not-query-address complement', () => {
  const toInt = (a: string): number => a.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
  const covered = (blocks: string[], addr: string): boolean =>
    blocks.some((b) => {
      const [net = '', len = '0'] = b.split('/');
      const size = 2 ** (32 - Number(len));
      return Math.floor(toInt(addr) / size) === Math.floor(toInt(net) / size);
    });
  it('blocks every IPv4 address except the one allowed', () => {
    const blocks = ipv4ComplementOf('127.0.0.1');
    assert.equal(blocks.length, 32);
    assert.equal(covered(blocks, '127.0.0.1'), false);
    for (const a of [
      '0.0.0.0',
      '127.0.0.0',
      '127.0.0.2',
      '127.0.0.53',
      '127.255.255.255',
      '10.0.0.1',
      '192.168.1.1',
      '255.255.255.255',
    ]) {
      assert.ok(covered(blocks, a), a);
    }
    assert.throws(() => ipv4ComplementOf('::1'), PosternError);
  });
});
