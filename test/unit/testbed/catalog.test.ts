import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATALOG, expectedFor, suiteCodes, suitesUsableAt } from '../../../src/testbed/catalog.ts';
import type { CatalogEntry } from '../../../src/testbed/catalog.ts';
import { WEAKNESSES } from '../../../src/testbed/manifest.ts';
import type { WeaknessId } from '../../../src/testbed/manifest.ts';
import { selectEntries } from '../../../src/testbed/index.ts';
import { legacyAcceptedSuites } from '../../../src/testbed/legacy-tls.ts';
import { suiteByName, suiteByCode } from '../../../src/tls/wire/suites.ts';
import { PosternError } from '../../../src/core/errors.ts';

// BSI TR-02102-2 Table 1 (TLS 1.2 with PFS) and the TLS 1.3 list, by IANA name (docs/STANDARDS).
const BSI_ALLOWED = new Set(
  [
    'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
    'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
    'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
    'TLS_DHE_DSS_WITH_AES_128_CBC_SHA256',
    'TLS_DHE_DSS_WITH_AES_256_CBC_SHA256',
    'TLS_DHE_DSS_WITH_AES_128_GCM_SHA256',
    'TLS_DHE_DSS_WITH_AES_256_GCM_SHA384',
    'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256',
    'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256',
    'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
    'TLS_DHE_RSA_WITH_AES_128_CCM',
    'TLS_DHE_RSA_WITH_AES_256_CCM',
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_AES_128_CCM_SHA256',
  ].map((n) => {
    const s = suiteByName(n);
    assert.ok(s, n);
    return s.code;
  }),
);

function byId(id: string): CatalogEntry {
  const e = CATALOG.find((x) => x.id === id);
  assert.ok(e, id);
  return e;
}

/** Weaknesses implied by an entry's specification, computed independently of its list. */
function impliedWeaknesses(e: CatalogEntry): Set<WeaknessId> {
  const w = new Set<WeaknessId>();
  const st = e.expected.starttls;
  if (st === 'missing') w.add('starttls-missing');
  if (st === 'refused') w.add('starttls-refused');
  if (st === 'stripped') w.add('starttls-stripped');
  if (e.switches.commandInjection) w.add('starttls-injection');
  if (e.switches.responseInjection) w.add('starttls-response-injection');
  if (e.expected.protocols.length === 0) return w; // TLS unreachable: nothing else observable
  const c = e.cert;
  const names = c.names ?? [e.hostname];
  if (c.validity !== 'valid') w.add('cert-expired');
  if (c.issuer === 'self') w.add('cert-self-signed').add('cert-untrusted');
  if (!names.includes(e.hostname)) w.add('cert-hostname-mismatch');
  if (c.signatureHash === 'SHA-1') w.add('cert-weak-signature');
  if (c.keyType.kind === 'rsa' ? c.keyType.bits < 2048 : false) w.add('cert-weak-key');
  const protoWeak = {
    SSLv2: 'protocol-sslv2',
    SSLv3: 'protocol-sslv3',
    'TLSv1.0': 'protocol-tls1.0',
    'TLSv1.1': 'protocol-tls1.1',
  } as const;
  for (const v of e.expected.protocols) {
    if (v in protoWeak) w.add(protoWeak[v as keyof typeof protoWeak]);
  }
  for (const codes of Object.values(e.expected.suites)) {
    for (const code of codes) {
      const s = suiteByCode(code);
      assert.ok(s, `${e.id}: unknown code ${code}`);
      if (!BSI_ALLOWED.has(code)) w.add('cipher-not-allowed');
      if (s.export) w.add('cipher-export');
      // Export-grade DHE uses 512-bit parameters, below BSI's 3000 (the responder's non-export DHE is 3072).
      if (s.export && s.kx === 'DHE') w.add('dh-too-small');
      if (s.nullCipher) w.add('cipher-null');
      if (s.anon) w.add('cipher-anon');
      if (s.cipherFamily === 'RC4') w.add('cipher-rc4');
    }
  }
  // Issue 3 checks. Node (OpenSSL) always honours TLS_FALLBACK_SCSV and has RFC 5746 on; the raw
  // responder does neither unless told; heartbeat and DEFLATE exist only on the raw responder.
  const tls = e.tls;
  if (tls.kind === 'raw') {
    if (tls.secureRenegotiation === false) w.add('renegotiation-insecure');
    if (tls.compression === true) w.add('compression-enabled');
    if (tls.heartbeat === 'on' || tls.heartbeat === 'heartbleed') w.add('heartbeat-enabled');
    if (tls.heartbeat === 'heartbleed') w.add('heartbleed');
    if (e.expected.protocols.filter((v) => v !== 'SSLv2').length >= 2 && tls.fallbackScsv !== true)
      w.add('fallback-scsv-missing');
  } else if (tls.clientRenegotiation === true && e.expected.protocols.some((v) => v !== 'TLSv1.3')) {
    w.add('client-renegotiation');
  }
  return w;
}

