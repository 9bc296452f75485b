/**
 * TLS/SSL code points: protocol versions, record content types, handshake types, alerts, extensions,
 * named groups and signature schemes. Values follow the IANA "TLS Parameters" registries
 * (RFC 8446, RFC 5246, RFC 8422, RFC 7919, RFC 8734, draft-ietf-tls-ecdhe-mlkem, draft-ietf-tls-mlkem).
 */

export type VersionName = 'SSLv2' | 'SSLv3' | 'TLSv1.0' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

/** Version code points as they appear on the wire (SSLv2 per draft-hickman: 0x0002). */
export const VERSION_CODES: Readonly<Record<VersionName, number>> = {
  SSLv2: 0x0002,
  SSLv3: 0x0300,
  'TLSv1.0': 0x0301,
  'TLSv1.1': 0x0302,
  'TLSv1.2': 0x0303,
  'TLSv1.3': 0x0304,
};

/** All versions, oldest first. */
export const VERSIONS: readonly VersionName[] = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** The name of a version code point, or undefined for unknown/draft codes. */
export function versionName(code: number): VersionName | undefined {
  for (const v of VERSIONS) if (VERSION_CODES[v] === code) return v;
  return undefined;
}

/** Orders version names (negative when a < b). */
export function compareVersions(a: VersionName, b: VersionName): number {
  return VERSIONS.indexOf(a) - VERSIONS.indexOf(b);
}

/** Record-layer content types (RFC 8446 §5.1, RFC 6520). */
export const CONTENT_TYPE = {
  changeCipherSpec: 20,
  alert: 21,
  handshake: 22,
  applicationData: 23,
  heartbeat: 24,
} as const;

/** Handshake message types (RFC 8446 §4, RFC 5246 §7.4, RFC 6066 §8). */
export const HANDSHAKE_TYPE = {
  helloRequest: 0,
  clientHello: 1,
  serverHello: 2,
  helloVerifyRequest: 3,
  newSessionTicket: 4,
  endOfEarlyData: 5,
  encryptedExtensions: 8,
  certificate: 11,
  serverKeyExchange: 12,
  certificateRequest: 13,
  serverHelloDone: 14,
  certificateVerify: 15,
  clientKeyExchange: 16,
  finished: 20,
  certificateUrl: 21,
  certificateStatus: 22,
  keyUpdate: 24,
  messageHash: 254,
} as const;

/** Alert levels (RFC 5246 §7.2). */
export const ALERT_LEVEL = { warning: 1, fatal: 2 } as const;

/** Alert descriptions: RFC 8446 §6 plus the TLS 1.2-and-older ones of RFC 5246 §7.2 and RFC 7507. */
export const ALERT_NAMES: Readonly<Record<number, string>> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  21: 'decryption_failed',
  22: 'record_overflow',
  30: 'decompression_failure',
  40: 'handshake_failure',
  41: 'no_certificate',
  42: 'bad_certificate',
  43: 'unsupported_certificate',
  44: 'certificate_revoked',
  45: 'certificate_expired',
  46: 'certificate_unknown',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  49: 'access_denied',
  50: 'decode_error',
  51: 'decrypt_error',
  60: 'export_restriction',
  70: 'protocol_version',
  71: 'insufficient_security',
  80: 'internal_error',
  86: 'inappropriate_fallback',
  90: 'user_canceled',
  100: 'no_renegotiation',
  109: 'missing_extension',
  110: 'unsupported_extension',
  111: 'certificate_unobtainable',
  112: 'unrecognized_name',
  113: 'bad_certificate_status_response',
  114: 'bad_certificate_hash_value',
  115: 'unknown_psk_identity',
  116: 'certificate_required',
  120: 'no_application_protocol',
  121: 'ech_required',
};

/** Alert description codes by name, for building alerts. */
export const ALERT = {
  closeNotify: 0,
  unexpectedMessage: 10,
  handshakeFailure: 40,
  illegalParameter: 47,
  decodeError: 50,
  protocolVersion: 70,
  insufficientSecurity: 71,
  internalError: 80,
  inappropriateFallback: 86,
  unrecognizedName: 112,
} as const;

/** The RFC name of an alert description, or `unknown_alert_<n>`. */
export function alertName(code: number): string {
  return ALERT_NAMES[code] ?? `unknown_alert_${code}`;
}

