/**
 * The TLS grading engine: is this server (scan) or this negotiated session (gateway) good enough
 * for profile P? One pure function shared by `scan` (grading) and `serve` (enforcement), so a
 * report and a delivery decision cannot disagree. No I/O, no clock, no imports from products.
 *
 * Compliance: no finding of severity medium or above. A profile's 'insufficient' rating yields a
 * medium finding (or the class's own, higher severity), 'phase-out' a low one.
 */
import { RFC_RULES, canonicalGroup } from './profiles/build.ts';
import type { CertHash, CertKeyType, Profile, Rating, Requirement } from './profiles/types.ts';
import type { VersionName } from './wire/constants.ts';
import { groupByName, VERSIONS } from './wire/constants.ts';
import { formatSuiteCode, suiteByCode, suiteByName } from './wire/suites.ts';

/** Facts about one certificate the server sent (a subset of tls/cert's CertInfo). */
export interface CertFacts {
  keyType: CertKeyType;
  keyBits: number;
  /** 'P-256', 'brainpoolP256r1', 'Ed25519', …; null for RSA/DSA. */
  curve: string | null;
  signatureHash: CertHash;
  signatureAlgorithm: string;
  selfSigned: boolean;
  subject: string;
}

/** What a scan found out about a server, or what one gateway session negotiated. */
export interface TlsFacts {
  /** Versions accepted (scan) or the one negotiated (gateway). */
  protocols: VersionName[];
  /** Accepted suites per version (gateway: the one negotiated). */
  suites: Partial<Record<VersionName, number[]>>;
  /** Key-exchange groups, TLS names as in NAMED_GROUPS ('secp256r1', 'x25519', 'X25519MLKEM768', 'ffdhe3072'); case-insensitive. */
  groups: string[];
  /** Sizes of DHE primes seen. */
  dhBits: number[];
  /** Leaf first, then the intermediates the server sent (trust anchors excluded; a self-signed one is skipped). */
  certificates: CertFacts[];
  /** Suite names the registry does not know (gateway: an unrecognised negotiated suite). Always insufficient. */
  unknownSuites?: string[];
  // Feature probes; undefined/null = not tested, and then no finding.
  secureRenegotiation?: boolean | null;
  compression?: boolean | null;
  clientRenegotiation?: boolean | null;
  heartbeat?: boolean | null;
  encryptThenMac?: boolean | null;
  extendedMasterSecret?: boolean | null;
  fallbackScsv?: boolean | null;
}

export type Severity = 'critical' | 'high' | 'medium' | 'low' | 'info';
/** Severities, least severe first. */
export const SEVERITIES: readonly Severity[] = ['info', 'low', 'medium', 'high', 'critical'];

export interface RuleFinding {
  /** Stable id (see docs/specifications.md); the scanner and the testbed manifest use them. */
  id: string;
  severity: Severity;
  message: string;
  /** The rule broken, citing its source: 'BSI TR-02102-2 (2025-01) §3.3.1 Table 1'. */
  rule: string;
  evidence?: string[];
}

export interface Verdict {
  profile: string;
  compliant: boolean;
  findings: RuleFinding[];
}

/** Orders severities (negative when a is less severe than b). */
export function compareSeverity(a: Severity, b: Severity): number {
  return SEVERITIES.indexOf(a) - SEVERITIES.indexOf(b);
}

/** A verdict's compliance rule: nothing at medium or above. */
export function isCompliant(findings: readonly Pick<RuleFinding, 'severity'>[]): boolean {
  return !findings.some((f) => compareSeverity(f.severity, 'medium') >= 0);
}

/** Finding id of a protocol version: 'SSLv3' → 'protocol-sslv3', 'TLSv1.0' → 'protocol-tls1.0'. */
export function protocolFindingId(v: VersionName): string {
  return `protocol-${v.toLowerCase().replace('tlsv', 'tls')}`;
}

/** Collects findings; evidence for the same id accumulates into one finding at the highest severity. */
class Findings {
  private readonly byId = new Map<string, { severity: Severity; message: string; evidence: string[] }>();
  private readonly profile: Profile;
  constructor(profile: Profile) {
    this.profile = profile;
  }
  add(id: string, severity: Severity, message: string, evidence: readonly string[] = []): void {
    const f = this.byId.get(id);
    if (f === undefined) {
      this.byId.set(id, { severity, message, evidence: [...evidence] });
      return;
    }
    if (compareSeverity(severity, f.severity) > 0) f.severity = severity;
    for (const e of evidence) if (!f.evidence.includes(e)) f.evidence.push(e);
  }
  /** Overwrite the message of an accumulated finding (when it counts its evidence). */
  retitle(id: string, message: (evidence: readonly string[]) => string): void {
    const f = this.byId.get(id);
    if (f !== undefined) f.message = message(f.evidence);
  }
  list(): RuleFinding[] {
    return [...this.byId].map(([id, f]) => ({
      id,
      severity: f.severity,
      message: f.message,
      rule: this.profile.rules[id] ?? RFC_RULES[id] ?? this.profile.source,
      ...(f.evidence.length > 0 ? { evidence: f.evidence } : {}),
    }));
  }
}

