/**
 * The one hardened HTTPS client for requests whose URL comes from DNS: MTA-STS policy fetches
 * (RFC 8461 §3.3) and TLS-RPT report POSTs (RFC 8460 §5.4). Built on node:https, whose parser
 * already handles chunked bodies and bounds header size; what it would do on its own and these
 * protocols forbid is switched off here:
 *
 * - names are resolved with the injected DnsClient (a custom `lookup`, never getaddrinfo), and the
 *   addresses handed to connect are exactly the ones checked: no second resolution can differ;
 * - private, loopback, link-local, CGNAT, multicast, unspecified and other non-global addresses
 *   (also as IPv4-mapped, NAT64 or 6to4 forms; net/address.ts) are refused unless the caller sets
 *   `allowPrivateAddresses` — a hostile record must not make postern talk to its own network;
 * - a private Agent (no keep-alive, no TLS session cache, no proxy from the environment), no
 *   redirects (node never follows them; the caller sees the 3xx), no cookies or credentials;
 * - TLS ≥ 1.2, SNI = the URL's host name, WebPKI verification (RFC 6125 / RFC 9525 name check)
 *   against node's Mozilla store or the caller's `ca`;
 * - one deadline for the whole request, DNS included, and a cap on the response body.
 */
import { Agent, request } from 'node:https';
import type { RequestOptions } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { Socket, TcpNetConnectOpts } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { DnsClient } from '../dns/resolver.ts';
import { classifyAddress } from './address.ts';

export interface HttpsRequestOptions {
  method: 'GET' | 'POST';
  /** Resolves the URL's host; its answer is the only source of addresses. */
  dns: Pick<DnsClient, 'addresses'>;
  /** Request header fields (names lower case or not); Host, Connection and Content-Length are set here. */
  headers?: Record<string, string>;
  body?: Buffer;
  /** PEM trust anchors; when given they replace node's bundled Mozilla store. */
  ca?: string[];
  /** Deadline for the whole request, DNS included. */
  timeoutMs: number;
  /** Largest response body read; more is a `too-large` failure (the rest is never buffered). */
  maxBodyBytes: number;
  /** Response head limit (default 16 KiB: these peers have no reason to send large headers). */
  maxHeaderBytes?: number;
  /** Connect to this port instead of the URL's (tests). */
  port?: number;
  /**
   * INSECURE: allow loopback, private and other non-public addresses. For tests on loopback and
   * for deployments whose policy hosts are deliberately internal; never the default.
   */
  allowPrivateAddresses?: boolean;
  /**
   * Read the body only when this says so, given status and headers (default: always). A caller
   * that decides on the head alone (e.g. a 404) avoids reading a large error page.
   */
  readBody?: (status: number, headers: IncomingHttpHeaders) => boolean;
}

export type HttpsFailureKind =
  'bad-url' | 'dns' | 'address-refused' | 'tls-verify' | 'network' | 'timeout' | 'too-large' | 'truncated';

export type HttpsResult =
  | {
      ok: true;
      status: number;
      headers: IncomingHttpHeaders;
      /** null when readBody declined it. */
      body: Buffer | null;
      /** The address connected to (one of those checked). */
      address: string | null;
    }
  | { ok: false; kind: HttpsFailureKind; reason: string };

const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;

function failure(kind: HttpsFailureKind, reason: string): HttpsResult {
  return { ok: false, kind, reason };
}

/**
 * The addresses a request to `host` may use: a literal as it stands (any inet_aton form is read
 * as the address it denotes), else the DnsClient's answer; refused when any is non-public, unless
 * allowed. Exported for tests and for callers that want the check without a request.
 */
