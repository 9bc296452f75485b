/**
 * Generates src/tls/wire/suites-data.ts from scripts/data/cipher-suites.txt.
 *
 *   node scripts/gen-cipher-suites.ts [--in FILE] [--out FILE]
 *
 * The source file gives only facts that cannot be computed (code point, names, defining document).
 * Every attribute (key exchange, cipher, MAC, versions, flags) is derived here by parsing the IANA
 * name grammar:
 *   TLS_{KX}[_EXPORT|_EXPORT1024]_WITH_{CIPHER}[_{MAC}]   TLS <= 1.2 (and SSL_… vendor names)
 *   TLS_{AEAD}_{HASH}                                     TLS 1.3 (RFC 8446 §B.4)
 *   SSL_CK_{CIPHER}_WITH_{MAC}                            SSL 2.0 cipher kinds
 *   TLS_…_SCSV                                            signalling values
 * A name the grammar does not cover is an error: the generator exits non-zero and names the line.
 * Output is a pure function of the input (sorted by code point, no timestamps), so re-running it
 * gives a byte-identical file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Authentication, CipherMode, CipherSuite, KeyExchange, SuiteFamily } from '../src/tls/wire/suite-types.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_IN = resolve(ROOT, 'scripts/data/cipher-suites.txt');
export const DEFAULT_OUT = resolve(ROOT, 'src/tls/wire/suites-data.ts');

/** One line of the source file. */
export interface SourceEntry {
  line: number;
  code: number;
  iana: string | null;
  openssl: string | null;
  ref: string;
  /** Name from the defining draft or vendor header (non-IANA suites). */
  as: string | null;
  aka: string[];
}

export type Derived = Omit<CipherSuite, 'code' | 'iana' | 'openssl' | 'name' | 'aliases' | 'rfc'>;

export class SuiteSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SuiteSourceError';
  }
}

// ---- grammar tables ------------------------------------------------------------------------------

interface KxInfo {
  kx: KeyExchange;
  auth: Authentication;
}

/** The part of a TLS <= 1.2 name between the prefix and `_WITH_` (less any _EXPORT suffix). */
const KX: Record<string, KxInfo> = {
  NULL: { kx: 'NULL', auth: 'NULL' },
  RSA: { kx: 'RSA', auth: 'RSA' },
  // Netscape/NSS FIPS variants (0xFEFE/0xFEFF, 0xFFE0/0xFFE1): plain RSA key transport.
  RSA_FIPS: { kx: 'RSA', auth: 'RSA' },
  RSA_OLDFIPS: { kx: 'RSA', auth: 'RSA' },
  DH_DSS: { kx: 'DH', auth: 'DSS' },
  DH_RSA: { kx: 'DH', auth: 'RSA' },
  DHE_DSS: { kx: 'DHE', auth: 'DSS' },
  DHE_RSA: { kx: 'DHE', auth: 'RSA' },
  // Anonymous DH sends its parameters in ServerKeyExchange like DHE (RFC 5246 §7.4.3).
  DH_anon: { kx: 'DHE', auth: 'anon' },
  ECDH_ECDSA: { kx: 'ECDH', auth: 'ECDSA' },
  ECDH_RSA: { kx: 'ECDH', auth: 'RSA' },
  ECDHE_ECDSA: { kx: 'ECDHE', auth: 'ECDSA' },
  ECDHE_RSA: { kx: 'ECDHE', auth: 'RSA' },
  ECDH_anon: { kx: 'ECDHE', auth: 'anon' }, // RFC 8422 §2.3: ephemeral keys in ServerKeyExchange
  KRB5: { kx: 'KRB5', auth: 'KRB5' },
  PSK: { kx: 'PSK', auth: 'PSK' },
  DHE_PSK: { kx: 'DHE_PSK', auth: 'PSK' },
  // Irregular IANA spelling of DHE_PSK in RFC 6655 (0xC0AA, 0xC0AB: TLS_PSK_DHE_WITH_AES_*_CCM_8).
  PSK_DHE: { kx: 'DHE_PSK', auth: 'PSK' },
  RSA_PSK: { kx: 'RSA_PSK', auth: 'RSA' }, // RFC 4279 §4: the server authenticates with RSA
  ECDHE_PSK: { kx: 'ECDHE_PSK', auth: 'PSK' },
  SRP_SHA: { kx: 'SRP', auth: 'SRP' },
  SRP_SHA_RSA: { kx: 'SRP', auth: 'RSA' },
  SRP_SHA_DSS: { kx: 'SRP', auth: 'DSS' },
  ECCPWD: { kx: 'ECCPWD', auth: 'ECCPWD' },
  GOSTR341094: { kx: 'GOST', auth: 'GOST' },
  GOSTR341001: { kx: 'GOST', auth: 'GOST' },
  GOSTR341112_256: { kx: 'GOST', auth: 'GOST' },
  // OpenSSL 0.9.8 cryptocom "GOST-MD5" (0xFF00): RSA key transport despite the GOST prefix.
  GOSTR341094_RSA: { kx: 'RSA', auth: 'RSA' },
  CECPQ1_RSA: { kx: 'CECPQ1', auth: 'RSA' },
  CECPQ1_ECDSA: { kx: 'CECPQ1', auth: 'ECDSA' },
};

