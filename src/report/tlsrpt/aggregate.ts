/**
 * In-memory TLS-RPT aggregation (RFC 8460 §4): counts sessions per policy domain and UTC day and
 * renders one report per policy domain per day in the JSON shape of RFC 8460 §4.4.
 */
import { PosternError } from '../../core/errors.ts';
import { POLICY_TYPES, RESULT_TYPES } from '../../policy/tlsrpt.ts';
import type { PolicyType, ResultType, TlsRptPolicy } from '../../policy/tlsrpt.ts';

// moved: import these from '../../policy/tlsrpt.ts' (shim kept while the issue 9 branches merge; delete after).
export { POLICY_TYPES, RESULT_TYPES } from '../../policy/tlsrpt.ts';
export type { PolicyType, ResultType, TlsRptPolicy } from '../../policy/tlsrpt.ts';

export interface TlsRptSession {
  policyDomain: string;
  policy: TlsRptPolicy;
  /** When the session happened; defaults to the aggregator's clock. Only its UTC day matters. */
  day?: Date;
}

export interface TlsRptFailure extends TlsRptSession {
  resultType: ResultType;
  sendingMtaIp: string;
  receivingMxHostname: string;
  receivingMxHelo?: string;
  receivingIp?: string;
  /** A URI pointing to more information (RFC 8460 §4.3 additional-information). */
  additionalInformation?: string;
  failureReasonCode?: string;
}

export interface TlsRptReportOptions {
  organizationName: string;
  contactInfo: string;
  /** Prefixed to `<YYYY-MM-DD>_<policy-domain>` to form each report-id. */
  reportIdPrefix: string;
}

/** RFC 8460 §4.4 failure-details entry, field names exactly as in the RFC. */
export interface TlsRptFailureDetailJson {
  'result-type': ResultType;
  'sending-mta-ip': string;
  'receiving-mx-hostname': string;
  'receiving-mx-helo'?: string;
  'receiving-ip'?: string;
  'failed-session-count': number;
  'additional-information'?: string;
  'failure-reason-code'?: string;
}

/** RFC 8460 §4.4 policies[] entry. */
export interface TlsRptPolicyJson {
  policy: {
    'policy-type': PolicyType;
    'policy-string': string[];
    'policy-domain': string;
    'mx-host'?: string;
  };
  summary: {
    'total-successful-session-count': number;
    'total-failure-session-count': number;
  };
  'failure-details'?: TlsRptFailureDetailJson[];
}

/** RFC 8460 §4.4 report object. */
export interface TlsRptReportJson {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: TlsRptPolicyJson[];
}

/** One finished report: one policy domain, one UTC day. `JSON.stringify` yields RFC 8460 §4.4. */
export class TlsRptReport {
  readonly policyDomain: string;
  /** 00:00:00Z of the reported day. */
  readonly start: Date;
  /** 23:59:59Z of the reported day (RFC 8460 §4.4 example uses an inclusive end second). */
  readonly end: Date;
  readonly #json: TlsRptReportJson;

  constructor(policyDomain: string, start: Date, json: TlsRptReportJson) {
    this.policyDomain = policyDomain;
    this.start = new Date(start.getTime());
    this.end = new Date(start.getTime() + DAY_MS - 1000);
    this.#json = json;
  }

  get reportId(): string {
    return this.#json['report-id'];
  }

