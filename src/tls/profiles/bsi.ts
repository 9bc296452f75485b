/**
 * BSI TR-02102-2 "Kryptographische Verfahren: Empfehlungen und Schlüssellängen, Teil 2 – Verwendung
 * von Transport Layer Security (TLS)", edition 2025-01.
 *
 * PROVISIONAL: not checked against the PDF itself. Rebuilt from tools that encode the guideline
 * (TLS-Scanner's bsi.xml, Fedora crypto-policies BSI.pol, extracts of the 2023-01 tables) as
 * ../shared/STANDARDS.md records; section and table numbers are those of the 2023–2025 editions and
 * are unverified for 2025-01 (the 2026-01 edition renumbers its tables). See docs/specifications.md.
 * BSI's guideline has no good/sufficient distinction: everything it recommends is rated 'good'.
 */
import { groupTable, hashRatings, rated, RFC_RULES, suiteTable } from './build.ts';
import type { Profile } from './types.ts';

const CITE = 'BSI TR-02102-2 (2025-01)';

/** BSI TR-02102-2 Table 1: TLS 1.2 suites with perfect forward secrecy. */
export const BSI_TLS12_TABLE1: ReadonlySet<number> = new Set([
  // ECDHE_ECDSA
  0xc023, 0xc024, 0xc02b, 0xc02c, 0xc0ac, 0xc0ad,
  // ECDHE_RSA
  0xc027, 0xc028, 0xc02f, 0xc030,
  // DHE_DSS
  0x0040, 0x006a, 0x00a2, 0x00a3,
  // DHE_RSA
  0x0067, 0x006b, 0x009e, 0x009f, 0xc09e, 0xc09f,
]);

/** BSI TR-02102-2 TLS 1.3 suites: AES-GCM and AES-CCM; no ChaCha20, no CCM_8. */
export const BSI_TLS13: ReadonlySet<number> = new Set([0x1301, 0x1302, 0x1304]);

/** Is `code` allowed by BSI TR-02102-2 at `version`? Only TLS 1.2 and 1.3 can be compliant. */
export function bsiAllowsSuite(version: string, code: number): boolean {
  if (version === 'TLSv1.3') return BSI_TLS13.has(code);
  if (version === 'TLSv1.2') return BSI_TLS12_TABLE1.has(code);
  return false;
}

// Table 1 by name; a test checks it equals BSI_TLS12_TABLE1 so the two can never drift apart.
const TABLE1 = rated(
  'good',
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
);

// Table 2: static (EC)DH without forward secrecy. BSI allows these only where PFS is impossible,
// with "use until" years; postern rates them phase-out (passes with a low finding). Unverified.
const TABLE2 = rated(
  'phase-out',
  'TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256',
  'TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384',
  'TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256',
  'TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384',
  'TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_DH_DSS_WITH_AES_128_CBC_SHA256',
  'TLS_DH_DSS_WITH_AES_256_CBC_SHA256',
  'TLS_DH_DSS_WITH_AES_128_GCM_SHA256',
  'TLS_DH_DSS_WITH_AES_256_GCM_SHA384',
  'TLS_DH_RSA_WITH_AES_128_CBC_SHA256',
  'TLS_DH_RSA_WITH_AES_256_CBC_SHA256',
  'TLS_DH_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_DH_RSA_WITH_AES_256_GCM_SHA384',
);
// Table 3 (PSK suites) is left out on purpose: mail servers do not use PSK, so an accepted PSK
// suite is graded insufficient.