interface CipherInfo {
  cipher: string;
  family: string;
  mode: CipherMode;
  bits: number;
  /** Only valid in TLS 1.3 (RFC 9367's MGM suites use the TLS 1.2-style WITH grammar). */
  tls13?: boolean;
}

const CIPHERS: Record<string, CipherInfo> = {};
function cipher(token: string, family: string, mode: CipherMode, bits: number, extra: Partial<CipherInfo> = {}): void {
  CIPHERS[token] = { cipher: token, family, mode, bits, ...extra };
}
cipher('NULL', 'NULL', 'NULL', 0);
cipher('RC4_40', 'RC4', 'STREAM', 40);
cipher('RC4_56', 'RC4', 'STREAM', 56);
cipher('RC4_64', 'RC4', 'STREAM', 64);
cipher('RC4_128', 'RC4', 'STREAM', 128);
cipher('RC4_128_EXPORT40', 'RC4', 'STREAM', 40);
cipher('RC2_CBC_40', 'RC2', 'CBC', 40);
cipher('RC2_56', 'RC2', 'CBC', 56);
cipher('RC2_128_CBC', 'RC2', 'CBC', 128);
cipher('RC2_128_CBC_EXPORT40', 'RC2', 'CBC', 40);
cipher('IDEA_CBC', 'IDEA', 'CBC', 128);
cipher('IDEA_128_CBC', 'IDEA', 'CBC', 128);
cipher('DES40_CBC', 'DES', 'CBC', 40);
cipher('DES_CBC_40', 'DES', 'CBC', 40);
cipher('DES_CBC', 'DES', 'CBC', 56);
cipher('DES_64_CBC', 'DES', 'CBC', 56);
cipher('DES_64_CFB64', 'DES', 'OTHER', 56);
// Three-key 3DES gives 112 bits of security (NIST SP 800-57 Part 1 Table 2), not 168.
cipher('3DES_EDE_CBC', '3DES', 'CBC', 112);
cipher('DES_192_EDE3_CBC', '3DES', 'CBC', 112);
cipher('SEED_CBC', 'SEED', 'CBC', 128);
for (const fam of ['AES', 'CAMELLIA', 'ARIA']) {
  for (const bits of [128, 256]) {
    cipher(`${fam}_${bits}_CBC`, fam, 'CBC', bits);
    cipher(`${fam}_${bits}_GCM`, fam, 'GCM', bits);
  }
}
for (const bits of [128, 256]) {
  cipher(`AES_${bits}_CCM`, 'AES', 'CCM', bits);
  cipher(`AES_${bits}_CCM_8`, 'AES', 'CCM_8', bits);
}
cipher('CHACHA20_POLY1305', 'CHACHA20', 'POLY1305', 256);
cipher('SM4_GCM', 'SM4', 'GCM', 128);
cipher('SM4_CCM', 'SM4', 'CCM', 128);
cipher('AEGIS_128L', 'AEGIS', 'OTHER', 128);
cipher('AEGIS_256', 'AEGIS', 'OTHER', 256);
cipher('28147_CNT', 'GOST', 'CTR', 256); // GOST 28147-89 counter ("gamma") mode, RFC 5830
cipher('KUZNYECHIK_CTR', 'KUZNYECHIK', 'CTR', 256); // RFC 9189: CTR-ACPKM + OMAC
cipher('MAGMA_CTR', 'MAGMA', 'CTR', 256);
for (const v of ['L', 'S']) {
  // RFC 9367: TLS 1.3 suites; _L/_S only select the TLSTREE re-keying frequency.
  cipher(`KUZNYECHIK_MGM_${v}`, 'KUZNYECHIK', 'MGM', 256, { tls13: true });
  cipher(`MAGMA_MGM_${v}`, 'MAGMA', 'MGM', 256, { tls13: true });
}
// RFC 9150 integrity-only TLS 1.3 suites (TLS_SHA256_SHA256): no encryption at all.
cipher('SHA256', 'NULL', 'NULL', 0, { cipher: 'NULL', tls13: true });
cipher('SHA384', 'NULL', 'NULL', 0, { cipher: 'NULL', tls13: true });