  /** A deep copy of the RFC 8460 §4.4 object (callers may mutate it freely). */
  toJSON(): TlsRptReportJson {
    return structuredClone(this.#json);
  }
}

const DAY_MS = 86_400_000;

interface PolicyBucket {
  policy: TlsRptPolicy;
  success: number;
  failures: Map<string, { detail: Omit<TlsRptFailureDetailJson, 'failed-session-count'>; count: number }>;
}

/**
 * The normalised identity of a session's (UTC day, policy domain, applied policy) bucket. Shared by
 * {@link TlsRptAggregator} and the durable store (store.ts) so both group sessions identically.
 */
export interface TlsRptBucketKey {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** Lower case, no trailing dot. */
  policyDomain: string;
  /** Identity of the applied policy within the day and domain. */
  policyKey: string;
  /** A copy of the applied policy. */
  policy: TlsRptPolicy;
}

/** Validates a session and derives its bucket; `now` supplies the day when `session.day` is absent. */
export function tlsRptBucketKey(session: TlsRptSession, now: () => Date): TlsRptBucketKey {
  const policyDomain = normalizeDomain(session.policyDomain);
  if (policyDomain === '') throw new PosternError('tlsrpt-policy-domain', 'empty TLS-RPT policy domain');
  if (!(POLICY_TYPES as readonly string[]).includes(session.policy.type)) {
    throw new PosternError('tlsrpt-policy-type', `unknown TLS-RPT policy-type "${String(session.policy.type)}"`);
  }
  const day = dayKey(session.day ?? now());
  // A policy change during the day (e.g. a new MTA-STS policy id) yields a separate policies[]
  // entry, because each entry describes one applied policy (RFC 8460 §4.3).
  const policyKey = JSON.stringify([session.policy.type, session.policy.strings, session.policy.mxHost ?? null]);
  const policy: TlsRptPolicy = { type: session.policy.type, strings: [...session.policy.strings] };
  if (session.policy.mxHost !== undefined) policy.mxHost = session.policy.mxHost;
  return { day, policyDomain, policyKey, policy };
}

/** A failure's RFC 8460 §4.4 detail (without its count) and the key under which identical ones merge. */
export interface TlsRptFailureKey {
  key: string;
  detail: Omit<TlsRptFailureDetailJson, 'failed-session-count'>;
}

/** Validates a failure's result type and derives its merge key (RFC 8460 §4.4 failure-details). */
export function tlsRptFailureKey(failure: TlsRptFailure): TlsRptFailureKey {
  if (!(RESULT_TYPES as readonly string[]).includes(failure.resultType)) {
    throw new PosternError('tlsrpt-result-type', `unknown TLS-RPT result-type "${String(failure.resultType)}"`);
  }
  const detail: Omit<TlsRptFailureDetailJson, 'failed-session-count'> = {
    'result-type': failure.resultType,
    'sending-mta-ip': failure.sendingMtaIp,
    'receiving-mx-hostname': normalizeDomain(failure.receivingMxHostname),
  };
  if (failure.receivingMxHelo !== undefined) detail['receiving-mx-helo'] = failure.receivingMxHelo;
  if (failure.receivingIp !== undefined) detail['receiving-ip'] = failure.receivingIp;
  if (failure.additionalInformation !== undefined) detail['additional-information'] = failure.additionalInformation;
  if (failure.failureReasonCode !== undefined) detail['failure-reason-code'] = failure.failureReasonCode;
  const key = JSON.stringify([
    detail['result-type'],
    detail['sending-mta-ip'],
    detail['receiving-mx-hostname'],
    detail['receiving-mx-helo'] ?? null,
    detail['receiving-ip'] ?? null,
    detail['additional-information'] ?? null,
    detail['failure-reason-code'] ?? null,
  ]);
  return { key, detail };
}

function checkCount(count: number, min: number): void {
  if (!Number.isSafeInteger(count) || count < min) {
    throw new PosternError('tlsrpt-count', `TLS-RPT session count must be an integer >= ${min}, got ${count}`);
  }
}

/** Aggregates TLS session outcomes by (UTC day, policy domain, applied policy). */
export class TlsRptAggregator {
  readonly #now: () => Date;
  // day (YYYY-MM-DD) -> policy domain -> policy key -> bucket
  readonly #days = new Map<string, Map<string, Map<string, PolicyBucket>>>();

