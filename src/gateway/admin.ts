/**
 * The admin endpoint: Prometheus metrics and the queue API that `postern queue` talks to.
 *
 * Plain HTTP on loopback, so its defence is in the request itself, checked in this order:
 * 1. `Host` must name this listener (its address:port or localhost:port). A DNS-rebinding page
 *    reaches 127.0.0.1 under its own name (`Host: evil.example`), and is refused here.
 * 2. No `Origin` header: browsers send one on every cross-origin and every POST/DELETE request;
 *    `postern queue`, curl and Prometheus never do. The API has no browser clients.
 * 3. `Authorization: Bearer <token>` (RFC 6750 §2.1) on everything but GET /healthz: the admin
 *    token (generated at first start, 32 random bytes, base64url, a 0600 file only the server's
 *    user can read, so other local users such as `nobody` cannot act on the queue), or for GET
 *    /metrics only, a separate read-only metrics token for Prometheus. Compared in constant time.
 * 4. GET changes nothing; POST and DELETE need `Content-Type: application/json`, which no CORS
 *    "simple request" (Fetch standard §3.2.3: text/plain, form encodings) can carry, so a forged
 *    form or `fetch(…, {mode: 'no-cors'})` cannot reach a state change even before step 2.
 * Every refusal is a typed `admin.refused` event; deletions and retries are typed events naming
 * the token and the client.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { createEventSink } from '../core/events.ts';
import type { AdminEvent, EventSink } from '../core/events.ts';
import { PosternError } from '../core/errors.ts';
import { createFileExclusive, looseMode, SECRET_MODE } from '../core/fs.ts';
export { warnLooseMode } from '../core/fs.ts';
import { isQueueId } from '../queue/sqlite.ts';
import type { RecipientState, Spool } from '../queue/types.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface AdminServer {
  address: { address: string; port: number };
  close(): Promise<void>;
}

/** The bearer tokens the endpoint accepts: `admin` for everything, `metrics` for GET /metrics only. */
export interface AdminTokens {
  admin: string;
  metrics: string | null;
}

/** GET /queue page size: default and maximum (bounded responses). */
export const QUEUE_PAGE_DEFAULT = 100;
export const QUEUE_PAGE_MAX = 1000;
/** Request bodies are not used; anything larger than this is refused unread. */
const MAX_BODY_BYTES = 4096;
const TOKEN_RE = /^[A-Za-z0-9_-]{32,512}$/;
/**
 * At most one `admin.refused` event per reason in this interval: any web page on the host can send
 * requests in a loop, and each must not cost a log line (the rest are counted in `suppressed`).
 */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

const TOKEN_HINT = 'remove the file and restart `postern serve` to generate a new token';

/**
 * Reads the token in `path`, or null when the file does not exist. Throws PosternError
 * ('admin-token') for an unreadable file (e.g. EACCES: another user's 0600 file) or bad content.
 */
export async function readToken(path: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw new PosternError('admin-token', `cannot read the admin token ${path}: ${code ?? String(e)}`, {
      hint:
        code === 'EACCES'
          ? 'the token file is readable only by the user that runs `postern serve`: run the command as that user'
          : TOKEN_HINT,
      cause: e,
    });
  }
  const token = text.trim();
  if (!TOKEN_RE.test(token))
    throw new PosternError('admin-token', `${path} does not hold an admin token (base64url, at least 32 characters)`, {
      hint: TOKEN_HINT,
    });
  return token;
}

/**
 * The token in `path`, generated when missing: 32 random bytes, base64url, in a new 0600 file
 * (created atomically and exclusively, so two starts cannot end with different tokens). A token
 * file that group or others may read is reported (`admin.file-mode`) and still used.
 */
export async function ensureToken(path: string, kind: 'admin' | 'metrics', events: EventSink): Promise<string> {
  const existing = await readToken(path);
  if (existing !== null) {
    const mode = looseMode((await stat(path)).mode);
    if (mode !== null && kind === 'admin')
      events.emit({ event: 'admin.file-mode', file: path, kind: 'admin-token', mode, fix: `chmod 600 ${path}` });
    return existing;
  }
  const token = randomBytes(32).toString('base64url');
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    if (!(await createFileExclusive(path, `${token}\n`, { mode: SECRET_MODE }))) return ensureToken(path, kind, events);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new PosternError('admin-token', `cannot create the admin token ${path}: ${why}`, {
      hint: 'set admin.tokenFile to a writable path (it defaults to admin.token in the queue directory)',
      cause: e,
    });
  }
  events.emit({ event: 'admin.token-created', file: path, kind });
  return token;
}

