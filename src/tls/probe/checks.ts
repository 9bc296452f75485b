/**
 * Mail-relevant TLS weakness checks beyond versions and suites (issue 3): RFC 5746 secure
 * renegotiation, client-initiated renegotiation, TLS compression (CRIME), the heartbeat extension
 * and Heartbleed (CVE-2014-0160), and TLS_FALLBACK_SCSV (RFC 7507).
 *
 * Each check reuses what the enumeration already learned (which versions and suites the server
 * accepts), costs at most one connection, never completes anything it does not need, and returns
 * `null` when it does not apply (e.g. a TLS 1.3-only server) or the answer is unknown. Evidence
 * strings are safe to print: they never contain bytes the server may have leaked.
 */
import type { Socket } from 'node:net';
import type { SecureVersion, TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetError, PosternError, WireError } from '../../core/errors.ts';
import { tlsHandshake } from '../handshake.ts';
import { openStartTls, StartTlsError } from '../starttls/index.ts';
import type { StartTlsReady } from '../starttls/index.ts';
import { ALERT, CONTENT_TYPE, VERSION_CODES, alertName } from '../wire/constants.ts';
import type { VersionName } from '../wire/constants.ts';
import { encodeRecords } from '../wire/record.ts';
import { ServerFlightParser } from '../wire/server-flight.ts';
import type { ServerFlight } from '../wire/server-flight.ts';
import { formatSuiteCode } from '../wire/suites.ts';
import type { HelloFlight } from './enumerate.ts';
import { helloFor } from './enumerate.ts';
import { exchangeHello } from './hello.ts';
import type { HelloContext, HelloOutcome } from './hello.ts';

/** What the checks need from the enumeration (an EndpointProbe satisfies it). */
export interface CheckInput {
  protocols: Record<VersionName, boolean>;
  /** Accepted suites per version. */
  suites: Record<VersionName, number[]>;
}

export interface SecureRenegotiationResult {
  /** Every TLS ≤ 1.2 ServerHello carried renegotiation_info (RFC 5746 §3.6). */
  supported: boolean;
  evidence: string;
}

export interface ClientRenegotiationResult {
  /** The server completed a renegotiation we initiated (vulnerable to renegotiation DoS). */
  honoured: boolean;
  /** Protocol of the session that was renegotiated, as node reports it ('TLSv1.2', …). */
  protocol: string;
  evidence: string;
}

export interface CompressionResult {
  /** The server selected a compression method other than null(0) — CRIME class. */
  enabled: boolean;
  method: number;
  version: VersionName;
  evidence: string;
}

export interface HeartbeatResult {
  /** The ServerHello echoed the heartbeat extension (RFC 6520 §2). */
  enabled: boolean;
  /** A heartbeat request claiming more payload than it carried got an answer (CVE-2014-0160); null = not tested. */
  heartbleed: boolean | null;
  /** Size of the heartbeat response record (0 if none). The content is never read beyond its header. */
  responseBytes: number;
  version: VersionName;
  evidence: string;
}

export interface FallbackScsvResult {
  /** The server refused the fallback hello with inappropriate_fallback (RFC 7507 §3). */
  honoured: boolean;
  /** The version offered with TLS_FALLBACK_SCSV (second highest supported). */
  offered: VersionName;
  highest: VersionName;
  evidence: string;
}

/** Versions checks may offer through raw hellos, best first (TLS 1.3 has neither compression, heartbeat nor renegotiation). */
const LEGACY_TLS: readonly VersionName[] = ['TLSv1.2', 'TLSv1.1', 'TLSv1.0', 'SSLv3'];

const NODE_VERSION: Partial<Record<VersionName, SecureVersion>> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
};

/**
 * The Heartbleed probe claims this much payload but sends none. Any size shows the bug; a small
 * one limits what an unpatched server copies out of its memory (testssl.sh claims 16 KiB).
 */
