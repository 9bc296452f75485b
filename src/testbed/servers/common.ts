/**
 * Shared plumbing for the testbed's SMTP, IMAP and POP3 servers: a bounded line reader, an idle
 * timer, and the STARTTLS / implicit-TLS upgrade with its deliberate misbehaviours.
 *
 * Nothing a peer sends may crash the process: every socket has an error listener, lines are
 * bounded, and every handler runs inside a try/catch that drops only that connection.
 */
import { constants as cryptoConstants } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { serveLegacyHandshake } from '../legacy-tls.ts';
import type { LegacyTlsOptions } from '../legacy-tls.ts';

/** TLS served by node/OpenSSL, configured exactly (versions, suites, groups). */
export interface NodeTlsSpec {
  kind: 'node';
  secureContext: {
    cert: string;
    key: string;
    /** Extra chain certificates (PEM) sent after the leaf. */
    chain?: string;
    minVersion?: tls.SecureVersion;
    maxVersion?: tls.SecureVersion;
    /** OpenSSL cipher list; TLS 1.3 names (TLS_AES_…) are accepted here too. */
    ciphers?: string;
    ecdhCurve?: string;
    sigalgs?: string;
    honorCipherOrder?: boolean;
    /**
     * VULNERABLE when true: honour client-initiated renegotiation (node's default, limited to 3
     * per 10 min). Default false sets SSL_OP_NO_RENEGOTIATION (BSI TR-02102-2, NCSC-NL).
     */
    clientRenegotiation?: boolean;
  };
}

/** Handshakes OpenSSL will not serve (SSLv3, export, NULL, anon, …), answered by legacy-tls.ts. */
export interface RawTlsSpec {
  kind: 'raw';
  options: LegacyTlsOptions;
}

export type TlsSpec = NodeTlsSpec | RawTlsSpec;

/**
 * `offer`: advertised and works. `none`: neither. `refuse-454`: advertised, refused (454 / NO /
 * -ERR). `strip`: not advertised but the command works, as behind a STARTTLS-stripping MITM.
 */
export type StarttlsSwitch = 'offer' | 'none' | 'refuse-454' | 'strip';

export interface ServerSwitches {
  starttls: StarttlsSwitch;
  /**
   * VULNERABLE when true: plaintext pipelined after STARTTLS in the same read is executed after
   * the handshake (CVE-2011-0411). Default false = discard it, RFC 3207 §4.2.
   */
  commandInjection: boolean;
  /** When true, a forged reply follows the "ready to start TLS" line, in plaintext. */
  responseInjection: boolean;
}

export const DEFAULT_SWITCHES: ServerSwitches = {
  starttls: 'offer',
  commandInjection: false,
  responseInjection: false,
};

export interface DialectServerOptions {
  /** The name the server announces and its certificate should carry. */
  hostname: string;
  mode: 'starttls' | 'implicit';
  tls: TlsSpec;
  switches?: Partial<ServerSwitches>;
  /** Longest accepted line in octets, CRLF excluded (default 2048). */
  maxLineLength?: number;
  /** Idle timeout per connection (default 60 s). */
  idleTimeoutMs?: number;
  /** Concurrent connections per server (default 64). */
  maxConnections?: number;
}

export interface ServerStats {
  connections: number;
  tlsHandshakes: number;
  tlsFailures: number;
  /** Handler exceptions caught (should stay 0; a non-zero value is a testbed bug). */
  handlerErrors: number;
}

/** What a dialect (SMTP/IMAP/POP3) implements; the connection drives it. */
export interface DialectHandler {
  /** Greeting: on connect (starttls mode) or after the implicit-TLS handshake. */
  greet(): void;
  /** One line without its line ending. `partial`: a fragment of an over-long line (split mode). */
  line(line: Buffer, partial: boolean): void;
  /** An over-long command line was discarded (reject mode). */
  overflow(): void;
  /** Idle timeout: say goodbye; the connection closes right after. */
  timeout(): void;
  /** STARTTLS completed: forget everything learnt in plaintext (RFC 3207 §4.2, RFC 2595 §3.1). */
  tlsStarted(): void;
}

const EMPTY = Buffer.alloc(0);

