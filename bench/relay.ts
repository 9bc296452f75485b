/**
 * A loopback TCP relay that counts connections: every tool in a benchmark reaches the server
 * through it, so "connections per audit" is measured the same way for all of them (the tools'
 * own counters, where they have one, count differently or not at all).
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

export interface CountingRelay {
  host: string;
  port: number;
  /** Connections accepted since start (or since the last reset). */
  connections(): number;
  /** Connections open right now. */
  open(): number;
  reset(): void;
  close(): Promise<void>;
}

/** Listens on `listenHost`:ephemeral and pipes each accepted connection to `targetHost`:`targetPort`. */
export async function startCountingRelay(
  targetHost: string,
  targetPort: number,
  listenHost = '127.0.0.1',
): Promise<CountingRelay> {
  if (!/^127\./.test(targetHost) || !/^127\./.test(listenHost)) throw new Error('relay is loopback-only');
  let count = 0;
  const live = new Set<Socket>();
  const server: Server = createServer({ noDelay: true }, (client) => {
    count++;
    const upstream = connect({ host: targetHost, port: targetPort, noDelay: true });
    live.add(client);
    live.add(upstream);
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => live.delete(client));
    upstream.on('close', () => live.delete(upstream));
    // Half-closes pass through (pipe ends the other side); errors end both.
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listenHost, port: 0 }, resolve);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    host: listenHost,
    port,
    connections: () => count,
    open: () => live.size,
    reset: () => {
      count = 0;
    },
    close: async () => {
      for (const s of live) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
