/**
 * Test helpers for the testbed: a line-oriented client over net/tls sockets that can upgrade to
 * TLS mid-stream, and a minimal DER walk to read a certificate's signature algorithm.
 */
import net from 'node:net';
import tls from 'node:tls';
import assert from 'node:assert/strict';

/** A buffered line reader/writer over a socket; upgrade() moves it onto TLS. */
export class LineClient {
  socket: net.Socket | tls.TLSSocket;
  private buf = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(socket: net.Socket | tls.TLSSocket) {
    this.socket = socket;
    this.attach(socket);
  }

  static async connect(port: number, host: string): Promise<LineClient> {
    const s = net.connect({ port, host });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new LineClient(s);
  }

  static async connectTls(port: number, host: string, options: tls.ConnectionOptions): Promise<LineClient> {
    const s = tls.connect({ port, host, ...options });
    await new Promise<void>((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    return new LineClient(s);
  }

  private attach(s: net.Socket | tls.TLSSocket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onEnd);
  }

  private detach(s: net.Socket | tls.TLSSocket): void {
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onEnd);
    s.removeListener('error', this.onEnd);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private async waitForData(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        reject(new Error(`timed out; buffered: ${JSON.stringify(this.buf.toString('latin1'))}`));
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Next line without CRLF; throws on timeout or when the peer closed first. */
  async line(timeoutMs = 5000): Promise<string> {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf !== -1) {
        const line = this.buf.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.ended) throw new Error('connection closed');
      await this.waitForData(timeoutMs);
    }
  }

  /** Reads raw bytes until at least `n` are buffered. */
  async bytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.ended) throw new Error('connection closed');
      await this.waitForData(timeoutMs);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Reads whatever arrives next (at least one byte). */
  async chunk(timeoutMs = 5000): Promise<Buffer> {
    while (this.buf.length === 0) {
      if (this.ended) throw new Error('connection closed');
      await this.waitForData(timeoutMs);
    }
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  /** An SMTP reply: lines up to the one with a space after the code (RFC 5321 §4.2.1). */
  async smtp(timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      lines.push(l);
      if (l.length < 4 || l[3] !== '-') return lines;
    }
  }

  /** IMAP responses up to and including the tagged one. */
  async imap(tag: string, timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      lines.push(l);
      if (l.startsWith(`${tag} `)) return lines;
    }
  }

  /** A POP3 multi-line response (first line, then lines up to the lone dot). */
  async pop3Multi(timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [await this.line(timeoutMs)];
    if (!lines[0]?.startsWith('+OK')) return lines;
    for (;;) {
      const l = await this.line(timeoutMs);
      if (l === '.') return lines;
      lines.push(l);
    }
  }

  /** Plaintext bytes that were buffered but not read (e.g. after "220 Ready to start TLS"). */
  buffered(): Buffer {
    return this.buf;
  }

  /** Upgrades to TLS. Returns the plaintext left unread before the handshake (and drops it). */
  async upgrade(options: tls.ConnectionOptions): Promise<Buffer> {
    const leftover = this.buf;
    this.buf = Buffer.alloc(0);
    const raw = this.socket;
    this.detach(raw);
    const t = tls.connect({ ...options, socket: raw });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    this.socket = t;
    this.ended = false;
    this.attach(t);
    return leftover;
  }

  /** Resolves when the peer has closed (reading and discarding anything else). */
  async closed(timeoutMs = 5000): Promise<void> {
    while (!this.ended) await this.waitForData(timeoutMs);
  }

  close(): void {
    this.socket.destroy();
  }
}

function tlv(der: Buffer, pos: number): { tag: number; start: number; end: number } {
  const tag = der[pos] ?? -1;
  let len = der[pos + 1] ?? 0;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] ?? 0);
    start += n;
  }
  return { tag, start, end: start + len };
}

function decodeOid(bytes: Buffer): string {
  const first = bytes[0] ?? 0;
  const parts = [Math.floor(first / 40), first % 40];
  let v = 0;
  for (const b of bytes.subarray(1)) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** The outer signatureAlgorithm OID of a DER certificate (RFC 5280 §4.1.1.2). */
export function signatureOid(der: Buffer): string {
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.start);
  const alg = tlv(der, tbs.end);
  const oid = tlv(der, alg.start);
  assert.equal(oid.tag, 0x06);
  return decodeOid(der.subarray(oid.start, oid.end));
}

export const OID = {
  sha1WithRSA: '1.2.840.113549.1.1.5',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSHA1: '1.2.840.10045.4.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  ecdsaWithSHA384: '1.2.840.10045.4.3.3',
} as const;

/** SHA-1 or MD5 based signature algorithms. */
export const WEAK_SIGNATURE_OIDS: ReadonlySet<string> = new Set([
  OID.sha1WithRSA,
  OID.ecdsaWithSHA1,
  '1.2.840.113549.1.1.4', // md5WithRSAEncryption
]);
