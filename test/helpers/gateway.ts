/**
 * Test harness for `postern serve` as a whole: a gateway started in-process from a real YAML
 * config written to a temp dir (certificate, users file made with `addUser`, listeners on free
 * loopback ports), its JSON log captured for assertions, and a raw SMTP client that can bind a
 * chosen loopback source address (to be outside `relay.networks`) and upgrade with STARTTLS.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/schema.ts';
import { startGateway } from '../../src/gateway/gateway.ts';
import type { Gateway, GatewayOptions } from '../../src/gateway/gateway.ts';
import { addUser } from '../../src/gateway/users.ts';
import { freePort } from '../integration/peers/ports.ts';

export interface TestUser {
  name: string;
  password: string;
  addresses?: string[];
}

export interface TestListener {
  name: string;
  mode: 'starttls' | 'implicit';
  role: 'mx' | 'submission';
  auth: 'none' | 'optional' | 'required';
  /** Default 127.0.0.1. */
  address?: string;
}

export interface TestGatewayOptions {
  certPem: string;
  keyPem: string;
  hostname?: string;
  listeners: TestListener[];
  users?: TestUser[];
  /** The `relay` section as written to YAML. */
  relay?: Record<string, unknown>;
  routes?: Record<string, string>;
  /** The `policy` section as written to YAML. */
  policy?: Record<string, unknown>;
  /** The `limits` section as written to YAML. */
  limits?: Record<string, unknown>;
  /** Queue manager poll interval (ms). */
  pollMs?: number;
  /** Extra top-level config sections (e.g. dns, mtaSts, tlsrpt), written to YAML over the defaults. */
  extraConfig?: Record<string, unknown>;
  /** Extra gateway options (connectOverride, now, ca, …). */
  options?: Partial<GatewayOptions>;
}