export const HEARTBLEED_CLAIMED_LENGTH = 0x400;
/** Upper bound on how long the renegotiation and Heartbleed steps wait for an answer. */
const MAX_WAIT_MS = 5000;
/** Bytes read after the heartbeat request before giving up on finding its answer. */
const MAX_HEARTBEAT_READ = 64 * 1024;

function bestLegacy(input: CheckInput, from: readonly VersionName[] = LEGACY_TLS): VersionName | undefined {
  return from.find((v) => input.protocols[v] && input.suites[v].length > 0);
}

function hex(code: number): string {
  return formatSuiteCode(code);
}

function describe(o: HelloOutcome): string {
  if (o.kind !== 'flight') return o.reason;
  const f = o.flight;
  if (f.kind === 'alert') return `alert ${f.name} (${f.description})`;
  if (f.kind === 'hello')
    return `${f.hello.version ?? 'unknown version'} ServerHello, suite ${hex(f.hello.cipherSuite)}`;
  return 'SSLv2 SERVER-HELLO';
}

/**
 * RFC 5746 secure renegotiation, from the ServerHellos the enumeration already received (every
 * enumeration hello sends the empty renegotiation_info extension, SSLv3 hellos the SCSV instead,
 * RFC 5746 §3.4). TLS 1.3 removed renegotiation, so only TLS ≤ 1.2 hellos count; null if none.
 */
export function checkSecureRenegotiation(flights: readonly HelloFlight[]): SecureRenegotiationResult | null {
  const legacy = flights.filter((f) => f.hello.version !== null && f.hello.version !== 'TLSv1.3');
  if (legacy.length === 0) return null;
  const lacking = legacy.find((f) => !f.hello.secureRenegotiation);
  if (lacking !== undefined) {
    return {
      supported: false,
      evidence: `${lacking.hello.version ?? '?'} ServerHello (suite ${hex(lacking.hello.cipherSuite)}) has no renegotiation_info although the ClientHello signalled RFC 5746`,
    };
  }
  return {
    supported: true,
    evidence: `renegotiation_info echoed in all ${legacy.length} TLS ≤ 1.2 ServerHellos`,
  };
}

/**
 * TLS compression (CRIME): offer DEFLATE(1) before null(0) (RFC 3749) with the suites the server
 * accepts at its best TLS ≤ 1.2 version. One connection.
 */
export async function checkCompression(ctx: HelloContext, input: CheckInput): Promise<CompressionResult | null> {
  const version = bestLegacy(input);
  if (version === undefined) return null;
  const hello = helloFor(version, input.suites[version], ctx.target, { compressionMethods: [1, 0] });
  const outcome = await exchangeHello(ctx, hello, { stopAfterServerHello: true });
  if (outcome.kind !== 'flight' || outcome.flight.kind !== 'hello' || outcome.flight.hello.version !== version)
    return null;
  const method = outcome.flight.hello.compressionMethod;
  return {
    enabled: method !== 0,
    method,
    version,
    evidence:
      method === 0
        ? `offered DEFLATE and null at ${version}; the server chose null`
        : `offered DEFLATE and null at ${version}; the server chose compression method ${method}${method === 1 ? ' (DEFLATE)' : ''}`,
  };
}

/**
 * TLS_FALLBACK_SCSV (RFC 7507 §3): offer the second-highest supported version with the SCSV; a
 * conforming server answers inappropriate_fallback(86). Null unless at least two of SSLv3–TLS 1.3
 * are supported. One connection.
 */
export async function checkFallbackScsv(ctx: HelloContext, input: CheckInput): Promise<FallbackScsvResult | null> {
  const supported = (['TLSv1.3', ...LEGACY_TLS] as VersionName[]).filter(
    (v) => input.protocols[v] && input.suites[v].length > 0,
  );
  const [highest, offered] = supported;
  if (highest === undefined || offered === undefined || offered === 'TLSv1.3') return null;
  const hello = helloFor(offered, input.suites[offered], ctx.target, { scsv: { fallback: true } });
  const outcome = await exchangeHello(ctx, hello, { stopAfterServerHello: true });
  const base = { offered, highest };
  if (outcome.kind === 'flight' && outcome.flight.kind === 'alert') {
    if (outcome.flight.description === ALERT.inappropriateFallback)
      return {
        ...base,
        honoured: true,
        evidence: `${offered} hello with TLS_FALLBACK_SCSV refused: ${describe(outcome)}`,
      };
    return null; // another alert says nothing about the SCSV
  }
  if (outcome.kind === 'flight' && outcome.flight.kind === 'hello' && outcome.flight.hello.version === offered) {
    return {
      ...base,
      honoured: false,
      evidence: `server supports ${highest} but accepted a ${offered} hello carrying TLS_FALLBACK_SCSV (${describe(outcome)})`,
    };
  }
  return null;
}

