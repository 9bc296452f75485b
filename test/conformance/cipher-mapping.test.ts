/**
 * Cross-checks the cipher-suite registry against two independent offline sources:
 *  - testssl.sh's cipher-mapping.txt (Debian package testssl.sh, 370 suites incl. SSLv2 kinds);
 *  - the system OpenSSL's `openssl ciphers -V` (every suite OpenSSL 3 can build),
 * and checks that every name Node's own OpenSSL knows resolves. Each deliberate disagreement is
 * listed below with its reason; a listed disagreement that stops disagreeing fails the test, so
 * the lists cannot go stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { getCiphers } from 'node:tls';
import { formatSuiteCode, suiteByCode, suiteByName, type CipherSuite } from '../../src/tls/wire/suites.ts';

const MAPPING = '/etc/testssl/cipher-mapping.txt';
const INSTALL_HINT = `run 'bash scripts/install-peers.sh' as root (it installs Debian's testssl.sh and openssl)`;

/** Code points in testssl's file that the registry leaves out on purpose. */
const NOT_IN_REGISTRY: ReadonlyMap<number, string> = new Map([
  [
    0x000000,
    'SSL_CK_NULL_WITH_MD5: defined by no SSL 2.0 document, sent by no server, and numerically equal to TLS 0x0000',
  ],
]);

/** testssl's OpenSSL-name column differs from ours; ours is OpenSSL 3 / gost-engine's current name. */
const OPENSSL_NAME_DIFFS: ReadonlyMap<number, { testssl: string; why: string }> = new Map([
  [
    0xff85,
    {
      testssl: 'GOST2012256-GOST89-GOST89',
      why: 'gost-engine for OpenSSL 3 names it LEGACY-GOST2012-GOST8912-GOST8912',
    },
  ],
  [0xff87, { testssl: 'GOST2012256-NULL-STREEBOG256', why: 'gost-engine names it GOST2012-NULL-GOST12' }],
]);

/** testssl's IANA-name column has a name that does not resolve to this code in our registry. */
const NAME_DIFFS: ReadonlyMap<number, { testssl: string; why: string }> = new Map([
  [
    0xffe0,
    {
      testssl: 'SSL_RSA_FIPS_WITH_3DES_EDE_CBC_SHA',
      why: 'that name is 0xFEFF; NSS sslproto.h calls the older 0xFFE0 SSL_RSA_OLDFIPS_WITH_3DES_EDE_CBC_SHA',
    },
  ],
  [
    0xffe1,
    {
      testssl: 'SSL_RSA_FIPS_WITH_DES_CBC_SHA',
      why: 'that name is 0xFEFE; NSS sslproto.h calls the older 0xFFE1 SSL_RSA_OLDFIPS_WITH_DES_CBC_SHA',
    },
  ],
]);

/** Attribute disagreements with OpenSSL's/testssl's Kx/Au/Enc/Mac columns, per code and field. */
const ATTRIBUTE_DIFFS: ReadonlyMap<string, string> = new Map([
  ['0xFF8010 kx', 'OpenSSL prints Kx=None for SSL2_CK_NULL; SSL 2.0 always transports the key with RSA'],
  ['0xFF8010 auth', 'OpenSSL prints Au=None for SSL2_CK_NULL; SSL 2.0 always authenticates the server with RSA'],
]);

/** testssl's protocol column (the lowest version OpenSSL allows) vs our minVersion, where they differ in kind. */
const VERSION_DIFFS: ReadonlyMap<number, string> = new Map();

interface Row {
  code: number;
  openssl: string | null;
  iana: string | null;
  protocol: string;
  fields: Map<string, string>;
  export: boolean;
}

function parseCode(text: string): number {
  const bytes = text.split(',').map((b) => Number.parseInt(b, 16));
  assert.ok(bytes.length >= 2 && bytes.every((b) => b >= 0 && b <= 0xff), `bad code ${text}`);
  return bytes.reduce((acc, b) => acc * 256 + b, 0);
}

