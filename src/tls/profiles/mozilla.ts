/**
 * Mozilla "Server Side TLS" guidelines, version 6.0: the Intermediate and Modern configurations.
 *
 * Verified against the machine-readable guideline, mozilla/ssl-config-generator
 * src/static/guidelines/6.0.json (tls_versions, ciphers.iana, ciphersuites, tls_curves,
 * certificate_types, certificate_curves, certificate_signatures, rsa_key_size, dh_param_size,
 * ecdh_param_size). Mozilla lists what to configure rather than rating it, so listed items are
 * 'good' and everything else insufficient. 6.0 removed the "Old" configuration and all DHE suites.
 */
import { groupTable, hashRatings, rated, RFC_RULES, suiteTable } from './build.ts';
import type { Profile } from './types.ts';

const CITE = 'Mozilla Server Side TLS 6.0';

const TLS13 = suiteTable(
  rated('good', 'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'),
);

// tls_curves of both configurations.
const GROUPS = groupTable(rated('good', 'X25519MLKEM768', 'x25519', 'secp256r1', 'secp384r1'));

// Guideline features Mozilla does not spell out in 6.0.json; postern keeps the RFC baseline
// (RFC 5746 is mandatory for TLS 1.2, RFC 9325 §3.3 says compression off).
const FEATURES = Object.freeze({
  secureRenegotiation: 'required',
  noCompression: 'required',
  noClientRenegotiation: 'ignored',
  noHeartbeat: 'ignored',
  encryptThenMac: 'ignored',
  extendedMasterSecret: 'ignored',
  fallbackScsv: 'recommended', // not in the guideline; postern recommends RFC 7507 everywhere
} as const);

// certificate_signatures: sha256WithRSAEncryption, ecdsa-with-SHA256/384/512. postern also accepts
// SHA-384/512 with RSA (deviation: stronger than the listed SHA-256, and common on CA chains).
const HASHES = Object.freeze(hashRatings({}));

function rules(config: string): Record<string, string> {
  return {
    ...RFC_RULES,
    'protocol-tls1.0': `${CITE} ${config}: tls_versions; RFC 8996 §2`,
    'protocol-tls1.1': `${CITE} ${config}: tls_versions; RFC 8996 §3`,
    'protocol-tls1.2': `${CITE} ${config}: tls_versions (TLS 1.3 only)`,
    'cipher-not-allowed': `${CITE} ${config}: ciphers / ciphersuites`,
    'group-not-allowed': `${CITE} ${config}: tls_curves`,
    'dh-too-small': `${CITE} ${config}: dh_param_size`,
    'cert-weak-key': `${CITE} ${config}: rsa_key_size / ecdh_param_size`,
    'cert-key-type-not-allowed': `${CITE} ${config}: certificate_types / certificate_curves`,
    'cert-weak-signature': `${CITE} ${config}: certificate_signatures`,
  };
}

/** Mozilla Intermediate: TLS 1.2 + 1.3, ECDHE with AES-GCM or ChaCha20 at TLS 1.2, RSA ≥ 2048 or ECDSA. */
export const MOZILLA_INTERMEDIATE_PROFILE: Profile = Object.freeze({
  id: 'mozilla-intermediate',
  title: 'Mozilla Server Side TLS (Intermediate)',
  source: 'Mozilla Server Side TLS guidelines 6.0, Intermediate configuration',
  versions: Object.freeze({ 'TLSv1.2': 'good', 'TLSv1.3': 'good' }),
  suites: Object.freeze({
    tls12: suiteTable(
      rated(
        'good',
        'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
        'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
        'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
        'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
        'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
        'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
      ),
    ),
    tls13: TLS13,
  }),
  groups: GROUPS,
  minRsaBits: 2048, // rsa_key_size
  minEcBits: 256, // ecdh_param_size
  minDhBits: 2048, // dh_param_size (no DHE suite is listed any more; kept for custom profiles)
  minDsaBits: 2048, // DSA is not a certificate_type; certKeyTypes rejects it anyway
  certKeyTypes: Object.freeze(['RSA', 'EC'] as const), // certificate_types: ecdsa, rsa
  certCurves: Object.freeze(['P-256', 'P-384']), // certificate_curves
  certSignatureHashes: HASHES,
  features: FEATURES,
  rules: Object.freeze(rules('Intermediate')),
});

/** Mozilla Modern: TLS 1.3 only, ECDSA certificates on P-256/P-384. */
export const MOZILLA_MODERN_PROFILE: Profile = Object.freeze({
  id: 'mozilla-modern',
  title: 'Mozilla Server Side TLS (Modern)',
  source: 'Mozilla Server Side TLS guidelines 6.0, Modern configuration',
  versions: Object.freeze({ 'TLSv1.3': 'good' }),
  suites: Object.freeze({ tls12: new Map<number, never>(), tls13: TLS13 }),
  groups: GROUPS,
  minRsaBits: 2048, // rsa_key_size is null: RSA is not a certificate_type; certKeyTypes rejects it
  minEcBits: 256, // ecdh_param_size
  minDhBits: 2048, // dh_param_size is null (no DHE in TLS 1.3 here)
  minDsaBits: 2048,
  certKeyTypes: Object.freeze(['EC'] as const), // certificate_types: ecdsa
  certCurves: Object.freeze(['P-256', 'P-384']),
  certSignatureHashes: HASHES,
  features: FEATURES,
  rules: Object.freeze(rules('Modern')),
});
