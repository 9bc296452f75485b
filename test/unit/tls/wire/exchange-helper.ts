// Test helper: send raw hello bytes to a loopback server and parse what comes back.
import net from 'node:net';
import { ServerFlightParser } from '../../../../src/tls/wire/server-flight.ts';
import type { ServerFlight } from '../../../../src/tls/wire/server-flight.ts';

/** Connects to 127.0.0.1:port, writes `hello`, resolves with the parsed flight (or partial on close). */
export function exchange(
  port: number,
  hello: Buffer,
  opts: { timeoutMs?: number; stopAfterServerHello?: boolean } = {},
): Promise<ServerFlight | null> {
  return new Promise((resolve, reject) => {
    const parser = new ServerFlightParser({ stopAfterServerHello: opts.stopAfterServerHello ?? false });
    const sock = net.connect({ host: '127.0.0.1', port });
    let settled = false;
    const finish = (err: unknown, flight: ServerFlight | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err instanceof Error ? err : new Error('exchange failed', { cause: err }));
      else resolve(flight);
    };
    const timer = setTimeout(() => finish(new Error('exchange timed out'), null), opts.timeoutMs ?? 10_000);
    sock.on('connect', () => sock.write(hello));
    sock.on('data', (d: Buffer) => {
      try {
        const f = parser.push(d);
        if (f !== null) finish(undefined, f);
      } catch (e) {
        finish(e, null);
      }
    });
    sock.on('close', () => finish(undefined, parser.partial()));
    sock.on('error', (e) => finish(e, null));
  });
}

/** A free loopback TCP port (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
