import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  CIPHER_SUITES,
  formatSuiteCode,
  suiteByCode,
  suiteByName,
  suitesForVersion,
  type CipherSuite,
} from '../../../../src/tls/wire/suites.ts';
import {
  DEFAULT_IN,
  DEFAULT_OUT,
  OVERRIDES,
  buildSuites,
  deriveFromName,
  parseSource,
  SuiteSourceError,
} from '../../../../scripts/gen-cipher-suites.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');

function must(code: number): CipherSuite {
  const s = suiteByCode(code);
  assert.ok(s, `suite ${formatSuiteCode(code)} missing`);
  return s;
}

test('code points are unique and sorted', () => {
  const codes = CIPHER_SUITES.map((s) => s.code);
  assert.equal(new Set(codes).size, codes.length);
  assert.deepEqual(
    codes,
    [...codes].sort((a, b) => a - b),
  );
});

test('IANA names are unique, and every IANA name parses with the grammar alone', () => {
  const iana = CIPHER_SUITES.filter((s) => s.iana !== null);
  assert.equal(new Set(iana.map((s) => s.iana)).size, iana.length);
  for (const s of iana) {
    // IANA suites never need an override: the name alone must yield the committed attributes.
    assert.equal(OVERRIDES.has(s.code), false, `${s.iana} has an override`);
    const d = deriveFromName(s.iana as string);
    assert.equal(d.kx, s.kx, s.iana as string);
    assert.equal(d.cipher, s.cipher, s.iana as string);
    assert.equal(d.mac, s.mac, s.iana as string);
  }
});

test('covers the whole IANA registry (352 assigned values incl. SCSVs, TLS 1.3, GOST, SM4, ECCPWD)', () => {
  const iana = CIPHER_SUITES.filter((s) => s.iana !== null);
  assert.equal(iana.length, 352);
  for (const code of [0x00c6, 0x00c7, 0x00ff, 0x1301, 0x1305, 0x5600, 0xc0b0, 0xc0b5, 0xc100, 0xc106, 0xd005]) {
    assert.ok(must(code).iana, formatSuiteCode(code));
  }
  // Reserved/unassigned ranges are not suites: GREASE 0x0A0A, 0x001C (SSLv3 Fortezza clash), 0xD004.
  for (const code of [0x0a0a, 0x001c, 0x001d, 0xd004, 0xc0b6]) assert.equal(suiteByCode(code), undefined);
});

test('the grammar rejects names it cannot parse', () => {
  for (const bad of [
    'TLS_FOO_WITH_AES_128_CBC_SHA', // unknown key exchange
    'TLS_RSA_WITH_AES_512_CBC_SHA', // unknown cipher
    'TLS_RSA_WITH_AES_128_CBC_WHIRLPOOL', // unknown MAC
    'TLS_RSA_WITH_AES_128_CBC', // CBC needs a MAC
    'TLS_AES_128_CBC_SHA256', // TLS 1.3 suites are AEAD
    'TLS_AES_128_CCM', // TLS 1.3 names carry the hash
    'TLS_RSA_WITH_KUZNYECHIK_MGM_L', // TLS 1.3-only cipher in a TLS 1.2 name
    'TLS_RSA_WITH_SHA256_SHA256', // integrity-only outside TLS 1.3
    'TLS_BOGUS_SCSV',
    'SSL_CK_RC5_128_WITH_MD5',
    'rsa-aes128-sha',
  ]) {
    assert.throws(() => deriveFromName(bad), SuiteSourceError, bad);
  }
});

test('the source parser names the line of a bad entry', () => {
  assert.throws(() => parseSource('0xc02f TLS_X - RFC1\n'), /cipher-suites.txt:1: code/);
  assert.throws(() => parseSource('# c\n0xC02F TLS_X - RFC1 zz=1\n'), /cipher-suites.txt:2: unknown/);
  assert.throws(() => parseSource('0x0001 - - somewhere\n'), /ref 'somewhere'/);
  assert.throws(
    () => buildSuites(parseSource('0x0001 TLS_RSA_WITH_NULL_MD5 - RFC5246\n0x0001 TLS_RSA_WITH_NULL_SHA - RFC5246\n')),
    /repeats line 1/,
  );
  assert.throws(() => buildSuites(parseSource('0x0060 - EXP1024-RC4-MD5 vendor:X\n')), /no IANA or as= name/);
  assert.throws(() => buildSuites(parseSource('0x0001 TLS_RSA_WITH_RC9_MD5 - RFC5246\n')), /:1: .*cipher\/MAC/);
});

