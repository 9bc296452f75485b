/**
 * The shape of a grading profile: what a guideline (BSI TR-02102-2, NCSC-NL, Mozilla) or a user's
 * own YAML policy says about protocol versions, cipher suites, key-exchange groups, key sizes,
 * certificate signatures and TLS features. Profiles are pure data; `tls/evaluate.ts` applies them.
 */
import type { VersionName } from '../wire/constants.ts';

/**
 * The four-level scale of the NCSC-NL guidelines, used for every profile. 'good' and 'sufficient'
 * pass; 'phase-out' passes with a low-severity finding; 'insufficient' fails. Anything a profile
 * does not list is 'insufficient' (NCSC-NL's rule, and the only safe default for an allow-list).
 */
export type Rating = 'good' | 'sufficient' | 'phase-out' | 'insufficient';
export const RATINGS: readonly Rating[] = ['good', 'sufficient', 'phase-out', 'insufficient'];

/** The hash inside a certificate's signature algorithm (as tls/cert reports it). */
export type CertHash = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'intrinsic' | 'unknown';
export const CERT_HASHES: readonly CertHash[] = [
  'md5',
  'sha1',
  'sha224',
  'sha256',
  'sha384',
  'sha512',
  'intrinsic',
  'unknown',
];

/** Certificate public-key algorithms (as tls/cert reports them). */
export type CertKeyType = 'RSA' | 'EC' | 'Ed25519' | 'Ed448' | 'DSA' | 'ML-DSA' | 'unknown';
export const CERT_KEY_TYPES: readonly CertKeyType[] = ['RSA', 'EC', 'Ed25519', 'Ed448', 'DSA', 'ML-DSA', 'unknown'];

/**
 * How a profile treats a TLS feature: 'required' → a finding that breaks compliance when the
 * server gets it wrong; 'recommended' → a low-severity finding; 'ignored' → no finding.
 */
export type Requirement = 'required' | 'recommended' | 'ignored';
export const REQUIREMENTS: readonly Requirement[] = ['required', 'recommended', 'ignored'];

/** TLS features a profile can demand. All of them only matter at TLS ≤ 1.2 except `fallbackScsv`. */
export interface FeatureRules {
  /** RFC 5746 renegotiation_info must be supported (finding `renegotiation-insecure`). */
  secureRenegotiation: Requirement;
  /** TLS-level compression must be off (CRIME; finding `compression-enabled`). */
  noCompression: Requirement;
  /** Client-initiated renegotiation must be refused (DoS; finding `client-renegotiation`). */
  noClientRenegotiation: Requirement;
  /** The RFC 6520 heartbeat extension must not be offered (finding `heartbeat-enabled`). */
  noHeartbeat: Requirement;
  /** RFC 7366 encrypt_then_mac when CBC suites are accepted (finding `etm-missing`). */
  encryptThenMac: Requirement;
  /** RFC 7627 extended_master_secret (finding `ems-missing`). */
  extendedMasterSecret: Requirement;
  /** RFC 7507 TLS_FALLBACK_SCSV honoured when several versions are accepted (finding `fallback-scsv-missing`). */
  fallbackScsv: Requirement;
}
export const FEATURE_KEYS: readonly (keyof FeatureRules)[] = [
  'secureRenegotiation',
  'noCompression',
  'noClientRenegotiation',
  'noHeartbeat',
  'encryptThenMac',
  'extendedMasterSecret',
  'fallbackScsv',
];

export interface Profile {
  /** Stable id: 'bsi', 'ncsc-nl', 'mozilla-intermediate', 'mozilla-modern', or a custom one. */
  readonly id: string;
  readonly title: string;
  /** The document and edition the data comes from, e.g. 'BSI TR-02102-2, edition 2025-01'. */
  readonly source: string;
  /** Absent = insufficient. SSLv2/SSLv3 are always reported, whatever a profile says (RFC 6176, RFC 7568). */
  readonly versions: Readonly<Partial<Record<VersionName, Rating>>>;
  /**
   * Suite ratings by code point; absent = insufficient. `tls12` applies to every version below
   * TLS 1.3 (a suite negotiated at TLS 1.0 is judged by the same table; the version has its own rule).
   */
  readonly suites: { readonly tls12: ReadonlyMap<number, Rating>; readonly tls13: ReadonlyMap<number, Rating> };
  /** Key-exchange groups by canonical name (src/tls/wire/constants.ts NAMED_GROUPS); absent = insufficient. */
  readonly groups: ReadonlyMap<string, Rating>;
  /** Keys below these sizes are insufficient (finding `cert-weak-key`, DHE: `dh-too-small`). */
  readonly minRsaBits: number;
  readonly minEcBits: number;
  readonly minDhBits: number;
  readonly minDsaBits: number;
  /** Optional phase-out band: keys ≥ this and < the minimum are phase-out (finding `cert-key-phase-out`). */
  readonly phaseOutRsaBits?: number;
  readonly phaseOutEcBits?: number;
  readonly phaseOutDsaBits?: number;
  /** Key types allowed for the server (leaf) certificate; absent = any type whose size passes. */
  readonly certKeyTypes?: readonly CertKeyType[];
  /** Curves allowed for EC certificate keys, as tls/cert names them ('P-256', 'brainpoolP256r1'); absent = any. */
  readonly certCurves?: readonly string[];
  /** Rating of the hash in each certificate's signature (leaf and intermediates). */
  readonly certSignatureHashes: Readonly<Record<CertHash, Rating>>;
  readonly features: Readonly<FeatureRules>;
  /** Finding id → the rule it breaks, citing the source ('BSI TR-02102-2 (2025-01) §3.3.1 Table 1'). */
  readonly rules: Readonly<Record<string, string>>;
}
