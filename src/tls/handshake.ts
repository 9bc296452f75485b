/**
 * Full TLS handshake through node:tls (OpenSSL), reporting what was negotiated. It never fails
 * on certificate problems (rejectUnauthorized: false): it reports node's PKIX verdict and the
 * chain, and the scanner grades while the gateway's policy engine decides.
 */
import { connectTcp } from './connect.ts';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, DEFAULT_CIPHERS } from 'node:tls';
import type { ConnectionOptions, SecureVersion, TLSSocket } from 'node:tls';
import { PosternError } from '../core/errors.ts';
import { extractSentChain } from './cert/sent-chain.ts';
import { issuerWalkChain, readSession } from './session.ts';
import type { NegotiatedSession } from './session.ts';

export interface HandshakeOptions {
  /** An already connected socket (e.g. StartTlsReady.socket); else connect to host:port. */
  socket?: Socket;
  host: string;
  port: number;
  /** SNI; omit for IP literals. */
  servername?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  /** OpenSSL cipher string for TLS ≤ 1.2; legacy reach: append ':@SECLEVEL=0'. */
  ciphers?: string;
  /** TLS 1.3 suites, e.g. 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384'. */
  ciphersuites?: string;
  /** Groups (OpenSSL ecdhCurve list), e.g. 'X25519MLKEM768:X25519:P-256'. */
  groups?: string;
  sigalgs?: string;
  /** Trust anchors (PEM); default node's bundled Mozilla store. */
  ca?: string[];
  /** Smallest DHE prime accepted; default node's 1024. Scanners may lower it to reach old servers. */
  minDHSize?: number;
  /**
   * Record the server's bytes during the handshake to recover the exact sent chain (default true).
   * Costs a JS stream hop for the whole connection; false uses node's issuer walk instead.
   */
  captureChain?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Handshake failures: code 'tls-handshake-failed', 'net-timeout', 'net-connect', 'net-closed' or 'aborted'. */
export class TlsHandshakeError extends PosternError {
  /** TLS alert name if the peer sent one ('handshake_failure', 'protocol_version', …). */
  readonly alert: string | null;
  /** OpenSSL's reason string or the system error. */
  readonly reason: string | null;
  constructor(
    code: string,
    message: string,
    o: { alert?: string | null; reason?: string | null; cause?: unknown } = {},
  ) {
    super(code, message, o.cause === undefined ? {} : { cause: o.cause });
    this.name = 'TlsHandshakeError';
    this.alert = o.alert ?? null;
    this.reason = o.reason ?? null;
  }
}

const CAPTURE_LIMIT = 512 * 1024;

/** Pass-through stream that keeps a copy of inbound bytes until told to stop. */
class CaptureTap extends Duplex {
  readonly #inner: Socket;
  #chunks: Buffer[] = [];
  #size = 0;
  #capturing = true;

