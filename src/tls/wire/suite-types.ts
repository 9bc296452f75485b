/**
 * The shape of one cipher-suite registry entry. Separate from suites.ts so that the generated
 * suites-data.ts can be typed without importing the module that imports it (no cycle).
 */

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