/** Lines as `openssl ciphers -V` prints them: CODE - OPENSSL [IANA] PROTO Kx= Au= Enc= Mac= [export]. */
function parseRow(line: string, withIana: boolean): Row {
  const cols = line.trim().split(/\s+/);
  const [code, dash, openssl, ...rest] = cols;
  assert.equal(dash, '-', `unexpected line: ${line}`);
  const iana = withIana ? rest.shift() : '-';
  const protocol = rest.shift() ?? '';
  const fields = new Map<string, string>();
  for (const c of rest) {
    const eq = c.indexOf('=');
    if (eq > 0) fields.set(c.slice(0, eq), c.slice(eq + 1));
  }
  return {
    code: parseCode(code ?? ''),
    openssl: openssl === '-' || openssl === undefined ? null : openssl,
    iana: iana === '-' || iana === undefined ? null : iana,
    protocol,
    fields,
    export: rest.includes('export'),
  };
}

function loadTestssl(): Row[] {
  if (!existsSync(MAPPING)) {
    assert.fail(`${MAPPING} is missing: this conformance test needs Debian's testssl.sh; ${INSTALL_HINT}`);
  }
  const rows = readFileSync(MAPPING, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => parseRow(l, true));
  assert.ok(rows.length >= 300, `${MAPPING} has only ${rows.length} rows`);
  return rows;
}

