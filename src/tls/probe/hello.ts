/**
 * One raw probe: connect (through the STARTTLS dialect), send one ClientHello, read what the
 * server answers, close. Everything else in the probe engine is built from this.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { NetError, PosternError, WireError } from '../../core/errors.ts';
import { openStartTls, StartTlsError } from '../starttls/index.ts';
import type { StartTlsReady } from '../starttls/index.ts';
import { ServerFlightParser } from '../wire/server-flight.ts';
import type { ServerFlight } from '../wire/server-flight.ts';
import type { Limiter } from './limiter.ts';
import type { ProbeTarget } from './types.ts';

export type HelloOutcome =
  | { kind: 'flight'; flight: ServerFlight; ready: StartTlsReady }
  /** The connection closed, reset or timed out with no TLS answer: the offer was not accepted. */
  | { kind: 'closed'; reason: string; ready: StartTlsReady }
  /** The server answered with something that is not TLS (e.g. an SMTP error line). */
  | { kind: 'not-tls'; reason: string; ready: StartTlsReady };

export interface HelloContext {
  target: ProbeTarget;
  limiter: Limiter;
  rateLimitRetries: number;
  rateLimitBackoffMs: number;
  signal?: AbortSignal;
  /** Wait for response-injected bytes after each go-ahead (ms); see StartTlsOptions. */
  injectionWindowMs?: number;
  /** Called with every dialect session opened (the first one is the STARTTLS observation). */
  onReady?: (ready: StartTlsReady) => void;
}

/** Sends `hello` (complete TLS/SSLv2 records) and returns the server's flight or how it refused. */
export async function exchangeHello(
  ctx: HelloContext,
  hello: Buffer,
  opts: { stopAfterServerHello?: boolean } = {},
): Promise<HelloOutcome> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.limiter.run(ctx.target.address, () => once(ctx, hello, opts));
    } catch (e) {
      // Politeness: a "too many connections" refusal is waited out, never mistaken for
      // "no STARTTLS" (issue 3: report as rate-limited).
      if (e instanceof StartTlsError && e.code === 'rate-limited' && attempt < ctx.rateLimitRetries) {
        await sleep(ctx.rateLimitBackoffMs * 2 ** attempt, undefined, { signal: ctx.signal });
        continue;
      }
      throw e;
    }
  }
}

async function once(ctx: HelloContext, hello: Buffer, opts: { stopAfterServerHello?: boolean }): Promise<HelloOutcome> {
  const { target } = ctx;
  const timeoutMs = target.timeoutMs ?? 10_000;
  const ready = await openStartTls({
    host: target.address,
    port: target.port,
    dialect: target.dialect,
    timeoutMs,
    ...(target.ehloName === undefined ? {} : { ehloName: target.ehloName }),
    ...(target.forceStartTls === undefined ? {} : { forceStartTls: target.forceStartTls }),
    ...(ctx.injectionWindowMs === undefined ? {} : { injectionWindowMs: ctx.injectionWindowMs }),
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
  });
  ctx.onReady?.(ready);
  const socket = ready.socket;
  const parser = new ServerFlightParser({ stopAfterServerHello: opts.stopAfterServerHello ?? false });
  return await new Promise<HelloOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: HelloOutcome | Error): void => {
      if (settled) return;
      settled = true;
      socket.removeAllListeners('data');
      socket.destroy();
      ctx.signal?.removeEventListener('abort', onAbort);
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = (): void => finish(new NetError('aborted', 'probe aborted'));
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
    const closedWith = (reason: string): void => {
      // A server that closes after sending part of a flight (e.g. ServerHello but no Done) still
      // told us which suite it picked.
      const partial = parser.partial();
      finish(partial ? { kind: 'flight', flight: partial, ready } : { kind: 'closed', reason, ready });
    };
    socket.setTimeout(timeoutMs, () => closedWith('timeout'));
    socket.on('data', (chunk: Buffer) => {
      try {
        const flight = parser.push(chunk);
        if (flight) finish({ kind: 'flight', flight, ready });
      } catch (e) {
        if (e instanceof WireError && e.code === 'wire-not-tls') finish({ kind: 'not-tls', reason: e.message, ready });
        else if (e instanceof PosternError) finish(e);
        else finish(new WireError('wire-malformed', String(e)));
      }
    });
    socket.on('end', () => closedWith('closed by server'));
    socket.on('close', () => closedWith('closed'));
    socket.on('error', (err: NodeJS.ErrnoException) => closedWith(err.code ?? err.message));
    socket.resume();
    socket.write(hello);
  });
}