/** One client connection: line framing, idle timer, TLS upgrade. */
export class LineConnection {
  readonly raw: net.Socket;
  readonly switches: ServerSwitches;
  readonly options: DialectServerOptions;
  /** Current transport: the TCP socket, then the TLS socket after the upgrade. */
  private socket: net.Socket | tls.TLSSocket;
  private handler: DialectHandler | undefined;
  private buf: Buffer = EMPTY;
  private discarding = false;
  private upgrade: { reply: string } | undefined;
  private closed = false;
  private handedOff = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly stats: ServerStats;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly onDataListener = (chunk: Buffer): void => this.onData(chunk);
  /** Split over-long lines into fragments instead of rejecting them (SMTP DATA). */
  splitLongLines = false;
  /** True once TLS is up (implicit or after STARTTLS). */
  tlsActive = false;
  /** Count of protocol errors; dialects close the connection when it grows too large. */
  errors = 0;

  constructor(
    raw: net.Socket,
    options: DialectServerOptions,
    secureContext: tls.SecureContext | undefined,
    stats: ServerStats,
  ) {
    this.raw = raw;
    this.socket = raw;
    this.options = options;
    this.switches = { ...DEFAULT_SWITCHES, ...options.switches };
    this.secureContext = secureContext;
    this.stats = stats;
  }

  get maxLineLength(): number {
    return this.options.maxLineLength ?? 2048;
  }

  /** Starts the session with `handler`: greets, or hands the socket to implicit TLS first. */
  start(handler: DialectHandler): void {
    this.handler = handler;
    this.raw.on('error', () => this.destroy());
    this.raw.on('close', () => this.onClose());
    this.touch();
    if (this.options.mode === 'implicit') {
      this.beginTls(EMPTY, true);
      return;
    }
    this.raw.on('data', this.onDataListener);
    this.guard(() => handler.greet());
  }

  /** Writes text (lines must already end in CRLF). Silently drops output on a dead socket. */
  write(text: string): void {
    if (this.closed || this.handedOff || !this.socket.writable) return;
    this.socket.write(text);
  }

  /** Writes a last reply, then closes gracefully (TLS close_notify, then FIN). */
  end(text?: string): void {
    if (this.closed || this.handedOff) return;
    this.closed = true;
    this.clearIdle();
    if (this.socket.writable) {
      if (text === undefined) this.socket.end();
      else this.socket.end(text);
    } else this.socket.destroy();
    // A peer that never reads must not keep the connection open forever.
    setTimeout(() => this.raw.destroy(), 2000).unref();
  }

  destroy(): void {
    this.closed = true;
    this.clearIdle();
    this.socket.destroy();
    this.raw.destroy();
  }

  /**
   * Called by a dialect's STARTTLS handler. `reply` ("220 Ready to start TLS") is written now;
   * the lines still buffered after the STARTTLS command are dealt with once the handler returns.
   */
  startTls(reply: string, forged: string | undefined): void {
    // One write, so a forged line lands in the same segment as the real reply — what a MITM
    // appending to the server's response would produce.
    this.write(this.switches.responseInjection && forged !== undefined ? reply + forged : reply);
    this.upgrade = { reply };
  }

  private onData(chunk: Buffer): void {
    if (this.closed || this.handedOff) return;
    this.touch();
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.drain();
  }

  private drain(): void {
    const handler = this.handler;
    if (handler === undefined) return;
    const max = this.maxLineLength;
    while (!this.closed && this.upgrade === undefined) {
      const lf = this.buf.indexOf(0x0a);
      if (lf === -1) {
        if (this.buf.length > max) {
          // No line end within the limit: never buffer unboundedly.
          if (this.splitLongLines) {
            const fragment = this.buf;
            this.buf = EMPTY;
            this.guard(() => handler.line(fragment, true));
          } else {
            this.buf = EMPTY;
            if (!this.discarding) {
              this.discarding = true;
              this.guard(() => handler.overflow());
            }
          }
        }
        break;
      }
      let line = this.buf.subarray(0, lf);
      this.buf = this.buf.subarray(lf + 1);
      if (this.discarding) {
        // Tail of a line already rejected as too long.
        this.discarding = false;
        continue;
      }
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
      if (line.length > max && !this.splitLongLines) {
        this.guard(() => handler.overflow());
        continue;
      }
      this.guard(() => handler.line(line, false));
    }
    if (this.upgrade !== undefined && !this.closed) {
      const remainder = this.buf;
      this.buf = EMPTY;
      this.upgrade = undefined;
      // RFC 3207 §4.2 / CVE-2011-0411: plaintext that followed STARTTLS must be discarded.
      // Only the deliberately vulnerable server carries it over into the TLS session.
      this.beginTls(this.switches.commandInjection ? remainder : EMPTY, false);
    }
  }

