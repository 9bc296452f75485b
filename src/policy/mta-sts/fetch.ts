/**
 * MTA-STS policy fetch (RFC 8461 §3.3): GET https://mta-sts.<domain>/.well-known/mta-sts.txt.
 *
 * The transport is net/https.ts, postern's one hardened HTTPS client: the host is resolved with
 * the injected DnsClient and only the checked addresses are connected to (non-public ones are
 * refused unless allowed), no redirects (a 3xx is a failure), no cookies, credentials, caching
 * or conditional requests, TLS ≥ 1.2 with WebPKI verification, one deadline and a size cap.
 * This module adds what RFC 8461 asks of the answer: status 200, text/plain, identity coding,
 * ≤ MAX_POLICY_BYTES, UTF-8, a policy that parses.
 *
 * Results use the RFC 8460 §4.3.2.2 result types so TLS-RPT can report them unchanged.
 */
import type { DnsClient } from '../../dns/resolver.ts';
import { httpsRequest } from '../../net/https.ts';
import type { HttpsResult } from '../../net/https.ts';
import { MAX_POLICY_BYTES, parseStsPolicy } from './policy.ts';
import type { StsPolicy } from './policy.ts';

export interface StsFetchOptions {
  dns: DnsClient;
  /** PEM trust anchors; default node's bundled Mozilla store (RFC 8461 §3.3: "widely deployed"). */
  ca?: string[];
  /** Bound on the whole fetch, DNS included (default 10 000 ms; RFC 8461 §3.3 suggests ≤ 1 min). */
  timeoutMs?: number;
  /** Tests only; default 443. */
  port?: number;
  userAgent?: string;
  /**
   * INSECURE: fetch from a policy host that resolves to a loopback, private or other non-public
   * address (refused by default: a hostile `_mta-sts` domain must not make postern request its own
   * network). Tests on loopback, and deliberately internal deployments, set it.
   */
  allowPrivateAddresses?: boolean;
}

/** RFC 8460 §4.3.2.2 result types for a policy that could not be obtained. */
export type StsFetchError = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export type StsFetchResult =
  { ok: true; policy: StsPolicy; text: string } | { ok: false; error: StsFetchError; reason: string };

export const STS_POLICY_PATH = '/.well-known/mta-sts.txt';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_USER_AGENT = 'postern-mta-sts';
const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/**
 * Lower-cases `domain`, drops one trailing dot and checks it is a plausible DNS name (LDH labels,
 * ≤ 253 octets, at least two labels). Returns null otherwise. Also keeps path separators and
 * other surprises out of the cache's file names.
 */
export function normalisePolicyDomain(domain: string): string | null {
  if (typeof domain !== 'string') return null;
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (d.length === 0 || d.length > 253 - 'mta-sts.'.length) return null;
  const labels = d.split('.');
  if (labels.length < 2) return null;
  return labels.every((l) => LABEL_RE.test(l)) ? d : null;
}

/** `application/x; charset=…` → `application/x` (RFC 9110 §8.3.1: type and subtype are case-insensitive). */
function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function fail(error: StsFetchError, reason: string): StsFetchResult {
  return { ok: false, error, reason };
}

/**
 * Fetch and parse the MTA-STS policy of `domain` (RFC 8461 §3.3). Never throws. Failures:
 * - `sts-webpki-invalid`: the certificate does not chain to `ca` (or the default store), is not
 *   valid for mta-sts.<domain>, or is expired (RFC 8461 §3.3, RFC 6125 DNS-ID).
 * - `sts-policy-fetch-error`: no address, connection or TLS failure, timeout, any status but 200
 *   (3xx included: redirects MUST NOT be followed), a content-coding, a body over
 *   MAX_POLICY_BYTES (the RFC's size limit is a bound on retrieval, like its timeout: no complete
 *   policy was received), or a truncated body.
 * - `sts-policy-invalid`: media type other than text/plain (RFC 8461 §3.2), body not UTF-8, or
 *   a body parseStsPolicy rejects.
 */
export async function fetchStsPolicy(domain: string, opts: StsFetchOptions): Promise<StsFetchResult> {
  const d = normalisePolicyDomain(domain);
  if (d === null) return fail('sts-policy-fetch-error', `invalid policy domain "${String(domain).slice(0, 80)}"`);
  const host = `mta-sts.${d}`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r = await httpsRequest(`https://${host}${STS_POLICY_PATH}`, {
    method: 'GET',
    dns: opts.dns,
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
    timeoutMs,
    maxBodyBytes: MAX_POLICY_BYTES,
    ...(opts.port === undefined ? {} : { port: opts.port }),
    ...(opts.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
    // Identity encoding only, no caching (RFC 8461 §3.3: HTTP caching MUST NOT be used), no
    // cookies or credentials of any kind.
    headers: {
      'User-Agent': opts.userAgent ?? DEFAULT_USER_AGENT,
      Accept: '*/*',
      'Accept-Encoding': 'identity',
      'Cache-Control': 'no-cache',
    },
    // Decide on the head first: a 404 page or an HTML upload is never read.
    readBody: (status, headers) =>
      status === 200 &&
      mediaType(headers['content-type']) === 'text/plain' &&
      ['identity', ''].includes((headers['content-encoding'] ?? 'identity').trim().toLowerCase()),
  });
  return judge(host, timeoutMs, r);
}

/** RFC 8461 §3.2–§3.3 on the transport's answer. */
function judge(host: string, timeoutMs: number, r: HttpsResult): StsFetchResult {
  if (!r.ok) {
    switch (r.kind) {
      case 'tls-verify':
        return fail('sts-webpki-invalid', r.reason);
      case 'timeout':
        return fail('sts-policy-fetch-error', `${host}: no complete answer within ${timeoutMs} ms`);
      case 'too-large':
        return fail(
          'sts-policy-fetch-error',
          `${host}: policy body larger than ${MAX_POLICY_BYTES} bytes (RFC 8461 §3.3 limit)`,
        );
      default:
        return fail('sts-policy-fetch-error', r.reason.includes(host) ? r.reason : `${host}: ${r.reason}`);
    }
  }
  const { status, headers } = r;
  if (status !== 200) {
    // RFC 8461 §3.3: only 200 is valid; 3xx redirects MUST NOT be followed.
    const why =
      status >= 300 && status < 400
        ? `HTTP ${status} redirect${typeof headers.location === 'string' ? ` to ${headers.location.slice(0, 200)}` : ''} not followed (RFC 8461 §3.3)`
        : `HTTP ${status}, not 200`;
    return fail('sts-policy-fetch-error', `${host}: ${why}`);
  }
  // RFC 8461 §3.2: senders SHOULD check the media type is text/plain (parameters such as charset
  // allowed), so that HTML or images a web host lets users upload are not taken for a policy.
  const type = mediaType(headers['content-type']);
  if (type !== 'text/plain')
    return fail('sts-policy-invalid', `${host}: media type "${type || '(none)'}", not text/plain (RFC 8461 §3.2)`);
  const coding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if ((coding !== 'identity' && coding !== '') || r.body === null)
    return fail('sts-policy-fetch-error', `${host}: unrequested content-encoding "${coding.slice(0, 40)}"`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(r.body);
  } catch {
    return fail('sts-policy-invalid', `${host}: policy body is not UTF-8`);
  }
  const parsed = parseStsPolicy(text);
  return parsed.ok
    ? { ok: true, policy: parsed.policy, text }
    : fail('sts-policy-invalid', `${host}: ${parsed.reason}`);
}
