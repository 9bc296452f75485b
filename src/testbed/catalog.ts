/**
 * The testbed's servers: one good configuration per dialect and mode, then one server per
 * weakness, then the seed's "certificate of shame" server that has them all at once.
 *
 * The `expected` block is the ground truth the scanner is tested against, so suites are always
 * listed by name and mapped to code points through the registry — never via OpenSSL cipher-string
 * rules, whose expansion could drift between OpenSSL releases.
 */
import type { VersionName } from '../tls/wire/constants.ts';
import { VERSIONS } from '../tls/wire/constants.ts';
import { suiteByName, suiteByCode } from '../tls/wire/suites.ts';
import type { KeyType, SignatureHash } from '../tls/cert/pki.ts';
import type { ExpectedStarttls, ExpectedTls, TestbedMode, TestbedProtocol, WeaknessId } from './manifest.ts';
import type { ServerSwitches } from './servers/common.ts';

/** Certificate properties; the hostname fills in `names` unless given. */
export interface CertSpec {
  issuer: 'ca' | 'self';
  keyType: KeyType;
  signatureHash: SignatureHash;
  /** SAN DNS names; default `[hostname]`; `[]` = no SAN extension. */
  names?: string[];
  /** Full subject DN (RFC 4514 string); default `CN=<first name>`. */
  subject?: string;
  /** `epoch` = 1970-01-01 to 1970-01-02, the seed's faketime certificate. */
  validity: 'valid' | 'expired' | 'epoch';
}

/** TLS served by node/OpenSSL. Suites are OpenSSL names (TLS 1.3 names included). */
export interface NodeTlsConfig {
  kind: 'node';
  versions: VersionName[];
  suites: string[];
  /** OpenSSL group names for `ecdhCurve`. */
  groups: string[];
  /** Append `@SECLEVEL=0` so OpenSSL 3 agrees to TLS 1.0, SHA-1 and RSA-1024 at all. */
  seclevel0?: boolean;
  /**
   * VULNERABLE when true: honour client-initiated renegotiation (TLS ≤ 1.2), which node allows by
   * default (3 per 10 min). Default false: SSL_OP_NO_RENEGOTIATION, as BSI/NCSC-NL ask.
   */
  clientRenegotiation?: boolean;
}

/** TLS answered by the hand-written legacy responder (src/testbed/legacy-tls.ts). */
export interface RawTlsConfig {
  kind: 'raw';
  versions: VersionName[];
  /** Suite names (resolved via the registry) or raw code points (SSLv2 kinds are 3-byte). */
  suites: Array<string | number>;
  /** Responder switches (see LegacyTlsOptions); defaults: RFC 5746 on, no SCSV check, no DEFLATE, no heartbeat. */
  secureRenegotiation?: boolean;
  fallbackScsv?: boolean;
  compression?: boolean;
  heartbeat?: 'off' | 'on' | 'heartbleed';
}

export interface CatalogEntry {
  id: string;
  protocol: TestbedProtocol;
  mode: TestbedMode;
  defaultPortHint: number;
  hostname: string;
  description: string;
  cert: CertSpec;
  tls: NodeTlsConfig | RawTlsConfig;
  switches: ServerSwitches;
  weaknesses: WeaknessId[];
  /** Filled in by {@link expectedFor} for raw entries (needs legacyAcceptedSuites). */
  expected: ExpectedTls;
}

const DOMAIN = 'testbed.postern.test';

// BSI TR-02102-2 Table 1 (TLS 1.2, PFS) — the ECDSA rows — and the TLS 1.3 list.
const BSI_ECDSA_TLS12 = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-SHA256',
  'ECDHE-ECDSA-AES256-SHA384',
  'ECDHE-ECDSA-AES128-CCM',
  'ECDHE-ECDSA-AES256-CCM',
];
// BSI TR-02102-2 Table 1, ECDHE_RSA rows (for the servers whose flaw is an RSA key).
const BSI_RSA_TLS12 = [
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-SHA256',
  'ECDHE-RSA-AES256-SHA384',
];
const BSI_TLS13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_AES_128_CCM_SHA256'];
// BSI groups; OpenSSL 3.5 also serves the brainpool curves (RFC 7027 for ≤1.2, RFC 8734 for 1.3).
const BSI_GROUPS = [
  'P-256',
  'P-384',
  'P-521',
  'brainpoolP256r1',
  'brainpoolP384r1',
  'brainpoolP512r1',
  'brainpoolP256r1tls13',
  'brainpoolP384r1tls13',
  'brainpoolP512r1tls13',
];
const TLS10_SUITES = ['ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA', 'AES128-SHA', 'AES256-SHA'];