test('spot checks of well-known suites', () => {
  const c02f = must(0xc02f);
  assert.equal(c02f.iana, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256');
  assert.equal(c02f.openssl, 'ECDHE-RSA-AES128-GCM-SHA256');
  assert.equal(c02f.name, c02f.iana);
  assert.deepEqual(
    [c02f.kx, c02f.auth, c02f.cipher, c02f.cipherFamily, c02f.mode, c02f.bits, c02f.mac],
    ['ECDHE', 'RSA', 'AES_128_GCM', 'AES', 'GCM', 128, 'AEAD'],
  );
  assert.deepEqual([c02f.aead, c02f.cbc, c02f.pfs, c02f.export, c02f.anon], [true, false, true, false, false]);
  assert.deepEqual([c02f.minVersion, c02f.maxVersion, c02f.rfc], ['TLSv1.2', 'TLSv1.2', 'RFC 5289']);

  const rc4 = must(0x0005);
  assert.deepEqual(
    [rc4.openssl, rc4.cipherFamily, rc4.mode, rc4.bits, rc4.mac, rc4.pfs, rc4.minVersion],
    ['RC4-SHA', 'RC4', 'STREAM', 128, 'SHA', false, 'SSLv3'],
  );

  const exp = must(0x0003);
  assert.deepEqual(
    [exp.openssl, exp.export, exp.bits, exp.cipher, exp.mac, exp.maxVersion],
    ['EXP-RC4-MD5', true, 40, 'RC4_40', 'MD5', 'TLSv1.0'],
  );

  const nul = must(0x0000);
  assert.deepEqual([nul.kx, nul.nullCipher, nul.bits, nul.anon, nul.mac], ['NULL', true, 0, true, 'NULL']);

  const adh = must(0x0018);
  assert.deepEqual(
    [adh.openssl, adh.auth, adh.anon, adh.pfs, adh.cipher],
    ['ADH-RC4-MD5', 'anon', true, false, 'RC4_128'],
  );

  const t13 = must(0x1301);
  assert.deepEqual(
    [t13.family, t13.kx, t13.auth, t13.cipher, t13.mac, t13.aead, t13.minVersion, t13.maxVersion, t13.openssl],
    ['tls13', 'TLS13', 'TLS13', 'AES_128_GCM', 'AEAD', true, 'TLSv1.3', 'TLSv1.3', 'TLS_AES_128_GCM_SHA256'],
  );
  assert.deepEqual([must(0x1305).mode, must(0x1305).cipher], ['CCM_8', 'AES_128_CCM_8']);

  const cha = must(0xcca8);
  assert.deepEqual(
    [cha.cipherFamily, cha.mode, cha.bits, cha.openssl],
    ['CHACHA20', 'POLY1305', 256, 'ECDHE-RSA-CHACHA20-POLY1305'],
  );

  const ccm = must(0xc09c);
  assert.deepEqual(
    [ccm.iana, ccm.openssl, ccm.mode, ccm.mac, ccm.minVersion, ccm.pfs],
    ['TLS_RSA_WITH_AES_128_CCM', 'AES128-CCM', 'CCM', 'AEAD', 'TLSv1.2', false],
  );

  const scsv = must(0x00ff);
  assert.deepEqual(
    [scsv.family, scsv.kx, scsv.nullCipher, scsv.iana],
    ['scsv', 'SCSV', false, 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV'],
  );
  assert.equal(must(0x5600).iana, 'TLS_FALLBACK_SCSV');

  const tdes = must(0x000a);
  assert.deepEqual([tdes.openssl, tdes.cipherFamily, tdes.bits, tdes.cbc], ['DES-CBC3-SHA', '3DES', 112, true]);

  const edh = must(0x0016);
  assert.deepEqual([edh.openssl, edh.kx, edh.pfs], ['EDH-RSA-DES-CBC3-SHA', 'DHE', true]);

  const aecdh = must(0xc016);
  assert.deepEqual([aecdh.openssl, aecdh.kx, aecdh.auth, aecdh.anon], ['AECDH-RC4-SHA', 'ECDHE', 'anon', true]);

  // Static (EC)DH: no forward secrecy; authentication named after the certificate's signer.
  assert.deepEqual([must(0xc031).kx, must(0xc031).auth, must(0xc031).pfs], ['ECDH', 'RSA', false]);
  assert.deepEqual([must(0x0030).kx, must(0x0030).auth], ['DH', 'DSS']);

  // Irregular RFC 6655 spelling TLS_PSK_DHE_… still means DHE_PSK.
  assert.deepEqual(
    [must(0xc0aa).iana, must(0xc0aa).kx, must(0xc0aa).pfs],
    ['TLS_PSK_DHE_WITH_AES_128_CCM_8', 'DHE_PSK', true],
  );

  // RFC 5487 §3.2: PSK SHA-256 CBC suites run over TLS 1.0; non-PSK SHA-256 suites need TLS 1.2.
  assert.equal(must(0x00ae).minVersion, 'TLSv1.0');
  assert.equal(must(0x003c).minVersion, 'TLSv1.2');

  const krb = must(0x0026);
  assert.deepEqual([krb.kx, krb.export, krb.bits, krb.cipherFamily], ['KRB5', true, 40, 'DES']);

  const sm4 = must(0x00c6);
  assert.deepEqual([sm4.family, sm4.cipherFamily, sm4.mode, sm4.bits], ['tls13', 'SM4', 'GCM', 128]);

  const gost = must(0xc100);
  assert.deepEqual(
    [gost.kx, gost.cipherFamily, gost.mode, gost.mac, gost.minVersion, gost.openssl],
    ['GOST', 'KUZNYECHIK', 'CTR', 'OMAC', 'TLSv1.2', 'GOST2012-KUZNYECHIK-KUZNYECHIKOMAC'],
  );
  assert.deepEqual([must(0xc103).family, must(0xc103).mode, must(0xc103).aead], ['tls13', 'MGM', true]);

  const integrity = must(0xc0b4);
  assert.deepEqual(
    [integrity.family, integrity.nullCipher, integrity.mac, integrity.aead],
    ['tls13', true, 'SHA256', false],
  );

  const pwd = must(0xc0b0);
  assert.deepEqual([pwd.kx, pwd.minVersion, pwd.maxVersion], ['ECCPWD', 'TLSv1.2', 'TLSv1.3']);
});

test('non-IANA suites servers still answer with', () => {
  const old = must(0xcc13);
  assert.deepEqual(
    [old.iana, old.openssl, old.name, old.cipher, old.kx],
    [null, 'ECDHE-RSA-CHACHA20-POLY1305-OLD', 'ECDHE-RSA-CHACHA20-POLY1305-OLD', 'CHACHA20_POLY1305', 'ECDHE'],
  );
  assert.ok(must(0xcc14) && must(0xcc15));

  const g01 = must(0x0081);
  assert.deepEqual(
    [g01.iana, g01.openssl, g01.name, g01.kx, g01.cipherFamily, g01.mac],
    [null, 'GOST2001-GOST89-GOST89', 'TLS_GOSTR341001_WITH_28147_CNT_IMIT', 'GOST', 'GOST', 'GOST28147'],
  );
  const ff85 = must(0xff85);
  assert.deepEqual([ff85.openssl, ff85.minVersion], ['LEGACY-GOST2012-GOST8912-GOST8912', 'TLSv1.0']);
  assert.equal(suiteByName('GOST2012-GOST8912-GOST8912'), ff85);

  const e1024 = must(0x0064);
  assert.deepEqual(
    [e1024.openssl, e1024.export, e1024.bits, e1024.maxVersion],
    ['EXP1024-RC4-SHA', true, 56, 'TLSv1.0'],
  );
});

test('SSLv2 cipher kinds are 3-byte codes, SSLv2 only', () => {
  const v2 = CIPHER_SUITES.filter((s) => s.family === 'sslv2');
  for (const s of v2) {
    assert.ok(s.code > 0xffff, s.name);
    assert.deepEqual([s.minVersion, s.maxVersion], ['SSLv2', 'SSLv2']);
  }
  for (const s of CIPHER_SUITES) if (s.code > 0xffff) assert.equal(s.family, 'sslv2');
  for (const code of [0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700c0, 0x080080]) must(code);
  const exp = must(0x020080);
  assert.deepEqual(
    [exp.name, exp.openssl, exp.export, exp.bits],
    ['SSL_CK_RC4_128_EXPORT40_WITH_MD5', 'EXP-RC4-MD5', true, 40],
  );
  assert.equal(must(0x0700c0).cipherFamily, '3DES');
  assert.equal(must(0x060040).bits, 56);
});

test('suiteByName: IANA, OpenSSL and alias names, case-insensitive, TLS before SSLv2', () => {
  assert.equal(suiteByName('TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384')?.code, 0xc030);
  assert.equal(suiteByName('tls_ecdhe_rsa_with_aes_256_gcm_sha384')?.code, 0xc030);
  assert.equal(suiteByName('ECDHE-RSA-AES256-GCM-SHA384')?.code, 0xc030);
  assert.equal(suiteByName('ecdhe-rsa-aes256-gcm-sha384')?.code, 0xc030);
  // OpenSSL reuses RC4-MD5 / EXP-RC4-MD5 / NULL for SSLv2 kinds: the TLS suite wins; the
  // SSLv2 kind stays reachable by its spec name.
  assert.equal(suiteByName('RC4-MD5')?.code, 0x0004);
  assert.equal(suiteByName('EXP-RC4-MD5')?.code, 0x0003);
  assert.equal(suiteByName('NULL')?.code, 0x0000);
  assert.equal(suiteByName('SSL_CK_RC4_128_WITH_MD5')?.code, 0x010080);
  assert.equal(suiteByName('RC4-64-MD5')?.code, 0x080080);
  // aliases: OpenSSL 1.1 renamed EDH- to DHE-
  assert.equal(suiteByName('DHE-RSA-DES-CBC3-SHA')?.code, 0x0016);
  assert.equal(suiteByName('TLS_AEGIS_256_SHA384')?.code, 0x1306);
  assert.equal(suiteByName('TLS_RSA_EXPORT1024_WITH_RC4_56_SHA')?.code, 0x0064);
  assert.equal(suiteByName('no-such-suite'), undefined);
  assert.equal(suiteByName(''), undefined);
});

test('suiteByCode on unknown and odd input', () => {
  assert.equal(suiteByCode(0xc030)?.openssl, 'ECDHE-RSA-AES256-GCM-SHA384');
  assert.equal(suiteByCode(0xabcd), undefined);
  assert.equal(suiteByCode(-1), undefined);
  assert.equal(suiteByCode(Number.NaN), undefined);
});

test('formatSuiteCode', () => {
  assert.equal(formatSuiteCode(0xc030), '0xC030');
  assert.equal(formatSuiteCode(0x0005), '0x0005');
  assert.equal(formatSuiteCode(0), '0x0000');
  assert.equal(formatSuiteCode(0x0700c0), '0x0700C0');
  assert.equal(formatSuiteCode(0xff8010), '0xFF8010');
});

test('suitesForVersion', () => {
  const has = (v: Parameters<typeof suitesForVersion>[0], code: number): boolean =>
    suitesForVersion(v).some((s) => s.code === code);
  for (const v of ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const) {
    assert.ok(suitesForVersion(v).length > 0, v);
    assert.ok(
      suitesForVersion(v).every((s) => s.family !== 'scsv'),
      `${v} lists an SCSV`,
    );
  }
  assert.ok(suitesForVersion('SSLv2').every((s) => s.family === 'sslv2'));
  assert.equal(suitesForVersion('SSLv2').length, CIPHER_SUITES.filter((s) => s.family === 'sslv2').length);
  assert.ok(has('TLSv1.3', 0x1301) && !has('TLSv1.3', 0xc02f) && !has('TLSv1.3', 0x002f));
  assert.ok(has('TLSv1.3', 0xc0b0), 'RFC 8492 ECCPWD also runs over TLS 1.3');
  assert.ok(has('TLSv1.2', 0xc02f) && has('TLSv1.2', 0x002f) && !has('TLSv1.2', 0x1301));
  assert.ok(!has('TLSv1.2', 0x0003) && !has('TLSv1.1', 0x0003), 'RFC 4346 §A.5: no export after TLS 1.0');
  assert.ok(has('TLSv1.0', 0x0003) && has('SSLv3', 0x0003));
  assert.ok(has('TLSv1.0', 0x002f) && !has('TLSv1.0', 0xc02f) && !has('TLSv1.1', 0x003c));
  assert.ok(has('TLSv1.0', 0x00ae) && !has('SSLv3', 0x00ae));
  assert.ok(!has('SSLv3', 0x010080) && !has('TLSv1.0', 0x010080));
  // Cached: the same frozen array each call.
  assert.equal(suitesForVersion('TLSv1.2'), suitesForVersion('TLSv1.2'));
  assert.ok(Object.isFrozen(suitesForVersion('TLSv1.2')));
});

test('registry entries are immutable', () => {
  const s = must(0xc02f);
  assert.throws(() => {
    (s as { bits: number }).bits = 1;
  }, TypeError);
  assert.throws(() => {
    (s.aliases as string[]).push('x');
  }, TypeError);
});

test('derived flags are consistent with each other', () => {
  for (const s of CIPHER_SUITES) {
    if (s.iana !== null) assert.equal(s.name, s.iana, 'display name of an IANA suite is its IANA name');
    if (s.aead) assert.equal(s.mac, 'AEAD', s.name);
    if (s.cbc) assert.equal(s.mode, 'CBC', s.name);
    if (s.nullCipher) assert.equal(s.bits, 0, s.name);
    if (s.export) assert.ok(s.bits <= 56 && s.maxVersion !== 'TLSv1.2', s.name);
    if (s.anon) assert.equal(s.pfs, false, s.name);
    if (s.family === 'tls13') assert.deepEqual([s.minVersion, s.maxVersion], ['TLSv1.3', 'TLSv1.3'], s.name);
    if (s.mac === 'SHA256' || s.mac === 'SHA384') {
      assert.ok(['TLSv1.0', 'TLSv1.2', 'TLSv1.3'].includes(s.minVersion), s.name);
    }
  }
});

test('committed suites-data.ts equals the generator output, and the generator is deterministic', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-suites-'));
  try {
    const a = join(dir, 'a.ts');
    const b = join(dir, 'b.ts');
    const script = join(ROOT, 'scripts/gen-cipher-suites.ts');
    execFileSync(process.execPath, [script, '--out', a], { stdio: 'pipe' });
    execFileSync(process.execPath, [script, '--in', DEFAULT_IN, '--out', b], { stdio: 'pipe' });
    const first = readFileSync(a, 'utf8');
    assert.equal(first, readFileSync(b, 'utf8'), 'two runs differ');
    assert.ok(first.startsWith('// GENERATED'), 'missing do-not-edit header');
    assert.equal(
      readFileSync(DEFAULT_OUT, 'utf8'),
      first,
      'src/tls/wire/suites-data.ts is stale: run node scripts/gen-cipher-suites.ts',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the generator exits non-zero on a bad source file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-suites-'));
  try {
    const src = join(dir, 'bad.txt');
    writeFileSync(src, '0x0001 TLS_RSA_WITH_ROT13_MD5 - RFC5246\n');
    assert.throws(
      () =>
        execFileSync(
          process.execPath,
          [join(ROOT, 'scripts/gen-cipher-suites.ts'), '--in', src, '--out', join(dir, 'o.ts')],
          {
            stdio: 'pipe',
          },
        ),
      (err: { status?: number; stderr?: Buffer }) => err.status === 1 && /ROT13/.test(String(err.stderr)),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
