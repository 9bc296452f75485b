/**
 * Test harness for src/smtp/server: a server on loopback with stub hooks (an in-memory queue that
 * records what it was given — a test peer of the server, not a mock of it). Talk to it with the raw
 * SMTP client of test/helpers/smtp-client.ts.
 */
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
import { openSmtpSession, saslPlain } from './smtp-client.ts';
import type { SmtpTestClient } from './smtp-client.ts';

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

// The raw SMTP client moved to test/helpers/smtp-client.ts. These names stay as thin aliases of
// it while other branches still import them from here (to be removed after the merge).
export { SmtpTestClient } from './smtp-client.ts';
export type { Reply as ParsedReply } from './smtp-client.ts';
/** Alias of {@link saslPlain}. */
export const plain = saslPlain;

/**
 * Alias of {@link openSmtpSession} in this harness's terms: `tls` for STARTTLS, `auth: true` for
 * the harness's user alice/secret; EHLO's answer is not checked.
 */
export function session(
  port: number,
  o: { tls?: boolean; implicitTls?: boolean; auth?: boolean; cert?: TestCert } = {},
): Promise<SmtpTestClient> {
  return openSmtpSession(port, {
    ...(o.tls === true ? { starttls: true } : {}),
    ...(o.implicitTls === true ? { implicitTls: true } : {}),
    ...(o.cert ? { cert: o.cert } : {}),
    ...(o.auth === true ? { auth: { user: 'alice', password: 'secret' } } : {}),
    expectEhlo: false,
  });
}
