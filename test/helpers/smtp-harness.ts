/**
 * Test harness for src/smtp/server: a server on loopback with stub hooks (an in-memory queue that
 * records what it was given — a test peer of the server, not a mock of it) and a small raw SMTP
 * client that can read multi-line replies, STARTTLS and send arbitrary bytes.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { createSmtpServer } from '../../src/smtp/server/server.ts';
import type {
  ListenerSpec,
  SmtpLimits,
  SmtpServer,
  SmtpServerHooks,
  SmtpServerOptions,
} from '../../src/smtp/server/types.ts';
import type { Envelope } from '../../src/queue/types.ts';
import { makeCert, makePki, type TestCert } from './certs.ts';

export interface Pki {
  root: TestCert;
  serverCert: TestCert;
  serverChainPem: string;
  /** Client certificate issued by the trusted CA (CN=alice). */
  client: TestCert;
  /** Self-signed client certificate (not trusted). */
  rogue: TestCert;
}

let pkiPromise: Promise<Pki> | null = null;

/** One PKI per test process (key generation is the slow part). */
export function testPki(): Promise<Pki> {
  pkiPromise ??= (async () => {
    const p = await makePki({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    const client = await makeCert({ subject: 'CN=alice, O=Postern Test', issuer: p.intermediate });
    const rogue = await makeCert({ subject: 'CN=alice, O=Rogue' });
    return {
      root: p.root,
      serverCert: p.leaf,
      serverChainPem: p.leaf.pem + p.intermediate.pem,
      client: { ...client, pem: client.pem + p.intermediate.pem },
      rogue,
    };
  })();
  return pkiPromise;
}

export interface Stored {
  envelope: Envelope;
  message: Buffer;
}

export interface Harness {
  server: SmtpServer;
  /** Port per listener name: mx (STARTTLS, no AUTH), sub (STARTTLS, AUTH required), smtps (implicit TLS, AUTH required, client certs requested). */
  port: Record<string, number>;
  queue: Stored[];
  /** Make the next enqueue calls fail (simulated disk trouble). */
  failEnqueue: { on: boolean };
  authCalls: Array<{ user: string; password: string }>;
  close(): Promise<void>;
}

export const DEFAULT_LIMITS: SmtpLimits = {
  maxMessageSize: 100_000,
  maxRecipients: 5,
  maxLineLength: 1000,
  commandTimeoutMs: 3000,
  dataTimeoutMs: 3000,
  maxConnections: 50,
  maxConnectionsPerIp: 50,
  maxErrors: 10,
  errorDelayMs: 0,
};

export async function startHarness(
  o: {
    limits?: Partial<SmtpLimits>;
    listeners?: ListenerSpec[];
    hooks?: Partial<SmtpServerHooks>;
    /** Seams of the server: a manual clock (test/helpers/manual-timers.ts), an event sink. */
    server?: Pick<SmtpServerOptions, 'timers' | 'events'>;
  } = {},
): Promise<Harness> {
  const pki = await testPki();
  const queue: Stored[] = [];
  const failEnqueue = { on: false };
  const authCalls: Array<{ user: string; password: string }> = [];
  const hooks: SmtpServerHooks = {
    async authenticate(user, password) {
      authCalls.push({ user, password });
      if (user === 'limited') return 'rate-limited';
      return user === 'alice' && password === 'secret' ? 'ok' : 'bad';
    },
    async authenticateExternal(subject, _cert, _s, authzid) {
      if (!subject.includes('CN=alice')) return null;
      return authzid === null || authzid === 'alice' ? 'alice' : null;
    },
    parsePath(text) {
      const m = /^<([^<>@\s]+)@([^<>@\s]+)>$/.exec(text);
      if (m === null || m[1] === undefined || m[2] === undefined)
        return { error: { code: 501, enhanced: '5.1.3', message: 'Bad address syntax' } };
      return { address: `${m[1]}@${m[2]}`, local: m[1], domain: m[2] };
    },
    async checkSender(address) {
      return address.startsWith('blocked@')
        ? { ok: false, code: 550, enhanced: '5.7.1', message: 'Sender refused' }
        : { ok: true };
    },
    async checkRecipient(address) {
      if (address === 'unknown@local.test') return { ok: false, code: 550, enhanced: '5.1.1', message: 'No such user' };
      if (address.endsWith('@local.test')) return { ok: true };
      return { ok: false, code: 554, enhanced: '5.7.1', message: 'Relay access denied' };
    },
    async enqueue(envelope, message) {
      if (failEnqueue.on) throw new Error('disk full');
      queue.push({ envelope, message });
      return `Q${queue.length}`;
    },
    ...o.hooks,
  };
  const listeners: ListenerSpec[] = o.listeners ?? [
    { name: 'mx', address: '127.0.0.1', port: 0, mode: 'starttls', role: 'mx', auth: 'none' },
    {
      name: 'sub',
      address: '127.0.0.1',
      port: 0,
      mode: 'starttls',
      role: 'submission',
      auth: 'required',
      clientCertificates: 'request',
    },
    {
      name: 'smtps',
      address: '127.0.0.1',
      port: 0,
      mode: 'implicit',
      role: 'submission',
      auth: 'required',
      clientCertificates: 'request',
    },
  ];
  const opts: SmtpServerOptions = {
    hostname: 'mx.postern.test',
    listeners,
    tls: { key: pki.serverCert.keyPem, cert: pki.serverChainPem, ca: [pki.root.pem] },
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    hooks,
    ...o.server,
  };
  const server = createSmtpServer(opts);
  const bound = await server.listen();
  const port: Record<string, number> = {};
  for (const b of bound) port[b.name] = b.port;
  return { server, port, queue, failEnqueue, authCalls, close: () => server.close({ graceful: false }) };
}

export interface ParsedReply {
  code: number;
  lines: string[];
  /** The full reply text, lines joined with \n, without codes. */
  text: string;
  raw: string;
}

/** A raw SMTP client for tests: exact bytes out, whole replies in. */
export class SmtpTestClient {
  socket: Socket | TLSSocket;
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  private readonly onData = (d: Buffer): void => {
    this.buf += d.toString('latin1');
    this.wake();
  };

  private constructor(s: Socket | TLSSocket) {
    this.socket = s;
    this.attach(s);
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

  static async connect(port: number, o: { implicitTls?: boolean; cert?: TestCert } = {}): Promise<SmtpTestClient> {
    const s = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      if (o.implicitTls === true) {
        const t = tlsConnect(
          {
            host: '127.0.0.1',
            port,
            rejectUnauthorized: false,
            ...(o.cert ? { cert: o.cert.pem, key: o.cert.keyPem } : {}),
          },
          () => resolve(t),
        );
        t.once('error', reject);
      } else {
        const t = netConnect({ host: '127.0.0.1', port }, () => resolve(t));
        t.once('error', reject);
      }
    });
    return new SmtpTestClient(s);
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Wait for the next complete reply (all continuation lines). */
  async reply(timeoutMs = 5000): Promise<ParsedReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.take();
      if (r !== null) return r;
      if (this.closed)
        throw new Error(`connection closed while waiting for a reply (buffer: ${JSON.stringify(this.buf)})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a reply (buffer: ${JSON.stringify(this.buf)})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private take(): ParsedReply | null {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.buf.indexOf('\r\n', pos);
      if (nl === -1) return null;
      const line = this.buf.slice(pos, nl);
      lines.push(line);
      pos = nl + 2;
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) break;
      if (!/^\d{3}-/.test(line)) break;
    }
    const raw = this.buf.slice(0, pos);
    this.buf = this.buf.slice(pos);
    const last = lines[lines.length - 1] ?? '';
    return { code: Number(last.slice(0, 3)), lines, text: lines.map((l) => l.slice(4)).join('\n'), raw };
  }

  async cmd(line: string, timeoutMs?: number): Promise<ParsedReply> {
    this.send(line + '\r\n');
    return this.reply(timeoutMs);
  }

  /** Everything that arrives within `ms` (to prove that nothing else comes). */
  async drainFor(ms: number): Promise<string> {
    await new Promise((r) => setTimeout(r, ms));
    const out = this.buf;
    this.buf = '';
    return out;
  }

  /** Upgrade after a 220 to STARTTLS (the caller sent STARTTLS and read the 220). */
  async upgrade(o: { cert?: TestCert } = {}): Promise<TLSSocket> {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    this.buf = '';
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect(
        {
          socket: raw,
          rejectUnauthorized: false,
          servername: 'mx.postern.test',
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

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** base64 of an AUTH PLAIN message. */
export function plain(user: string, pass: string, authzid = ''): string {
  return Buffer.from(`${authzid}\0${user}\0${pass}`).toString('base64');
}

/** Connect, read the greeting, EHLO; optionally STARTTLS and EHLO again, optionally AUTH. */
export async function session(
  port: number,
  o: { tls?: boolean; implicitTls?: boolean; auth?: boolean; cert?: TestCert } = {},
): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port, {
    ...(o.implicitTls === true ? { implicitTls: true } : {}),
    ...(o.cert ? { cert: o.cert } : {}),
  });
  const g = await c.reply();
  if (g.code !== 220) throw new Error(`greeting ${g.raw}`);
  await c.cmd('EHLO client.example');
  if (o.tls === true) {
    const r = await c.cmd('STARTTLS');
    if (r.code !== 220) throw new Error(`STARTTLS ${r.raw}`);
    await c.upgrade(o.cert ? { cert: o.cert } : {});
    await c.cmd('EHLO client.example');
  }
  if (o.auth === true) {
    const r = await c.cmd(`AUTH PLAIN ${plain('alice', 'secret')}`);
    if (r.code !== 235) throw new Error(`AUTH ${r.raw}`);
  }
  return c;
}
