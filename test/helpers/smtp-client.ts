/**
 * The raw SMTP test client: exact bytes out, whole (multi-line) replies in. It can bind a chosen
 * loopback source address (to be outside `relay.networks`), speak implicit TLS, upgrade with
 * STARTTLS (with or without a client certificate), and prove that nothing else arrives
 * (`drainFor`). Used against `postern serve` (test/helpers/gateway.ts) and the bare SMTP server
 * harness (test/helpers/smtp-harness.ts) alike.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { TestCert } from './certs.ts';

/** One SMTP reply (RFC 5321 §4.2): every line of it. */
export interface Reply {
  code: number;
  lines: string[];
  /** The text of every line after its code and separator, joined with \n (one line: that line's text). */
  text: string;
  raw: string;
}

export interface SmtpTestClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Source address to connect from (e.g. 127.0.0.2, outside relay.networks). */
  localAddress?: string;
  /** TLS from the first byte (SMTPS, RFC 8314). */
  implicitTls?: boolean;
  /** Client certificate for implicit TLS. */
  cert?: TestCert;
  /** SNI for TLS (default mx.postern.test). */
  servername?: string;
}

const SERVERNAME = 'mx.postern.test';

/** The raw SMTP client. Certificates are never checked: tests look at what the server does. */
export class SmtpTestClient {
  socket: Socket | TLSSocket;
  closed = false;
  private buf = '';
  private waiters: Array<() => void> = [];
  private readonly servername: string;
  private readonly onData = (d: Buffer): void => {
    this.buf += d.toString('latin1');
    this.wake();
  };

  private constructor(s: Socket | TLSSocket, servername: string) {
    this.socket = s;
    this.servername = servername;
    this.attach(s);
  }

  /** Connect to `host` (default 127.0.0.1) on `port`; implicit TLS when asked. */
  static async connect(port: number, o: SmtpTestClientOptions = {}): Promise<SmtpTestClient> {
    const servername = o.servername ?? SERVERNAME;
    const base = { host: o.host ?? '127.0.0.1', port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
    const s = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const sock =
        o.implicitTls === true
          ? tlsConnect(
              {
                ...base,
                rejectUnauthorized: false,
                servername,
                ...(o.cert ? { cert: o.cert.pem, key: o.cert.keyPem } : {}),
              },
              () => resolve(sock),
            )
          : netConnect(base, () => resolve(sock));
      sock.once('error', reject);
    });
    return new SmtpTestClient(s, servername);
  }

  /** The local address the connection really came from. */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  /** Whether the connection is TLS now (implicit or after `upgrade`). */
  get tls(): boolean {
    return 'encrypted' in this.socket;
  }

  private attach(s: Socket | TLSSocket): void {
    s.on('data', this.onData);
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
    s.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private take(): Reply | null {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n', pos);
      if (nl === -1) return null;
      const line = this.buf.slice(pos, nl);
      lines.push(line);
      pos = nl + 2;
      // "250-" continues the reply; "250 ", a bare "250" or anything else ends it.
      if (!/^\d{3}-/.test(line)) break;
    }
    const raw = this.buf.slice(0, pos);
    this.buf = this.buf.slice(pos);
    const last = lines[lines.length - 1] ?? '';
    return { code: Number(last.slice(0, 3)), lines, text: lines.map((l) => l.slice(4)).join('\n'), raw };
  }

  /** The next complete reply (all continuation lines). */
  async reply(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.take();
      if (r !== null) return r;
      if (this.closed)
        throw new Error(`connection closed while waiting for a reply (buffer ${JSON.stringify(this.buf)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a reply (buffer ${JSON.stringify(this.buf)})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Write exactly these bytes (strings as UTF-8). */
  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send one command line (CRLF added) and read its reply. */
  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.send(`${line}\r\n`);
    return await this.reply(timeoutMs);
  }

  /** Everything that arrives within `ms` (to prove that nothing else comes). */
  async drainFor(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    const out = this.buf;
    this.buf = '';
    return out;
  }

  /** After `STARTTLS` got 220: the TLS handshake on the same socket (certificate not checked). */
  async upgrade(o: { cert?: TestCert } = {}): Promise<TLSSocket> {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    this.buf = '';
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect(
        {
          socket: raw,
          rejectUnauthorized: false,
          servername: this.servername,
          ...(o.cert ? { cert: o.cert.pem, key: o.cert.keyPem } : {}),
        },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    this.socket = t;
    this.attach(t);
    return t;
  }

  /** Whether the server closed the connection within `timeoutMs`. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** base64 of a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL passwd). */
export function saslPlain(user: string, pass: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${pass}`).toString('base64');
}

export interface SessionOptions extends SmtpTestClientOptions {
  /** STARTTLS (and EHLO again) after the first EHLO. */
  starttls?: boolean;
  /** AUTH PLAIN with these credentials (after STARTTLS when asked). */
  auth?: { user: string; password: string; authzid?: string };
  /** Default true: fail unless EHLO is answered 250. */
  expectEhlo?: boolean;
}

/**
 * Greeting + EHLO, then optionally STARTTLS + EHLO and AUTH PLAIN. Throws when any of these is not
 * answered as expected (and closes the connection), so the caller starts from a known state.
 */
export async function openSmtpSession(port: number, o: SessionOptions = {}): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port, o);
  const ehlo = async (when: string): Promise<void> => {
    const e = await c.cmd('EHLO client.example');
    if (o.expectEhlo !== false && e.code !== 250) throw new Error(`EHLO${when}: ${e.raw}`);
  };
  try {
    const g = await c.reply();
    if (g.code !== 220) throw new Error(`greeting: ${g.raw}`);
    await ehlo('');
    if (o.starttls === true) {
      const s = await c.cmd('STARTTLS');
      if (s.code !== 220) throw new Error(`STARTTLS: ${s.raw}`);
      await c.upgrade(o.cert ? { cert: o.cert } : {});
      await ehlo(' after STARTTLS');
    }
    if (o.auth) {
      const a = await c.cmd(`AUTH PLAIN ${saslPlain(o.auth.user, o.auth.password, o.auth.authzid)}`);
      if (a.code !== 235) throw new Error(`AUTH: ${a.raw}`);
    }
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}