/** Grade `facts` against `profile`. Pure: same input, same verdict. */
export function evaluate(facts: TlsFacts, profile: Profile): Verdict {
  const out = new Findings(profile);
  const versions = VERSIONS.filter((v) => facts.protocols.includes(v));
  protocolRules(versions, profile, out);
  suiteRules(facts, profile, out);
  groupRules(facts, profile, out);
  dhRules(facts, profile, out);
  certificateRules(facts.certificates, profile, out);
  featureRules(facts, versions, profile, out);
  const findings = out.list();
  return { profile: profile.id, compliant: isCompliant(findings), findings };
}

function ratingSeverity(r: Rating, insufficient: Severity = 'medium'): Severity | null {
  if (r === 'insufficient') return insufficient;
  if (r === 'phase-out') return 'low';
  return null;
}

function protocolRules(versions: readonly VersionName[], profile: Profile, out: Findings): void {
  // Fail closed: a session whose version we cannot name must not pass as "no findings".
  if (versions.length === 0) {
    out.add('protocol-unknown', 'high', 'no recognised TLS protocol version was accepted or negotiated');
    return;
  }
  for (const v of versions) {
    const id = protocolFindingId(v);
    // SSL 2.0 and 3.0 are prohibited by RFC, so no profile can allow them.
    if (v === 'SSLv2') out.add(id, 'critical', 'SSLv2 is accepted: broken and prohibited (RFC 6176; DROWN)');
    else if (v === 'SSLv3') out.add(id, 'high', 'SSLv3 is accepted: broken and prohibited (RFC 7568; POODLE)');
    else {
      const rating = profile.versions[v] ?? 'insufficient';
      const sev = ratingSeverity(rating);
      if (sev !== null) out.add(id, sev, `${v} is accepted; ${profile.title} rates it ${rating}`);
    }
  }
}

// Suite classes every profile reports, with their own severity (they are broken, not merely unlisted).
const SUITE_CLASSES: readonly { id: string; severity: Severity; what: string }[] = [
  { id: 'cipher-export', severity: 'critical', what: 'EXPORT-grade suites (FREAK/Logjam class)' },
  { id: 'cipher-null', severity: 'critical', what: 'NULL-encryption suites (no confidentiality)' },
  { id: 'cipher-anon', severity: 'high', what: 'anonymous suites (no server authentication)' },
  { id: 'cipher-rc4', severity: 'high', what: 'RC4 suites (RFC 7465 prohibits them)' },
];

function suiteRules(facts: TlsFacts, profile: Profile, out: Findings): void {
  for (const v of VERSIONS) {
    const codes = facts.suites[v];
    if (codes === undefined) continue;
    const table = v === 'TLSv1.3' ? profile.suites.tls13 : profile.suites.tls12;
    for (const code of new Set(codes)) {
      const s = suiteByCode(code);
      const label = `${v} ${formatSuiteCode(code)} ${s?.name ?? 'unknown'}`;
      const classes = [s?.export, s?.nullCipher, s?.anon, s?.cipherFamily === 'RC4'];
      classes.forEach((hit, i) => {
        const c = SUITE_CLASSES[i];
        if (hit === true && c !== undefined) out.add(c.id, c.severity, c.what, [label]);
      });
      const rating = table.get(code) ?? 'insufficient';
      if (rating === 'insufficient') out.add('cipher-not-allowed', 'medium', '', [label]);
      else if (rating === 'phase-out') out.add('cipher-phase-out', 'low', '', [label]);
    }
  }
  for (const name of facts.unknownSuites ?? []) {
    out.add('cipher-not-allowed', 'medium', '', [`${name} (not in the suite registry)`]);
  }
  for (const c of SUITE_CLASSES) out.retitle(c.id, (e) => `${e.length} ${c.what} accepted`);
  out.retitle('cipher-not-allowed', (e) => `${e.length} suite(s) accepted that ${profile.title} does not allow`);
  out.retitle('cipher-phase-out', (e) => `${e.length} suite(s) accepted that ${profile.title} rates phase-out`);
}

