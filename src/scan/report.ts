/**
 * The scan report's shape (the JSON schema of docs/scan-schema.md): one EndpointReport per scanned
 * address, the per-domain summary with its DANE, MTA-STS and TLS-RPT sections, and the ScanReport
 * around them. Types only, importing nothing from the rest of src/scan, so the modules that fill
 * in the pieces (scan.ts, domain.ts, dane.ts, mta-sts.ts, tlsrpt.ts, mail-policy.ts) and the
 * renderers depend on it and never on each other in a circle.
 */
import type { DnssecStatus } from '../dns/dnssec.ts';
import type { DaneState } from '../policy/dane/lookup.ts';
import type { StsFetchError } from '../policy/mta-sts/fetch.ts';
import type { StsMode } from '../policy/mta-sts/policy.ts';
import type { VersionName } from '../tls/wire/constants.ts';
import type { Finding } from './findings.ts';

export interface CertificateSummary {
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  keyType: string;
  keyBits: number;
  signatureAlgorithm: string;
  sha256: string;
  dnsNames: string[];
  selfSigned: boolean;
  trusted: boolean;
  hostnameMatches: boolean | null;
}

export interface EndpointReport {
  url: string;
  service: string;
  host: string;
  address: string;
  port: number;
  starttls: {
    offered: boolean;
    advertised: boolean;
    stripped: boolean;
    refusedReply: string | null;
    injectedBytes: string | null;
  } | null;
  protocols: Record<VersionName, boolean>;
  ciphers: Array<{ protocol: VersionName; code: string; name: string }>;
  serverPreference: Partial<Record<VersionName, boolean | null>>;
  groups: { tls13: string[]; tls12: string[] };
  dhBits: number[];
  certificate: CertificateSummary | null;
  chains: number;
  /**
   * Every distinct chain the server sent (e.g. RSA and ECDSA), each leaf first, base64 DER. Kept so
   * that DANE (RFC 7672 §3) can be checked against what was actually served, and so an auditor
   * can re-check the report offline. Absent in reports from before issue 5.
   */
  certificateChains?: string[][];
  negotiated: { protocol: string; cipher: string; group: string | null } | null;
  findings: Finding[];
  compliant: boolean;
  reachable: boolean;
  errors: Array<{ phase: string; code: string; message: string }>;
  stats: { connections: number; durationMs: number };
}

export interface ScanReport {
  schemaVersion: 1;
  profile: string;
  generatedAt: string;
  targets: EndpointReport[];
  /** Per-domain summaries when mail domains were scanned (weakest MX decides). */
  domains?: DomainSummary[];
}

export interface DomainSummary {
  domain: string;
  /** MX exchange names in preference order. */
  mx: string[];
  /** Every scanned endpoint compliant and no domain-level problem above `low`. */
  compliant: boolean;
  /** URL of the weakest MX endpoint (it decides the domain's verdict); null when every MX is compliant or none was scanned. */
  weakest: string | null;
  /** Address of that endpoint (an MX host may have several). */
  weakestAddress: string | null;
  findings: Finding[];
  /** DANE per MX host (RFC 7672); present when MX hosts were checked (schema: docs/scan-schema.md). */
  dane?: DaneReport;
  /** MTA-STS record, policy, coverage and MX certificates (RFC 8461). */
  mtaSts?: MtaStsReport;
  /** TLS-RPT record (RFC 8460). */
  tlsRpt?: TlsRptReport;
}

export interface MailPolicyReport {
  dane: DaneReport;
  mtaSts: MtaStsReport;
  tlsRpt: TlsRptReport;
  findings: Finding[];
}

/** What a DANE-aware sender does with one MX host: DaneState's kind (src/policy/dane/lookup.ts). */
export type DaneHostState = DaneState['kind'];

export interface DaneRecordReport {
  /** Presentation form after the owner name: "3 1 1 <hex>". */
  record: string;
  usable: boolean;
  /** Why an SMTP client ignores it (RFC 7672 §3.1.3), else null. */
  unusableReason: string | null;
  /** It matches a certificate in a chain some scanned address served (by association data only). */
  matchesServed: boolean;
}