const AEAD_MODES: ReadonlySet<CipherMode> = new Set<CipherMode>(['GCM', 'CCM', 'CCM_8', 'POLY1305', 'MGM']);
function isAead(c: CipherInfo): boolean {
  return AEAD_MODES.has(c.mode) || c.family === 'AEGIS';
}

/** MAC / hash tokens at the end of a name, normalised. */
const MACS: Record<string, string> = {
  NULL: 'NULL',
  MD5: 'MD5',
  MD5_1: 'MD5', // OpenSSL's SSLv2 DES-CFB-M1 kind
  SHA: 'SHA',
  SHA256: 'SHA256',
  SHA384: 'SHA384',
  SHA512: 'SHA512',
  SM3: 'SM3',
  GOSTR3411: 'GOSTR3411', // HMAC with GOST R 34.11-94
  GOST94: 'GOSTR3411',
  IMIT: 'GOST28147', // GOST 28147-89 imitovstavka MAC
  OMAC: 'OMAC',
  STREEBOG256: 'STREEBOG256', // HMAC with GOST R 34.11-2012 (256)
};
const MAC_TOKENS = Object.keys(MACS).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));

// ---- overrides ---------------------------------------------------------------------------------

interface Override {
  /** Parse this name instead (the suite has no parsable IANA/draft name of its own). */
  derive?: string;
  patch?: Partial<Derived>;
  why: string;
}

/** Every exception to the grammar, with the reason. Keep this list short. */
const OLD_CHACHA = 'draft-agl-tls-chacha20poly1305 used the very name RFC 7905 later registered; same attributes';