  constructor(options: { now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * Count one session that negotiated TLS and satisfied the applied policy. `count` adds several at
   * once (the durable store replays its totals this way); 0 only registers the applied policy.
   */
  recordSuccess(session: TlsRptSession, count = 1): void {
    checkCount(count, 0);
    this.#bucket(session).success += count;
  }

  /** Count one failed session (or `count` of them); identical details merge into one failed-session-count. */
  recordFailure(failure: TlsRptFailure, count = 1): void {
    checkCount(count, 1);
    const { key, detail } = tlsRptFailureKey(failure);
    const bucket = this.#bucket(failure);
    const existing = bucket.failures.get(key);
    if (existing) existing.count += count;
    else bucket.failures.set(key, { detail, count });
  }

  /** Policy domains with data for the UTC day containing `day`, sorted. */
  domains(day: Date): string[] {
    return [...(this.#days.get(dayKey(day))?.keys() ?? [])].sort();
  }

  /** UTC days (YYYY-MM-DD) with data, sorted. */
  days(): string[] {
    return [...this.#days.keys()].sort();
  }

  /** One report per policy domain for the UTC day containing `day`, sorted by policy domain. */
  reports(day: Date, options: TlsRptReportOptions): TlsRptReport[] {
    const key = dayKey(day);
    const start = new Date(`${key}T00:00:00Z`);
    const byDomain = this.#days.get(key);
    if (!byDomain) return [];
    const out: TlsRptReport[] = [];
    for (const domain of [...byDomain.keys()].sort()) {
      const buckets = byDomain.get(domain);
      if (!buckets) continue;
      const policies: TlsRptPolicyJson[] = [];
      for (const b of buckets.values()) {
        const details = [...b.failures.values()].map(({ detail, count }) => ({
          ...detail,
          'failed-session-count': count,
        }));
        const entry: TlsRptPolicyJson = {
          policy: {
            'policy-type': b.policy.type,
            'policy-string': [...b.policy.strings],
            'policy-domain': domain,
            ...(b.policy.mxHost === undefined ? {} : { 'mx-host': b.policy.mxHost }),
          },
          summary: {
            'total-successful-session-count': b.success,
            'total-failure-session-count': details.reduce((n, d) => n + d['failed-session-count'], 0),
          },
        };
        if (details.length > 0) entry['failure-details'] = details;
        policies.push(entry);
      }
      out.push(
        new TlsRptReport(domain, start, {
          'organization-name': options.organizationName,
          'date-range': { 'start-datetime': `${key}T00:00:00Z`, 'end-datetime': `${key}T23:59:59Z` },
          'contact-info': options.contactInfo,
          'report-id': `${options.reportIdPrefix}${key}_${domain}`,
          policies,
        }),
      );
    }
    return out;
  }

  /** Forget all data for the UTC day containing `day` (after its reports were sent). */
  discard(day: Date): void {
    this.#days.delete(dayKey(day));
  }

  #bucket(session: TlsRptSession): PolicyBucket {
    const { day, policyDomain, policyKey, policy } = tlsRptBucketKey(session, this.#now);
    let byDomain = this.#days.get(day);
    if (!byDomain) this.#days.set(day, (byDomain = new Map<string, Map<string, PolicyBucket>>()));
    let buckets = byDomain.get(policyDomain);
    if (!buckets) byDomain.set(policyDomain, (buckets = new Map<string, PolicyBucket>()));
    let bucket = buckets.get(policyKey);
    if (!bucket) {
      bucket = { policy, success: 0, failures: new Map() };
      buckets.set(policyKey, bucket);
    }
    return bucket;
  }
}

function normalizeDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, '');
}

/** UTC calendar day as YYYY-MM-DD; throws on an invalid Date rather than producing "NaN". */
function dayKey(d: Date): string {
  if (Number.isNaN(d.getTime())) throw new PosternError('tlsrpt-day', 'invalid date for TLS-RPT day');
  return d.toISOString().slice(0, 10);
}

/** The UTC calendar day (YYYY-MM-DD) a TLS-RPT report for `d` covers (RFC 8460 §4.1: whole UTC days). */
export function tlsRptDay(d: Date): string {
  return dayKey(d);
}
