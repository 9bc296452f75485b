/**
 * NCSC-NL "IT Security Guidelines for Transport Layer Security (TLS)", 2025-05 update, as applied by
 * internet.nl. Ratings use the guideline's own scale: Good / Sufficient / Phase-out / Insufficient,
 * and anything not listed is Insufficient.
 *
 * Checked against internet.nl's encoding of the guideline (internetstandards/Internet.nl,
 * checks/tasks/tls/tls_constants.py: CIPHERS_GOOD/SUFFICIENT/PHASE_OUT, FS_EC_*, FFDHE_PHASE_OUT,
 * CERT_*), not against the NCSC PDF itself; section numbers are those internet.nl cites (3.3.1–3.3.5,
 * appendix B); renegotiation, compression and EMS are cited without a section (unverified).
 * Hybrid ML-KEM groups are not rated there ("PQC not yet supported"); see `groups`.
 */
import { groupTable, hashRatings, rated, RFC_RULES, suiteTable } from './build.ts';
import type { Profile } from './types.ts';

const CITE = 'NCSC-NL TLS guidelines (2025-05)';

// Appendix B / §3.3.3–3.3.4: Good.
const GOOD13 = rated('good', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256');
// Sufficient.
const SUFFICIENT13 = rated('sufficient', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_128_CCM_SHA256');
const SUFFICIENT12 = rated(
  'sufficient',
  'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_CCM',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CCM',
  'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
);
// Phase-out: ECDHE with CBC-SHA256/384, every CAMELLIA/ARIA suite with ECDHE or DHE_RSA, all DHE_RSA.
const PHASE_OUT12 = rated(
  'phase-out',
  'TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384',
  'TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256',
  'TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384',
  'TLS_ECDHE_ECDSA_WITH_ARIA_256_CBC_SHA384',
  'TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256',
  'TLS_ECDHE_ECDSA_WITH_ARIA_128_CBC_SHA256',
  'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  'TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384',
  'TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256',
  'TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384',
  'TLS_ECDHE_RSA_WITH_ARIA_256_CBC_SHA384',
  'TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256',
  'TLS_ECDHE_RSA_WITH_ARIA_128_CBC_SHA256',
  'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
  'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
  'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  'TLS_DHE_RSA_WITH_CAMELLIA_256_GCM_SHA384',
  'TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256',
  'TLS_DHE_RSA_WITH_CAMELLIA_128_GCM_SHA256',
  'TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256',
  'TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384',
  'TLS_DHE_RSA_WITH_ARIA_256_CBC_SHA384',
  'TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256',
  'TLS_DHE_RSA_WITH_ARIA_128_CBC_SHA256',
  'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
  'TLS_DHE_RSA_WITH_AES_256_CCM',
  'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256',
  'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
  'TLS_DHE_RSA_WITH_AES_128_CCM',
  'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256',
);

/** The NCSC-NL profile (internet.nl's baseline). */
export const NCSC_NL_PROFILE: Profile = Object.freeze({
  id: 'ncsc-nl',
  title: 'NCSC-NL IT Security Guidelines for TLS',
  source: 'NCSC-NL IT Security Guidelines for TLS, 2025-05 update (as encoded by internet.nl)',
  // §3.3.1: TLS 1.3 Good, TLS 1.2 Sufficient; TLS 1.0/1.1 Insufficient since 2025-05 (Phase-out in v2.1).
  versions: Object.freeze({ 'TLSv1.3': 'good', 'TLSv1.2': 'sufficient' }),
  suites: Object.freeze({
    tls12: suiteTable([...SUFFICIENT12, ...PHASE_OUT12]),
    tls13: suiteTable([...GOOD13, ...SUFFICIENT13]),
  }),
  groups: groupTable([
    // §3.3.2.1: NIST P-curves, Brainpool, X25519 and X448 Good; secp224r1 Phase-out.
    ...rated('good', 'secp256r1', 'secp384r1', 'secp521r1', 'x25519', 'x448'),
    ...rated('good', 'brainpoolP256r1', 'brainpoolP384r1', 'brainpoolP512r1'),
    ...rated('good', 'brainpoolP256r1tls13', 'brainpoolP384r1tls13', 'brainpoolP512r1tls13'),
    ['secp224r1', 'phase-out'],
    // §3.3.3.1: ffdhe3072–8192 Phase-out; ffdhe2048 (and anything smaller) Insufficient.
    ...rated('phase-out', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'),
    // Unverified: NCSC-NL's rating of hybrid ML-KEM groups is not known to postern (internet.nl does
    // not rate them yet). postern's reading: a hybrid is at least as strong as its classical half
    // (RFC 9954), and all three classical halves are Good here, so the hybrids are Good.
    ...rated('good', 'X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'),
  ]),
  // §3.3.2.1: RSA ≥ 3072 Good, 2048 Phase-out. DSA is treated like RSA (unverified).
  minRsaBits: 3072,
  phaseOutRsaBits: 2048,
  minDsaBits: 3072,
  phaseOutDsaBits: 2048,
  // EC: P-256 and up Good, P-224 Phase-out.
  minEcBits: 256,
  phaseOutEcBits: 224,
  // §3.3.3.1: finite-field DH below 3072 bit is Insufficient (3072+ is Phase-out via the groups above).
  minDhBits: 3072,
  certCurves: Object.freeze([
    'P-224',
    'P-256',
    'P-384',
    'P-521',
    'brainpoolP256r1',
    'brainpoolP384r1',
    'brainpoolP512r1',
  ]),
  // §3.3.5: SHA-1 and MD5 Insufficient, SHA-224 Phase-out; Ed25519/Ed448 accepted by internet.nl.
  certSignatureHashes: Object.freeze(hashRatings({ sha224: 'phase-out', intrinsic: 'good' })),
  features: Object.freeze({
    secureRenegotiation: 'required', // secure renegotiation required
    noCompression: 'required', // TLS compression off
    // Client-initiated renegotiation must be refused (internet.nl tolerates up to 10 attempts; the
    // scanner reports a plain yes/no, so any acceptance is graded).
    noClientRenegotiation: 'required',
    noHeartbeat: 'ignored', // not an NCSC-NL test item (unverified)
    encryptThenMac: 'ignored',
    extendedMasterSecret: 'recommended', // tested by internet.nl since the 2025 update (unverified severity)
    fallbackScsv: 'recommended', // not an NCSC-NL item; postern recommends RFC 7507 everywhere
  }),
  rules: Object.freeze({
    ...RFC_RULES,
    'protocol-tls1.0': `${CITE} §3.3.1 (TLS 1.0 Insufficient)`,
    'protocol-tls1.1': `${CITE} §3.3.1 (TLS 1.1 Insufficient)`,
    'cipher-not-allowed': `${CITE} §3.3.3–3.3.4 and appendix B (suite not Good, Sufficient or Phase-out)`,
    'cipher-phase-out': `${CITE} appendix B (Phase-out suites)`,
    'group-not-allowed': `${CITE} §3.3.2.1 / §3.3.3.1 (key-exchange group Insufficient)`,
    'group-phase-out': `${CITE} §3.3.2.1 / §3.3.3.1 (Phase-out groups)`,
    'dh-too-small': `${CITE} §3.3.3.1 (finite-field DH below ffdhe3072 Insufficient)`,
    'cert-weak-key': `${CITE} §3.3.2.1 (RSA < 2048 / EC < 224 Insufficient)`,
    'cert-key-phase-out': `${CITE} §3.3.2.1 (RSA 2048–3071 / P-224 Phase-out)`,
    'cert-key-type-not-allowed': `${CITE} §3.3.2.1 (curve not Good or Phase-out)`,
    'cert-weak-signature': `${CITE} §3.3.5 (SHA-1/MD5 Insufficient)`,
    'cert-signature-phase-out': `${CITE} §3.3.5 (SHA-224 Phase-out)`,
    'renegotiation-insecure': `${CITE} (secure renegotiation required); RFC 5746`,
    'client-renegotiation': `${CITE} (client-initiated renegotiation refused)`,
    'compression-enabled': `${CITE} (TLS compression off)`,
    'ems-missing': `${CITE} (Extended Master Secret); RFC 7627`,
  }),
});