function groupRules(facts: TlsFacts, profile: Profile, out: Findings): void {
  for (const name of new Set(facts.groups.map(canonicalGroup))) {
    const rating = profile.groups.get(name) ?? 'insufficient';
    if (rating === 'insufficient') out.add('group-not-allowed', 'medium', '', [name]);
    else if (rating === 'phase-out') out.add('group-phase-out', 'low', '', [name]);
  }
  out.retitle('group-not-allowed', (e) => `key-exchange group(s) ${profile.title} does not allow: ${e.join(', ')}`);
  out.retitle('group-phase-out', (e) => `key-exchange group(s) ${profile.title} rates phase-out: ${e.join(', ')}`);
}

function dhRules(facts: TlsFacts, profile: Profile, out: Findings): void {
  for (const bits of [...new Set(facts.dhBits)].sort((a, b) => a - b)) {
    // Below 1024 bit the prime is breakable today (Logjam); otherwise it is only below policy.
    if (bits < profile.minDhBits) out.add('dh-too-small', bits < 1024 ? 'high' : 'medium', '', [`DH ${bits} bit`]);
  }
  out.retitle('dh-too-small', (e) => `DHE prime(s) below ${profile.minDhBits} bit: ${e.join(', ')}`);
}

const EC_CURVE_ALIASES: Readonly<Record<string, string>> = {
  prime256v1: 'P-256',
  secp256r1: 'P-256',
  secp384r1: 'P-384',
  secp521r1: 'P-521',
  secp224r1: 'P-224',
};

function sameCurve(a: string, b: string): boolean {
  const norm = (c: string): string => (EC_CURVE_ALIASES[c.toLowerCase()] ?? c).toLowerCase();
  return norm(a) === norm(b);
}

/** [minimum, phase-out floor, universally-weak floor] for a key type, or null when size does not apply. */
function keyLimits(profile: Profile, t: CertKeyType): [number, number | undefined, number] | null {
  switch (t) {
    case 'RSA':
      return [profile.minRsaBits, profile.phaseOutRsaBits, 2048];
    case 'DSA':
      return [profile.minDsaBits, profile.phaseOutDsaBits, 2048];
    case 'EC':
    case 'Ed25519':
    case 'Ed448':
      return [profile.minEcBits, profile.phaseOutEcBits, 224];
    default:
      return null; // ML-DSA sizes are fixed by the parameter set; unknown types go to the type rule
  }
}

const WEAK_HASHES: ReadonlySet<CertHash> = new Set(['md5', 'sha1', 'unknown']);

function certificateRules(certs: readonly CertFacts[], profile: Profile, out: Findings): void {
  certs.forEach((c, i) => {
    // A self-signed certificate after the leaf is a trust anchor the server sent along: whether it
    // is trusted is the client's decision, and its own signature is never verified.
    if (i > 0 && c.selfSigned) return;
    const who = `${i === 0 ? 'leaf' : 'intermediate'} ${c.subject}`;
    if (i === 0) {
      const typeOk = profile.certKeyTypes === undefined || profile.certKeyTypes.includes(c.keyType);
      const curveOk =
        c.keyType !== 'EC' ||
        profile.certCurves === undefined ||
        (c.curve !== null && profile.certCurves.some((x) => sameCurve(x, c.curve ?? '')));
      if (!typeOk || !curveOk) {
        const what = c.keyType === 'EC' ? `EC ${c.curve ?? 'unknown curve'}` : c.keyType;
        out.add('cert-key-type-not-allowed', 'medium', `${profile.title} does not allow ${what} server keys`, [
          `${who}: ${what}`,
        ]);
      }
    }
    const limits = keyLimits(profile, c.keyType);
    if (limits !== null) {
      const [min, phaseOut, weak] = limits;
      const key = `${who}: ${c.keyType}-${c.keyBits}`;
      if (c.keyBits < min) {
        if (phaseOut !== undefined && c.keyBits >= phaseOut) out.add('cert-key-phase-out', 'low', '', [key]);
        else out.add('cert-weak-key', c.keyBits < weak ? 'high' : 'medium', '', [key]);
      }
    }
    const rating = profile.certSignatureHashes[c.signatureHash] ?? 'insufficient';
    const sig = `${who}: ${c.signatureAlgorithm}`;
    if (rating === 'insufficient') {
      out.add('cert-weak-signature', WEAK_HASHES.has(c.signatureHash) ? 'high' : 'medium', '', [sig]);
    } else if (rating === 'phase-out') out.add('cert-signature-phase-out', 'low', '', [sig]);
  });
  const list = (e: readonly string[]): string => e.join('; ');
  out.retitle(
    'cert-weak-key',
    (e) =>
      `certificate key below ${profile.title}'s minimum (RSA ${profile.minRsaBits}, DSA ${profile.minDsaBits}, EC ${profile.minEcBits} bit): ${list(e)}`,
  );
  out.retitle('cert-key-phase-out', (e) => `certificate key size ${profile.title} rates phase-out: ${list(e)}`);
  out.retitle(
    'cert-weak-signature',
    (e) => `certificate signed with a hash ${profile.title} does not allow: ${list(e)}`,
  );
  out.retitle(
    'cert-signature-phase-out',
    (e) => `certificate signed with a hash ${profile.title} rates phase-out: ${list(e)}`,
  );
}