/** The BSI TR-02102-2 profile (postern's default). */
export const BSI_PROFILE: Profile = Object.freeze({
  id: 'bsi',
  title: 'BSI TR-02102-2',
  source: 'BSI TR-02102-2, edition 2025-01 (provisional; see docs/specifications.md)',
  // §3.2: TLS 1.2 and TLS 1.3 only.
  versions: Object.freeze({ 'TLSv1.2': 'good', 'TLSv1.3': 'good' }),
  suites: Object.freeze({
    tls12: suiteTable([...TABLE1, ...TABLE2]),
    // TLS 1.3 suites: AES-GCM and AES-128-CCM; ChaCha20-Poly1305 and CCM_8 are not listed.
    tls13: suiteTable(rated('good', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_AES_128_CCM_SHA256')),
  }),
  groups: groupTable([
    // NIST and Brainpool curves (RFC 8422, RFC 7027; TLS 1.3 Brainpool code points of RFC 8734) and
    // the RFC 7919 groups of at least 3072 bits. X25519 and X448 are not in the BSI list.
    ...rated('good', 'secp256r1', 'secp384r1', 'secp521r1'),
    ...rated('good', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1'),
    ...rated('good', 'brainpoolP256r1tls13', 'brainpoolP384r1tls13', 'brainpoolP512r1tls13'),
    ...rated('good', 'ffdhe3072', 'ffdhe4096'),
    // Hybrid ML-KEM groups: TR-02102-2's position is unverified (STANDARDS.md). TR-02102-1 recommends
    // ML-KEM-768/-1024 only in combination with a classical scheme it recommends. postern's reading:
    // a hybrid whose classical half is a BSI curve is at least as strong as that curve alone
    // (RFC 9954, hybrid design), so SecP256r1MLKEM768 and SecP384r1MLKEM1024 are 'sufficient'.
    // X25519MLKEM768's classical half is X25519, which BSI does not list: it stays insufficient
    // until a BSI text says otherwise. Pure ML-KEM groups are insufficient (BSI wants hybrids).
    ...rated('sufficient', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'),
  ]),
  // §3.6 / TR-02102-1: RSA, DH and DSA ≥ 3000 bit, ECC ≥ 250 bit (2000-bit RSA ended in 2023).
  minRsaBits: 3000,
  minEcBits: 250,
  minDhBits: 3000,
  minDsaBits: 3000,
  // ECDSA with the curves BSI lists; EdDSA and ML-DSA certificates are not in TR-02102-2 (unverified).
  certKeyTypes: Object.freeze(['RSA', 'EC', 'DSA'] as const),
  certCurves: Object.freeze(['P-256', 'P-384', 'P-521', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1']),
  // Signatures with SHA-256/384/512 only; SHA-1, SHA-224 and MD5 are not recommended.
  certSignatureHashes: Object.freeze(hashRatings({ intrinsic: 'insufficient' })),
  features: Object.freeze({
    secureRenegotiation: 'required', // §3.5: renegotiation only per RFC 5746
    noCompression: 'required', // §3.7 (CRIME)
    noClientRenegotiation: 'required', // §3.5: refuse client-initiated renegotiation
    noHeartbeat: 'required', // §3.6.x: heartbeat extension not to be used
    encryptThenMac: 'recommended', // §3.6.x: recommended with CBC suites
    extendedMasterSecret: 'recommended', // §3.6.x: recommended
    fallbackScsv: 'recommended', // not a BSI requirement (unverified); postern recommends RFC 7507 everywhere
  }),
  rules: Object.freeze({
    ...RFC_RULES,
    'protocol-tls1.0': `${CITE} §3.2 (only TLS 1.2 and 1.3 recommended); RFC 8996 §2`,
    'protocol-tls1.1': `${CITE} §3.2 (only TLS 1.2 and 1.3 recommended); RFC 8996 §3`,
    'cipher-not-allowed': `${CITE} §3.3.1 Table 1 (TLS 1.2 with PFS) and the TLS 1.3 suite list`,
    'cipher-phase-out': `${CITE} §3.3.1 Table 2 (TLS 1.2 without PFS; conditionally allowed)`,
    'group-not-allowed': `${CITE} §3.4 (recommended elliptic curves and RFC 7919 groups; no X25519/X448)`,
    'group-phase-out': `${CITE} §3.4`,
    'dh-too-small': `${CITE} §3.6 / TR-02102-1 (DH ≥ 3000 bit)`,
    'cert-weak-key': `${CITE} §3.6 / TR-02102-1 (RSA/DSA ≥ 3000 bit, ECC ≥ 250 bit)`,
    'cert-key-type-not-allowed': `${CITE} §3.4 (RSA, DSA or ECDSA on a recommended curve)`,
    'cert-weak-signature': `${CITE} §3.4 (signatures with SHA-256/384/512 only)`,
    'renegotiation-insecure': `${CITE} §3.5; RFC 5746`,
    'client-renegotiation': `${CITE} §3.5 (no client-initiated renegotiation)`,
    'compression-enabled': `${CITE} §3.7 (no TLS compression)`,
    'heartbeat-enabled': `${CITE} §3.6 (no heartbeat extension)`,
    'etm-missing': `${CITE} §3.6 (Encrypt-then-MAC recommended); RFC 7366`,
    'ems-missing': `${CITE} §3.6 (Extended Master Secret recommended); RFC 7627`,
  }),
});