const EC256: KeyType = { kind: 'ec', curve: 'P-256' };
// RSA-3072: BSI TR-02102-2 asks for >= 3000 bits, so servers not built to have a weak key must not have one.
const RSA3072: KeyType = { kind: 'rsa', bits: 3072 };
const RSA1024: KeyType = { kind: 'rsa', bits: 1024 };

const GOOD_CERT: CertSpec = { issuer: 'ca', keyType: EC256, signatureHash: 'SHA-256', validity: 'valid' };
const GOOD_TLS: NodeTlsConfig = {
  kind: 'node',
  versions: ['TLSv1.2', 'TLSv1.3'],
  suites: [...BSI_ECDSA_TLS12, ...BSI_TLS13],
  groups: BSI_GROUPS,
};
const GOOD_RSA_TLS: NodeTlsConfig = { ...GOOD_TLS, suites: [...BSI_RSA_TLS12, ...BSI_TLS13], seclevel0: true };
const TLS10_ONLY: NodeTlsConfig = {
  kind: 'node',
  versions: ['TLSv1.0'],
  suites: TLS10_SUITES,
  groups: ['P-256', 'P-384', 'P-521'],
  seclevel0: true,
};
const LEGACY_CERT: CertSpec = { issuer: 'ca', keyType: RSA3072, signatureHash: 'SHA-256', validity: 'valid' };

const SW: ServerSwitches = { starttls: 'offer', commandInjection: false, responseInjection: false };

type Draft = Omit<CatalogEntry, 'hostname' | 'expected' | 'switches' | 'cert' | 'tls'> & {
  switches?: Partial<ServerSwitches>;
  cert?: CertSpec;
  tls?: NodeTlsConfig | RawTlsConfig;
};

const PORT_HINT: Record<TestbedProtocol, Record<TestbedMode, number>> = {
  smtp: { starttls: 25, implicit: 465 },
  imap: { starttls: 143, implicit: 993 },
  pop3: { starttls: 110, implicit: 995 },
};

function entry(d: Omit<Draft, 'defaultPortHint'>): Draft {
  return { ...d, defaultPortHint: PORT_HINT[d.protocol][d.mode] };
}