function loadOpenssl(): Row[] {
  let out: string;
  try {
    out = execFileSync('openssl', ['ciphers', '-V', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'], { encoding: 'utf8' });
  } catch (err) {
    assert.fail(`cannot run the system openssl (${(err as Error).message}); ${INSTALL_HINT}`);
  }
  const rows = out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => parseRow(l, false));
  assert.ok(rows.length >= 60, `openssl ciphers listed only ${rows.length} suites`);
  return rows;
}

// OpenSSL's column vocabulary mapped onto ours.
const KX: Record<string, CipherSuite['kx']> = {
  RSA: 'RSA',
  DH: 'DHE', // OpenSSL's "DH" is ephemeral DH (also for ADH)
  'DH/DSS': 'DH',
  'DH/RSA': 'DH',
  ECDH: 'ECDHE', // likewise ephemeral, also for AECDH
  'ECDH/ECDSA': 'ECDH',
  'ECDH/RSA': 'ECDH',
  PSK: 'PSK',
  DHEPSK: 'DHE_PSK',
  ECDHEPSK: 'ECDHE_PSK',
  RSAPSK: 'RSA_PSK',
  SRP: 'SRP',
  KRB5: 'KRB5',
  GOST: 'GOST',
  CECPQ1: 'CECPQ1',
  None: 'NULL',
  any: 'TLS13',
};
const AU: Record<string, CipherSuite['auth'] | null> = {
  RSA: 'RSA',
  DSS: 'DSS',
  ECDSA: 'ECDSA',
  None: 'anon',
  PSK: 'PSK',
  SRP: 'SRP',
  KRB5: 'KRB5',
  GOST01: 'GOST',
  GOST94: 'GOST',
  any: 'TLS13',
  // Static (EC)DH: OpenSSL names the key type, we name the certificate's signer (see Authentication).
  DH: null,
  ECDH: null,
};
const ENC: Record<string, [string, string | null]> = {
  None: ['NULL', 'NULL'],
  AES: ['AES', 'CBC'],
  AESGCM: ['AES', 'GCM'],
  AESCCM: ['AES', 'CCM'],
  AESCCM8: ['AES', 'CCM_8'],
  ARIA: ['ARIA', 'CBC'],
  ARIAGCM: ['ARIA', 'GCM'],
  Camellia: ['CAMELLIA', 'CBC'],
  CamelliaGCM: ['CAMELLIA', 'GCM'],
  ChaCha20: ['CHACHA20', 'POLY1305'],
  'CHACHA20/POLY1305': ['CHACHA20', 'POLY1305'],
  '3DES': ['3DES', 'CBC'],
  DES: ['DES', null], // CBC, or CFB for the SSLv2 DES-CFB-M1 kind
  RC4: ['RC4', 'STREAM'],
  RC2: ['RC2', 'CBC'],
  IDEA: ['IDEA', 'CBC'],
  SEED: ['SEED', 'CBC'],
  GOST: ['GOST', 'CTR'],
};
const MAC: Record<string, string> = {
  AEAD: 'AEAD',
  SHA1: 'SHA',
  MD5: 'MD5',
  M1: 'MD5',
  SHA256: 'SHA256',
  SHA384: 'SHA384',
  GOST89IMIT: 'GOST28147',
  GOST94: 'GOSTR3411',
  GOSTR3411: 'GOSTR3411',
  STREEBOG256: 'STREEBOG256',
  Null: 'NULL',
};

/** Compare our derived attributes with OpenSSL's columns; returns "code field: detail" problems. */
function attributeProblems(s: CipherSuite, row: Row): string[] {
  const problems: string[] = [];
  const report = (field: string, theirs: string, ours: string): void => {
    const key = `${formatSuiteCode(s.code)} ${field}`;
    if (!ATTRIBUTE_DIFFS.has(key)) problems.push(`${key}: OpenSSL says ${theirs}, registry says ${ours}`);
  };
  const kxText = (row.fields.get('Kx') ?? '').replace(/\(\d+\)$/, '');
  const kx = KX[kxText];
  if (kx === undefined) problems.push(`${formatSuiteCode(s.code)}: unknown Kx=${kxText}`);
  else if (kx !== s.kx) report('kx', kxText, s.kx);

  const auText = row.fields.get('Au') ?? '';
  const au = AU[auText];
  if (au === undefined) problems.push(`${formatSuiteCode(s.code)}: unknown Au=${auText}`);
  else if (au !== null && au !== s.auth) report('auth', auText, s.auth);

  const enc = /^([^(]+)(?:\((\d+)\))?$/.exec(row.fields.get('Enc') ?? '');
  const encInfo = enc === null ? undefined : ENC[enc[1] ?? ''];
  if (enc === null || encInfo === undefined) {
    problems.push(`${formatSuiteCode(s.code)}: unknown Enc=${row.fields.get('Enc')}`);
  } else {
    if (encInfo[0] !== s.cipherFamily) report('cipherFamily', enc[1] ?? '', s.cipherFamily);
    if (encInfo[1] !== null && encInfo[1] !== s.mode) report('mode', enc[1] ?? '', s.mode);
    if (enc[2] !== undefined) {
      let bits = Number(enc[2]);
      if (s.cipherFamily === '3DES' && bits === 168) bits = 112; // we give 3DES its effective 112 bits
      if (s.cipherFamily === 'DES' && bits === 64) bits = 56; // 64-bit key with 8 parity bits
      if (bits !== s.bits) report('bits', enc[2], String(s.bits));
    }
  }

  const macText = row.fields.get('Mac') ?? '';
  const mac = MAC[macText];
  if (mac === undefined) problems.push(`${formatSuiteCode(s.code)}: unknown Mac=${macText}`);
  else if (mac !== s.mac) report('mac', macText, s.mac);

  if (row.export !== s.export) report('export', String(row.export), String(s.export));
  return problems;
}

test('every suite in testssl.sh cipher-mapping.txt is in the registry with matching names', () => {
  const rows = loadTestssl();
  const problems: string[] = [];
  const seenDiffs = new Set<string>();
  for (const row of rows) {
    const hex = formatSuiteCode(row.code);
    if (NOT_IN_REGISTRY.has(row.code)) {
      seenDiffs.add(`skip ${hex}`);
      continue;
    }
    const s = suiteByCode(row.code);
    if (s === undefined) {
      problems.push(`${hex} (${row.openssl ?? row.iana}) is missing from the registry`);
      continue;
    }
    if (row.openssl !== null && row.openssl !== s.openssl) {
      const diff = OPENSSL_NAME_DIFFS.get(row.code);
      if (diff?.testssl === row.openssl) seenDiffs.add(`openssl ${hex}`);
      else problems.push(`${hex}: testssl OpenSSL name ${row.openssl}, registry ${s.openssl ?? '-'}`);
      // Either way testssl's spelling must still find the suite.
      if (suiteByName(row.openssl)?.code !== row.code) problems.push(`${hex}: suiteByName('${row.openssl}') fails`);
    }
    if (row.iana !== null) {
      const same = s.iana !== null ? s.iana === row.iana : suiteByName(row.iana)?.code === row.code;
      if (!same) {
        const diff = NAME_DIFFS.get(row.code);
        if (diff?.testssl === row.iana) seenDiffs.add(`name ${hex}`);
        else problems.push(`${hex}: testssl name ${row.iana}, registry ${s.iana ?? s.name}`);
      }
    }
    // testssl's protocol column is the lowest version OpenSSL lets the suite run at.
    const theirs12 = row.protocol === 'TLSv1.2';
    const ours12 = s.minVersion === 'TLSv1.2';
    const kindMismatch =
      (row.protocol === 'TLSv1.3') !== (s.family === 'tls13') ||
      (row.protocol === 'SSLv2') !== (s.family === 'sslv2') ||
      theirs12 !== ours12;
    if (kindMismatch) {
      if (VERSION_DIFFS.has(row.code)) seenDiffs.add(`version ${hex}`);
      else problems.push(`${hex}: testssl says ${row.protocol}, registry minVersion ${s.minVersion}`);
    }
    problems.push(...attributeProblems(s, row));
  }
  assert.deepEqual(problems, []);

  // Every listed disagreement must still be one.
  const listed = [
    ...[...NOT_IN_REGISTRY.keys()].map((c) => `skip ${formatSuiteCode(c)}`),
    ...[...OPENSSL_NAME_DIFFS.keys()].map((c) => `openssl ${formatSuiteCode(c)}`),
    ...[...NAME_DIFFS.keys()].map((c) => `name ${formatSuiteCode(c)}`),
    ...[...VERSION_DIFFS.keys()].map((c) => `version ${formatSuiteCode(c)}`),
  ];
  for (const l of listed) assert.ok(seenDiffs.has(l), `listed disagreement '${l}' no longer occurs: remove it`);
});

test('listed attribute disagreements still occur', () => {
  const rows = new Map(loadTestssl().map((r) => [r.code, r]));
  for (const key of ATTRIBUTE_DIFFS.keys()) {
    const code = Number.parseInt(key.split(' ')[0] ?? '', 16);
    const row = rows.get(code);
    const s = suiteByCode(code);
    assert.ok(row && s, key);
    // Re-run the comparison with the exception list bypassed by checking the raw columns.
    const field = key.split(' ')[1];
    if (field === 'kx') assert.notEqual(KX[row.fields.get('Kx') ?? ''], s.kx, key);
    if (field === 'auth') assert.notEqual(AU[row.fields.get('Au') ?? ''], s.auth, key);
  }
});

test('every suite the system OpenSSL knows is in the registry with the same OpenSSL name and attributes', () => {
  const rows = loadOpenssl();
  const problems: string[] = [];
  for (const row of rows) {
    const s = suiteByCode(row.code);
    const hex = formatSuiteCode(row.code);
    if (s === undefined) {
      problems.push(`${hex} ${row.openssl} is missing`);
      continue;
    }
    if (s.openssl !== row.openssl) problems.push(`${hex}: OpenSSL ${row.openssl}, registry ${s.openssl ?? '-'}`);
    if (row.openssl !== null && suiteByName(row.openssl) !== s) problems.push(`${hex}: suiteByName('${row.openssl}')`);
    problems.push(...attributeProblems(s, row));
  }
  assert.deepEqual(problems, []);
});

test("every cipher name Node's OpenSSL offers resolves (case-insensitively)", () => {
  const names = getCiphers();
  assert.ok(names.length > 20);
  const unknown = names.filter((n) => suiteByName(n) === undefined);
  assert.deepEqual(unknown, []);
  assert.equal(suiteByName('ecdhe-rsa-aes128-gcm-sha256')?.code, 0xc02f);
});
