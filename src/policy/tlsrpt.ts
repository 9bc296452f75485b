/**
 * The RFC 8460 vocabulary the per-host policy chain reports in: result types and the policy a
 * session ran under. Defined here, below src/report, because policy/resolve.ts decides them and
 * report/tlsrpt (aggregation, JSON) only counts and prints them.
 */

/** RFC 8460 §4.3 result types (§4.3.2.1 negotiation, §4.3.2.2 policy, §4.3.2.3 general). */
export const RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
  'tlsa-invalid',
  'dnssec-invalid',
  'dane-required',
  'sts-policy-fetch-error',
  'sts-policy-invalid',
  'sts-webpki-invalid',
] as const;
export type ResultType = (typeof RESULT_TYPES)[number];

/** RFC 8460 §4.3 policy-type values. */
export const POLICY_TYPES = ['sts', 'tlsa', 'no-policy-found'] as const;
export type PolicyType = (typeof POLICY_TYPES)[number];

/** The policy applied to a session (RFC 8460 §4.3 "Policy Details"). */
export interface TlsRptPolicy {
  type: PolicyType;
  /** The policy as text lines: MTA-STS policy lines or TLSA records in presentation form. */
  strings: string[];
  /** For sts: the MX pattern that matched; for tlsa: the MX host the TLSA records are for. */
  mxHost?: string;
}
