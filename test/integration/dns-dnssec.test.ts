/**
 * postern's DNSSEC client (src/dns/dnssec.ts) against a real validating resolver: the DNSSEC lab
 * (NSD serving a zone signed with a local key, Unbound validating it with that key as trust anchor,
 * test/integration/peers/dnssec.ts). Every status here is one Unbound actually produced.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { createDnssecResolver } from '../../src/dns/dnssec.ts';
import type { DnssecResolver } from '../../src/dns/dnssec.ts';
import { decodeHeader, encodeQuery } from '../../src/dns/wire.ts';
import { dnssecLabAvailable, startDnssecLab } from './peers/dnssec.ts';
import type { DnssecLab } from './peers/dnssec.ts';
import { freePort } from './peers/ports.ts';
import { peerSkipReason } from './peers/require.ts';
import { tracked, turns, until } from '../helpers/timers.ts';

/** One raw UDP query (our codec, 1232-byte EDNS0 size); true when the reply has TC=1. */
async function udpTruncated(server: string, name: string, type: number): Promise<boolean> {
  const [host = '', port = ''] = server.split(':');
  const sock = createSocket('udp4');
  try {
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no UDP reply')), 3000);
      sock.on('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sock.send(encodeQuery({ id: 4242, name, type }), Number(port), host);
    });
    const h = decodeHeader(reply);
    assert.equal(h.id, 4242);
    return h.tc;
  } finally {
    sock.close();
  }
}

const skip = peerSkipReason(dnssecLabAvailable(), 'nsd, ldnsutils, unbound');

const HASH = 'a1'.repeat(32);
/** Six 255-byte strings in six RRs: ~1.6 kB of TXT, more than the 1232-byte UDP size we offer. */
const BIG = Array.from({ length: 6 }, (_, i) => String.fromCharCode(0x61 + i).repeat(255));

