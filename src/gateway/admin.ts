/**
 * The admin endpoint: Prometheus metrics and the queue API that `postern queue` talks to. Bound to
 * loopback by default; it has no authentication, so it must never face the network.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { EventSink } from '../core/events.ts';
import { PosternError } from '../core/errors.ts';
import { isQueueId } from '../queue/sqlite.ts';
import type { SqliteSpool } from '../queue/sqlite.ts';
import type { RecipientState } from '../queue/types.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface AdminServer {
  address: { address: string; port: number };
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

export async function startAdmin(opts: {
  address: string;
  port: number;
  spool: SqliteSpool;
  metrics: GatewayMetrics;
  kick(): void;
  log: Logger;
  /** Typed events (src/core/events.ts); default: none. */
  events?: EventSink;
}): Promise<AdminServer> {
  const { spool, metrics } = opts;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/metrics') {
      const counts = await spool.counts();
      for (const [state, n] of Object.entries(counts)) metrics.queue.set({ state }, n);
      return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    }
    if (method === 'GET' && url.pathname === '/healthz') return send(res, 200, { ok: true });
    if (parts[0] !== 'queue') return send(res, 404, { error: 'not found' });
    if (parts.length === 1 && method === 'GET') {
      const state = url.searchParams.get('state');
      const states: readonly RecipientState[] = ['queued', 'deferred', 'delivered', 'bounced'];
      const filter = states.find((s) => s === state);
      if (state !== null && filter === undefined) return send(res, 400, { error: `unknown state ${state}` });
      return send(res, 200, {
        counts: await spool.counts(),
        messages: await spool.list(filter ? { state: filter } : {}),
      });
    }
    if (parts.length === 2 && parts[1] === 'flush' && method === 'POST') {
      const n = await spool.retryNow();
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
      return (await spool.delete(id)) ? send(res, 200, { deleted: id }) : send(res, 404, { error: `no message ${id}` });
    }
    if (parts.length === 3 && parts[2] === 'retry' && method === 'POST') {
      const n = await spool.retryNow(id);
      opts.kick();
      return send(res, 200, { retried: n });
    }
    return send(res, 405, { error: `${method} ${url.pathname} not supported` });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      opts.log.error({ event: 'admin.error', err: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) send(res, 500, { error: e instanceof Error ? e.message : String(e) });
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
  return {
    address: { address: a.address, port: a.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