const DRAFTS: Draft[] = [
  entry({
    id: 'smtp-good',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'STARTTLS, TLS 1.2-1.3, BSI suites and groups only, P-256 certificate from the testbed CA',
    weaknesses: [],
  }),
  entry({
    id: 'smtps-good',
    protocol: 'smtp',
    mode: 'implicit',
    description: 'implicit TLS (RFC 8314), same configuration as smtp-good',
    weaknesses: [],
  }),
  entry({
    id: 'smtp-expired',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'good TLS, CA-issued certificate that expired 30 days ago',
    cert: { ...GOOD_CERT, validity: 'expired' },
    weaknesses: ['cert-expired'],
  }),
  entry({
    id: 'smtp-self-signed',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'good TLS, self-signed certificate with the right name',
    cert: { ...GOOD_CERT, issuer: 'self' },
    weaknesses: ['cert-self-signed', 'cert-untrusted'],
  }),
  entry({
    id: 'smtp-wrong-name',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'good TLS, CA-issued certificate for abc.xy (CN and SAN)',
    cert: { ...GOOD_CERT, names: ['abc.xy'] },
    weaknesses: ['cert-hostname-mismatch'],
  }),
  entry({
    id: 'smtp-sha1',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'good TLS, certificate signed by the testbed CA with ecdsa-with-SHA1',
    cert: { ...GOOD_CERT, signatureHash: 'SHA-1' },
    tls: { ...GOOD_TLS, seclevel0: true },
    weaknesses: ['cert-weak-signature'],
  }),
  entry({
    id: 'smtp-rsa1024',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'BSI ECDHE-RSA suites, CA-issued RSA-1024 certificate',
    cert: { ...GOOD_CERT, keyType: RSA1024 },
    tls: GOOD_RSA_TLS,
    weaknesses: ['cert-weak-key'],
  }),
  entry({
    id: 'smtp-tls10',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.0 only with SHA-1 CBC suites, CA-issued RSA-3072 certificate',
    cert: LEGACY_CERT,
    tls: TLS10_ONLY,
    weaknesses: ['protocol-tls1.0', 'cipher-not-allowed'],
  }),
  entry({
    id: 'smtp-tls11',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.1 only with SHA-1 CBC suites, CA-issued RSA-3072 certificate',
    cert: LEGACY_CERT,
    tls: { ...TLS10_ONLY, versions: ['TLSv1.1'] },
    weaknesses: ['protocol-tls1.1', 'cipher-not-allowed'],
  }),
  entry({
    id: 'smtp-shame',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'the certificate of shame: self-signed, expired in 1970, CN=abc.xy, SHA-1, RSA-1024, TLS 1.0 only',
    cert: {
      issuer: 'self',
      keyType: RSA1024,
      signatureHash: 'SHA-1',
      names: [],
      // The seed's `openssl req -subj "/C=DE/ST=Saxony/L=Chemnitz/O=CA/OU=CA/CN=abc.xy"`.
      subject: 'C=DE, ST=Saxony, L=Chemnitz, O=CA, OU=CA, CN=abc.xy',
      validity: 'epoch',
    },
    tls: TLS10_ONLY,
    weaknesses: [
      'cert-expired',
      'cert-self-signed',
      'cert-untrusted',
      'cert-hostname-mismatch',
      'cert-weak-signature',
      'cert-weak-key',
      'protocol-tls1.0',
      'cipher-not-allowed',
    ],
  }),
  entry({
    id: 'smtp-no-starttls',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'plaintext only: STARTTLS neither advertised nor accepted',
    switches: { starttls: 'none' },
    weaknesses: ['starttls-missing'],
  }),
  entry({
    id: 'smtp-starttls-454',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'advertises STARTTLS, answers 454 4.7.0',
    switches: { starttls: 'refuse-454' },
    weaknesses: ['starttls-refused'],
  }),
  entry({
    id: 'smtp-starttls-stripped',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'STARTTLS not advertised in EHLO but the command works (stripping MITM)',
    switches: { starttls: 'strip' },
    weaknesses: ['starttls-stripped'],
  }),
  entry({
    id: 'smtp-cmd-injection',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'executes plaintext pipelined after STARTTLS inside TLS (CVE-2011-0411)',
    switches: { commandInjection: true },
    weaknesses: ['starttls-injection'],
  }),
  entry({
    id: 'smtp-response-injection',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'sends a forged plaintext 250 line right after "220 Ready to start TLS"',
    switches: { responseInjection: true },
    weaknesses: ['starttls-response-injection'],
  }),
  entry({
    id: 'legacy-sslv2',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'SSL 2.0 only (RC4-128, RC4-40 export, 3DES), hand-written responder',
    cert: LEGACY_CERT,
    // SSL 2.0 cipher kinds (3-byte code points): RC4_128_WITH_MD5, RC4_128_EXPORT40_WITH_MD5,
    // DES_192_EDE3_CBC_WITH_MD5.
    tls: { kind: 'raw', versions: ['SSLv2'], suites: [0x010080, 0x020080, 0x0700c0] },
    weaknesses: ['protocol-sslv2', 'cipher-not-allowed', 'cipher-export', 'cipher-rc4'],
  }),
  entry({
    id: 'legacy-sslv3',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'SSL 3.0 only with RC4 and 3DES, hand-written responder',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['SSLv3'], suites: ['RC4-MD5', 'RC4-SHA', 'DES-CBC3-SHA'] },
    weaknesses: ['protocol-sslv3', 'cipher-not-allowed', 'cipher-rc4'],
  }),
  entry({
    id: 'legacy-export',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.0 export-grade suites, hand-written responder',
    cert: LEGACY_CERT,
    tls: {
      kind: 'raw',
      versions: ['TLSv1.0'],
      suites: ['EXP-RC4-MD5', 'EXP-DES-CBC-SHA', 'EXP-EDH-RSA-DES-CBC-SHA', 'EXP-RC2-CBC-MD5'],
    },
    // EXP-EDH-RSA-DES-CBC-SHA uses 512-bit DH parameters: dh-too-small comes with export-grade DHE.
    weaknesses: ['protocol-tls1.0', 'cipher-not-allowed', 'cipher-export', 'cipher-rc4', 'dh-too-small'],
  }),
  entry({
    id: 'legacy-null',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2 NULL-encryption suites, hand-written responder',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['TLSv1.2'], suites: ['NULL-MD5', 'NULL-SHA', 'NULL-SHA256', 'ECDHE-RSA-NULL-SHA'] },
    weaknesses: ['cipher-not-allowed', 'cipher-null'],
  }),
  entry({
    id: 'legacy-anon',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2 anonymous (DH_anon / ECDH_anon) suites, hand-written responder',
    cert: LEGACY_CERT,
    tls: {
      kind: 'raw',
      versions: ['TLSv1.2'],
      suites: ['ADH-AES128-GCM-SHA256', 'AECDH-AES128-SHA', 'ADH-DES-CBC3-SHA'],
    },
    weaknesses: ['cipher-not-allowed', 'cipher-anon'],
  }),
  entry({
    id: 'legacy-exotic',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2 CAMELLIA, ARIA, SEED, IDEA and pre-RFC ChaCha20 (0xCC13), hand-written responder',
    cert: LEGACY_CERT,
    tls: {
      kind: 'raw',
      versions: ['TLSv1.2'],
      suites: [
        'ECDHE-RSA-CAMELLIA128-SHA256',
        'CAMELLIA256-SHA',
        'ECDHE-ARIA128-GCM-SHA256',
        'ARIA256-GCM-SHA384',
        'SEED-SHA',
        'IDEA-CBC-SHA',
        0xcc13,
      ],
    },
    weaknesses: ['cipher-not-allowed'],
  }),
  entry({
    id: 'imap-good',
    protocol: 'imap',
    mode: 'starttls',
    description: 'IMAP STARTTLS, same TLS as smtp-good, LOGINDISABLED before TLS',
    weaknesses: [],
  }),
  entry({
    id: 'imaps-good',
    protocol: 'imap',
    mode: 'implicit',
    description: 'IMAP over implicit TLS',
    weaknesses: [],
  }),
  entry({
    id: 'imap-bad',
    protocol: 'imap',
    mode: 'starttls',
    description: 'IMAP STARTTLS, self-signed RSA-3072 certificate, TLS 1.0 only',
    cert: { issuer: 'self', keyType: RSA3072, signatureHash: 'SHA-256', validity: 'valid' },
    tls: TLS10_ONLY,
    weaknesses: ['cert-self-signed', 'cert-untrusted', 'protocol-tls1.0', 'cipher-not-allowed'],
  }),
  entry({
    id: 'imap-no-starttls',
    protocol: 'imap',
    mode: 'starttls',
    description: 'IMAP without STARTTLS',
    switches: { starttls: 'none' },
    weaknesses: ['starttls-missing'],
  }),
  entry({
    id: 'pop3-good',
    protocol: 'pop3',
    mode: 'starttls',
    description: 'POP3 STLS, same TLS as smtp-good',
    weaknesses: [],
  }),
  entry({
    id: 'pop3s-good',
    protocol: 'pop3',
    mode: 'implicit',
    description: 'POP3 over implicit TLS',
    weaknesses: [],
  }),
  entry({
    id: 'pop3-bad',
    protocol: 'pop3',
    mode: 'starttls',
    description: 'POP3 STLS, expired CA-issued RSA-1024 certificate, BSI ECDHE-RSA suites',
    cert: { ...GOOD_CERT, keyType: RSA1024, validity: 'expired' },
    tls: GOOD_RSA_TLS,
    weaknesses: ['cert-expired', 'cert-weak-key'],
  }),
  // Issue 3's weakness checks (src/tls/probe/checks.ts); appended so earlier ports stay put.
  entry({
    id: 'legacy-compression',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2 with BSI ECDHE-RSA GCM suites, selects DEFLATE compression (CRIME), hand-written responder',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['TLSv1.2'], suites: BSI_RSA_TLS12.slice(0, 2), compression: true },
    weaknesses: ['compression-enabled'],
  }),
  entry({
    id: 'legacy-heartbleed',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2, heartbeat extension with a simulated Heartbleed over-read (marker bytes, no memory)',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['TLSv1.2'], suites: BSI_RSA_TLS12.slice(0, 2), heartbeat: 'heartbleed' },
    weaknesses: ['heartbeat-enabled', 'heartbleed'],
  }),
  entry({
    id: 'legacy-insecure-reneg',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2 without RFC 5746: no renegotiation_info in the ServerHello, hand-written responder',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['TLSv1.2'], suites: BSI_RSA_TLS12.slice(0, 2), secureRenegotiation: false },
    weaknesses: ['renegotiation-insecure'],
  }),
  entry({
    id: 'legacy-heartbeat',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.2, heartbeat extension negotiated but not vulnerable (RFC 6520 §4 length check)',
    cert: LEGACY_CERT,
    tls: { kind: 'raw', versions: ['TLSv1.2'], suites: BSI_RSA_TLS12.slice(0, 2), heartbeat: 'on' },
    weaknesses: ['heartbeat-enabled'],
  }),
  entry({
    id: 'legacy-no-fallback-scsv',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'TLS 1.1 and 1.2, ignores TLS_FALLBACK_SCSV (RFC 7507), hand-written responder',
    cert: LEGACY_CERT,
    tls: {
      kind: 'raw',
      versions: ['TLSv1.1', 'TLSv1.2'],
      suites: ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA'],
    },
    weaknesses: ['protocol-tls1.1', 'cipher-not-allowed', 'fallback-scsv-missing'],
  }),
  entry({
    id: 'smtp-client-reneg',
    protocol: 'smtp',
    mode: 'starttls',
    description: 'good TLS, but honours client-initiated renegotiation (node/OpenSSL default)',
    tls: { ...GOOD_TLS, clientRenegotiation: true },
    weaknesses: ['client-renegotiation'],
  }),
];

