/**
 * The DNSSEC client's transport and status rules against a scripted DNS server on loopback (UDP and
 * TCP on the same port), so spoofed replies, truncation and SERVFAIL/CD=1 can be staged exactly.
 * The real-resolver behaviour is in test/integration/dns-dnssec.test.ts.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../../src/core/errors.ts';
import { createDnssecResolver, isLoopbackAddress, nameserverFromResolvConf } from '../../../src/dns/dnssec.ts';
import { decodeResponse } from '../../../src/dns/wire.ts';
import type { DnsMessage } from '../../../src/dns/wire.ts';
import { ede, FLAG, message, opt, question, rdata, rr } from './dns-builder.ts';
import { tracked, turns, until } from '../../helpers/timers.ts';

/** What the scripted server sends back for one query: replies in order, or nothing. */
type Script = (q: DnsMessage, transport: 'udp' | 'tcp') => Buffer[];

interface Fake {
  server: string;
  queries: Array<{ msg: DnsMessage; transport: 'udp' | 'tcp' }>;
  script: Script;
  close(): Promise<void>;
}

async function startFake(): Promise<Fake> {
  const tcp: Server = createServer();
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  const addr = tcp.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const udp: Socket = createSocket('udp4');
  await new Promise<void>((r) => udp.bind(port, '127.0.0.1', r));
  const fake: Fake = {
    server: `127.0.0.1:${port}`,
    queries: [],
    script: () => [],
    async close() {
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
  udp.on('message', (buf, rinfo) => {
    const msg = decodeResponse(buf);
    fake.queries.push({ msg, transport: 'udp' });
    for (const reply of fake.script(msg, 'udp')) udp.send(reply, rinfo.port, rinfo.address);
  });
  tcp.on('connection', (s) => {
    let acc = Buffer.alloc(0);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      acc = Buffer.concat([acc, d]);
      if (acc.length < 2 || acc.length < 2 + acc.readUInt16BE(0)) return;
      const msg = decodeResponse(acc.subarray(2, 2 + acc.readUInt16BE(0)));
      fake.queries.push({ msg, transport: 'tcp' });
      for (const reply of fake.script(msg, 'tcp')) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(reply.length, 0);
        s.write(Buffer.concat([len, reply]));
      }
      s.end();
    });
  });
  return fake;
}

/** A reply to `q` echoing its question, with the given flags, rcode and sections. */
function reply(
  q: DnsMessage,
  o: { flags?: number; rcode?: number; an?: Buffer[]; ns?: Buffer[]; ar?: Buffer[]; id?: number; qname?: string } = {},
): Buffer {
  const qq = q.questions[0];
  assert.ok(qq);
  return message({
    id: o.id ?? q.header.id,
    flags: FLAG.QR | FLAG.RD | FLAG.RA | (o.flags ?? 0),
    rcode: o.rcode ?? 0,
    qd: [question(o.qname ?? qq.name, qq.type)],
    an: o.an ?? [],
    ns: o.ns ?? [],
    ar: o.ar ?? [opt()],
  });
}

const A = 1;
const AAAA = 28;
const TLSA = 52;