/** Opens one dialect session through the limiter, waiting out "too many connections" like exchangeHello. */
async function withSession<T>(ctx: HelloContext, fn: (ready: StartTlsReady) => Promise<T>): Promise<T> {
  const { target } = ctx;
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.limiter.run(target.address, async () => {
        const ready = await openStartTls({
          host: target.address,
          port: target.port,
          dialect: target.dialect,
          timeoutMs: target.timeoutMs ?? 10_000,
          ...(target.ehloName === undefined ? {} : { ehloName: target.ehloName }),
          ...(target.forceStartTls === undefined ? {} : { forceStartTls: target.forceStartTls }),
          ...(ctx.injectionWindowMs === undefined ? {} : { injectionWindowMs: ctx.injectionWindowMs }),
          ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
        });
        ctx.onReady?.(ready);
        try {
          return await fn(ready);
        } finally {
          ready.socket.destroy();
        }
      });
    } catch (e) {
      if (e instanceof StartTlsError && e.code === 'rate-limited' && attempt < ctx.rateLimitRetries) {
        await sleep(ctx.rateLimitBackoffMs * 2 ** attempt, undefined, { signal: ctx.signal });
        continue;
      }
      throw e;
    }
  }
}

/**
 * Reads from `socket` until `step` returns a value, the peer closes, or `waitMs` pass; then
 * detaches. `step` sees every chunk and returns undefined to keep reading.
 */
function readUntil<T>(
  socket: Socket,
  waitMs: number,
  signal: AbortSignal | undefined,
  step: (chunk: Buffer) => T | undefined,
  ended: (reason: string) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (v: T | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
      socket.pause();
      if (v instanceof Error) reject(v);
      else resolve(v);
    };
    const onData = (chunk: Buffer): void => {
      try {
        const v = step(chunk);
        if (v !== undefined) finish(v);
      } catch (e) {
        finish(e instanceof PosternError ? e : new WireError('wire-malformed', String(e)));
      }
    };
    const onEnd = (): void => finish(ended('closed by server'));
    const onClose = (): void => finish(ended('closed'));
    const onError = (e: NodeJS.ErrnoException): void => finish(ended(e.code ?? e.message));
    const onAbort = (): void => finish(new NetError('aborted', 'probe aborted'));
    const timer = setTimeout(() => finish(ended('timeout')), waitMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    socket.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.resume();
  });
}

type HeartbeatAnswer =
  | { kind: 'response'; recordBytes: number; claimed: number }
  | { kind: 'alert'; name: string }
  | { kind: 'none'; reason: string };

/**
 * Finds the first heartbeat or alert record in what follows our request. Only record headers and
 * the 3-byte heartbeat header are looked at; the payload (possibly leaked memory) is dropped.
 */