/** Maps suite names/codes to code points; throws on a name the registry does not know. */
export function suiteCodes(suites: ReadonlyArray<string | number>): number[] {
  return suites.map((s) => {
    if (typeof s === 'number') return s;
    const found = suiteByName(s);
    if (found === undefined) throw new Error(`testbed catalog: unknown cipher suite ${s}`);
    return found.code;
  });
}

/** Which of `codes` a TLS handshake at `version` can negotiate (TLS 1.3 suites only at 1.3). */
export function suitesUsableAt(codes: readonly number[], version: VersionName): number[] {
  const rank = VERSIONS.indexOf(version);
  return codes.filter((code) => {
    const s = suiteByCode(code);
    if (s === undefined) return false;
    if (version === 'TLSv1.3') return s.family === 'tls13';
    if (s.family === 'tls13' || s.family === 'scsv') return false;
    return VERSIONS.indexOf(s.minVersion) <= rank && rank <= VERSIONS.indexOf(s.maxVersion);
  });
}

function starttlsExpectation(mode: TestbedMode, sw: ServerSwitches): ExpectedStarttls {
  if (mode === 'implicit') return null;
  return { offer: 'offered', none: 'missing', 'refuse-454': 'refused', strip: 'stripped' }[
    sw.starttls
  ] as ExpectedStarttls;
}

