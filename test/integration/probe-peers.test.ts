/**
 * The probe engine against real servers, cross-checked against Debian's testssl.sh on the same
 * service in the same run: the accepted suite sets must be equal, code point for code point, per
 * protocol version. Postfix (SMTP STARTTLS) and Dovecot (IMAP 143/993, POP3 110/995), each
 * configured three ways: a strict BSI TR-02102-2 list, the Debian defaults, and legacy TLS 1.0
 * with a weak (RSA-1024) certificate.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { probeEndpoint } from '../../src/tls/probe/index.ts';
import type { EndpointProbe } from '../../src/tls/probe/index.ts';
import type { Dialect } from '../../src/tls/starttls/index.ts';
import { VERSIONS } from '../../src/tls/wire/constants.ts';
import { formatSuiteCode } from '../../src/tls/wire/suites.ts';
import { makeSelfSignedCert } from './peers/certs.ts';
import type { TestCert } from './peers/certs.ts';
import { dovecotAvailable, startDovecot } from './peers/dovecot.ts';
import type { DovecotInstance } from './peers/dovecot.ts';
import { postfixAvailable, startPostfix } from './peers/postfix.ts';
import type { PostfixInstance } from './peers/postfix.ts';
import { peerSkipReason } from './peers/require.ts';
import { runTestsslCiphers, testsslAvailable } from './peers/testssl.ts';

const noPostfix = peerSkipReason(postfixAvailable() && testsslAvailable(), 'postfix/testssl.sh');
const noDovecot = peerSkipReason(dovecotAvailable() && testsslAvailable(), 'dovecot/testssl.sh');

/** BSI TR-02102-2 Table 1 suites an RSA certificate can serve, in OpenSSL syntax. */
const BSI_RSA =
  'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-SHA256:DHE-RSA-AES128-SHA256';
const BSI_TLS13 = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256';

function sets(p: EndpointProbe): Record<string, string[]> {
  return Object.fromEntries(VERSIONS.map((v) => [v, [...p.suites[v]].sort((a, b) => a - b).map(formatSuiteCode)]));
}

function testsslSets(m: Map<string, Set<number>>): Record<string, string[]> {
  return Object.fromEntries(VERSIONS.map((v) => [v, [...(m.get(v) ?? [])].sort((a, b) => a - b).map(formatSuiteCode)]));
}

async function compare(
  host: string,
  port: number,
  dialect: Dialect,
): Promise<{ ours: Record<string, string[]>; theirs: Record<string, string[]>; probe: EndpointProbe }> {
  const probe = await probeEndpoint(
    { host, address: host, port, dialect, timeoutMs: 10_000 },
    { fullHandshake: false },
  );
  const starttls = dialect === 'implicit' ? null : dialect;
  const ts = await runTestsslCiphers({ host, port, starttls, timeoutMs: 240_000 });
  return { ours: sets(probe), theirs: testsslSets(ts.suites), probe };
}

interface Config {
  name: string;
  cert: () => Promise<TestCert>;
  postfix: (c: TestCert) => Parameters<typeof startPostfix>[0];
  dovecot: (c: TestCert) => Parameters<typeof startDovecot>[0];
  /** A fact the configuration must show, so the three configurations are really different. */
  check: (p: EndpointProbe) => void;
}

const CONFIGS: Config[] = [
  {
    name: 'strict BSI TR-02102-2 list',
    cert: () => makeSelfSignedCert({ rsaBits: 3072 }),
    postfix: (c) => ({
      ...c,
      protocols: '>=TLSv1.2',
      mandatoryProtocols: '>=TLSv1.2',
      cipherList: BSI_RSA,
      tls13Ciphers: BSI_TLS13,
    }),
    dovecot: (c) => ({
      ...c,
      sslMinProtocol: 'TLSv1.2',
      sslCipherList: BSI_RSA,
      sslCipherSuites: BSI_TLS13,
      sslPreferServerCiphers: true,
    }),
    check: (p) => {
      assert.equal(p.protocols['TLSv1.1'], false);
      assert.ok(p.suites['TLSv1.3'].includes(0x1304), 'TLS_AES_128_CCM_SHA256 enabled');
    },
  },
  {
    name: 'Debian defaults',
    cert: () => makeSelfSignedCert(),
    postfix: (c) => ({ ...c }),
    dovecot: (c) => ({ ...c }),
    check: (p) => {
      assert.ok(
        p.suites['TLSv1.2'].length > 8,
        `Debian default accepts many TLS 1.2 suites (${p.suites['TLSv1.2'].length})`,
      );
    },
  },
  {
    name: 'legacy TLS 1.0 with an RSA-1024 certificate',
    cert: () => makeSelfSignedCert({ rsaBits: 1024 }),
    postfix: (c) => ({
      ...c,
      protocols: '>=TLSv1,<=TLSv1',
      mandatoryProtocols: '>=TLSv1,<=TLSv1',
      cipherList: 'DEFAULT:@SECLEVEL=0',
    }),
    // Dovecot 2.3 has no ssl_max_protocol: its legacy variant accepts TLS 1.0 and up.
    dovecot: (c) => ({ ...c, sslMinProtocol: 'TLSv1', sslCipherList: 'DEFAULT:@SECLEVEL=0' }),
    check: (p) => {
      assert.equal(p.protocols['TLSv1.0'], true);
      if (p.target.dialect === 'smtp') assert.equal(p.protocols['TLSv1.2'], false);
    },
  },
];

describe('probe engine vs testssl.sh on a real Postfix (SMTP STARTTLS)', { skip: noPostfix }, () => {
  for (const cfg of CONFIGS) {
    describe(cfg.name, () => {
      let pf: PostfixInstance;
      before(async () => {
        pf = await startPostfix(cfg.postfix(await cfg.cert()));
      });
      after(async () => {
        await pf?.stop();
      });
      it('finds exactly the suites testssl.sh finds, per version', async () => {
        const { ours, theirs, probe } = await compare(pf.host, pf.port, 'smtp');
        assert.deepEqual(ours, theirs);
        cfg.check(probe);
        assert.ok(probe.starttls?.advertised);
      });
    });
  }
});

describe('probe engine vs testssl.sh on a real Dovecot (IMAP 143/993, POP3 110/995)', { skip: noDovecot }, () => {
  for (const cfg of CONFIGS) {
    describe(cfg.name, () => {
      let dc: DovecotInstance;
      before(async () => {
        dc = await startDovecot(cfg.dovecot(await cfg.cert()));
      });
      after(async () => {
        await dc?.stop();
      });
      for (const [svc, dialect] of [
        ['imap', 'imap'],
        ['imaps', 'implicit'],
        ['pop3', 'pop3'],
        ['pop3s', 'implicit'],
      ] as const) {
        it(`${svc}: finds exactly the suites testssl.sh finds, per version`, async () => {
          const { ours, theirs, probe } = await compare(dc.host, dc.ports[svc], dialect);
          assert.deepEqual(ours, theirs);
          cfg.check(probe);
        });
      }
    });
  }
});