test('catalog ids, hostnames and port hints are consistent', () => {
  const ids = CATALOG.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const e of CATALOG) {
    assert.match(e.id, /^[a-z0-9-]+$/);
    assert.equal(e.hostname, `${e.id}.testbed.postern.test`);
    const hint = { smtp: [25, 465], imap: [143, 993], pop3: [110, 995] }[e.protocol][e.mode === 'starttls' ? 0 : 1];
    assert.equal(e.defaultPortHint, hint, e.id);
    for (const w of e.weaknesses) assert.ok(w in WEAKNESSES, `${e.id}: ${w}`);
    assert.equal(new Set(e.weaknesses).size, e.weaknesses.length, e.id);
  }
  for (const required of [
    'smtp-good',
    'smtps-good',
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
    'legacy-exotic',
    'imap-good',
    'imaps-good',
    'imap-bad',
    'pop3-good',
    'pop3s-good',
    'pop3-bad',
    'imap-no-starttls',
  ]) {
    assert.ok(ids.includes(required), required);
  }
});

test('every listed weakness follows from the entry specification, and nothing else does', () => {
  for (const e of CATALOG) {
    assert.deepEqual([...e.weaknesses].sort(), [...impliedWeaknesses(e)].sort(), e.id);
  }
});

test('every weakness id is exercised by at least one server', () => {
  const seen = new Set(CATALOG.flatMap((e) => e.weaknesses));
  for (const w of Object.keys(WEAKNESSES)) {
    assert.ok(seen.has(w as WeaknessId), w);
  }
});

test('the good servers accept only BSI suites, BSI groups, TLS 1.2-1.3, and a P-256 CA-issued cert', () => {
  for (const e of CATALOG.filter((x) => x.id.endsWith('-good'))) {
    assert.deepEqual(e.weaknesses, [], e.id);
    assert.deepEqual(e.expected.protocols, ['TLSv1.2', 'TLSv1.3'], e.id);
    for (const codes of Object.values(e.expected.suites))
      for (const c of codes) assert.ok(BSI_ALLOWED.has(c), `${e.id} ${c}`);
    assert.equal(e.expected.suites['TLSv1.2']?.length, 6);
    assert.equal(e.expected.suites['TLSv1.3']?.length, 3);
    assert.ok(!e.expected.groups?.some((g) => /x25519|x448|mlkem/i.test(g)), e.id);
    assert.deepEqual(e.cert.keyType, { kind: 'ec', curve: 'P-256' });
    assert.equal(e.cert.issuer, 'ca');
  }
});

test('the certificate of shame has every property from the seed', () => {
  const shame = byId('smtp-shame');
  assert.equal(shame.cert.issuer, 'self');
  assert.equal(shame.cert.validity, 'epoch');
  assert.equal(shame.cert.signatureHash, 'SHA-1');
  assert.deepEqual(shame.cert.keyType, { kind: 'rsa', bits: 1024 });
  assert.match(shame.cert.subject ?? '', /CN=abc\.xy$/);
  assert.deepEqual(shame.expected.protocols, ['TLSv1.0']);
});

test('expected suites are exact code points from the registry; TLS 1.3 names only at TLS 1.3', () => {
  const good = byId('smtp-good');
  assert.deepEqual(good.expected.suites['TLSv1.3'], [0x1301, 0x1302, 0x1304]);
  assert.deepEqual(good.expected.suites['TLSv1.2'], [0xc02b, 0xc02c, 0xc023, 0xc024, 0xc0ac, 0xc0ad]);
  assert.deepEqual(byId('smtp-tls10').expected.suites, { 'TLSv1.0': [0xc013, 0xc014, 0x002f, 0x0035] });
  assert.deepEqual(suitesUsableAt(suiteCodes(['ECDHE-ECDSA-AES128-SHA256', 'AES128-SHA']), 'TLSv1.0'), [0x002f]);
  assert.throws(() => suiteCodes(['NO-SUCH-SUITE']), /unknown cipher suite/);
  // STARTTLS unreachable: no TLS expectations at all.
  assert.deepEqual(byId('smtp-no-starttls').expected, { starttls: 'missing', protocols: [], suites: {} });
  assert.deepEqual(byId('smtp-starttls-454').expected.protocols, []);
  assert.equal(byId('smtps-good').expected.starttls, null);
});

test("raw entries: the catalog's expectation agrees with what the legacy responder accepts", () => {
  for (const e of CATALOG.filter((x) => x.tls.kind === 'raw')) {
    const opts = { versions: e.tls.versions, suites: suiteCodes(e.tls.suites), certificates: [] };
    const fromResponder = expectedFor(e, (v) => legacyAcceptedSuites(opts, v));
    assert.deepEqual(fromResponder, e.expected, e.id);
    assert.ok(e.expected.protocols.length > 0, e.id);
  }
});

test('selectEntries: ids and globs; an unknown name is a PosternError listing the ids', () => {
  assert.deepEqual(
    selectEntries(['pop3*']).map((e) => e.id),
    ['pop3-good', 'pop3s-good', 'pop3-bad'],
  );
  assert.deepEqual(
    selectEntries(['imap-bad', 'smtp-good']).map((e) => e.id),
    ['smtp-good', 'imap-bad'],
  );
  assert.equal(selectEntries(undefined).length, CATALOG.length);
  assert.throws(
    () => selectEntries(['smtp-good', 'nope-*']),
    (err: unknown) =>
      err instanceof PosternError &&
      err.code === 'testbed-unknown-server' &&
      /nope-\*/.test(err.message) &&
      (err.hint ?? '').includes('smtp-shame'),
  );
});
