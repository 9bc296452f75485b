/**
 * MTA-STS policy fetch (RFC 8461 §3.3): GET https://mta-sts.<domain>/.well-known/mta-sts.txt.
 *
 * Built on node:https rather than tls plus a hand-written HTTP/1.1 client: node's parser already
 * handles chunked bodies and bounds header size (`maxHeaderSize`), and every limit the RFC asks
 * for can be imposed from outside (one timer destroys the request, the body counter destroys the
 * response). What node:https would do on its own and the RFC forbids is switched off here: the
 * host is resolved with the injected DnsClient (custom `lookup`, never getaddrinfo), a private
 * Agent (no keep-alive, no TLS session cache, no NODE_USE_ENV_PROXY proxy), no redirects (node
 * never follows them; a 3xx is a failure), no cookies, credentials or conditional requests.
 *
 * Results use the RFC 8460 §4.3.2.2 result types so TLS-RPT can report them unchanged.
 */
import { Agent, request } from 'node:https';
import type { RequestOptions } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Socket, TcpNetConnectOpts } from 'node:net';
import type { DnsClient } from '../../dns/resolver.ts';
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
}

/** RFC 8460 §4.3.2.2 result types for a policy that could not be obtained. */
export type StsFetchError = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export type StsFetchResult =
  { ok: true; policy: StsPolicy; text: string } | { ok: false; error: StsFetchError; reason: string };

