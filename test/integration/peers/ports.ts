import { createServer, connect } from 'node:net';
import { PosternError, NetError } from '../../../src/core/errors.ts';

/** Refuse anything but loopback: the harness must never reach another address. */
export function assertLoopback(host: string): void {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) && host !== '::1') {
    throw new PosternError('peer-not-loopback', `peer harness host ${host} is not a loopback address`);
  }
}

/** Ask the kernel for a free TCP port on `host` (bind to port 0, read it back, release it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  assertLoopback(host);
  return await new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new NetError('net-no-port', 'no port assigned'))));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolve once a TCP connect to host:port succeeds; reject with NetError after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  await waitForBanner(host, port, null, timeoutMs);
}

/**
 * Wait until host:port accepts a connection and, when `prefix` is given, its first line starts
 * with it (e.g. '220 ' for SMTP, '* OK' for IMAP). Retries connection refusals and early closes
 * until `timeoutMs` has passed. Returns the first line (or '' without a prefix).
 */
export async function waitForBanner(
  host: string,
  port: number,
  prefix: string | null,
  timeoutMs: number,
): Promise<string> {
  assertLoopback(host);
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    const remaining = Math.max(1, deadline - Date.now());
    const res = await tryOnce(host, port, prefix, Math.min(remaining, 5000));
    if (res.ok) return res.line;
    last = res.reason;
    await sleep(100);
  }
  throw new NetError('net-timeout', `${host}:${port} not ready within ${timeoutMs} ms (${last})`);
}

function tryOnce(
  host: string,
  port: number,
  prefix: string | null,
  timeoutMs: number,
): Promise<{ ok: true; line: string } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let buf = '';
    let done = false;
    const finish = (r: { ok: true; line: string } | { ok: false; reason: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: 'timeout' }), timeoutMs);
    sock.setEncoding('latin1');
    sock.once('error', (e) => finish({ ok: false, reason: e.message }));
    sock.once('close', () => finish({ ok: false, reason: 'closed before banner' }));
    sock.once('connect', () => {
      if (prefix === null) finish({ ok: true, line: '' });
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) finish({ ok: false, reason: 'banner line too long' });
        return;
      }
      const line = buf.slice(0, nl).replace(/\r$/, '');
      if (prefix !== null && line.startsWith(prefix)) finish({ ok: true, line });
      else finish({ ok: false, reason: `unexpected banner ${JSON.stringify(line.slice(0, 80))}` });
    });
  });
}