export async function checkedAddresses(
  host: string,
  dns: Pick<DnsClient, 'addresses'>,
  allowPrivate: boolean,
): Promise<{ ok: true; addresses: string[] } | { ok: false; kind: 'dns' | 'address-refused'; reason: string }> {
  const literal = classifyAddress(host);
  let addrs: string[];
  if (literal.address !== null) addrs = [literal.address];
  else {
    try {
      addrs = (await dns.addresses(host)).filter((a) => isIP(a) !== 0);
    } catch (e) {
      return {
        ok: false,
        kind: 'dns',
        reason: `cannot resolve ${host}: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
    if (addrs.length === 0) return { ok: false, kind: 'dns', reason: `${host} has no address` };
  }
  if (!allowPrivate) {
    // One bad address refuses the host: a record that mixes in 127.0.0.1 is hostile, not unlucky.
    for (const a of addrs) {
      const c = classifyAddress(a);
      if (c.kind !== 'public') {
        const what = c.embedded === undefined ? c.kind : `${c.kind}, ${c.embedded} inside`;
        const via = literal.address === null ? `${host} resolves to ` : '';
        return { ok: false, kind: 'address-refused', reason: `${via}the non-public address ${a} (${what}) refused` };
      }
    }
  }
  return { ok: true, addresses: addrs };
}

/** One HTTPS request under the rules above. Never throws: failures come back typed, with a reason. */
export async function httpsRequest(url: string | URL, opts: HttpsRequestOptions): Promise<HttpsResult> {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return failure('bad-url', 'not a URL');
  }
  if (u.protocol !== 'https:') return failure('bad-url', 'not an https: URL');
  if (u.username !== '' || u.password !== '') return failure('bad-url', 'credentials in the URL are refused');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = opts.port ?? (u.port === '' ? 443 : Number(u.port));

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), opts.timeoutMs);
  });
  const timedOut = (): HttpsResult =>
    failure('timeout', `${host}: no complete answer within ${opts.timeoutMs} ms (timed out)`);
  try {
    const checked = await Promise.race([
      checkedAddresses(host, opts.dns, opts.allowPrivateAddresses === true),
      deadline,
    ]);
    if (checked === 'timeout') return timedOut();
    if (!checked.ok) return failure(checked.kind, checked.reason);
    const exchange = send(u, host, port, checked.addresses, opts);
    const r = await Promise.race([exchange.result, deadline]);
    if (r === 'timeout') {
      exchange.abort();
      return timedOut();
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** One request on its own Agent; `abort` tears the connection down (the overall deadline). */
function send(
  u: URL,
  host: string,
  port: number,
  addrs: string[],
  opts: HttpsRequestOptions,
): { result: Promise<HttpsResult>; abort: () => void } {
  const agent = new Agent({ keepAlive: false, maxSockets: 1, maxCachedSessions: 0 });
  let socket: TLSSocket | null = null;
  let settle: (r: HttpsResult) => void = () => undefined;
  const result = new Promise<HttpsResult>((resolve) => {
    settle = resolve;
  });
  let done = false;
  const finish = (r: HttpsResult): void => {
    if (done) return;
    done = true;
    req.destroy();
    agent.destroy();
    settle(r);
  };

  // Hands node's connect exactly the checked addresses (all of them, in order, so
  // autoSelectFamily can fall back from one to the next); the host name stays the request's, so
  // SNI, the Host header and the certificate name check all use it.
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

  const isLiteral = isIP(host) !== 0;
  const headers: Record<string, string> = {
    ...(opts.headers ?? {}),
    host: u.host,
    connection: 'close',
    ...(opts.body === undefined ? {} : { 'content-length': String(opts.body.length) }),
  };
  const options: RequestOptions & Pick<TcpNetConnectOpts, 'autoSelectFamily'> = {
    host,
    port,
    path: `${u.pathname}${u.search}`,
    method: opts.method,
    // RFC 6066 §3: no IP literals in SNI.
    ...(isLiteral ? {} : { servername: host }),
    agent,
    lookup,
    autoSelectFamily: true,
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    maxHeaderSize: opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES,
    insecureHTTPParser: false,
    headers,
  };
  const req = request(options);

  req.on('socket', (s: Socket) => {
    socket = s as TLSSocket;
  });
  req.on('error', (e: NodeJS.ErrnoException) => {
    // node sets authorizationError before destroying a socket whose chain or name failed
    // verification (rejectUnauthorized): that is a WebPKI failure, every other one is the network.
    const authErr = socket?.authorizationError;
    if ((authErr !== undefined && authErr !== null) || e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      finish(failure('tls-verify', `${host}: certificate not valid: ${e.message.replace(/; if the root CA .*$/, '')}`));
      return;
    }
    finish(failure('network', `${host}: ${e.message}${e.code ? ` (${e.code})` : ''}`));
  });
  req.on('response', (res: IncomingMessage) => onResponse(host, res, socket, opts, finish));
  req.end(opts.body);

  return { result, abort: () => finish(failure('timeout', `${host}: aborted`)) };
}

function onResponse(
  host: string,
  res: IncomingMessage,
  socket: TLSSocket | null,
  opts: HttpsRequestOptions,
  finish: (r: HttpsResult) => void,
): void {
  // Errors after finish() (the teardown itself) must not go unhandled.
  res.on('error', () => undefined);
  const status = res.statusCode ?? 0;
  const address = socket?.remoteAddress ?? null;
  if (opts.readBody !== undefined && !opts.readBody(status, res.headers)) {
    finish({ ok: true, status, headers: res.headers, body: null, address });
    return;
  }
  const tooBig = (): HttpsResult => failure('too-large', `${host}: body larger than ${opts.maxBodyBytes} bytes`);
  const declared = res.headers['content-length'];
  if (declared !== undefined && Number(declared) > opts.maxBodyBytes) {
    finish(tooBig());
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > opts.maxBodyBytes) {
      // Stop reading at once: the rest of the body is never buffered.
      finish(tooBig());
      return;
    }
    chunks.push(chunk);
  });
  res.on('error', (e) => finish(failure('network', `${host}: ${e.message}`)));
  res.on('end', () => {
    if (!res.complete) {
      finish(failure('truncated', `${host}: connection closed before the whole body arrived`));
      return;
    }
    finish({ ok: true, status, headers: res.headers, body: Buffer.concat(chunks), address });
  });
}