export interface DaneAddressReport {
  address: string;
  /**
   * Every chain this address served is authenticated by the usable records (RFC 7672 §3);
   * null when not checked (no usable secure records, or no chain was captured).
   */
  match: boolean | null;
  /** The record that authenticated the first chain. */
  matched: string | null;
  /** The verifier's words: why it matched or why not. */
  reason: string | null;
}

/** How a host is prepared for the next key or certificate change (see docs/scan-schema.md). */
export interface DaneRollover {
  ready: boolean;
  /**
   * `current+next`: a usable record matches the served chain and another usable record matches
   * none of it (the pre-published next key/certificate, RFC 7671 §8.1);
   * `ee+ta`: a matching DANE-EE(3) record and a matching DANE-TA(2) record (the common
   * "3 1 1 + 2 1 1" practice: a re-key under the same CA keeps the 2 x x match, a change of CA
   * keeps the 3 1 1 match while the key stays);
   * null when not ready.
   */
  basis: 'current+next' | 'ee+ta' | null;
  reason: string;
}

export interface DaneHostReport {
  mxHost: string;
  port: number;
  /** `_<port>._tcp.<TLSA base domain>` as queried (RFC 7672 §2.2.2). */
  tlsaName: string;
  /** DNSSEC status of the MX host's A/AAAA records. */
  addressStatus: DnssecStatus;
  /** DNSSEC status of the TLSA answer; null when it was not looked up. */
  tlsaStatus: DnssecStatus | null;
  state: DaneHostState;
  records: DaneRecordReport[];
  addresses: DaneAddressReport[];
  /** null unless the state is `dane`. */
  rollover: DaneRollover | null;
  /** The resolver's words for a bogus or indeterminate answer. */
  detail: string | null;
}

export interface DaneReport {
  /** DNSSEC status of the domain's MX RRset (RFC 7672 §2.2.1: informational, DANE may apply anyway). */
  mxStatus: DnssecStatus | null;
  /** False when the resolver's AD bit is not trusted: then nothing can be `secure`. */
  validatingResolver: boolean;
  hosts: DaneHostReport[];
}

/** RFC 8460 §4.3.2.2 result types that concern the policy itself. */
export type StsPolicyResultType = StsFetchError;

/** RFC 8460 §4.3.1 (negotiation failure) result types a sender reports for one MX under an STS policy. */
export type MxTlsResultType =
  'starttls-not-supported' | 'certificate-host-mismatch' | 'certificate-expired' | 'certificate-not-trusted';

export interface MtaStsMxAddress {
  address: string;
  /** PKIX-valid for the MX name with STARTTLS working; null when the endpoint gave no answer. */
  certValid: boolean | null;
  /** What a sender would report (RFC 8460) when certValid is false. */
  failure: MxTlsResultType | null;
}

export interface MtaStsMxHost {
  host: string;
  /** Matched by one of the policy's `mx` patterns (RFC 8461 §4.1); null without a valid policy. */
  covered: boolean | null;
  addresses: MtaStsMxAddress[];
}

export interface MtaStsReport {
  record: {
    /** `_mta-sts.<domain>`. */
    name: string;
    /** A `v=STSv1` record is published; null when the lookup failed. */
    found: boolean | null;
    valid: boolean;
    id: string | null;
    /** Why the record is invalid or the lookup failed. */
    reason: string | null;
  };
  /** null when no record was found, so no policy was fetched. */
  policy: {
    url: string;
    fetched: boolean;
    valid: boolean;
    mode: StsMode | null;
    maxAge: number | null;
    mx: string[];
    /** RFC 8460 result type when the fetch or the policy failed. */
    resultType: StsPolicyResultType | null;
    reason: string | null;
  } | null;
  mx: MtaStsMxHost[];
}

export interface TlsRptReport {
  /** `_smtp._tls.<domain>`. */
  name: string;
  /** A `v=TLSRPTv1` record is published (valid or not); null when the lookup failed. */
  found: boolean | null;
  valid: boolean;
  /** Usable reporting URIs (mailto: and https: only, RFC 8460 §3). */
  rua: string[];
  /** Why the record is invalid or the lookup failed; null when valid or absent. */
  reason: string | null;
}