export interface TestGateway {
  gw: Gateway;
  config: GatewayConfig;
  dir: string;
  configPath: string;
  /** Port per listener name. */
  port: Record<string, number>;
  adminUrl: string;
  /** Every JSON log line the gateway wrote so far. */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Poll `fn` until it returns a non-null value or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T | null> | T | null, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Writes postern.yaml (+ cert, key, users) into a fresh temp dir, loads it with the real config
 * loader and starts the gateway. DNS points at a closed loopback port so that nothing the test
 * does can ever query a real resolver; every outbound destination must come from `routes`.
 */
export async function startTestGateway(o: TestGatewayOptions): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'postern-gw-'));
  try {
    await writeFile(join(dir, 'cert.pem'), o.certPem);
    await writeFile(join(dir, 'key.pem'), o.keyPem, { mode: 0o600 });
    for (const u of o.users ?? []) {
      await addUser(join(dir, 'users.yaml'), u.name, u.password, u.addresses ? { addresses: u.addresses } : {});
    }
    const listen = [];
    for (const l of o.listeners) {
      const address = l.address ?? '127.0.0.1';
      listen.push({ name: l.name, address, port: await freePort(address), mode: l.mode, role: l.role, auth: l.auth });
    }
    const adminPort = await freePort();
    const deadDns = await freePort();
    const doc: Record<string, unknown> = {
      hostname: o.hostname ?? 'mx.postern.test',
      tls: { cert: 'cert.pem', key: 'key.pem' },
      listen,
      ...(o.users ? { users: 'users.yaml' } : {}),
      relay: o.relay ?? {},
      queue: { dir: 'queue', retry: { initial: '1s', max: '10s' } },
      dns: { servers: [`127.0.0.1:${deadDns}`] },
      routes: o.routes ?? {},
      policy: o.policy ?? { default: { level: 'may' } },
      limits: o.limits ?? {},
      admin: { address: '127.0.0.1', port: adminPort },
      log: { level: 'debug' },
      ...(o.extraConfig ?? {}),
    };
    const configPath = join(dir, 'postern.yaml');
    await writeFile(configPath, stringify(doc));
    const config = await loadConfig(configPath);

    const logs: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line.trim() === '') continue;
          try {
            logs.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            logs.push({ unparsed: line });
          }
        }
        cb();
      },
    });
    const log = pino({ level: 'debug' }, sink);
    const gw = await startGateway(config, { log, pollMs: o.pollMs ?? 200, concurrency: 4, ...(o.options ?? {}) });
    const port: Record<string, number> = {};
    for (const l of gw.listeners) port[l.name] = l.port;
    let closed = false;
    return {
      gw,
      config,
      dir,
      configPath,
      port,
      adminUrl: `http://127.0.0.1:${gw.admin?.port ?? adminPort}`,
      logs,
      async close() {
        if (closed) return;
        closed = true;
        try {
          await gw.stop({ timeoutMs: 5000 });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export interface Reply {
  code: number;
  lines: string[];
  /** Last line's text after the code and separator. */
  text: string;
  raw: string;
}

/** A raw SMTP client: exact lines out, whole (multi-line) replies in, optional source address. */
export class RawSmtp {
  private socket: Socket | TLSSocket;
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

  /** Connect to 127.0.0.1:port (from `localAddress` if given); implicit TLS when asked. */
  static async connect(
    port: number,
    o: { host?: string; localAddress?: string; implicitTls?: boolean } = {},
  ): Promise<RawSmtp> {
    const host = o.host ?? '127.0.0.1';
    const s = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const base = { host, port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
      const sock =
        o.implicitTls === true
          ? tlsConnect({ ...base, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(sock))
          : netConnect(base, () => resolve(sock));
      sock.once('error', reject);
    });
    return new RawSmtp(s);
  }

  /** The local address the connection really came from. */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

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
      if (!/^\d{3}-/.test(line)) break;
    }
    const raw = this.buf.slice(0, pos);
    this.buf = this.buf.slice(pos);
    const last = lines[lines.length - 1] ?? '';
    return { code: Number(last.slice(0, 3)), lines, text: last.slice(4), raw };
  }

  /** The next complete reply. */
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

  send(data: string): void {
    this.socket.write(data, 'utf8');
  }

  async cmd(line: string, timeoutMs?: number): Promise<Reply> {
    this.send(`${line}\r\n`);
    return await this.reply(timeoutMs);
  }

  /** After `STARTTLS` got 220: the TLS handshake on the same socket (certificate not checked). */
  async upgrade(): Promise<void> {
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    this.buf = '';
    const t = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'mx.postern.test' }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = t;
    this.attach(t);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** base64 of a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL passwd). */
export function saslPlain(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/**
 * Greeting + EHLO, then optionally STARTTLS + EHLO and AUTH PLAIN. Throws when any of these is not
 * answered as expected, so the caller starts from a known state.
 */
export async function openSession(
  port: number,
  o: {
    localAddress?: string;
    starttls?: boolean;
    implicitTls?: boolean;
    auth?: { user: string; password: string };
  } = {},
): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port, {
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    ...(o.implicitTls === true ? { implicitTls: true } : {}),
  });
  try {
    const g = await c.reply();
    if (g.code !== 220) throw new Error(`greeting: ${g.raw}`);
    const e = await c.cmd('EHLO client.example');
    if (e.code !== 250) throw new Error(`EHLO: ${e.raw}`);
    if (o.starttls === true) {
      const s = await c.cmd('STARTTLS');
      if (s.code !== 220) throw new Error(`STARTTLS: ${s.raw}`);
      await c.upgrade();
      const e2 = await c.cmd('EHLO client.example');
      if (e2.code !== 250) throw new Error(`EHLO after STARTTLS: ${e2.raw}`);
    }
    if (o.auth) {
      const a = await c.cmd(`AUTH PLAIN ${saslPlain(o.auth.user, o.auth.password)}`);
      if (a.code !== 235) throw new Error(`AUTH: ${a.raw}`);
    }
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}