/** Constant-time comparison (RFC 6750 §5.3 recommends it): compare fixed-length digests. */
function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function hostLiteral(address: string): string {
  const a = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return a.includes(':') ? `[${a}]` : a;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** Reads (and discards) a small request body; false when it is larger than allowed. */
async function drainBody(req: IncomingMessage): Promise<boolean> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (!Number.isFinite(declared) || declared > MAX_BODY_BYTES) return false;
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > MAX_BODY_BYTES) return false;
  }
  return true;
}

function intParam(v: string | null, dflt: number, max: number): number | null {
  if (v === null) return dflt;
  if (!/^\d{1,9}$/.test(v)) return null;
  const n = Number(v);
  return n > max ? null : n;
}

/** Starts the admin endpoint on `address:port`. Throws PosternError('listen-failed'). */
export async function startAdmin(opts: {
  address: string;
  port: number;
  spool: Spool;
  metrics: GatewayMetrics;
  tokens: AdminTokens;
  kick(): void;
  log: Logger;
  /** Typed events (src/core/events.ts); default: logged through `log`. */
  events?: EventSink;
  /** Clock for the refusal log bound (tests). */
  now?: () => number;
}): Promise<AdminServer> {
  const { spool, metrics, tokens } = opts;
  const events = opts.events ?? createEventSink({ log: opts.log });
  let allowedHosts = new Set<string>();
  const now = opts.now ?? Date.now;
  const lastRefusal = new Map<string, { at: number; suppressed: number }>(); // keys: the fixed reasons

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://admin');
    const client = `${hostLiteral(req.socket.remoteAddress ?? '?')}:${req.socket.remotePort ?? 0}`;
    const refuse = (status: number, reason: string, error: string, headers: Record<string, string> = {}): void => {
      const t = now();
      const last = lastRefusal.get(reason);
      if (last !== undefined && t - last.at < REFUSAL_LOG_INTERVAL_MS) last.suppressed++;
      else {
        const e: AdminEvent = { event: 'admin.refused', reason, method, path: url.pathname, client };
        if (last !== undefined && last.suppressed > 0) e.suppressed = last.suppressed;
        events.emit(e);
        lastRefusal.set(reason, { at: t, suppressed: 0 });
      }
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      send(res, status, { error });
    };

    // 1. DNS rebinding: the page's own name arrives as Host. RFC 9110 §15.5.20: 421 Misdirected.
    const host = (req.headers.host ?? '').toLowerCase();
    const local = `${hostLiteral(req.socket.localAddress ?? '')}:${req.socket.localPort ?? 0}`;
    if (!allowedHosts.has(host) && host !== local)
      return refuse(421, 'host', `Host ${JSON.stringify(host)} is not this admin endpoint`);
    // 2. Browsers: any Origin at all.
    if (req.headers.origin !== undefined)
      return refuse(403, 'origin', 'requests from web pages (with an Origin header) are not accepted');

    if (url.pathname === '/healthz' && (method === 'GET' || method === 'HEAD')) return send(res, 200, { ok: true });

    // 3. The bearer token.
    const auth = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(req.headers.authorization ?? '');
    const given = auth?.[1];
    const who =
      given === undefined
        ? null
        : sameToken(given, tokens.admin)
          ? 'admin'
          : tokens.metrics !== null && sameToken(given, tokens.metrics)
            ? 'metrics'
            : null;
    if (who === null)
      return refuse(
        401,
        given === undefined ? 'no-token' : 'bad-token',
        'an admin token is required (Authorization: Bearer …; `postern queue` reads it from admin.tokenFile)',
        {
          'www-authenticate':
            given === undefined
              ? 'Bearer realm="postern-admin"'
              : 'Bearer realm="postern-admin", error="invalid_token"',
        },
      );

    if (url.pathname === '/metrics') {
      if (method !== 'GET') return refuse(405, 'method', `${method} /metrics not supported`, { allow: 'GET' });
      const counts = await spool.counts();
      for (const [state, n] of Object.entries(counts)) metrics.queue.set({ state }, n);
      return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    }
    if (who !== 'admin')
      return refuse(403, 'scope', 'the metrics token allows GET /metrics only', {
        'www-authenticate': 'Bearer realm="postern-admin", error="insufficient_scope"',
      });

    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'queue') return send(res, 404, { error: 'not found' });

    // 4. State changes: never on GET, and never from what a CORS simple request can send.
    if (method === 'POST' || method === 'DELETE') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/json')
        return refuse(415, 'content-type', `${method} needs Content-Type: application/json`);
      if (!(await drainBody(req))) return refuse(413, 'body', `request body larger than ${MAX_BODY_BYTES} bytes`);
    } else if (method !== 'GET') {
      return refuse(405, 'method', `${method} ${url.pathname} not supported`);
    }

    if (parts.length === 1 && method === 'GET') {
      const state = url.searchParams.get('state');
      const states: readonly RecipientState[] = ['queued', 'deferred', 'delivered', 'bounced'];
      const filter = states.find((s) => s === state);
      if (state !== null && filter === undefined) return send(res, 400, { error: `unknown state ${state}` });
      const limit = intParam(url.searchParams.get('limit'), QUEUE_PAGE_DEFAULT, QUEUE_PAGE_MAX);
      const offset = intParam(url.searchParams.get('offset'), 0, 1e9);
      if (limit === null || limit === 0 || offset === null)
        return send(res, 400, { error: `limit must be 1..${QUEUE_PAGE_MAX} and offset a number` });
      // One more than asked tells whether there is a next page without counting the whole queue.
      const page = await spool.list({ ...(filter ? { state: filter } : {}), limit: limit + 1, offset });
      const more = page.length > limit;
      return send(res, 200, {
        counts: await spool.counts(),
        messages: page.slice(0, limit),
        limit,
        offset,
        next: more ? offset + limit : null,
      });
    }
    if (parts.length === 2 && parts[1] === 'flush' && method === 'POST') {
      const n = await spool.retryNow();
      events.emit({ event: 'admin.queue-retry', who, client, msgId: null, recipients: n });
      opts.kick();
      return send(res, 200, { retried: n });
    }
    const id = parts[1] ?? '';
    if (!isQueueId(id)) return send(res, 400, { error: `not a queue id: ${id}` });
    if (parts.length === 2 && method === 'GET') {
      const m = await spool.get(id);
      return m ? send(res, 200, m) : send(res, 404, { error: `no message ${id}` });
    }
    if (parts.length === 2 && method === 'DELETE') {
      const found = await spool.delete(id);
      events.emit({ event: 'admin.queue-delete', who, client, msgId: id, found });
      return found ? send(res, 200, { deleted: id }) : send(res, 404, { error: `no message ${id}` });
    }
    if (parts.length === 3 && parts[2] === 'retry' && method === 'POST') {
      const n = await spool.retryNow(id);
      events.emit({ event: 'admin.queue-retry', who, client, msgId: id, recipients: n });
      opts.kick();
      return send(res, 200, { retried: n });
    }
    return send(res, 405, { error: `${method} ${url.pathname} not supported` });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      opts.log.error({ event: 'admin.error', err: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) send(res, 500, { error: 'internal error (see the server log)' });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new PosternError('listen-failed', `admin endpoint ${opts.address}:${opts.port}: ${e.code ?? e.message}`, {
          hint: 'choose another admin.port, or stop what uses it',
        }),
      ),
    );
    server.listen(opts.port, opts.address, resolve);
  });
  const a = server.address() as AddressInfo;
  allowedHosts = new Set([`${hostLiteral(a.address)}:${a.port}`, `localhost:${a.port}`]);
  // A client may leave out a default port (RFC 9110 §7.2); only port 80 is that.
  if (a.port === 80) for (const h of [...allowedHosts]) allowedHosts.add(h.replace(/:80$/, ''));
  return {
    address: { address: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The tokens for `admin` from the config, generated where missing (see {@link ensureToken}). */
export async function adminTokens(
  admin: { tokenFile: string; metricsTokenFile: string | null },
  events: EventSink,
): Promise<AdminTokens> {
  return {
    admin: await ensureToken(admin.tokenFile, 'admin', events),
    metrics: admin.metricsTokenFile === null ? null : await ensureToken(admin.metricsTokenFile, 'metrics', events),
  };
}