  private beginTls(injected: Buffer, implicit: boolean): void {
    const spec = this.options.tls;
    this.raw.removeListener('data', this.onDataListener);
    if (spec.kind === 'raw') {
      // The legacy responder owns the socket from here; our idle timer still bounds its life.
      this.handedOff = true;
      try {
        serveLegacyHandshake(this.raw, spec.options, injected.length > 0 ? injected : undefined);
      } catch {
        this.stats.handlerErrors++;
        this.raw.destroy();
      }
      return;
    }
    const t = new tls.TLSSocket(this.raw, { isServer: true, secureContext: this.secureContext });
    this.socket = t;
    t.on('error', () => {
      if (!this.tlsActive) this.stats.tlsFailures++;
      this.destroy();
    });
    t.once('secure', () => {
      this.stats.tlsHandshakes++;
      this.tlsActive = true;
      this.touch();
      t.on('data', this.onDataListener);
      const handler = this.handler;
      if (handler === undefined) return;
      this.guard(() => (implicit ? handler.greet() : handler.tlsStarted()));
      if (injected.length > 0) this.onData(injected);
    });
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch {
      // A bug in a dialect must cost one connection, not the testbed.
      this.stats.handlerErrors++;
      this.destroy();
    }
  }

  private touch(): void {
    this.clearIdle();
    const ms = this.options.idleTimeoutMs ?? 60_000;
    this.idleTimer = setTimeout(() => {
      if (this.handedOff || this.closed || this.handler === undefined) {
        this.destroy();
        return;
      }
      const handler = this.handler;
      this.guard(() => handler.timeout());
      this.end();
    }, ms);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private onClose(): void {
    this.closed = true;
    this.clearIdle();
  }
}

/** A listening dialect server. */
export interface LineServer {
  readonly stats: ServerStats;
  /** Binds; resolves with the bound port (0 = ephemeral). Rejects with the listen error. */
  listen(port: number, address: string): Promise<number>;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

/** Wires a net.Server to `makeHandler`, tracking connections so close() leaves nothing behind. */
export function createLineServer(
  options: DialectServerOptions,
  makeHandler: (conn: LineConnection) => DialectHandler,
): LineServer {
  const stats: ServerStats = { connections: 0, tlsHandshakes: 0, tlsFailures: 0, handlerErrors: 0 };
  const secureContext = options.tls.kind === 'node' ? createSecureContext(options.tls.secureContext) : undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    stats.connections++;
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    raw.setNoDelay(true);
    const conn = new LineConnection(raw, options, secureContext, stats);
    conn.start(makeHandler(conn));
  });
  server.maxConnections = options.maxConnections ?? 64;
  server.on('error', () => {
    /* listen errors are reported through listen()'s promise */
  });
  return {
    stats,
    listen(port, address) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once('error', onError);
        server.listen({ port, host: address, exclusive: true }, () => {
          server.removeListener('error', onError);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        if (!server.listening) {
          for (const s of sockets) s.destroy();
          resolve();
          return;
        }
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

function createSecureContext(spec: NodeTlsSpec['secureContext']): tls.SecureContext {
  return tls.createSecureContext({
    cert: spec.chain === undefined ? spec.cert : spec.cert + spec.chain,
    key: spec.key,
    ...(spec.minVersion !== undefined && { minVersion: spec.minVersion }),
    ...(spec.maxVersion !== undefined && { maxVersion: spec.maxVersion }),
    ...(spec.ciphers !== undefined && { ciphers: spec.ciphers }),
    ...(spec.ecdhCurve !== undefined && { ecdhCurve: spec.ecdhCurve }),
    ...(spec.sigalgs !== undefined && { sigalgs: spec.sigalgs }),
    honorCipherOrder: spec.honorCipherOrder ?? true,
    ...(spec.clientRenegotiation !== true && { secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION }),
  });
}

/** Formats reply lines: `lines("250", ["a", "b"])` → "250-a\r\n250 b\r\n". */
export function multiline(code: string, texts: readonly string[]): string {
  return texts.map((t, i) => `${code}${i === texts.length - 1 ? ' ' : '-'}${t}\r\n`).join('');
}