export const OVERRIDES: ReadonlyMap<number, Override> = new Map<number, Override>([
  [0xcc13, { derive: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256', why: OLD_CHACHA }],
  [0xcc14, { derive: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', why: OLD_CHACHA }],
  [0xcc15, { derive: 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256', why: OLD_CHACHA }],
  [0xff02, { derive: 'TLS_RSA_WITH_28147_CNT_IMIT', why: 'OpenSSL 0.9.8 GOST-GOST89MAC has no spec name' }],
  [0xff03, { derive: 'TLS_RSA_WITH_28147_CNT_IMIT', why: 'OpenSSL 0.9.8 GOST-GOST89STREAM has no spec name' }],
  [
    0xff85,
    {
      derive: 'TLS_GOSTR341112_256_WITH_28147_CNT_IMIT',
      patch: { minVersion: 'TLSv1.0' },
      why: 'pre-RFC 9189 code point of 0xC102; gost-engine offers it from TLS 1.0 while RFC 9189 is TLS 1.2 only',
    },
  ],
  [
    0xff87,
    {
      derive: 'TLS_GOSTR341112_256_WITH_NULL_STREEBOG256',
      patch: { minVersion: 'TLSv1.0' },
      why: 'gost-engine GOST2012-NULL-GOST12 has no spec name; offered from TLS 1.0',
    },
  ],
  [0xff8010, { derive: 'SSL_CK_NULL_WITH_NULL', why: 'OpenSSL SSL2_CK_NULL is named without a MAC' }],
]);

// ---- derivation ----------------------------------------------------------------------------------

function splitTail(name: string, tail: string, allowImplicitMac: boolean): { c: CipherInfo; macToken: string | null } {
  for (const m of MAC_TOKENS) {
    if (tail.endsWith('_' + m)) {
      const c = CIPHERS[tail.slice(0, -(m.length + 1))];
      if (c !== undefined) return { c, macToken: m };
    }
  }
  const whole = CIPHERS[tail];
  // RFC 6655/7251 CCM and RFC 9367 MGM names omit the hash: their PRF hash is fixed by the RFC.
  if (whole !== undefined && allowImplicitMac && isAead(whole)) return { c: whole, macToken: null };
  throw new SuiteSourceError(`${name}: cannot parse cipher/MAC part '${tail}'`);
}

const PSK_KX: ReadonlySet<KeyExchange> = new Set<KeyExchange>(['PSK', 'DHE_PSK', 'RSA_PSK', 'ECDHE_PSK']);
const EPHEMERAL_KX: ReadonlySet<KeyExchange> = new Set<KeyExchange>([
  'DHE',
  'ECDHE',
  'DHE_PSK',
  'ECDHE_PSK',
  'CECPQ1',
  // Password-authenticated exchanges built on fresh secrets each handshake (RFC 5054, RFC 8492).
  'SRP',
  'ECCPWD',
  'TLS13',
]);

function finish(
  family: SuiteFamily,
  kx: KxInfo,
  c: CipherInfo,
  macToken: string | null,
  isExport: boolean,
  kxToken: string,
): Derived {
  const aead = isAead(c);
  const mac = aead ? 'AEAD' : macToken === null ? 'NULL' : (MACS[macToken] ?? 'NULL');
  const anon = kx.auth === 'anon' || kx.kx === 'NULL';
  let minVersion: Derived['minVersion'];
  let maxVersion: Derived['maxVersion'];
  if (family === 'sslv2') {
    minVersion = 'SSLv2';
    maxVersion = 'SSLv2';
  } else if (family === 'tls13') {
    minVersion = 'TLSv1.3';
    maxVersion = 'TLSv1.3';
  } else if (family === 'scsv') {
    minVersion = 'SSLv3';
    maxVersion = 'TLSv1.3';
  } else {
    const sha2Mac = mac === 'SHA256' || mac === 'SHA384';
    if (PSK_KX.has(kx.kx) && !aead && sha2Mac) {
      // RFC 5487 §3.2, RFC 5489 §3: the SHA-256/384 HMAC PSK suites may run over TLS 1.0/1.1
      // with that version's PRF.
      minVersion = 'TLSv1.0';
    } else if (aead || sha2Mac || kxToken === 'GOSTR341112_256' || kx.kx === 'ECCPWD' || kx.kx === 'CECPQ1') {
      // RFC 5288 §4, RFC 5289 §4, RFC 9189 §4: built on the TLS 1.2 PRF; MUST NOT be negotiated
      // in older versions.
      minVersion = 'TLSv1.2';
    } else if (kx.kx === 'GOST') {
      minVersion = 'TLSv1.0'; // CryptoPro suites are defined over TLS 1.0
    } else {
      minVersion = 'SSLv3';
    }
    // RFC 4346 §A.5: TLS 1.1 implementations MUST NOT negotiate export suites.
    // RFC 8492 §4: ECCPWD suites are defined for TLS 1.2 and TLS 1.3.
    maxVersion = isExport ? 'TLSv1.0' : kx.kx === 'ECCPWD' ? 'TLSv1.3' : 'TLSv1.2';
  }
  return {
    family,
    kx: kx.kx,
    auth: kx.auth,
    cipher: c.cipher,
    cipherFamily: c.family,
    mode: c.mode,
    bits: c.bits,
    mac,
    aead,
    cbc: c.mode === 'CBC',
    pfs: EPHEMERAL_KX.has(kx.kx) && !anon,
    export: isExport,
    nullCipher: c.cipher === 'NULL',
    anon,
    minVersion,
    maxVersion,
  };
}

const SCSV_DERIVED: Derived = {
  family: 'scsv',
  kx: 'SCSV',
  auth: 'SCSV',
  cipher: 'NULL',
  cipherFamily: 'NULL',
  mode: 'NULL',
  bits: 0,
  mac: 'NULL',
  aead: false,
  cbc: false,
  pfs: false,
  export: false,
  nullCipher: false, // a signal, not a suite that could carry data
  anon: false,
  minVersion: 'SSLv3',
  maxVersion: 'TLSv1.3',
};

/** Derive a suite's attributes from its IANA-grammar name; throws SuiteSourceError if it can't. */
export function deriveFromName(name: string): Derived {
  if (!/^(TLS|SSL)_[A-Za-z0-9_]+$/.test(name)) throw new SuiteSourceError(`${name}: not a TLS/SSL suite name`);

  const v2 = /^SSL_CK_(.+)_WITH_(.+)$/.exec(name);
  if (v2 !== null) {
    const c = CIPHERS[v2[1] ?? ''];
    const mac = v2[2] ?? '';
    if (c === undefined || MACS[mac] === undefined || c.tls13 === true) {
      throw new SuiteSourceError(`${name}: unknown SSLv2 cipher kind`);
    }
    return finish('sslv2', KX['RSA'] as KxInfo, c, mac, c.cipher.includes('EXPORT'), 'RSA');
  }

  if (name.endsWith('_SCSV')) {
    if (name !== 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV' && name !== 'TLS_FALLBACK_SCSV') {
      throw new SuiteSourceError(`${name}: unknown SCSV`);
    }
    return { ...SCSV_DERIVED };
  }

  const body = name.slice(4);
  const at = body.indexOf('_WITH_');
  if (at < 0) {
    // TLS 1.3: TLS_{AEAD}_{HASH}; the hash is mandatory (RFC 8446 §B.4).
    if (!name.startsWith('TLS_')) throw new SuiteSourceError(`${name}: TLS 1.3 names start with TLS_`);
    const { c, macToken } = splitTail(name, body, false);
    if (!isAead(c) && c.cipher !== 'NULL') throw new SuiteSourceError(`${name}: TLS 1.3 suites are AEAD`);
    return finish('tls13', { kx: 'TLS13', auth: 'TLS13' }, c, macToken, false, 'TLS13');
  }

  let kxToken = body.slice(0, at);
  let isExport = false;
  const exp = /^(.+)_(EXPORT|EXPORT1024)$/.exec(kxToken);
  if (exp !== null) {
    kxToken = exp[1] ?? '';
    isExport = true;
  }
  const kx = KX[kxToken];
  if (kx === undefined) throw new SuiteSourceError(`${name}: unknown key exchange '${kxToken}'`);
  const { c, macToken } = splitTail(name, body.slice(at + '_WITH_'.length), true);
  if (c.tls13 === true) {
    // RFC 9367 TLS 1.3 GOST suites keep a key-exchange-looking prefix; TLS 1.3 negotiates that apart.
    if (kxToken !== 'GOSTR341112_256') throw new SuiteSourceError(`${name}: ${c.cipher} is TLS 1.3 only`);
    return finish('tls13', { kx: 'TLS13', auth: 'TLS13' }, c, macToken, false, 'TLS13');
  }
  return finish('tls', kx, c, macToken, isExport, kxToken);
}

// ---- source file -------------------------------------------------------------------------------

const NAME_RE = /^[A-Za-z0-9_-]+$/;

/** Parse scripts/data/cipher-suites.txt; throws SuiteSourceError naming the line on bad input. */
export function parseSource(text: string): SourceEntry[] {
  const out: SourceEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const where = `cipher-suites.txt:${i + 1}`;
    const fields = raw.split(/\s+/);
    const [codeText, iana, openssl, ref, ...rest] = fields;
    if (codeText === undefined || iana === undefined || openssl === undefined || ref === undefined) {
      throw new SuiteSourceError(`${where}: expected: code iana openssl ref [as=…] [aka=…]`);
    }
    if (!/^0x([0-9A-F]{4}|[0-9A-F]{6})$/.test(codeText)) {
      throw new SuiteSourceError(`${where}: code '${codeText}' must be 0xHHHH or 0xHHHHHH (uppercase)`);
    }
    const code = Number.parseInt(codeText.slice(2), 16);
    if (codeText.length === 8 && code <= 0xffff) throw new SuiteSourceError(`${where}: 3-byte code must exceed 0xFFFF`);
    const entry: SourceEntry = {
      line: i + 1,
      code,
      iana: iana === '-' ? null : iana,
      openssl: openssl === '-' ? null : openssl,
      ref,
      as: null,
      aka: [],
    };
    for (const opt of rest) {
      const eq = opt.indexOf('=');
      const key = opt.slice(0, eq);
      const value = opt.slice(eq + 1);
      if (eq < 0 || value === '') throw new SuiteSourceError(`${where}: bad option '${opt}'`);
      if (key === 'as' && entry.as === null) entry.as = value;
      else if (key === 'aka') entry.aka.push(...value.split(','));
      else throw new SuiteSourceError(`${where}: unknown or repeated option '${key}'`);
    }
    for (const n of [entry.iana, entry.openssl, entry.as, ...entry.aka]) {
      if (n !== null && !NAME_RE.test(n)) throw new SuiteSourceError(`${where}: bad name '${n}'`);
    }
    if (!/^(RFC\d+|draft-[a-z0-9-]+|vendor:[A-Za-z0-9]+)$/.test(ref)) {
      throw new SuiteSourceError(`${where}: ref '${ref}' must be RFCnnnn, draft-… or vendor:NAME`);
    }
    if (entry.iana !== null && entry.as !== null) throw new SuiteSourceError(`${where}: as= is for non-IANA suites`);
    out.push(entry);
  }
  return out;
}

function formatRef(ref: string): string | null {
  if (ref.startsWith('vendor:')) return null;
  const m = /^RFC(\d+)$/.exec(ref);
  return m !== null ? `RFC ${m[1]}` : ref;
}

/** Turn parsed source entries into the sorted registry; throws on duplicates or unparsable names. */
export function buildSuites(entries: readonly SourceEntry[]): CipherSuite[] {
  const seen = new Map<number, number>();
  const suites: CipherSuite[] = [];
  for (const e of entries) {
    const where = `cipher-suites.txt:${e.line}`;
    const dup = seen.get(e.code);
    if (dup !== undefined) throw new SuiteSourceError(`${where}: code point repeats line ${dup}`);
    seen.set(e.code, e.line);
    const ov = OVERRIDES.get(e.code);
    const deriveName = ov?.derive ?? e.iana ?? e.as;
    if (deriveName === null) {
      throw new SuiteSourceError(`${where}: no IANA or as= name to derive attributes from (add one or an override)`);
    }
    let d: Derived;
    try {
      d = { ...deriveFromName(deriveName), ...(ov?.patch ?? {}) };
    } catch (err) {
      throw new SuiteSourceError(`${where}: ${(err as Error).message}`);
    }
    if (e.code > 0xffff !== (d.family === 'sslv2')) {
      throw new SuiteSourceError(`${where}: 3-byte codes are exactly the SSLv2 cipher kinds`);
    }
    const name = e.iana ?? e.as ?? e.openssl;
    if (name === null) throw new SuiteSourceError(`${where}: suite has no name at all`);
    suites.push({
      code: e.code,
      iana: e.iana,
      openssl: e.openssl,
      name,
      aliases: [...e.aka],
      ...d,
      rfc: formatRef(e.ref),
    });
  }
  for (const code of OVERRIDES.keys()) {
    if (!seen.has(code)) throw new SuiteSourceError(`override for unknown code 0x${code.toString(16)}`);
  }
  return suites.sort((a, b) => a.code - b.code);
}

// ---- output ------------------------------------------------------------------------------------

function lit(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(lit).join(', ')}]`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw new Error(`cannot write ${typeof v} as a literal`);
}

function hex(code: number): string {
  return (
    '0x' +
    code
      .toString(16)
      .toUpperCase()
      .padStart(code > 0xffff ? 6 : 4, '0')
  );
}

/** Render the generated module. */
export function render(suites: readonly CipherSuite[]): string {
  const keys: (keyof CipherSuite)[] = [
    'code',
    'iana',
    'openssl',
    'name',
    'aliases',
    'family',
    'kx',
    'auth',
    'cipher',
    'cipherFamily',
    'mode',
    'bits',
    'mac',
    'aead',
    'cbc',
    'pfs',
    'export',
    'nullCipher',
    'anon',
    'minVersion',
    'maxVersion',
    'rfc',
  ];
  const rows = suites.map((s) => {
    const parts = keys.map((k) => `${k}: ${k === 'code' ? hex(s.code) : lit(s[k])}`);
    return `  { ${parts.join(', ')} },`;
  });
  return [
    '// GENERATED by scripts/gen-cipher-suites.ts from scripts/data/cipher-suites.txt — do not edit.',
    '// Regenerate: node scripts/gen-cipher-suites.ts',
    "import type { CipherSuite } from './suite-types.ts';",
    '',
    `/** ${suites.length} suites, sorted by code point. */`,
    'export const SUITES_DATA: readonly CipherSuite[] = Object.freeze([',
    ...rows,
    ']);',
    '',
  ].join('\n');
}

/** Read the source, derive, and return the module text. */
export function generate(sourcePath: string = DEFAULT_IN): string {
  return render(buildSuites(parseSource(readFileSync(sourcePath, 'utf8'))));
}

function main(argv: readonly string[]): number {
  let input = DEFAULT_IN;
  let output = DEFAULT_OUT;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if ((a === '--in' || a === '--out') && v !== undefined) {
      if (a === '--in') input = resolve(v);
      else output = resolve(v);
      i++;
    } else {
      process.stderr.write('usage: node scripts/gen-cipher-suites.ts [--in FILE] [--out FILE]\n');
      return 2;
    }
  }
  try {
    const text = generate(input);
    writeFileSync(output, text);
    process.stdout.write(`wrote ${output}\n`);
    return 0;
  } catch (err) {
    if (err instanceof SuiteSourceError) {
      process.stderr.write(`gen-cipher-suites: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