/** Extension types (IANA "ExtensionType Values"). */
export const EXT = {
  serverName: 0,
  maxFragmentLength: 1,
  trustedCaKeys: 3,
  truncatedHmac: 4,
  statusRequest: 5,
  supportedGroups: 10,
  ecPointFormats: 11,
  srp: 12,
  signatureAlgorithms: 13,
  useSrtp: 14,
  heartbeat: 15,
  alpn: 16,
  statusRequestV2: 17,
  signedCertificateTimestamp: 18,
  clientCertificateType: 19,
  serverCertificateType: 20,
  padding: 21,
  encryptThenMac: 22,
  extendedMasterSecret: 23,
  compressCertificate: 27,
  recordSizeLimit: 28,
  sessionTicket: 35,
  preSharedKey: 41,
  earlyData: 42,
  supportedVersions: 43,
  cookie: 44,
  pskKeyExchangeModes: 45,
  certificateAuthorities: 47,
  oidFilters: 48,
  postHandshakeAuth: 49,
  signatureAlgorithmsCert: 50,
  keyShare: 51,
  encryptedClientHello: 0xfe0d,
  renegotiationInfo: 0xff01,
} as const;

/** Special cipher-suite values that are signals, not suites. */
export const SCSV = {
  /** RFC 5746 §3.3 */
  emptyRenegotiationInfo: 0x00ff,
  /** RFC 7507 §2 */
  fallback: 0x5600,
} as const;

export type GroupKind = 'ec' | 'ecx' | 'ff' | 'hybrid' | 'pq';

/**
 * A key-exchange group. `bits` is the size of the classical group (curve field or DH modulus);
 * for pure ML-KEM it is the parameter set (512/768/1024); for hybrids, that of the classical part.
 * `securityBits` is the approximate classical security strength (NIST SP 800-57 style).
 */
export interface NamedGroup {
  readonly code: number;
  readonly name: string;
  readonly kind: GroupKind;
  readonly bits: number;
  readonly securityBits: number;
}

function g(code: number, name: string, kind: GroupKind, bits: number, securityBits: number): NamedGroup {
  return { code, name, kind, bits, securityBits };
}

/** IANA "TLS Supported Groups" (RFC 8422, RFC 7919, RFC 8734, RFC 7027, ML-KEM drafts). */
export const NAMED_GROUPS: readonly NamedGroup[] = [
  // RFC 4492 legacy curves (deprecated by RFC 8422).
  g(1, 'sect163k1', 'ec', 163, 80),
  g(2, 'sect163r1', 'ec', 163, 80),
  g(3, 'sect163r2', 'ec', 163, 80),
  g(4, 'sect193r1', 'ec', 193, 96),
  g(5, 'sect193r2', 'ec', 193, 96),
  g(6, 'sect233k1', 'ec', 233, 112),
  g(7, 'sect233r1', 'ec', 233, 112),
  g(8, 'sect239k1', 'ec', 239, 112),
  g(9, 'sect283k1', 'ec', 283, 128),
  g(10, 'sect283r1', 'ec', 283, 128),
  g(11, 'sect409k1', 'ec', 409, 192),
  g(12, 'sect409r1', 'ec', 409, 192),
  g(13, 'sect571k1', 'ec', 571, 256),
  g(14, 'sect571r1', 'ec', 571, 256),
  g(15, 'secp160k1', 'ec', 160, 80),
  g(16, 'secp160r1', 'ec', 160, 80),
  g(17, 'secp160r2', 'ec', 160, 80),
  g(18, 'secp192k1', 'ec', 192, 96),
  g(19, 'secp192r1', 'ec', 192, 96),
  g(20, 'secp224k1', 'ec', 224, 112),
  g(21, 'secp224r1', 'ec', 224, 112),
  g(22, 'secp256k1', 'ec', 256, 128),
  g(23, 'secp256r1', 'ec', 256, 128),
  g(24, 'secp384r1', 'ec', 384, 192),
  g(25, 'secp521r1', 'ec', 521, 256),
  // RFC 7027 (TLS <= 1.2) and RFC 8734 (TLS 1.3) brainpool curves.
  g(26, 'brainpoolP256r1', 'ec', 256, 128),
  g(27, 'brainpoolP384r1', 'ec', 384, 192),
  g(28, 'brainpoolP512r1', 'ec', 512, 256),
  g(29, 'x25519', 'ecx', 255, 128),
  g(30, 'x448', 'ecx', 448, 224),
  g(31, 'brainpoolP256r1tls13', 'ec', 256, 128),
  g(32, 'brainpoolP384r1tls13', 'ec', 384, 192),
  g(33, 'brainpoolP512r1tls13', 'ec', 512, 256),
  // RFC 9189 GOST curves and RFC 8998 SM2.
  g(34, 'GC256A', 'ec', 256, 128),
  g(35, 'GC256B', 'ec', 256, 128),
  g(36, 'GC256C', 'ec', 256, 128),
  g(37, 'GC256D', 'ec', 256, 128),
  g(38, 'GC512A', 'ec', 512, 256),
  g(39, 'GC512B', 'ec', 512, 256),
  g(40, 'GC512C', 'ec', 512, 256),
  g(41, 'curveSM2', 'ec', 256, 128),
  // RFC 7919 finite-field groups.
  g(256, 'ffdhe2048', 'ff', 2048, 112),
  g(257, 'ffdhe3072', 'ff', 3072, 128),
  g(258, 'ffdhe4096', 'ff', 4096, 152),
  g(259, 'ffdhe6144', 'ff', 6144, 176),
  g(260, 'ffdhe8192', 'ff', 8192, 192),
  // draft-ietf-tls-mlkem (pure ML-KEM, FIPS 203).
  g(0x0200, 'MLKEM512', 'pq', 512, 128),
  g(0x0201, 'MLKEM768', 'pq', 768, 192),
  g(0x0202, 'MLKEM1024', 'pq', 1024, 256),
  // draft-ietf-tls-ecdhe-mlkem hybrids; security is that of the stronger part.
  g(0x11eb, 'SecP256r1MLKEM768', 'hybrid', 256, 192),
  g(0x11ec, 'X25519MLKEM768', 'hybrid', 255, 192),
  g(0x11ed, 'SecP384r1MLKEM1024', 'hybrid', 384, 256),
  // Obsolete Kyber drafts still seen in the wild (draft-tls-westerbaan-xyber768d00).
  g(0x6399, 'X25519Kyber768Draft00', 'hybrid', 255, 192),
  g(0x639a, 'SecP256r1Kyber768Draft00', 'hybrid', 256, 192),
  // RFC 4492 explicit curves (prohibited by RFC 8422).
  g(0xff01, 'arbitrary_explicit_prime_curves', 'ec', 0, 0),
  g(0xff02, 'arbitrary_explicit_char2_curves', 'ec', 0, 0),
];

