/**
 * An independent oracle for the testbed's hand-written legacy responders (SSLv2, SSLv3, export,
 * NULL, anonymous and exotic suites). Their manifest's expected suites come from
 * `legacyAcceptedSuites`, the same function the responders use to decide what to accept, so the
 * testbed tests (testbed.test.ts, probe-testbed.test.ts) alone would confirm the scanner against
 * the testbed's own opinion. Here Debian's testssl.sh 3.0 — its own bash-socket ClientHellos,
 * which reach SSLv2, SSLv3 and suites OpenSSL 3 no longer has — lists what each server really
 * accepts per protocol (`-E`), and that must equal the manifest exactly, protocols it should
 * refuse included. And it must equal what the catalog declares each server serves (its
 * hand-written `tls.versions` × `tls.suites`, resolved by name in the suite registry), so neither
 * the manifest nor the responder can drift from the declaration together. The servers are
 * scanned in parallel, so the file stays within ~90 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOG, startTestbed } from '../../src/testbed/index.ts';
import type { ManifestServer, Testbed } from '../../src/testbed/index.ts';
import { suiteByName } from '../../src/tls/wire/suites.ts';
import { peerSkipReason } from './peers/require.ts';
import { runTestsslCiphers, testsslAvailable } from './peers/testssl.ts';
import type { TestsslProtocol, TestsslResult } from './peers/testssl.ts';

const skip = peerSkipReason(testsslAvailable(), 'testssl.sh');

/** The legacy responders whose suite lists are the point (the others serve BSI suites). */
const LEGACY = ['legacy-sslv2', 'legacy-sslv3', 'legacy-export', 'legacy-null', 'legacy-anon', 'legacy-exotic'];
const PROTOCOLS: readonly TestsslProtocol[] = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

const hex = (codes: Iterable<number>): string[] =>
  [...codes].sort((a, b) => a - b).map((c) => `0x${c.toString(16).padStart(4, '0')}`);

describe('testbed legacy responders, as testssl.sh sees them', { skip }, () => {
  let tb: Testbed;
  const scans = new Map<string, Promise<TestsslResult>>();

  before(async () => {
    tb = await startTestbed({ basePort: 0 });
    // All scans at once: testssl mostly waits on its sockets, so they overlap well.
    for (const id of LEGACY) {
      const s = tb.manifest.servers.find((x) => x.id === id);
      assert.ok(s, id);
      const scan = runTestsslCiphers({ host: s.address, port: s.port, starttls: 'smtp', timeoutMs: 150_000 });
      scan.catch(() => undefined); // awaited (and reported) by the server's own test
      scans.set(id, scan);
    }
  });
  after(async () => {
    await Promise.allSettled(scans.values());
    await tb?.stop();
  });

  for (const id of LEGACY) {
    it(
      `${id}: accepts exactly the suites the manifest and the catalog name, per protocol`,
      { timeout: 170_000 },
      async (t) => {
        const s: ManifestServer | undefined = tb.manifest.servers.find((x) => x.id === id);
        assert.ok(s, id);
        const scan = scans.get(id);
        assert.ok(scan);
        const result = await scan;
        t.diagnostic(`testssl -E took ${Math.round(result.durationMs / 1000)} s`);
        const theirs: Record<string, string[]> = {};
        const ours: Record<string, string[]> = {};
        for (const p of PROTOCOLS) {
          theirs[p] = hex(result.suites.get(p) ?? []);
          ours[p] = hex(s.expected.suites[p] ?? []);
        }
        assert.deepEqual(theirs, ours, `${id}: testssl (actual) vs manifest (expected)`);
        // The declaration, without legacyAcceptedSuites: every declared suite at every declared
        // version, nothing elsewhere.
        const entry = CATALOG.find((e) => e.id === id);
        assert.ok(entry && entry.tls.kind === 'raw', id);
        const declaredCodes = entry.tls.suites.map((x) => {
          const code = typeof x === 'number' ? x : suiteByName(x)?.code;
          assert.ok(code !== undefined, `${id}: unknown suite ${String(x)}`);
          return code;
        });
        const declared: Record<string, string[]> = {};
        for (const p of PROTOCOLS) declared[p] = entry.tls.versions.includes(p) ? hex(declaredCodes) : [];
        assert.deepEqual(theirs, declared, `${id}: testssl (actual) vs the catalog's declaration`);
        // The oracle saw something: a server it found nothing on would prove nothing.
        assert.ok(
          Object.values(theirs).some((l) => l.length > 0),
          `${id}: testssl found no suite at all`,
        );
      },
    );
  }
});