  constructor(inner: Socket) {
    super();
    this.#inner = inner;
    inner.on('data', (chunk: Buffer) => {
      if (this.#capturing && this.#size + chunk.length <= CAPTURE_LIMIT) {
        this.#chunks.push(chunk);
        this.#size += chunk.length;
      } else this.#capturing = false;
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (e) => this.destroy(e));
    inner.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  /** Stop recording and hand back what was captured. */
  takeCapture(): Buffer {
    this.#capturing = false;
    const b = Buffer.concat(this.#chunks);
    this.#chunks = [];
    return b;
  }

  override _read(): void {
    this.#inner.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#inner.write(chunk, (e) => cb(e ?? null));
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.#inner.end(() => cb());
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.#inner.destroy();
    cb(err);
  }
}

function abortError(): TlsHandshakeError {
  return new TlsHandshakeError('aborted', 'TLS handshake aborted');
}

/** Split node's default list so callers can replace one half (1.2 or 1.3) without losing the other. */
function cipherString(opts: HandshakeOptions): string {
  const defaults = DEFAULT_CIPHERS.split(':');
  const tls13 = opts.ciphersuites ?? defaults.filter((c) => c.startsWith('TLS_')).join(':');
  const tls12 = opts.ciphers ?? defaults.filter((c) => !c.startsWith('TLS_')).join(':');
  return [tls13, tls12].filter((s) => s !== '').join(':');
}

/** Map node/OpenSSL handshake errors to stable codes. */
function mapError(e: unknown): PosternError {
  if (e instanceof PosternError) return e;
  const err = e as NodeJS.ErrnoException & { reason?: string };
  const code = err.code ?? '';
  const alert = /ALERT_([A-Z0-9_]+)$/.exec(code)?.[1]?.toLowerCase() ?? null;
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new TlsHandshakeError('net-closed', `connection closed during TLS handshake (${err.message})`, {
      reason: code,
      cause: e,
    });
  }
  const reason = err.reason ?? err.message ?? null;
  return new TlsHandshakeError('tls-handshake-failed', `TLS handshake failed: ${reason ?? code}`, {
    alert,
    reason,
    cause: e,
  });
}

/**
 * Perform a TLS handshake as a client and describe the session. Certificate problems never make
 * it fail; they are reported in `session.authorized/authorizationError` and `peerChain`.
 */
export async function tlsHandshake(
  opts: HandshakeOptions,
): Promise<{ session: NegotiatedSession; tlsSocket: TLSSocket }> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (opts.signal?.aborted === true) {
    opts.socket?.destroy();
    throw abortError();
  }
  const raw =
    opts.socket ??
    (await connectTcp(opts.host, opts.port, timeoutMs, opts.signal, (code, message, cause) =>
      code === 'aborted'
        ? abortError()
        : new TlsHandshakeError(
            code,
            message,
            cause === undefined ? {} : { reason: cause.code ?? cause.message, cause },
          ),
    ));
  const capture = opts.captureChain !== false;
  const tap = capture ? new CaptureTap(raw) : null;
  const servername = opts.servername ?? null;

  const options: ConnectionOptions = {
    socket: tap ?? raw,
    rejectUnauthorized: false,
    // authorized must mean "PKIX path OK"; the name check is done by cert/hostname (RFC 9525).
    checkServerIdentity: () => undefined,
    ciphers: cipherString(opts),
    minDHSize: opts.minDHSize ?? 1024,
  };
  if (servername !== null) options.servername = servername;
  if (opts.minVersion !== undefined) options.minVersion = opts.minVersion;
  if (opts.maxVersion !== undefined) options.maxVersion = opts.maxVersion;
  if (opts.groups !== undefined) options.ecdhCurve = opts.groups;
  if (opts.sigalgs !== undefined) options.sigalgs = opts.sigalgs;
  if (opts.ca !== undefined) options.ca = opts.ca;

  let tlsSocket: TLSSocket;
  try {
    tlsSocket = tlsConnect(options);
  } catch (e) {
    // Bad option strings (unknown cipher or group) throw synchronously.
    raw.destroy();
    throw new TlsHandshakeError('tls-bad-options', `invalid TLS options: ${(e as Error).message}`, { cause: e });
  }
  let serverSecret: Buffer | null = null;
  const onKeylog = (line: Buffer): void => {
    const m = /^SERVER_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]+ ([0-9a-f]+)/i.exec(line.toString('latin1'));
    if (m?.[1] !== undefined) serverSecret = Buffer.from(m[1], 'hex');
  };
  if (capture) tlsSocket.on('keylog', onKeylog);

  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        tlsSocket.removeListener('secureConnect', onSecure);
        tlsSocket.removeListener('error', onError);
        tlsSocket.removeListener('close', onClose);
      };
      const onSecure = (): void => {
        cleanup();
        resolve();
      };
      const onError = (e: Error): void => {
        cleanup();
        reject(mapError(e));
      };
      const onClose = (): void => {
        cleanup();
        reject(new TlsHandshakeError('net-closed', 'connection closed during TLS handshake'));
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortError());
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new TlsHandshakeError('net-timeout', `TLS handshake timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      tlsSocket.once('secureConnect', onSecure);
      tlsSocket.on('error', onError);
      tlsSocket.once('close', onClose);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  } catch (e) {
    tlsSocket.destroy();
    raw.destroy();
    throw e;
  } finally {
    tlsSocket.removeListener('keylog', onKeylog);
  }
  // A late reset must not become an unhandled 'error' before the caller attaches its own handler.
  tlsSocket.on('error', () => undefined);

  let peerChain: Buffer[] | null = null;
  if (tap !== null) {
    const cipher = tlsSocket.getCipher();
    peerChain = extractSentChain({
      raw: tap.takeCapture(),
      protocol: tlsSocket.getProtocol() ?? '',
      cipherStandardName: cipher.standardName,
      serverHandshakeSecret: serverSecret,
    });
  }
  const session = readSession(
    tlsSocket,
    peerChain === null
      ? { peerChain: issuerWalkChain(tlsSocket), source: 'issuer-walk' }
      : { peerChain, source: 'wire' },
    servername,
  );
  return { session, tlsSocket };
}