function heartbeatScanner(): (chunk: Buffer) => HeartbeatAnswer | undefined {
  let pending = Buffer.alloc(0);
  let seen = 0;
  let skip = 0; // bytes of a non-interesting record still to discard
  return (chunk) => {
    seen += chunk.length;
    let data = chunk;
    if (skip > 0) {
      const n = Math.min(skip, data.length);
      skip -= n;
      data = data.subarray(n);
    }
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 5) {
      const type = pending[0] as number;
      const len = pending.readUInt16BE(3);
      if (type < 20 || type > 24 || pending[1] !== 3)
        return { kind: 'none', reason: 'non-TLS bytes after the request' };
      if (type === CONTENT_TYPE.heartbeat) {
        if (pending.length < 8) break;
        // HeartbeatMessage: type (1 = request, 2 = response), uint16 payload_length (RFC 6520 §4).
        if (pending[5] === 2) return { kind: 'response', recordBytes: len, claimed: pending.readUInt16BE(6) };
      } else if (type === CONTENT_TYPE.alert) {
        if (pending.length < 7) break;
        return { kind: 'alert', name: alertName(pending[6] as number) };
      }
      // Anything else (a stray handshake record, a heartbeat request): skip it unread.
      const rest = 5 + len;
      if (pending.length >= rest) pending = pending.subarray(rest);
      else {
        skip = rest - pending.length;
        pending = Buffer.alloc(0);
      }
    }
    return seen > MAX_HEARTBEAT_READ ? { kind: 'none', reason: `no heartbeat answer in ${seen} bytes` } : undefined;
  };
}

/**
 * Heartbeat extension and Heartbleed, in one connection. The ClientHello offers heartbeat
 * (RFC 6520 §2) at the best TLS 1.0–1.2 version; if the ServerHello echoes it, then — right after
 * the ServerHelloDone, before any key exchange, as testssl.sh does — we send a HeartbeatRequest
 * whose payload_length claims HEARTBLEED_CLAIMED_LENGTH bytes but carries none, followed by a
 * close_notify so a patched server (which must discard it silently, RFC 6520 §4) ends the
 * connection instead of leaving us to time out. An unpatched OpenSSL 1.0.1a–f answers first with
 * a heartbeat response that size, copied from its memory. Only its header is read.
 */
export async function checkHeartbeat(ctx: HelloContext, input: CheckInput): Promise<HeartbeatResult | null> {
  const version = bestLegacy(input, ['TLSv1.2', 'TLSv1.1', 'TLSv1.0']); // SSLv3 hellos carry no extensions
  if (version === undefined) return null;
  const timeoutMs = ctx.target.timeoutMs ?? 10_000;
  const hello = helloFor(version, input.suites[version], ctx.target, { heartbeat: true });
  return await withSession(ctx, async (ready) => {
    const socket = ready.socket;
    socket.on('error', () => undefined); // errors end readUntil; never crash on a late reset
    const parser = new ServerFlightParser();
    socket.write(hello);
    const flight = await readUntil<ServerFlight | null>(
      socket,
      timeoutMs,
      ctx.signal,
      (chunk) => {
        try {
          return parser.push(chunk) ?? undefined;
        } catch (e) {
          if (e instanceof WireError) return null;
          throw e;
        }
      },
      () => parser.partial(),
    );
    if (flight === null || flight.kind !== 'hello' || flight.hello.version !== version) return null;
    if (!flight.hello.heartbeat) {
      return {
        enabled: false,
        heartbleed: false,
        responseBytes: 0,
        version,
        evidence: `${version} ServerHello does not echo the heartbeat extension`,
      };
    }
    const base = { enabled: true, version };
    if (!flight.helloDone || socket.destroyed) {
      return {
        ...base,
        heartbleed: null,
        responseBytes: 0,
        evidence: 'heartbeat echoed; flight incomplete, Heartbleed not tested',
      };
    }
    const rv = Math.min(VERSION_CODES[version], VERSION_CODES['TLSv1.2']);
    const request = encodeRecords(
      CONTENT_TYPE.heartbeat,
      rv,
      Buffer.from([1, HEARTBLEED_CLAIMED_LENGTH >> 8, HEARTBLEED_CLAIMED_LENGTH & 0xff]),
    );
    const closeNotify = encodeRecords(CONTENT_TYPE.alert, rv, Buffer.from([1, 0]));
    socket.write(Buffer.concat([request, closeNotify]));
    const answer = await readUntil<HeartbeatAnswer>(
      socket,
      Math.min(timeoutMs, MAX_WAIT_MS),
      ctx.signal,
      heartbeatScanner(),
      (reason) => ({ kind: 'none', reason }),
    );
    const sent = `a 3-byte heartbeat request claiming ${HEARTBLEED_CLAIMED_LENGTH} bytes`;
    if (answer.kind === 'response') {
      // A request whose payload_length exceeds its length must be discarded (RFC 6520 §4); any
      // answer carrying more than the 3-byte header and 16 bytes of padding is memory.
      const vulnerable = answer.claimed > 0 || answer.recordBytes > 3 + 16;
      return {
        ...base,
        heartbleed: vulnerable,
        responseBytes: answer.recordBytes,
        evidence: `${sent} got a ${answer.recordBytes}-byte heartbeat response (payload_length ${answer.claimed})`,
      };
    }
    return {
      ...base,
      heartbleed: false,
      responseBytes: 0,
      evidence: `heartbeat echoed; ${sent} got no heartbeat response (${answer.kind === 'alert' ? `alert ${answer.name}` : answer.reason})`,
    };
  });
}