describe('DNSSEC client against a validating unbound', { skip }, () => {
  let lab: DnssecLab;
  let dns: DnssecResolver;
  before(async () => {
    lab = await startDnssecLab({
      signed: [
        'dane.test. 300 IN MX 20 mx2.dane.test.',
        'dane.test. 300 IN MX 10 mx.dane.test.',
        'dane.test. 300 IN TXT "v=spf1 " "-all"',
        'mx.dane.test. 300 IN A 127.0.0.5',
        'mx.dane.test. 300 IN AAAA ::5',
        'mx2.dane.test. 300 IN A 127.0.0.6',
        `_25._tcp.mx.dane.test. 300 IN TLSA 3 1 1 ${HASH}`,
        `_25._tcp.mx.dane.test. 300 IN TLSA 2 0 2 ${'b2'.repeat(64)}`,
        '_465._tcp.mx.dane.test. 300 IN TXT "exists, but no TLSA"',
        'alias.dane.test. 300 IN CNAME mx.dane.test.',
        'out.dane.test. 300 IN CNAME mx.insecure.dane.test.',
        `_25._tcp.bad.dane.test. 300 IN TLSA 3 1 1 ${HASH}`,
        ...BIG.map((s) => `big.dane.test. 300 IN TXT "${s}"`),
      ],
      insecure: [
        'mx.insecure.dane.test. 300 IN A 127.0.0.7',
        `_25._tcp.mx.insecure.dane.test. 300 IN TLSA 3 1 1 ${HASH}`,
      ],
      corrupt: [{ name: '_25._tcp.bad.dane.test.', type: 'TLSA' }],
    });
    dns = createDnssecResolver({ server: lab.resolver, timeoutMs: 3000, tries: 2 });
  });
  after(async () => {
    await lab?.stop();
  });

  it('trusts the AD bit of a loopback resolver', () => {
    assert.equal(dns.server, lab.resolver);
    assert.equal(dns.validating, true);
  });

  it('secure A+AAAA, MX, TXT and TLSA with the right records', async () => {
    const a = await dns.addresses('MX.dane.test.');
    assert.deepEqual(
      { status: a.status, rcode: a.rcode, records: a.records, qname: a.qname, detail: a.detail },
      { status: 'secure', rcode: 'NOERROR', records: ['127.0.0.5', '::5'], qname: 'mx.dane.test', detail: null },
    );
    const mx = await dns.mx('dane.test');
    assert.equal(mx.status, 'secure');
    assert.deepEqual(mx.records, [
      { exchange: 'mx.dane.test', priority: 10 },
      { exchange: 'mx2.dane.test', priority: 20 },
    ]);
    const txt = await dns.txt('dane.test');
    assert.equal(txt.status, 'secure');
    assert.deepEqual(txt.records, [['v=spf1 ', '-all']]);
    const tlsa = await dns.tlsa('mx.dane.test', 25);
    assert.equal(tlsa.status, 'secure');
    assert.equal(tlsa.qname, '_25._tcp.mx.dane.test');
    const byUsage = [...tlsa.records].sort((x, y) => x.usage - y.usage);
    assert.deepEqual(byUsage, [
      { usage: 2, selector: 0, matchingType: 2, data: Buffer.from('b2'.repeat(64), 'hex') },
      { usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH, 'hex') },
    ]);
  });

  it('a CNAME is followed; the chain is secure when every link is signed', async () => {
    const a = await dns.addresses('alias.dane.test');
    assert.equal(a.status, 'secure');
    assert.equal(a.canonicalName, 'mx.dane.test');
    assert.deepEqual(a.records, ['127.0.0.5', '::5']);
    // A signed CNAME into the unsigned child: the answer as a whole is not secure.
    const out = await dns.addresses('out.dane.test');
    assert.equal(out.status, 'insecure');
    assert.equal(out.canonicalName, 'mx.insecure.dane.test');
    assert.deepEqual(out.records, ['127.0.0.7']);
  });

  it('the child delegated without DS is insecure, records intact', async () => {
    const t = await dns.tlsa('mx.insecure.dane.test', 25);
    assert.equal(t.status, 'insecure');
    assert.equal(t.rcode, 'NOERROR');
    assert.deepEqual(t.records, [{ usage: 3, selector: 1, matchingType: 1, data: Buffer.from(HASH, 'hex') }]);
  });

  it('a broken RRSIG is bogus (SERVFAIL, answered with CD=1), never insecure', async () => {
    const t = await dns.tlsa('bad.dane.test', 25);
    assert.equal(t.status, 'bogus', JSON.stringify(t));
    assert.equal(t.rcode, null);
    assert.deepEqual(t.records, []);
    assert.match(t.detail ?? '', /^SERVFAIL; CD=1 answered: validation failed \(EDE 6 \(DNSSEC Bogus\)/);
  });

  it('signed denials are secure: NXDOMAIN and TLSA NODATA', async () => {
    const nx = await dns.tlsa('nowhere.dane.test', 25);
    assert.deepEqual(
      { status: nx.status, rcode: nx.rcode, records: nx.records },
      { status: 'secure', rcode: 'NXDOMAIN', records: [] },
    );
    const nxa = await dns.addresses('nowhere.dane.test');
    assert.equal(nxa.status, 'secure');
    assert.equal(nxa.rcode, 'NXDOMAIN');
    const nodata = await dns.tlsa('mx.dane.test', 465);
    assert.deepEqual(
      { status: nodata.status, rcode: nodata.rcode, records: nodata.records },
      { status: 'secure', rcode: 'NOERROR', records: [] },
    );
  });

  it('an RRset larger than 1232 bytes arrives whole over TCP after TC=1', async () => {
    // Over UDP alone the resolver can only say "truncated" (RFC 6891 §7): that is what forces TCP.
    assert.equal(await udpTruncated(lab.resolver, 'big.dane.test', 16), true);
    const t = await dns.txt('big.dane.test');
    assert.equal(t.status, 'secure', JSON.stringify(t.detail));
    assert.deepEqual(t.records.map((r) => r.join('')).sort(), BIG);
    assert.ok(t.records.flat().join('').length > 1232);
  });

  it('a loopback port where nothing listens is indeterminate within tries × timeout', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const port = await freePort();
    const dead = createDnssecResolver({ server: `127.0.0.1:${port}`, timeoutMs: 300, tries: 2 });
    const q = tracked(dead.tlsa('mx.dane.test', 25));
    // ICMP port unreachable usually ends each try at once (ECONNREFUSED); a try that gets no
    // answer ends at its timeout. Either way at most `tries` timeouts may pass, never more.
    let timeouts = 0;
    for (;;) {
      await until(() => q.settled, 'the try ends or waits for its timeout', 2_000).catch(() => undefined);
      if (q.settled) break;
      assert.ok(timeouts < 2, 'still waiting after tries × timeout');
      t.mock.timers.tick(300);
      timeouts++;
    }
    const r = await q.promise;
    assert.equal(r.status, 'indeterminate');
    assert.equal(r.rcode, null);
    assert.match(r.detail ?? '', /^(udp: ECONNREFUSED|timeout)$/);
  });

  it('a resolver that never answers is indeterminate after tries × timeout', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const sink = createSocket('udp4');
    let received = 0;
    sink.on('message', () => received++);
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    try {
      const silent = createDnssecResolver({ server: `127.0.0.1:${sink.address().port}`, timeoutMs: 250, tries: 2 });
      const q = tracked(silent.mx('dane.test'));
      for (let attempt = 1; attempt <= 2; attempt++) {
        await until(() => received === attempt, `query ${attempt} reaches the silent server`);
        t.mock.timers.tick(249);
        await turns(20);
        assert.equal(q.settled, false, `still waiting 1 ms before try ${attempt}'s timeout`);
        assert.equal(received, attempt, 'no retry before the timeout');
        t.mock.timers.tick(1);
      }
      await until(() => q.settled, 'the lookup ends at the last timeout', 10_000);
      const r = await q.promise;
      assert.equal(r.status, 'indeterminate');
      assert.equal(r.detail, 'timeout');
      assert.equal(received, 2, 'exactly `tries` queries');
    } finally {
      sink.close();
    }
  });
});
