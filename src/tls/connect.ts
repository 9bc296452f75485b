/**
 * One TCP connect with a timeout and abort support, shared by the STARTTLS dialects and the full
 * handshake. Each caller names its failures in its own typed error (StartTlsError,
 * TlsHandshakeError) through `fail`, so reports keep their stable codes.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';

export type ConnectFailure = 'net-connect' | 'net-timeout' | 'aborted';

export function connectTcp(
  host: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  fail: (code: ConnectFailure, message: string, cause?: NodeJS.ErrnoException) => Error,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(fail('aborted', 'aborted before connecting'));
      return;
    }
    const s = netConnect({ host, port });
    const done = (e: Error | null): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeListener('error', onError);
      if (e === null) resolve(s);
      else {
        s.destroy();
        reject(e);
      }
    };
    const onError = (e: NodeJS.ErrnoException): void =>
      done(fail('net-connect', `connect to ${host}:${port} failed: ${e.code ?? e.message}`, e));
    const onAbort = (): void => done(fail('aborted', 'aborted'));
    const timer = setTimeout(() => done(fail('net-timeout', `connect to ${host}:${port} timed out`)), timeoutMs);
    s.once('connect', () => done(null));
    s.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