/**
 * Client-initiated renegotiation (TLS ≤ 1.2): complete a handshake through node:tls capped at
 * TLS 1.2, then renegotiate once. Completing it means the server lets any client make it redo
 * the expensive side of a handshake at will (BSI TR-02102-2 and NCSC-NL: refuse). A refusal is
 * an alert (OpenSSL 3 sends no_renegotiation) or a close. One connection; a handshake that fails
 * throws (TlsHandshakeError), and no answer within the wait is unknown (null).
 */
export async function checkClientRenegotiation(
  ctx: HelloContext,
  input: CheckInput,
): Promise<ClientRenegotiationResult | null> {
  const versions = (['TLSv1.0', 'TLSv1.1', 'TLSv1.2'] as const).filter((v) => input.protocols[v]);
  const lowest = versions[0];
  if (lowest === undefined) return null;
  const timeoutMs = ctx.target.timeoutMs ?? 10_000;
  const { target } = ctx;
  return await withSession(ctx, async (ready) => {
    const { tlsSocket } = await tlsHandshake({
      socket: ready.socket,
      host: target.address,
      port: target.port,
      ...(target.servername === undefined ? {} : { servername: target.servername }),
      ...(NODE_VERSION[lowest] === undefined ? {} : { minVersion: NODE_VERSION[lowest] }),
      maxVersion: 'TLSv1.2',
      ciphers: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0',
      captureChain: false,
      timeoutMs,
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
    try {
      const protocol = tlsSocket.getProtocol() ?? 'unknown';
      if (protocol === 'TLSv1.3') return null;
      return await renegotiateOnce(tlsSocket, protocol, Math.min(timeoutMs, MAX_WAIT_MS));
    } finally {
      tlsSocket.destroy();
    }
  });
}

function renegotiateOnce(
  tlsSocket: TLSSocket,
  protocol: string,
  waitMs: number,
): Promise<ClientRenegotiationResult | null> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: ClientRenegotiationResult | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      tlsSocket.removeListener('error', onError);
      tlsSocket.removeListener('close', onClose);
      resolve(r);
    };
    const refused = (why: string): void => done({ honoured: false, protocol, evidence: `${protocol}: ${why}` });
    const onError = (e: NodeJS.ErrnoException): void => {
      const code = e.code ?? e.message;
      refused(
        code === 'ERR_SSL_NO_RENEGOTIATION'
          ? 'server refused client-initiated renegotiation (alert no_renegotiation)'
          : `renegotiation failed (${code})`,
      );
    };
    const onClose = (): void => refused('server closed the connection on the renegotiation attempt');
    const timer = setTimeout(() => done(null), waitMs);
    tlsSocket.on('error', onError);
    tlsSocket.once('close', onClose);
    tlsSocket.resume(); // drain any application data (e.g. an implicit-TLS greeting)
    const started = tlsSocket.renegotiate({ rejectUnauthorized: false }, (err) => {
      if (err) onError(err);
      else
        done({ honoured: true, protocol, evidence: `${protocol}: server completed a client-initiated renegotiation` });
    });
    if (!started) done(null);
  });
}