export const STS_POLICY_PATH = '/.well-known/mta-sts.txt';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_USER_AGENT = 'postern-mta-sts';
/** Response head limit; a policy host has no reason to send large headers. */
const MAX_HEADER_BYTES = 16 * 1024;

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
  const port = opts.port ?? 443;

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const timedOut = (): StsFetchResult =>
    fail('sts-policy-fetch-error', `${host}: no complete answer within ${timeoutMs} ms`);
  try {
    // RFC 8461 §3.3 leaves the address lookup to the sender; postern's DnsClient, never getaddrinfo,
    // so the configured resolver (and its DNSSEC view) is the only source of addresses.
    const resolved = await Promise.race([
      opts.dns.addresses(host).then(
        (a) => ({ ok: true as const, addrs: a }),
        (e: unknown) => ({ ok: false as const, why: e instanceof Error ? e.message : String(e) }),
      ),
      deadline,
    ]);
    if (resolved === 'timeout') return timedOut();
    if (!resolved.ok) return fail('sts-policy-fetch-error', `cannot resolve ${host}: ${resolved.why}`);
    const addrs = resolved.addrs.filter((a) => isIP(a) !== 0);
    if (addrs.length === 0) return fail('sts-policy-fetch-error', `${host} has no address`);

    const get = getPolicy(host, port, addrs, opts);
    const r = await Promise.race([get.result, deadline]);
    if (r === 'timeout') {
      get.abort();
      return timedOut();
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** One GET; `abort` tears the connection down (used by the overall deadline). */
function getPolicy(
  host: string,
  port: number,
  addrs: string[],
  opts: StsFetchOptions,
): { result: Promise<StsFetchResult>; abort: () => void } {
  const agent = new Agent({ keepAlive: false, maxSockets: 1, maxCachedSessions: 0 });
  let socket: TLSSocket | null = null;
  let settle: (r: StsFetchResult) => void = () => undefined;
  const result = new Promise<StsFetchResult>((resolve) => {
    settle = resolve;
  });
  let done = false;
  const finish = (r: StsFetchResult): void => {
    if (done) return;
    done = true;
    req.destroy();
    agent.destroy();
    settle(r);
  };

  // Hands node's connect exactly the addresses our resolver gave (all of them, in order, so
  // autoSelectFamily can fall back from one to the next); the host name stays the request's
  // host, so SNI, the Host header and the RFC 6125 identity check all use mta-sts.<domain>.
  const lookup = (
    _name: string,
    o: LookupOptions,
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    if (o.all === true)
      cb(
        null,
        addrs.map((address) => ({ address, family: isIP(address) })),
      );
    else cb(null, addrs[0] ?? '', isIP(addrs[0] ?? ''));
  };

  const options: RequestOptions & Pick<TcpNetConnectOpts, 'autoSelectFamily'> = {
    host,
    port,
    path: STS_POLICY_PATH,
    method: 'GET',
    servername: host,
    agent,
    lookup,
    // Passed through to net.connect: try every address, not just the first.
    autoSelectFamily: true,
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    maxHeaderSize: MAX_HEADER_BYTES,
    insecureHTTPParser: false,
    // Identity encoding only, no caching (RFC 8461 §3.3: HTTP caching MUST NOT be used), no
    // cookies or credentials of any kind.
    headers: {
      'User-Agent': opts.userAgent ?? DEFAULT_USER_AGENT,
      Accept: '*/*',
      'Accept-Encoding': 'identity',
      'Cache-Control': 'no-cache',
      Connection: 'close',
    },
  };
  const req = request(options);

  req.on('socket', (s: Socket) => {
    socket = s as TLSSocket;
  });
  req.on('error', (e: NodeJS.ErrnoException) => {
    // node sets authorizationError before destroying a socket whose chain or name failed
    // verification (rejectUnauthorized): that is RFC 8460's sts-webpki-invalid, every other
    // connection-level failure is a fetch error.
    const authErr = socket?.authorizationError;
    if (authErr !== undefined && authErr !== null) {
      finish(
        fail('sts-webpki-invalid', `${host}: certificate not valid: ${e.message.replace(/; if the root CA .*$/, '')}`),
      );
      return;
    }
    if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      finish(fail('sts-webpki-invalid', `${host}: ${e.message}`));
      return;
    }
    finish(fail('sts-policy-fetch-error', `${host}: ${e.message}${e.code ? ` (${e.code})` : ''}`));
  });
  req.on('response', (res: IncomingMessage) => onResponse(host, res, finish));
  req.end();

  return {
    result,
    abort: () => finish(fail('sts-policy-fetch-error', `${host}: aborted`)),
  };
}

function onResponse(host: string, res: IncomingMessage, finish: (r: StsFetchResult) => void): void {
  // Errors after finish() (the teardown itself) must not go unhandled.
  res.on('error', () => undefined);
  const status = res.statusCode ?? 0;
  if (status !== 200) {
    // RFC 8461 §3.3: only 200 is valid; 3xx redirects MUST NOT be followed.
    const why =
      status >= 300 && status < 400
        ? `HTTP ${status} redirect${typeof res.headers.location === 'string' ? ` to ${res.headers.location.slice(0, 200)}` : ''} not followed (RFC 8461 §3.3)`
        : `HTTP ${status}, not 200`;
    finish(fail('sts-policy-fetch-error', `${host}: ${why}`));
    return;
  }
  // RFC 8461 §3.2: senders SHOULD check the media type is text/plain (parameters such as charset
  // allowed), so that HTML or images a web host lets users upload are not taken for a policy.
  const type = mediaType(res.headers['content-type']);
  if (type !== 'text/plain') {
    finish(fail('sts-policy-invalid', `${host}: media type "${type || '(none)'}", not text/plain (RFC 8461 §3.2)`));
    return;
  }
  const coding = (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (coding !== 'identity' && coding !== '') {
    finish(fail('sts-policy-fetch-error', `${host}: unrequested content-encoding "${coding.slice(0, 40)}"`));
    return;
  }
  const tooBig = (): StsFetchResult =>
    fail('sts-policy-fetch-error', `${host}: policy body larger than ${MAX_POLICY_BYTES} bytes (RFC 8461 §3.3 limit)`);
  const declared = res.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_POLICY_BYTES) {
    finish(tooBig());
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_POLICY_BYTES) {
      // Stop reading at once: the rest of the body is never buffered.
      finish(tooBig());
      return;
    }
    chunks.push(chunk);
  });
  res.on('error', (e) => finish(fail('sts-policy-fetch-error', `${host}: ${e.message}`)));
  res.on('end', () => {
    if (!res.complete) {
      finish(fail('sts-policy-fetch-error', `${host}: connection closed before the whole body arrived`));
      return;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
    } catch {
      finish(fail('sts-policy-invalid', `${host}: policy body is not UTF-8`));
      return;
    }
    const parsed = parseStsPolicy(text);
    finish(
      parsed.ok ? { ok: true, policy: parsed.policy, text } : fail('sts-policy-invalid', `${host}: ${parsed.reason}`),
    );
  });
}