const groupsByCode = new Map(NAMED_GROUPS.map((x) => [x.code, x]));
const groupsByName = new Map(NAMED_GROUPS.map((x) => [x.name.toLowerCase(), x]));

/** Looks up a named group by code point. */
export function groupByCode(code: number): NamedGroup | undefined {
  return groupsByCode.get(code);
}

/** Looks up a named group by IANA name (case-insensitive); also accepts OpenSSL's `prime256v1`. */
export function groupByName(name: string): NamedGroup | undefined {
  const n = name.toLowerCase();
  const alias: Record<string, string> = {
    prime256v1: 'secp256r1',
    p256: 'secp256r1',
    p384: 'secp384r1',
    p521: 'secp521r1',
  };
  return groupsByName.get(alias[n] ?? n);
}

export type SigHash = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'intrinsic' | 'sm3' | 'gost';
export type SigAlgorithm = 'rsa' | 'rsa-pss' | 'dsa' | 'ecdsa' | 'ed25519' | 'ed448' | 'ml-dsa' | 'sm2' | 'gost';

/** A signature scheme (RFC 8446 §4.2.3) or a TLS 1.2 hash/signature pair (RFC 5246 §7.4.1.4.1). */
export interface SignatureScheme {
  readonly code: number;
  readonly name: string;
  readonly hash: SigHash;
  readonly signature: SigAlgorithm;
}

function s(code: number, name: string, hash: SigHash, signature: SigAlgorithm): SignatureScheme {
  return { code, name, hash, signature };
}

