/**
 * Test harness for `postern serve` as a whole: a gateway started in-process from a real YAML
 * config written to a temp dir (certificate, users file made with `addUser`, listeners on free
 * loopback ports), its JSON log captured for assertions. Talk to it with the raw SMTP client of
 * test/helpers/smtp-client.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
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

// The raw SMTP client moved to test/helpers/smtp-client.ts. These names stay as thin aliases of
// it while other branches still import them from here (to be removed after the merge).
export { SmtpTestClient as RawSmtp, openSmtpSession as openSession, saslPlain } from './smtp-client.ts';
export type { Reply } from './smtp-client.ts';