function featureRules(facts: TlsFacts, versions: readonly VersionName[], profile: Profile, out: Findings): void {
  // Renegotiation, compression, EtM and EMS exist only below TLS 1.3 (RFC 8446 removed them).
  const legacy = versions.some((v) => v !== 'TLSv1.3');
  const f = profile.features;
  const check = (req: Requirement, broken: boolean, id: string, base: Severity, message: string): void => {
    if (!broken || req === 'ignored') return;
    out.add(id, req === 'required' ? base : 'low', message);
  };
  check(
    f.secureRenegotiation,
    legacy && facts.secureRenegotiation === false,
    'renegotiation-insecure',
    'high',
    'secure renegotiation (RFC 5746) is not supported: renegotiation can splice an attacker prefix into the session',
  );
  check(f.noCompression, facts.compression === true, 'compression-enabled', 'high', 'TLS compression is on (CRIME)');
  check(
    f.noClientRenegotiation,
    legacy && facts.clientRenegotiation === true,
    'client-renegotiation',
    'medium',
    'client-initiated renegotiation is accepted (CPU exhaustion)',
  );
  check(
    f.noHeartbeat,
    facts.heartbeat === true,
    'heartbeat-enabled',
    'medium',
    'the heartbeat extension (RFC 6520) is offered',
  );
  const cbc = VERSIONS.some(
    (v) => v !== 'TLSv1.3' && (facts.suites[v] ?? []).some((code) => suiteByCode(code)?.cbc === true),
  );
  check(
    f.encryptThenMac,
    legacy && cbc && facts.encryptThenMac === false,
    'etm-missing',
    'medium',
    'CBC suites are accepted without Encrypt-then-MAC (RFC 7366)',
  );
  check(
    f.extendedMasterSecret,
    legacy && facts.extendedMasterSecret === false,
    'ems-missing',
    'medium',
    'the Extended Master Secret extension (RFC 7627) is not supported',
  );
  check(
    f.fallbackScsv,
    versions.length > 1 && facts.fallbackScsv === false,
    'fallback-scsv-missing',
    'medium',
    'TLS_FALLBACK_SCSV (RFC 7507) is not honoured: a version downgrade goes undetected',
  );
}

/** Node's getProtocol() names → VersionName ('TLSv1' is TLS 1.0). */
const NODE_PROTOCOLS: Readonly<Record<string, VersionName>> = {
  SSLv2: 'SSLv2',
  SSLv3: 'SSLv3',
  TLSv1: 'TLSv1.0',
  'TLSv1.0': 'TLSv1.0',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

/**
 * Facts of one negotiated session (gateway use), from tls/session's NegotiatedSession. Anything it
 * cannot name is kept so that evaluate() fails it rather than silently passing it: an unknown
 * protocol leaves `protocols` empty (→ protocol-unknown), an unknown suite goes to `unknownSuites`,
 * an unknown group name is kept as-is (→ group-not-allowed).
 */
export function factsFromSession(
  session: {
    protocol: string;
    cipher: { standardName: string };
    group: string | null;
    ephemeralKeyBits: number | null;
  },
  certificates: CertFacts[],
): TlsFacts {
  const version = NODE_PROTOCOLS[session.protocol];
  const suite = suiteByName(session.cipher.standardName);
  const facts: TlsFacts = {
    protocols: version === undefined ? [] : [version],
    suites: version !== undefined && suite !== undefined ? { [version]: [suite.code] } : {},
    groups: [],
    dhBits: [],
    certificates,
  };
  if (suite === undefined) facts.unknownSuites = [session.cipher.standardName];
  const g = session.group;
  if (g !== null && g !== '') {
    // tls/session names a DHE group without a name 'DH <bits>' (or plain 'DH' when the size is unknown).
    const dh = /^DH(?: (\d+))?$/.exec(g);
    if (dh !== null) {
      const bits = dh[1] !== undefined ? Number(dh[1]) : session.ephemeralKeyBits;
      if (bits !== null && bits > 0) facts.dhBits.push(bits);
    } else {
      facts.groups.push(groupByName(g)?.name ?? g);
    }
  }
  return facts;
}
