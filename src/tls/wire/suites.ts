/**
 * TLS cipher-suite registry: every IANA-assigned suite plus the non-IANA ones servers still answer
 * with (pre-RFC 7905 ChaCha20, CryptoPro GOST, 56-bit export, Netscape FIPS, CECPQ1) and the SSL 2.0
 * cipher kinds. The data lives in the generated `suites-data.ts` (from
 * `scripts/data/cipher-suites.txt` via `scripts/gen-cipher-suites.ts`); this module is the typed
 * API over it.
 */
import { SUITES_DATA } from './suites-data.ts';

export type KeyExchange =
  | 'RSA'
  | 'DH'
  | 'DHE'
  | 'ECDH'
  | 'ECDHE'
  | 'PSK'
  | 'DHE_PSK'
  | 'RSA_PSK'
  | 'ECDHE_PSK'
  | 'SRP'
  | 'KRB5'
  | 'GOST'
  | 'ECCPWD'
  | 'CECPQ1'
  | 'NULL'
  | 'TLS13'
  | 'SCSV';

/**
 * Who proves identity. For static DH/ECDH suites (TLS_DH_RSA_…, TLS_ECDH_ECDSA_…) this is the
 * algorithm named in the suite, i.e. the signer of the server's DH certificate.
 */
export type Authentication =
  'RSA' | 'DSS' | 'ECDSA' | 'anon' | 'PSK' | 'KRB5' | 'SRP' | 'GOST' | 'ECCPWD' | 'NULL' | 'TLS13' | 'SCSV';

export type CipherMode = 'GCM' | 'CCM' | 'CCM_8' | 'CBC' | 'POLY1305' | 'STREAM' | 'CTR' | 'MGM' | 'NULL' | 'OTHER';

/** Protocol versions, oldest first. */
export type ProtocolVersion = 'SSLv2' | 'SSLv3' | 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export type SuiteFamily = 'sslv2' | 'tls' | 'tls13' | 'scsv';

export interface CipherSuite {
  /** 2-byte TLS code point; SSLv2 cipher kinds are 3-byte (> 0xFFFF). */
  readonly code: number;
  /** IANA registry name; null when the code point is not IANA-registered. */
  readonly iana: string | null;
  /** OpenSSL's name (OpenSSL 3, or OpenSSL 1.0.x / gost-engine for suites OpenSSL 3 dropped). */
  readonly openssl: string | null;
  /** Display name: the IANA name, else the defining draft's/vendor's name, else the OpenSSL name. */
  readonly name: string;
  /** Other names suiteByName() accepts: draft/vendor names, older OpenSSL and testssl spellings. */
  readonly aliases: readonly string[];
  readonly family: SuiteFamily;
  readonly kx: KeyExchange;
  readonly auth: Authentication;
  /** Bulk cipher as named in the suite: 'AES_256_GCM', '3DES_EDE_CBC', 'RC4_40', 'NULL', … */
  readonly cipher: string;
  /** 'AES' | 'CAMELLIA' | 'ARIA' | 'CHACHA20' | '3DES' | 'DES' | 'RC4' | 'RC2' | 'IDEA' | 'SEED' | 'GOST' | 'KUZNYECHIK' | 'MAGMA' | 'SM4' | 'AEGIS' | 'NULL' */
  readonly cipherFamily: string;
  readonly mode: CipherMode;
  /** Effective symmetric key bits: 40/56 for export, 112 for 3DES (NIST SP 800-57), 0 for NULL. */
  readonly bits: number;
  /** Record MAC: 'MD5' | 'SHA' (SHA-1) | 'SHA256' | 'SHA384' | 'AEAD' | 'GOSTR3411' | 'GOST28147' | 'OMAC' | 'STREEBOG256' | 'NULL'. */
  readonly mac: string;
  readonly aead: boolean;
  readonly cbc: boolean;
  /** Ephemeral, authenticated key agreement (DHE/ECDHE families, SRP, ECCPWD, TLS 1.3); never for anon. */
  readonly pfs: boolean;
  readonly export: boolean;
  readonly nullCipher: boolean;
  /** No peer authentication at all (DH_anon, ECDH_anon, TLS_NULL_WITH_NULL_NULL). */
  readonly anon: boolean;
  readonly minVersion: 'SSLv2' | 'SSLv3' | 'TLSv1.0' | 'TLSv1.2' | 'TLSv1.3';
  readonly maxVersion: 'SSLv2' | 'TLSv1.0' | 'TLSv1.2' | 'TLSv1.3';
  /** Defining RFC or Internet-Draft ('RFC 5289', 'draft-…'); null for vendor-only code points. */
  readonly rfc: string | null;
}

/** Every known suite, sorted by code point. */
export const CIPHER_SUITES: readonly CipherSuite[] = SUITES_DATA;

const VERSION_ORDER: readonly ProtocolVersion[] = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

const byCode = new Map<number, CipherSuite>();
for (const s of CIPHER_SUITES) {
  // Shared by every caller: make accidental mutation throw rather than corrupt the registry.
  Object.freeze(s.aliases);
  Object.freeze(s);
  byCode.set(s.code, s);
}

// Name keys are lower-cased. When two suites share a name (OpenSSL reuses 'RC4-MD5' and friends for
// SSLv2 kinds) the earlier tier wins: IANA names, then the TLS suites' own names, then SSLv2's, then
// aliases; inside a tier the lower code point wins.
const byName = new Map<string, CipherSuite>();
function indexNames(pick: (s: CipherSuite) => readonly (string | null)[]): void {
  for (const s of CIPHER_SUITES) {
    for (const n of pick(s)) {
      if (n === null) continue;
      const key = n.toLowerCase();
      if (!byName.has(key)) byName.set(key, s);
    }
  }
}
indexNames((s) => [s.iana]);
indexNames((s) => (s.family === 'sslv2' ? [] : [s.name, s.openssl]));
indexNames((s) => (s.family === 'sslv2' ? [s.name, s.openssl] : []));
indexNames((s) => s.aliases);

const byVersion = new Map<ProtocolVersion, readonly CipherSuite[]>();
for (const v of VERSION_ORDER) {
  const rank = VERSION_ORDER.indexOf(v);
  byVersion.set(
    v,
    Object.freeze(
      CIPHER_SUITES.filter(
        (s) =>
          s.family !== 'scsv' &&
          VERSION_ORDER.indexOf(s.minVersion) <= rank &&
          rank <= VERSION_ORDER.indexOf(s.maxVersion),
      ),
    ),
  );
}

/** The suite with this code point (2-byte TLS, or 3-byte SSLv2 cipher kind), if known. */
export function suiteByCode(code: number): CipherSuite | undefined {
  return byCode.get(code);
}

/** Look up by IANA name, OpenSSL name or alias, case-insensitively. */
export function suiteByName(name: string): CipherSuite | undefined {
  return byName.get(name.toLowerCase());
}

/** '0xC030' style: uppercase hex, 4 digits for TLS code points, 6 for SSLv2 cipher kinds. */
export function formatSuiteCode(code: number): string {
  const width = code > 0xffff ? 6 : 4;
  return '0x' + code.toString(16).toUpperCase().padStart(width, '0');
}

/** Real suites (no SCSVs) that a server may select when speaking protocol version `v`. */
export function suitesForVersion(v: ProtocolVersion): readonly CipherSuite[] {
  return byVersion.get(v) ?? [];
}
