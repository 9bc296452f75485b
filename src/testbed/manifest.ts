/**
 * The testbed manifest: what is listening where, and the exact ground truth about each server —
 * its weaknesses, the protocol versions and cipher suites it accepts. postern's own scanner tests
 * compare their findings against this, weakness id for weakness id.
 */
import type { VersionName } from '../tls/wire/constants.ts';
import { formatSuiteCode, suiteByCode } from '../tls/wire/suites.ts';

/**
 * Stable weakness ids (the scanner emits exactly these). Profile-dependent ones are stated for
 * the default profile, BSI TR-02102-2; servers not built to have a weakness are configured
 * BSI-clean in that respect (RSA-3072 keys, 3072-bit DH, BSI groups).
 */
export const WEAKNESSES = {
  'cert-expired': 'certificate notAfter is in the past',
  'cert-self-signed': 'certificate is signed by its own key',
  'cert-untrusted': 'certificate does not chain to the testbed CA (the manifest assumes clients trust only that CA)',
  'cert-hostname-mismatch': 'no subjectAltName DNS entry matches the server hostname (RFC 9525; CN is not consulted)',
  'cert-weak-signature': 'certificate signature uses SHA-1 (or MD5)',
  'cert-weak-key': 'certificate key below the profile minimum (BSI TR-02102-2: RSA 3000, EC 250 bits)',
  'dh-too-small': 'DHE parameters below the profile minimum (BSI TR-02102-2: 3000 bits)',
  'protocol-sslv2': 'accepts SSL 2.0',
  'protocol-sslv3': 'accepts SSL 3.0',
  'protocol-tls1.0': 'accepts TLS 1.0',
  'protocol-tls1.1': 'accepts TLS 1.1',
  'cipher-not-allowed': 'accepts a suite outside BSI TR-02102-2 Table 1 (TLS 1.2) / the TLS 1.3 list',
  'cipher-export': 'accepts an export-grade suite',
  'cipher-null': 'accepts a suite without encryption',
  'cipher-anon': 'accepts an anonymous (unauthenticated) suite',
  'cipher-rc4': 'accepts an RC4 suite',
  'starttls-missing': 'STARTTLS is neither advertised nor accepted',
  'starttls-refused': 'STARTTLS is advertised but refused (454 / NO / -ERR)',
  'starttls-stripped': 'STARTTLS works but is not advertised (as behind a stripping MITM)',
  'starttls-injection': 'plaintext pipelined after STARTTLS is executed inside TLS (CVE-2011-0411)',
  'starttls-response-injection': 'a forged plaintext reply follows the STARTTLS go-ahead',
  'renegotiation-insecure': 'a TLS ≤ 1.2 ServerHello lacks renegotiation_info (no RFC 5746 secure renegotiation)',
  'client-renegotiation': 'honours client-initiated renegotiation (TLS ≤ 1.2; a DoS lever BSI and NCSC-NL reject)',
  'compression-enabled': 'selects TLS compression (DEFLATE) when offered (CRIME)',
  'heartbeat-enabled': 'negotiates the TLS heartbeat extension (RFC 6520; BSI: not to be used)',
  heartbleed: 'answers a heartbeat request longer than its payload with more bytes than sent (CVE-2014-0160)',
  'fallback-scsv-missing': 'supports several versions but accepts TLS_FALLBACK_SCSV below its best (RFC 7507)',
} as const;

export type WeaknessId = keyof typeof WEAKNESSES;

export type TestbedProtocol = 'smtp' | 'imap' | 'pop3';
export type TestbedMode = 'starttls' | 'implicit';
/** How STARTTLS behaves; null for implicit-TLS servers. */
export type ExpectedStarttls = 'offered' | 'missing' | 'refused' | 'stripped' | null;

export interface ExpectedTls {
  starttls: ExpectedStarttls;
  /** Versions a handshake succeeds with; empty when TLS cannot be reached (missing/refused). */
  protocols: VersionName[];
  /** Exactly the suites accepted per version (code points; SSLv2 kinds are 3-byte). */
  suites: Partial<Record<VersionName, number[]>>;
  /** Key-exchange groups configured for (EC)DHE, IANA names; absent for the legacy servers. */
  groups?: string[];
}

export interface ManifestServer {
  id: string;
  protocol: TestbedProtocol;
  mode: TestbedMode;
  address: string;
  port: number;
  /** The name a client should verify (`<id>.testbed.postern.test`). */
  hostname: string;
  /** e.g. `smtp://127.0.0.1:10025`, `smtps://…`, `imaps://…`. */
  url: string;
  /** The conventional port for this service (25/465/143/993/110/995); informational. */
  defaultPortHint: number;
  weaknesses: WeaknessId[];
  expected: ExpectedTls;
  description: string;
}

export interface TestbedManifest {
  schemaVersion: 1;
  /** ISO 8601. */
  startedAt: string;
  /** Path of the testbed CA certificate (PEM); trust it to make the good servers verify. */
  caFile: string;
  caPem: string;
  servers: ManifestServer[];
}

function versionLabel(v: VersionName): string {
  return v.replace('TLSv', 'TLS ').replace('SSLv', 'SSL ');
}

function suiteLabel(code: number): string {
  return suiteByCode(code)?.openssl ?? suiteByCode(code)?.name ?? formatSuiteCode(code);
}

/** A readable table of the manifest for the CLI (`postern testbed`). */
export function formatManifest(manifest: TestbedManifest, opts: { verbose?: boolean } = {}): string {
  const rows = manifest.servers.map((s) => ({
    id: s.id,
    url: s.url,
    tls: s.expected.protocols.length === 0 ? '-' : s.expected.protocols.map(versionLabel).join(', '),
    starttls: s.expected.starttls ?? 'implicit',
    weaknesses: s.weaknesses.length === 0 ? '(none)' : s.weaknesses.join(' '),
  }));
  const head = { id: 'ID', url: 'URL', tls: 'TLS', starttls: 'STARTTLS', weaknesses: 'WEAKNESSES' };
  const cols = ['id', 'url', 'tls', 'starttls'] as const;
  const width = Object.fromEntries(
    cols.map((c) => [c, Math.max(head[c].length, ...rows.map((r) => r[c].length))]),
  ) as Record<(typeof cols)[number], number>;
  const line = (r: typeof head): string => cols.map((c) => r[c].padEnd(width[c])).join('  ') + '  ' + r.weaknesses;
  const out = [`postern testbed — ${manifest.servers.length} servers, CA: ${manifest.caFile}`, '', line(head)];
  for (const [i, r] of rows.entries()) {
    out.push(line(r));
    const s = manifest.servers[i];
    if (opts.verbose === true && s !== undefined) {
      out.push(`    ${s.description} (hostname ${s.hostname})`);
      for (const v of s.expected.protocols) {
        const suites = s.expected.suites[v] ?? [];
        out.push(`    ${versionLabel(v)}: ${suites.map(suiteLabel).join(' ')}`);
      }
    }
  }
  return out.join('\n') + '\n';
}
