/**
 * A local HTTPS server on loopback that plays the MTA-STS policy hosts of many domains at once:
 * one listener, one certificate per SNI name, one scripted response per Host. Tests publish
 * `mta-sts.<domain> A 127.0.0.1` in a local DNS server (or a fake DnsClient) and fetch with
 * `port` = this server's port. Certificates come from a private test CA (`ca`, for
 * StsFetchOptions.ca); a host can instead get a certificate for another name, one from a second
 * CA nobody trusts, or an expired one. Counts requests per host so cache tests can prove that no
 * fetch happened.
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { PosternError } from '../../../src/core/errors.ts';
import { makeCert, makeKeys } from '../../helpers/certs.ts';
import type { TestCert } from '../../helpers/certs.ts';
import { assertLoopback } from './ports.ts';

export type PolicyHostCert = 'valid' | 'wrong-name' | 'untrusted' | 'expired';

export interface PolicyHostResponse {
  /** Default 200. */
  status?: number;
  /** Default `content-type: text/plain; charset=utf-8` (unless given here, in any case). */
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Answer 301 with this Location instead. */
  redirect?: string;
  /** Wait this long before sending the response head (a slow policy host). */
  delayMs?: number;
  /** Send the body in 1 KiB chunks (chunked transfer coding, no Content-Length). */
  chunked?: boolean;
  /** Send the head and part of the body, then never finish. */
  stall?: boolean;
  /** Default 'valid': a certificate from the test CA for the host name. */
  cert?: PolicyHostCert;
}

export interface RecordedRequest {
  host: string;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

export interface HttpsPolicyServer {
  host: string;
  port: number;
  /** PEM of the CA the 'valid' certificates chain to (pass as StsFetchOptions.ca). */
  ca: string;
  /** Serve `response` for host `name` (e.g. mta-sts.example.test); replaces an earlier one. */
  route(name: string, response: PolicyHostResponse): Promise<void>;
  /** Requests received for `name` so far. */
  count(name: string): number;
  requests: RecordedRequest[];
  stop(): Promise<void>;
}

/** RFC 8461 §3.2 policy text, for tests. */
export function policyText(mode: 'enforce' | 'testing' | 'none', mx: string[], maxAge: number): string {
  return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');
}

/** Starts the server on host:<free port> (default 127.0.0.1). */
export async function startHttpsPolicyServer(opts: { host?: string } = {}): Promise<HttpsPolicyServer> {
  const host = opts.host ?? '127.0.0.1';
  assertLoopback(host);
  const DAY = 86_400_000;
  const [ca, otherCa, keys] = await Promise.all([
    makeCert({ subject: 'CN=postern MTA-STS test CA', isCA: true }),
    makeCert({ subject: 'CN=untrusted test CA', isCA: true }),
    makeKeys('p256'),
  ]);
  const routes = new Map<string, PolicyHostResponse>();
  const contexts = new Map<string, SecureContext>();
  const counts = new Map<string, number>();
  const requests: RecordedRequest[] = [];

  async function leaf(name: string, kind: PolicyHostCert): Promise<TestCert> {
    switch (kind) {
      case 'valid':
        return makeCert({ subject: `CN=${name}`, dnsNames: [name], issuer: ca, keys });
      case 'wrong-name':
        return makeCert({ subject: 'CN=other.invalid', dnsNames: ['other.invalid'], issuer: ca, keys });
      case 'untrusted':
        return makeCert({ subject: `CN=${name}`, dnsNames: [name], issuer: otherCa, keys });
      case 'expired':
        return makeCert({
          subject: `CN=${name}`,
          dnsNames: [name],
          issuer: ca,
          keys,
          notBefore: new Date(Date.now() - 10 * DAY),
          notAfter: new Date(Date.now() - DAY),
        });
    }
  }

  const fallback = await leaf('unknown.invalid', 'valid');
  const server: Server = createServer({
    cert: fallback.pem,
    key: fallback.keyPem,
    SNICallback: (servername, cb) => cb(null, contexts.get(servername.toLowerCase())),
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const name = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
    requests.push({ host: name, method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    const r = routes.get(name);
    if (r === undefined || req.url !== '/.well-known/mta-sts.txt') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    const respond = (): void => {
      if (res.destroyed) return;
      if (r.redirect !== undefined) {
        res.writeHead(301, { location: r.redirect, 'content-type': 'text/plain' }).end('moved\n');
        return;
      }
      const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', ...r.headers };
      const body = r.body ?? '';
      res.writeHead(r.status ?? 200, headers);
      if (r.stall === true) {
        res.write(typeof body === 'string' ? body.slice(0, 10) : body.subarray(0, 10));
        return;
      }
      if (r.chunked === true) {
        const buf = Buffer.from(body);
        for (let i = 0; i < buf.length && !res.destroyed; i += 1024) res.write(buf.subarray(i, i + 1024));
        res.end();
        return;
      }
      res.end(body);
    };
    if (r.delayMs !== undefined) setTimeout(respond, r.delayMs).unref();
    else respond();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new PosternError('peer-start-failed', 'no port assigned');

  return {
    host,
    port: addr.port,
    ca: ca.pem,
    async route(name, response) {
      const n = name.toLowerCase();
      const c = await leaf(n, response.cert ?? 'valid');
      contexts.set(n, createSecureContext({ cert: c.pem, key: c.keyPem }));
      routes.set(n, response);
    },
    count: (name) => counts.get(name.toLowerCase()) ?? 0,
    requests,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