/**
 * The ground truth for one entry. `legacyAccepted` is legacy-tls.ts's `legacyAcceptedSuites`,
 * passed in so the catalog stays importable without the responder.
 */
export function expectedFor(
  e: Pick<CatalogEntry, 'mode' | 'switches' | 'tls'>,
  legacyAccepted?: (version: VersionName) => number[],
): ExpectedTls {
  const starttls = starttlsExpectation(e.mode, e.switches);
  if (starttls === 'missing' || starttls === 'refused') return { starttls, protocols: [], suites: {} };
  const codes = suiteCodes(e.tls.suites);
  const suites: Partial<Record<VersionName, number[]>> = {};
  for (const v of e.tls.versions) {
    suites[v] = e.tls.kind === 'raw' && legacyAccepted !== undefined ? legacyAccepted(v) : suitesUsableAt(codes, v);
  }
  const protocols = e.tls.versions.filter((v) => (suites[v]?.length ?? 0) > 0);
  for (const v of e.tls.versions) if (!protocols.includes(v)) delete suites[v];
  const out: ExpectedTls = { starttls, protocols, suites };
  if (e.tls.kind === 'node') out.groups = e.tls.groups.map(ianaGroupName);
  return out;
}

function ianaGroupName(openssl: string): string {
  return { 'P-256': 'secp256r1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[openssl] ?? openssl;
}

/** The full catalog, in a stable order (a server's index fixes its port when basePort is set). */
export const CATALOG: readonly CatalogEntry[] = DRAFTS.map((d) => {
  const switches: ServerSwitches = { ...SW, ...d.switches };
  const tls = d.tls ?? GOOD_TLS;
  return {
    ...d,
    hostname: `${d.id}.${DOMAIN}`,
    switches,
    cert: d.cert ?? GOOD_CERT,
    tls,
    expected: expectedFor({ mode: d.mode, switches, tls }),
  };
});
