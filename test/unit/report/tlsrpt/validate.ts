/**
 * Hand-written structural validator for the RFC 8460 §4.4 JSON report, shared by the TLS-RPT
 * tests (aggregation, the durable store, the mail and HTTPS forms). It takes nothing from the
 * implementation: its lists of result types, policy types and fields are copied from the RFC
 * text, so an implementation that invents or misspells one fails here.
 */

/**
 * RFC 8460 §4.3 result types, as the RFC lists them (and §6.6 registers them with IANA).
 * §4.3.1 negotiation failures:
 */
const NEGOTIATION_RESULT_TYPES = [
  'starttls-not-supported',
  'certificate-host-mismatch',
  'certificate-expired',
  'certificate-not-trusted',
  'validation-failure',
];
/** §4.3.2.1 DANE-specific policy failures. */
const DANE_RESULT_TYPES = ['tlsa-invalid', 'dnssec-invalid', 'dane-required'];
/** §4.3.2.2 MTA-STS-specific policy failures. */
const STS_RESULT_TYPES = ['sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid'];
/** Every result type RFC 8460 defines (§4.3.3's general failure is "validation-failure" again). */
export const RFC8460_RESULT_TYPES: readonly string[] = [
  ...NEGOTIATION_RESULT_TYPES,
  ...DANE_RESULT_TYPES,
  ...STS_RESULT_TYPES,
];

/** RFC 8460 §4.4 "policy-type": "tlsa", "sts" or "no-policy-found". */
export const RFC8460_POLICY_TYPES: readonly string[] = ['tlsa', 'sts', 'no-policy-found'];
const POLICY_TYPES = RFC8460_POLICY_TYPES;
const RESULT_TYPES = RFC8460_RESULT_TYPES;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Returns a list of problems; empty means the value matches RFC 8460 §4.4. */
export function validateTlsRptJson(v: unknown): string[] {
  const errs: string[] = [];
  const fields = (o: Record<string, unknown>, where: string, required: string[], optional: string[]): void => {
    for (const k of required) if (!(k in o)) errs.push(`${where}: missing ${k}`);
    for (const k of Object.keys(o))
      if (!required.includes(k) && !optional.includes(k)) errs.push(`${where}: unknown ${k}`);
  };
  const str = (o: Record<string, unknown>, k: string, where: string): void => {
    if (k in o && (typeof o[k] !== 'string' || o[k] === '')) errs.push(`${where}.${k}: not a non-empty string`);
  };
  if (!isObj(v)) return ['report: not an object'];
  fields(v, 'report', ['organization-name', 'date-range', 'contact-info', 'report-id', 'policies'], []);
  for (const k of ['organization-name', 'contact-info', 'report-id']) str(v, k, 'report');

  const dr = v['date-range'];
  if (!isObj(dr)) errs.push('date-range: not an object');
  else {
    fields(dr, 'date-range', ['start-datetime', 'end-datetime'], []);
    const s = dr['start-datetime'];
    const e = dr['end-datetime'];
    const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
    if (typeof s !== 'string' || !rfc3339.test(s)) errs.push('start-datetime: not RFC 3339');
    if (typeof e !== 'string' || !rfc3339.test(e)) errs.push('end-datetime: not RFC 3339');
    if (typeof s === 'string' && typeof e === 'string') {
      if (!/T00:00:00Z$/.test(s)) errs.push('start-datetime: not UTC midnight');
      if (Date.parse(e) - Date.parse(s) !== 86_399_000) errs.push('date-range: not one whole UTC day');
    }
  }

  const policies = v['policies'];
  if (!Array.isArray(policies) || policies.length === 0) errs.push('policies: not a non-empty array');
  else
    policies.forEach((p: unknown, i) => {
      const w = `policies[${i}]`;
      if (!isObj(p)) return void errs.push(`${w}: not an object`);
      fields(p, w, ['policy', 'summary'], ['failure-details']);
      const pol = p['policy'];
      if (!isObj(pol)) errs.push(`${w}.policy: not an object`);
      else {
        fields(pol, `${w}.policy`, ['policy-type', 'policy-string', 'policy-domain'], ['mx-host']);
        if (!POLICY_TYPES.includes(pol['policy-type'] as string)) errs.push(`${w}.policy-type: invalid`);
        const ps = pol['policy-string'];
        if (!Array.isArray(ps) || !ps.every((x) => typeof x === 'string'))
          errs.push(`${w}.policy-string: not string[]`);
        str(pol, 'policy-domain', w);
        str(pol, 'mx-host', w);
      }
      const sum = p['summary'];
      let failTotal = -1;
      if (!isObj(sum)) errs.push(`${w}.summary: not an object`);
      else {
        fields(sum, `${w}.summary`, ['total-successful-session-count', 'total-failure-session-count'], []);
        if (!isCount(sum['total-successful-session-count'])) errs.push(`${w}: bad success count`);
        if (!isCount(sum['total-failure-session-count'])) errs.push(`${w}: bad failure count`);
        else failTotal = sum['total-failure-session-count'] as number;
      }
      const fd = p['failure-details'];
      if (fd === undefined) return;
      if (!Array.isArray(fd)) return void errs.push(`${w}.failure-details: not an array`);
      let sumFailed = 0;
      fd.forEach((d: unknown, j) => {
        const wd = `${w}.failure-details[${j}]`;
        if (!isObj(d)) return void errs.push(`${wd}: not an object`);
        fields(
          d,
          wd,
          ['result-type', 'sending-mta-ip', 'receiving-mx-hostname', 'failed-session-count'],
          ['receiving-mx-helo', 'receiving-ip', 'additional-information', 'failure-reason-code'],
        );
        if (!RESULT_TYPES.includes(d['result-type'] as string)) errs.push(`${wd}: bad result-type`);
        for (const k of [
          'sending-mta-ip',
          'receiving-mx-hostname',
          'receiving-mx-helo',
          'receiving-ip',
          'additional-information',
          'failure-reason-code',
        ]) {
          str(d, k, wd);
        }
        if (!isCount(d['failed-session-count']) || d['failed-session-count'] === 0)
          errs.push(`${wd}: bad failed-session-count`);
        else sumFailed += d['failed-session-count'] as number;
      });
      if (failTotal >= 0 && sumFailed !== failTotal) errs.push(`${w}: failure-details do not sum to the summary`);
    });
  return errs;
}
