/**
 * postern's DNS client and domain planner against a real DNS server: a private Unbound on loopback
 * answering from local-data only (test/integration/peers/unbound.ts). No DNS mocks.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { createDnsClient, DnsError } from '../../src/dns/resolver.ts';
import type { DnsClient } from '../../src/dns/resolver.ts';
import { planDomain, resolveWith } from '../../src/scan/domain.ts';
import { parseTarget } from '../../src/scan/target.ts';
import { peerSkipReason } from './peers/require.ts';
import { startUnbound, unboundAvailable } from './peers/unbound.ts';
import type { UnboundInstance } from './peers/unbound.ts';

const skip = peerSkipReason(unboundAvailable(), 'unbound');

const ZONE = [
  // MX order is by preference, not by the order records are published in.
  'example.test. 300 IN MX 30 mx3.example.test.',
  'example.test. 300 IN MX 10 mx1.example.test.',
  'example.test. 300 IN MX 20 mx2.example.test.',
  'mx1.example.test. 300 IN A 127.0.0.11',
  'mx1.example.test. 300 IN A 127.0.0.12',
  'mx1.example.test. 300 IN AAAA ::1',
  'mx2.example.test. 300 IN AAAA ::1',
  'mx3.example.test. 300 IN TXT "no address here"',
  'example.test. 300 IN TXT "v=spf1 -all"',
  'example.test. 300 IN TXT "a" "b"',
  // RFC 7505 null MX.
  'nullmx.test. 300 IN MX 0 .',
  'nullmx.test. 300 IN A 127.0.0.13',
  'mixednull.test. 300 IN MX 0 .',
  'mixednull.test. 300 IN MX 10 mx1.example.test.',
  // RFC 5321 §5.1 implicit MX: no MX, but an address.
  'implicit.test. 300 IN A 127.0.0.14',
  // A name with data but no MX and no address: nothing can take its mail.
  'nomail.test. 300 IN TXT "nothing"',
  // RFC 6186 SRV discovery for submission and IMAP; "." = not offered for POP3.
  '_submission._tcp.srv.test. 300 IN SRV 0 1 2587 subm.srv.test.',
  '_submissions._tcp.srv.test. 300 IN SRV 10 1 2465 subs-b.srv.test.',
  '_submissions._tcp.srv.test. 300 IN SRV 0 1 2465 subs-a.srv.test.',
  '_imaps._tcp.srv.test. 300 IN SRV 0 1 2993 imap.srv.test.',
  '_imap._tcp.srv.test. 300 IN SRV 0 1 2143 ghost.srv.test.',
  '_pop3._tcp.srv.test. 300 IN SRV 0 0 0 .',
  '_pop3s._tcp.srv.test. 300 IN SRV 0 0 0 .',
  'subm.srv.test. 300 IN A 127.0.0.21',
  'subs-a.srv.test. 300 IN A 127.0.0.22',
  'subs-b.srv.test. 300 IN A 127.0.0.23',
  'imap.srv.test. 300 IN A 127.0.0.24',
  // No SRV: fall back to smtp.<domain> / mail.<domain>; both the same machine here.
  'guess.test. 300 IN MX 10 mail.guess.test.',
  'smtp.guess.test. 300 IN A 127.0.0.25',
  'mail.guess.test. 300 IN A 127.0.0.25',
  'mail.guess.test. 300 IN A 127.0.0.26',
];

describe('DNS client against unbound', { skip }, () => {
  let ub: UnboundInstance;
  let dns: DnsClient;
  before(async () => {
    ub = await startUnbound({ localData: ZONE, localZones: [{ name: 'refused.test.', type: 'refuse' }] });
    // `--dns-server 127.0.0.1:<port>`: a server on a non-standard port.
    dns = createDnsClient({ servers: [ub.server], timeoutMs: 2000, tries: 1 });
  });
  after(async () => {
    await ub?.stop();
  });

  it('uses the server and port given, not the system resolver', async () => {
    assert.notEqual(ub.port, 53);
    assert.deepEqual(dns.servers, [`127.0.0.1:${ub.port}`]);
    // example.test exists only in our unbound: an answer proves the query went there.
    assert.equal((await dns.mx('example.test')).length, 3);
  });

  it('orders MX records by preference', async () => {
    const mx = await dns.mxLookup('Example.Test.');
    assert.deepEqual(mx.records, [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
      { exchange: 'mx3.example.test', priority: 30 },
    ]);
    assert.equal(mx.nullMx, false);
    assert.equal(mx.implicit, false);
  });

  it('returns A then AAAA addresses', async () => {
    assert.deepEqual(await dns.addresses('mx1.example.test'), ['127.0.0.11', '127.0.0.12', '::1']);
    assert.deepEqual(await dns.addresses('mx2.example.test'), ['::1']);
    assert.deepEqual(await dns.addresses('127.0.0.99'), ['127.0.0.99']);
  });

  it('recognizes a null MX (RFC 7505) even when the domain has an address', async () => {
    assert.deepEqual(await dns.mxLookup('nullmx.test'), {
      records: [],
      nullMx: true,
      implicit: false,
      nullMxMixed: false,
    });
    assert.deepEqual(await dns.mx('nullmx.test'), []);
    const mixed = await dns.mxLookup('mixednull.test');
    assert.equal(mixed.nullMx, false);
    assert.equal(mixed.nullMxMixed, true);
    assert.deepEqual(mixed.records, [{ exchange: 'mx1.example.test', priority: 10 }]);
  });

  it('falls back to an implicit MX (RFC 5321 §5.1) only when the domain has an address', async () => {
    assert.deepEqual(await dns.mxLookup('implicit.test'), {
      records: [{ exchange: 'implicit.test', priority: 0 }],
      nullMx: false,
      implicit: true,
      nullMxMixed: false,
    });
    const none = await dns.mxLookup('nomail.test');
    assert.deepEqual(none.records, []);
    assert.equal(none.implicit, false);
  });

  it('tells NXDOMAIN from NODATA', async () => {
    await assert.rejects(dns.mx('nope.test'), (e: unknown) => {
      assert.ok(e instanceof DnsError);
      assert.equal(e.code, 'dns-nxdomain');
      assert.equal(e.temporary, false);
      assert.equal(e.qname, 'nope.test');
      return true;
    });
    await assert.rejects(dns.addresses('mx3.example.test'), (e: unknown) => {
      assert.ok(e instanceof DnsError);
      assert.equal(e.code, 'dns-nodata');
      return true;
    });
    await assert.rejects(dns.addresses('nope.example.test'), { code: 'dns-nxdomain' });
    await assert.rejects(dns.txt('mx1.example.test'), { code: 'dns-nodata' });
  });

  it('maps REFUSED to a temporary dns-refused', async () => {
    await assert.rejects(dns.mx('x.refused.test'), (e: unknown) => {
      assert.ok(e instanceof DnsError);
      assert.equal(e.code, 'dns-refused');
      assert.equal(e.temporary, true);
      return true;
    });
  });

  it('reads TXT records as their character strings', async () => {
    const txt = await dns.txt('example.test');
    assert.deepEqual(txt.map((t) => t.join('|')).sort(), ['a|b', 'v=spf1 -all']);
  });

  // c-ares keeps its own timers (not mockable): the runner's timeout is the hang guard, and what
  // is asserted is the outcome, not how long it took (timing belongs in bench/).
  it('times out against a server that never answers', { timeout: 30_000 }, async () => {
    const silent: Socket = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
    let received = 0;
    silent.on('message', () => received++);
    try {
      const port = silent.address().port;
      const c = createDnsClient({ servers: [`127.0.0.1:${port}`], timeoutMs: 300, tries: 1 });
      await assert.rejects(c.mx('example.test'), { code: 'dns-timeout' });
      assert.ok(received >= 1, 'the query reached the silent server');
    } finally {
      silent.close();
    }
  });

  it('resolves URL targets through the given server (--dns-server)', async () => {
    const eps = await resolveWith(parseTarget('submission://mx1.example.test'), dns);
    assert.deepEqual(
      eps.map((e) => [e.url, e.address]),
      [
        ['submission://mx1.example.test:587', '127.0.0.11'],
        ['submission://mx1.example.test:587', '127.0.0.12'],
        ['submission://mx1.example.test:587', '::1'],
      ],
    );
    await assert.rejects(resolveWith(parseTarget('smtp://nope.test'), dns), { code: 'dns-nxdomain' });
  });

  it('without servers, resolves host names through getaddrinfo (/etc/hosts)', async () => {
    const sys = createDnsClient();
    assert.equal(sys.servers, null);
    assert.ok((await sys.addresses('localhost')).includes('127.0.0.1'));
  });

  it('plans MX endpoints in preference order with every address, and reports unresolvable MX hosts', async () => {
    const plan = await planDomain('example.test', ['mx'], dns);
    assert.deepEqual(plan.mx, ['mx1.example.test', 'mx2.example.test', 'mx3.example.test']);
    assert.deepEqual(
      plan.endpoints.map((e) => [e.url, e.address, e.name, e.priority]),
      [
        ['smtp://mx1.example.test:25', '127.0.0.11', 'mx1.example.test', 10],
        ['smtp://mx1.example.test:25', '127.0.0.12', 'mx1.example.test', 10],
        ['smtp://mx1.example.test:25', '::1', 'mx1.example.test', 10],
        ['smtp://mx2.example.test:25', '::1', 'mx2.example.test', 20],
      ],
    );
    assert.deepEqual(
      plan.problems.map((p) => [p.id, p.severity]),
      [['mx-unresolvable', 'high']],
    );
    assert.match(plan.problems[0]?.message ?? '', /mx3\.example\.test.*NODATA/);
  });

  it('plans null, implicit, missing and non-existent domains', async () => {
    const nul = await planDomain('nullmx.test', ['mx'], dns);
    assert.equal(nul.nullMx, true);
    assert.deepEqual(nul.endpoints, []);
    assert.deepEqual(
      nul.problems.map((p) => p.id),
      ['null-mx'],
    );
    const imp = await planDomain('implicit.test', ['mx'], dns);
    assert.equal(imp.implicitMx, true);
    assert.deepEqual(
      imp.endpoints.map((e) => [e.url, e.address, e.source]),
      [['smtp://implicit.test:25', '127.0.0.14', 'implicit-mx']],
    );
    const none = await planDomain('nomail.test', ['mx'], dns);
    assert.deepEqual(
      none.problems.map((p) => p.id),
      ['mx-none'],
    );
    const nx = await planDomain('nope.test', ['mx'], dns);
    assert.deepEqual(
      nx.problems.map((p) => p.id),
      ['domain-nxdomain'],
    );
  });

  it('discovers submission and IMAP servers from SRV records (RFC 6186, RFC 8314) with their ports', async () => {
    const plan = await planDomain('srv.test', ['submission', 'imap', 'pop3'], dns);
    assert.deepEqual(
      plan.endpoints.map((e) => [e.role, e.url, e.address, e.name, e.source]),
      [
        ['submission', 'submission://subm.srv.test:2587', '127.0.0.21', 'subm.srv.test', 'srv'],
        // Priority 0 before priority 10, whatever the publication order.
        ['submission', 'smtps://subs-a.srv.test:2465', '127.0.0.22', 'subs-a.srv.test', 'srv'],
        ['submission', 'smtps://subs-b.srv.test:2465', '127.0.0.23', 'subs-b.srv.test', 'srv'],
        ['imap', 'imaps://imap.srv.test:2993', '127.0.0.24', 'imap.srv.test', 'srv'],
      ],
    );
    assert.deepEqual(
      plan.problems.map((p) => p.id),
      ['imap-unresolvable', 'pop3-not-offered', 'pop3-not-offered'],
    );
    assert.match(plan.problems[0]?.message ?? '', /ghost\.srv\.test/);
  });

  it('falls back to smtp.<domain> / mail.<domain> without SRV, once per address, with port overrides', async () => {
    const plan = await planDomain('guess.test', ['mx', 'submission', 'imap'], dns, {
      ports: { submission: 10587, smtps: 10465 },
    });
    assert.deepEqual(
      plan.endpoints.map((e) => [e.role, e.url, e.address, e.source]),
      [
        ['mx', 'smtp://mail.guess.test:25', '127.0.0.25', 'mx'],
        ['mx', 'smtp://mail.guess.test:25', '127.0.0.26', 'mx'],
        ['submission', 'submission://smtp.guess.test:10587', '127.0.0.25', 'guess'],
        ['submission', 'submission://mail.guess.test:10587', '127.0.0.26', 'guess'],
        ['submission', 'smtps://smtp.guess.test:10465', '127.0.0.25', 'guess'],
        ['submission', 'smtps://mail.guess.test:10465', '127.0.0.26', 'guess'],
        ['imap', 'imap://mail.guess.test:143', '127.0.0.25', 'guess'],
        ['imap', 'imap://mail.guess.test:143', '127.0.0.26', 'guess'],
        ['imap', 'imaps://mail.guess.test:993', '127.0.0.25', 'guess'],
        ['imap', 'imaps://mail.guess.test:993', '127.0.0.26', 'guess'],
      ],
    );
    assert.deepEqual(plan.problems, []);
    const none = await planDomain('nomail.test', ['pop3'], dns);
    assert.deepEqual(
      none.problems.map((p) => p.id),
      ['pop3-none'],
    );
  });
});