describe('createDnssecResolver: configuration (sends nothing)', () => {
  it('trusts AD only from loopback unless trustAd is "any"', () => {
    const remote = createDnssecResolver({ server: '192.0.2.53' });
    assert.equal(remote.server, '192.0.2.53:53');
    assert.equal(remote.validating, false);
    assert.equal(createDnssecResolver({ server: '192.0.2.53:5353', trustAd: 'any' }).validating, true);
    assert.equal(createDnssecResolver({ server: '[2001:db8::53]:53' }).validating, false);
    assert.equal(createDnssecResolver({ server: '127.0.0.1' }).validating, true);
    // systemd-resolved's stub and proxy may pass an upstream AD bit on unvalidated (issue #34121).
    assert.equal(createDnssecResolver({ server: '127.0.0.53' }).validating, false);
    assert.equal(createDnssecResolver({ server: '127.0.0.54' }).validating, false);
    assert.equal(createDnssecResolver({ server: '127.0.0.53', trustAd: 'any' }).validating, true);
    const v6 = createDnssecResolver({ server: '::1' });
    assert.equal(v6.server, '[::1]:53');
    assert.equal(v6.validating, true);
  });
  it('recognises loopback addresses in any spelling, and nothing else', () => {
    for (const h of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::0:1', '::ffff:127.0.0.1'])
      assert.equal(isLoopbackAddress(h), true, h);
    for (const h of ['128.0.0.1', '10.0.0.1', '::', '::2', '1::1', '::ffff:10.0.0.1', 'localhost', '127.0.0.1.example'])
      assert.equal(isLoopbackAddress(h), false, h);
  });
  it('defaults to the first usable nameserver of resolv.conf', async () => {
    assert.equal(
      nameserverFromResolvConf('# c\nsearch x\nnameserver dns.example\nnameserver 127.0.0.53\nnameserver 10.0.0.1\n'),
      '127.0.0.53',
    );
    assert.equal(nameserverFromResolvConf('options edns0\n'), null);
    const dir = await mkdtemp(join(tmpdir(), 'postern-dnssec-'));
    try {
      const file = join(dir, 'resolv.conf');
      await writeFile(file, 'nameserver 192.0.2.7\n');
      const r = createDnssecResolver({ resolvConf: file });
      assert.equal(r.server, '192.0.2.7:53');
      assert.equal(r.validating, false);
      // No file: the resolver library default, the local host.
      assert.equal(createDnssecResolver({ resolvConf: join(dir, 'missing') }).server, '127.0.0.1:53');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('refuses bad options and bad names with UsageError', async () => {
    assert.throws(() => createDnssecResolver({ server: 'dns.example' }), UsageError);
    assert.throws(() => createDnssecResolver({ server: '127.0.0.1', tries: 0 }), UsageError);
    assert.throws(() => createDnssecResolver({ server: '127.0.0.1', timeoutMs: -1 }), UsageError);
    // A closed port: any I/O would show up as a non-Usage result, but these fail before sending.
    const r = createDnssecResolver({ server: '127.0.0.1:9', timeoutMs: 50, tries: 1 });
    await assert.rejects(r.tlsa('mx.test', 0), UsageError);
    await assert.rejects(r.tlsa('mx.test', 65536), UsageError);
    await assert.rejects(r.txt('a..b'), UsageError);
    await assert.rejects(r.mx('bücher.test'), UsageError);
    await assert.rejects(r.addresses(''), UsageError);
  });
});

describe('createDnssecResolver against a scripted server', () => {
  let fake: Fake;
  before(async () => {
    fake = await startFake();
  });
  after(async () => {
    await fake.close();
  });
  const resolver = (timeoutMs = 1000, tries = 2) => createDnssecResolver({ server: fake.server, timeoutMs, tries });

  it('asks with RD, AD and DO over EDNS0, a random id each time; AD from loopback is secure', async () => {
    fake.queries = [];
    fake.script = (q) => [reply(q, { flags: FLAG.AD, an: [rr('mx.test', A, rdata.a('192.0.2.1'))] })];
    const r = resolver();
    const first = await r.addresses('MX.test.');
    assert.equal(first.status, 'secure');
    assert.equal(first.qname, 'mx.test');
    assert.deepEqual(first.records, ['192.0.2.1']);
    assert.equal(first.rcode, 'NOERROR');
    const q = fake.queries[0]?.msg;
    assert.ok(q);
    assert.equal(q.header.rd, true);
    assert.equal(q.header.ad, true);
    assert.equal(q.header.cd, false);
    assert.equal(q.edns?.dnssecOk, true);
    assert.equal(q.edns?.udpSize, 1232);
    const ids = new Set(fake.queries.map((x) => x.msg.header.id));
    assert.equal(ids.size, fake.queries.length);
  });

  it('no AD is insecure; answers are parsed per type', async () => {
    fake.script = (q) => {
      const t = q.questions[0]?.type;
      if (t === 15)
        return [
          reply(q, {
            an: [rr('d.test', 15, rdata.mx(20, 'MX2.d.test')), rr('d.test', 15, rdata.mx(10, 'mx1.d.test.'))],
          }),
        ];
      if (t === 16) return [reply(q, { an: [rr('d.test', 16, rdata.txt('v=TLSRPTv1; ', 'rua=mailto:x@d.test'))] })];
      return [reply(q, { an: [rr('_25._tcp.mx.d.test', TLSA, rdata.tlsa(3, 1, 1, '0102'))] })];
    };
    const r = resolver();
    const mx = await r.mx('d.test');
    assert.equal(mx.status, 'insecure');
    assert.deepEqual(mx.records, [
      { exchange: 'mx1.d.test', priority: 10 },
      { exchange: 'mx2.d.test', priority: 20 },
    ]);
    const txt = await r.txt('d.test');
    assert.deepEqual(txt.records, [['v=TLSRPTv1; ', 'rua=mailto:x@d.test']]);
    const tlsa = await r.tlsa('mx.d.test', 25);
    assert.equal(tlsa.qname, '_25._tcp.mx.d.test');
    assert.deepEqual(tlsa.records, [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from('0102', 'hex') }]);
  });

  it('ignores spoofed, mismatched and malformed UDP replies and takes the real one', async () => {
    fake.script = (q) => [
      reply(q, { id: (q.header.id + 1) & 0xffff, flags: FLAG.AD, an: [rr('s.test', A, rdata.a('6.6.6.6'))] }),
      reply(q, { qname: 'other.test', flags: FLAG.AD, an: [rr('other.test', A, rdata.a('6.6.6.6'))] }),
      Buffer.from([0, 1, 2]),
      reply(q, { an: [rr('s.test', A, rdata.a('192.0.2.9'))] }),
    ];
    const a = await resolver().addresses('s.test');
    assert.equal(a.status, 'insecure');
    assert.deepEqual(a.records, ['192.0.2.9']);
  });

  it('TC=1 → asks again over TCP and uses that answer', async () => {
    fake.queries = [];
    fake.script = (q, transport) =>
      transport === 'udp'
        ? [reply(q, { flags: FLAG.TC | FLAG.AD })]
        : [reply(q, { flags: FLAG.AD, an: [rr('big.test', 16, rdata.txt('x'.repeat(255), 'y'.repeat(255)))] })];
    const t = await resolver().txt('big.test');
    assert.equal(t.status, 'secure');
    assert.deepEqual(t.records, [['x'.repeat(255), 'y'.repeat(255)]]);
    assert.deepEqual(
      fake.queries.map((x) => x.transport),
      ['udp', 'tcp'],
    );
  });

  it('SERVFAIL that CD=1 answers is bogus, with the EDE in the detail', async () => {
    fake.queries = [];
    fake.script = (q) =>
      q.header.cd
        ? [reply(q, { an: [rr('_25._tcp.bad.test', TLSA, rdata.tlsa(3, 1, 1, '00'))] })]
        : [reply(q, { rcode: 2, ar: [opt({ options: [ede(7, 'expired')] })] })];
    const t = await resolver().tlsa('bad.test', 25);
    assert.equal(t.status, 'bogus');
    assert.equal(t.rcode, null);
    assert.deepEqual(t.records, []);
    assert.match(t.detail ?? '', /SERVFAIL; CD=1 answered: validation failed.*EDE 7 \(Signature Expired\): expired/);
    assert.deepEqual(
      fake.queries.map((x) => x.msg.header.cd),
      [false, true],
    );
  });

  it('SERVFAIL both ways, REFUSED and malformed replies are indeterminate', async () => {
    fake.script = (q) => [reply(q, { rcode: 2 })];
    const sf = await resolver().mx('down.test');
    assert.equal(sf.status, 'indeterminate');
    assert.equal(sf.detail, 'SERVFAIL; CD=1: SERVFAIL');
    fake.script = (q) => [reply(q, { rcode: 5 })];
    const refused = await resolver().mx('refused.test');
    assert.equal(refused.status, 'indeterminate');
    assert.equal(refused.detail, 'REFUSED');
    // An A record with 5 bytes of RDATA: malformed, never "insecure".
    fake.script = (q) => [reply(q, { flags: FLAG.AD, an: [rr('m.test', A, Buffer.alloc(5))] })];
    const bad = await resolver(150, 1).mx('m.test');
    assert.equal(bad.status, 'indeterminate');
    assert.match(bad.detail ?? '', /^malformed reply: .*RDATA/);
  });

  it('follows the CNAME chain in the answer and takes only the final owner’s records', async () => {
    fake.script = (q) => [
      reply(q, {
        flags: FLAG.AD,
        an: [
          rr('www.c.test', 5, rdata.cname('Alias.c.test')),
          rr('alias.c.test', 5, rdata.cname('host.c.test')),
          rr('host.c.test', A, rdata.a('192.0.2.3')),
          rr('unrelated.test', A, rdata.a('6.6.6.6')),
        ],
      }),
    ];
    const a = await resolver().addresses('www.c.test');
    assert.equal(a.status, 'secure');
    assert.equal(a.canonicalName, 'host.c.test');
    // A and AAAA both got the A record back; only A-typed ones are taken for each family.
    assert.deepEqual(a.records, ['192.0.2.3']);
    fake.script = (q) => [
      reply(q, { an: [rr('l1.test', 5, rdata.cname('l2.test')), rr('l2.test', 5, rdata.cname('l1.test'))] }),
    ];
    const loop = await resolver().txt('l1.test');
    assert.equal(loop.status, 'indeterminate');
    assert.match(loop.detail ?? '', /CNAME chain/);
  });

  it('addresses: A first then AAAA; bogus dominates; NXDOMAIN only when both say so', async () => {
    fake.script = (q) => {
      const t = q.questions[0]?.type;
      if (t === A) return [reply(q, { flags: FLAG.AD, an: [rr('h.test', A, rdata.a('192.0.2.4'))] })];
      return [reply(q, { flags: FLAG.AD, an: [rr('h.test', AAAA, rdata.aaaa('20010db8000000000000000000000004'))] })];
    };
    const both = await resolver().addresses('h.test');
    assert.equal(both.status, 'secure');
    assert.deepEqual(both.records, ['192.0.2.4', '2001:db8::4']);

    // AAAA bogus: the whole answer is bogus, no records leak out.
    fake.script = (q) => {
      const t = q.questions[0]?.type;
      if (t === A) return [reply(q, { flags: FLAG.AD, an: [rr('h.test', A, rdata.a('192.0.2.4'))] })];
      return q.header.cd ? [reply(q)] : [reply(q, { rcode: 2 })];
    };
    const bogus = await resolver().addresses('h.test');
    assert.equal(bogus.status, 'bogus');
    assert.deepEqual(bogus.records, []);
    assert.equal(bogus.rcode, null);
    assert.match(bogus.detail ?? '', /^AAAA: SERVFAIL; CD=1 answered/);

    // A secure, AAAA insecure: insecure overall.
    fake.script = (q) =>
      q.questions[0]?.type === A
        ? [reply(q, { flags: FLAG.AD, an: [rr('h.test', A, rdata.a('192.0.2.4'))] })]
        : [reply(q, { an: [] })];
    const mixed = await resolver().addresses('h.test');
    assert.equal(mixed.status, 'insecure');
    assert.equal(mixed.rcode, 'NOERROR');

    fake.script = (q) => [reply(q, { rcode: 3, flags: FLAG.AD })];
    const nx = await resolver().addresses('nx.test');
    assert.equal(nx.status, 'secure');
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.deepEqual(nx.records, []);
  });

  it('a silent server is indeterminate after tries × timeout, not sooner and not later', async (t) => {
    // Mocked timers: the timeout is proven by ticking the clock, not by measuring it.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    fake.queries = [];
    fake.script = () => [];
    const q = tracked(resolver(200, 2).tlsa('quiet.test', 25));
    for (let attempt = 1; attempt <= 2; attempt++) {
      await until(() => fake.queries.length === attempt, `query ${attempt} reaches the server`);
      t.mock.timers.tick(199);
      await turns(20);
      assert.equal(q.settled, false, `still waiting 1 ms before try ${attempt}'s timeout`);
      assert.equal(fake.queries.length, attempt, 'no retry before the timeout');
      t.mock.timers.tick(1);
    }
    await until(() => q.settled, 'the lookup ends at the last timeout', 10_000);
    const r = await q.promise;
    assert.equal(r.status, 'indeterminate');
    assert.equal(r.detail, 'timeout');
    assert.equal(fake.queries.length, 2, 'exactly `tries` queries');
  });
});
