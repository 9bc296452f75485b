/**
 * The probe engine end to end against every testbed server: the versions and suites it finds
 * must equal, code point for code point, what the server was configured to accept (the testbed
 * manifest), and `scan` must report exactly the server's weaknesses — no miss, no false alarm.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { scanEndpoint } from '../../src/scan/scan.ts';
import type { EndpointReport } from '../../src/scan/scan.ts';
import { parseTarget } from '../../src/scan/target.ts';
import { startTestbed } from '../../src/testbed/index.ts';
import type { Testbed } from '../../src/testbed/index.ts';
import { VERSIONS } from '../../src/tls/wire/constants.ts';
import { formatSuiteCode } from '../../src/tls/wire/suites.ts';
import { weaknessIds } from '../../src/cli/commands/demo.ts';

let testbed: Testbed;
const reports = new Map<string, EndpointReport>();

function codes(list: number[] | undefined): string[] {
  return [...(list ?? [])].sort((a, b) => a - b).map(formatSuiteCode);
}

describe('probe engine against the testbed', () => {
  before(async () => {
    testbed = await startTestbed({ basePort: 0 });
    // Scan all servers up front (4 at a time) so each assertion below is about one server.
    const servers = [...testbed.manifest.servers];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let s = servers.shift(); s; s = servers.shift()) {
          const t = parseTarget(s.url);
          reports.set(
            s.id,
            await scanEndpoint(
              { ...t, address: s.address },
              { name: s.hostname, ca: [testbed.manifest.caPem], timeoutMs: 5000, rateLimitBackoffMs: 200 },
            ),
          );
        }
      }),
    );
  });
  after(async () => {
    await testbed?.stop();
  });

  it('covers every kind of server the issue asks for', () => {
    const ids = testbed.manifest.servers.map((s) => s.id);
    for (const id of [
      'smtp-good',
      'smtp-expired',
      'smtp-self-signed',
      'smtp-wrong-name',
      'smtp-sha1',
      'smtp-rsa1024',
      'smtp-tls10',
      'smtp-shame',
      'smtp-no-starttls',
      'smtp-starttls-454',
      'smtp-starttls-stripped',
      'smtp-cmd-injection',
      'smtp-response-injection',
      'legacy-sslv3',
      'legacy-export',
      'legacy-null',
      'legacy-anon',
      'imap-good',
      'imaps-good',
      'pop3-good',
      'pop3s-good',
    ]) {
      assert.ok(ids.includes(id), `testbed lacks ${id}`);
    }
  });

  it('finds exactly the accepted protocol versions of every server', () => {
    const wrong: string[] = [];
    for (const s of testbed.manifest.servers) {
      const r = reports.get(s.id);
      assert.ok(r, s.id);
      const found = VERSIONS.filter((v) => r.protocols[v]);
      if (found.join() !== [...s.expected.protocols].sort((a, b) => VERSIONS.indexOf(a) - VERSIONS.indexOf(b)).join())
        wrong.push(`${s.id}: found ${found.join(' ')} expected ${s.expected.protocols.join(' ')}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('finds exactly the accepted cipher suites of every server, per version', () => {
    const wrong: string[] = [];
    for (const s of testbed.manifest.servers) {
      const r = reports.get(s.id);
      assert.ok(r);
      for (const v of VERSIONS) {
        const found = r.ciphers
          .filter((c) => c.protocol === v)
          .map((c) => c.code)
          .sort();
        const expected = codes(s.expected.suites[v]).sort();
        if (found.join() !== expected.join())
          wrong.push(`${s.id} ${v}: found [${found.join()}] expected [${expected.join()}]`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('reports exactly the weaknesses in the manifest for every server', () => {
    const wrong: string[] = [];
    for (const s of testbed.manifest.servers) {
      const r = reports.get(s.id);
      assert.ok(r);
      const found = weaknessIds(r);
      const expected = [...s.weaknesses].sort();
      if (found.join() !== expected.join())
        wrong.push(`${s.id}: found [${found.join()}] expected [${expected.join()}]`);
    }
    assert.deepEqual(wrong, []);
  });

  it('reports the STARTTLS behaviour the manifest describes', () => {
    for (const s of testbed.manifest.servers) {
      const r = reports.get(s.id);
      assert.ok(r);
      const st = r.starttls;
      switch (s.expected.starttls) {
        case null:
          assert.equal(st, null, s.id);
          break;
        case 'offered':
          assert.ok(st?.advertised && !st.stripped, s.id);
          break;
        case 'missing':
          assert.ok(st && !st.offered && st.refusedReply === null, s.id);
          break;
        case 'refused':
          assert.match(st?.refusedReply ?? '', /^454/, s.id);
          break;
        case 'stripped':
          assert.ok(st && !st.advertised && st.stripped && st.offered, s.id);
          break;
      }
    }
  });

  it('learns the configured key-exchange groups and reads certificate chains', () => {
    const good = reports.get('smtp-good');
    const expectedGroups = testbed.manifest.servers.find((s) => s.id === 'smtp-good')?.expected.groups ?? [];
    assert.ok(good);
    // TLS 1.3 groups come from HelloRetryRequests, TLS 1.2 curves from ServerKeyExchange; the
    // brainpool curves have separate code points per version (RFC 8734), so compare the union.
    // TLS 1.2 enumeration is a lower bound for ECDSA servers (RFC 8422 §5.1, see enumerate.ts).
    const tls13Valid = expectedGroups.filter((g) => !/^brainpoolP\d+r1$/.test(g));
    assert.deepEqual([...good.groups.tls13].sort(), [...tls13Valid].sort());
    assert.ok(
      good.groups.tls12.length >= 1 &&
        good.groups.tls12.every((g) => expectedGroups.includes(g) && !g.endsWith('tls13')),
      good.groups.tls12.join(),
    );
    assert.equal(good.certificate?.trusted, true);
    assert.equal(good.certificate?.hostnameMatches, true);
    assert.equal(good.serverPreference['TLSv1.2'] !== undefined, true);
    // Legacy servers cannot complete a handshake with OpenSSL 3, yet their chain is read from the raw flight.
    const legacy = reports.get('legacy-sslv3');
    assert.ok(legacy?.certificate, 'legacy chain read from the raw ServerHello flight');
  });

  it('stays polite and economical: few connections per endpoint', () => {
    for (const [id, r] of reports) {
      const accepted = r.ciphers.length;
      // Iterative removal: accepted + 1 per version, plus preference/group probes and one full
      // handshake; a per-suite scanner (sslyze-style) would need ~350 per version.
      assert.ok(
        r.stats.connections <= accepted + 40,
        `${id}: ${r.stats.connections} connections for ${accepted} suites`,
      );
    }
  });
});