/** IANA "TLS SignatureScheme" plus the legacy TLS 1.2 pairs servers still use. */
export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = [
  s(0x0101, 'rsa_md5', 'md5', 'rsa'),
  s(0x0102, 'dsa_md5', 'md5', 'dsa'),
  s(0x0103, 'ecdsa_md5', 'md5', 'ecdsa'),
  s(0x0201, 'rsa_pkcs1_sha1', 'sha1', 'rsa'),
  s(0x0202, 'dsa_sha1', 'sha1', 'dsa'),
  s(0x0203, 'ecdsa_sha1', 'sha1', 'ecdsa'),
  s(0x0301, 'rsa_sha224', 'sha224', 'rsa'),
  s(0x0302, 'dsa_sha224', 'sha224', 'dsa'),
  s(0x0303, 'ecdsa_sha224', 'sha224', 'ecdsa'),
  s(0x0401, 'rsa_pkcs1_sha256', 'sha256', 'rsa'),
  s(0x0402, 'dsa_sha256', 'sha256', 'dsa'),
  s(0x0403, 'ecdsa_secp256r1_sha256', 'sha256', 'ecdsa'),
  s(0x0501, 'rsa_pkcs1_sha384', 'sha384', 'rsa'),
  s(0x0502, 'dsa_sha384', 'sha384', 'dsa'),
  s(0x0503, 'ecdsa_secp384r1_sha384', 'sha384', 'ecdsa'),
  s(0x0601, 'rsa_pkcs1_sha512', 'sha512', 'rsa'),
  s(0x0602, 'dsa_sha512', 'sha512', 'dsa'),
  s(0x0603, 'ecdsa_secp521r1_sha512', 'sha512', 'ecdsa'),
  s(0x0708, 'sm2sig_sm3', 'sm3', 'sm2'),
  s(0x0709, 'gostr34102012_256a', 'gost', 'gost'),
  s(0x070a, 'gostr34102012_256b', 'gost', 'gost'),
  s(0x070b, 'gostr34102012_256c', 'gost', 'gost'),
  s(0x070c, 'gostr34102012_256d', 'gost', 'gost'),
  s(0x070d, 'gostr34102012_512a', 'gost', 'gost'),
  s(0x070e, 'gostr34102012_512b', 'gost', 'gost'),
  s(0x070f, 'gostr34102012_512c', 'gost', 'gost'),
  s(0x0804, 'rsa_pss_rsae_sha256', 'sha256', 'rsa-pss'),
  s(0x0805, 'rsa_pss_rsae_sha384', 'sha384', 'rsa-pss'),
  s(0x0806, 'rsa_pss_rsae_sha512', 'sha512', 'rsa-pss'),
  s(0x0807, 'ed25519', 'intrinsic', 'ed25519'),
  s(0x0808, 'ed448', 'intrinsic', 'ed448'),
  s(0x0809, 'rsa_pss_pss_sha256', 'sha256', 'rsa-pss'),
  s(0x080a, 'rsa_pss_pss_sha384', 'sha384', 'rsa-pss'),
  s(0x080b, 'rsa_pss_pss_sha512', 'sha512', 'rsa-pss'),
  // RFC 8734
  s(0x081a, 'ecdsa_brainpoolP256r1tls13_sha256', 'sha256', 'ecdsa'),
  s(0x081b, 'ecdsa_brainpoolP384r1tls13_sha384', 'sha384', 'ecdsa'),
  s(0x081c, 'ecdsa_brainpoolP512r1tls13_sha512', 'sha512', 'ecdsa'),
  // draft-ietf-tls-mldsa
  s(0x0904, 'mldsa44', 'intrinsic', 'ml-dsa'),
  s(0x0905, 'mldsa65', 'intrinsic', 'ml-dsa'),
  s(0x0906, 'mldsa87', 'intrinsic', 'ml-dsa'),
];

const schemesByCode = new Map(SIGNATURE_SCHEMES.map((x) => [x.code, x]));

/** Looks up a signature scheme by code point. */
export function sigSchemeByCode(code: number): SignatureScheme | undefined {
  return schemesByCode.get(code);
}

/** SSLv2 cipher kinds (draft-hickman-netscape-ssl-00, Appendix A). */
export const SSLV2_CIPHER_KINDS: Readonly<Record<number, string>> = {
  0x010080: 'SSL_CK_RC4_128_WITH_MD5',
  0x020080: 'SSL_CK_RC4_128_EXPORT40_WITH_MD5',
  0x030080: 'SSL_CK_RC2_128_CBC_WITH_MD5',
  0x040080: 'SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5',
  0x050080: 'SSL_CK_IDEA_128_CBC_WITH_MD5',
  0x060040: 'SSL_CK_DES_64_CBC_WITH_MD5',
  0x0700c0: 'SSL_CK_DES_192_EDE3_CBC_WITH_MD5',
};

/** SSLv2 message types and error codes (draft-hickman-netscape-ssl-00). */
export const SSLV2 = {
  msgError: 0,
  msgClientHello: 1,
  msgServerHello: 4,
  errNoCipher: 0x0001,
  errNoCertificate: 0x0002,
  errBadCertificate: 0x0004,
  errUnsupportedCertificateType: 0x0006,
} as const;

/** RFC 8446 §4.1.3: the random of a HelloRetryRequest is SHA-256("HelloRetryRequest"). */
export const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

/** RFC 8446 §4.1.3 downgrade sentinels in the last 8 bytes of ServerHello.random. */
export const DOWNGRADE_TLS12 = Buffer.from('444f574e47524401', 'hex');
export const DOWNGRADE_TLS11 = Buffer.from('444f574e47524400', 'hex');
