/**
 * postern's inbound SMTP server: listeners, connection limits, TLS material, graceful close.
 *
 * Why not nodemailer's `smtp-server` (checked at 3.21.6): it is close, but misses things this
 * gateway must guarantee — AUTH before TLS gets `538 5.7.0` instead of RFC 4954's `5.7.11`; no
 * SASL EXTERNAL from client certificates; DATA accepts bare LF / bare CR (it only finds the end
 * correctly, the content is passed on, so smuggled content would reach the next hop); no
 * per-IP connection limits or error-reply delays; no Received header with TLS details; and
 * its error texts and codes are fixed. Patching those would mean overriding most of its
 * connection class, so postern keeps its own small state machine (connection.ts: guards, then
 * one handler per verb; data.ts: the DATA byte machine).
 */
import { nullSink } from '../../core/events.ts';
import { createServer, type Server, type Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type SecureContextOptions,
  type Server as TlsServer,
  type TLSSocket,
} from 'node:tls';
import { pino } from 'pino';
import { NetError } from '../../core/errors.ts';
import { formatReply } from '../protocol/reply.ts';
import { SmtpConnection } from './connection.ts';
import type {
  ListenerSpec,
  SmtpLimits,
  SmtpServer,
  SmtpServerOptions,
  SmtpServerStats,
  SmtpTimers,
  TlsMaterial,
} from './types.ts';

/** node's timers, unref'd so that a pending timeout never keeps the process alive. */
export const nodeTimers: SmtpTimers = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/** Fill the optional limits with their defaults (documented in types.ts). */
export function withDefaults(l: SmtpLimits): Required<SmtpLimits> {
  return {
    errorDelayMs: 1000,
    maxSubmissionConnections: Math.max(20, Math.floor(l.maxConnections / 4)),
    junkCommandLimit: 100,
    dataDeadlineMs: 15 * 60_000,
    stressTimeoutMs: 10_000,
    stressThreshold: 80,
    ...l,
  };
}

type PoolName = ListenerSpec['role'];

/** One pool of connection slots (MX or submission), with its per-IP counts and stress state. */
interface Pool {
  name: PoolName;
  max: number;
  connections: Set<SmtpConnection>;
  perIp: Map<string, number>;
  stressed: boolean;
}

function contextOptions(t: TlsMaterial): SecureContextOptions {
  return { key: t.key, cert: t.cert, ...(t.ca !== undefined ? { ca: t.ca } : {}), minVersion: 'TLSv1.2' };
}

/** A TCP connection's 4-tuple: unique among live connections. */
function tupleOf(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

type Upgrade = { secure(t: TLSSocket): void; error(err: Error): void };

/**
 * The server side of TLS for one listener. Sockets are handed to a (non-listening) node
 * tls.Server rather than wrapped in a bare TLSSocket: only tls.Server runs node's client
 * certificate verification (a bare server-side TLSSocket never sets `authorized`).
 */
function tlsAcceptor(spec: ListenerSpec, material: TlsMaterial, handshakeTimeout: number) {
  const pending = new Map<string, Upgrade>();
  const server: TlsServer = createTlsServer({
    ...contextOptions(material),
    requestCert: spec.clientCertificates === 'request',
    // A bad client certificate does not end the session; it just cannot authenticate.
    rejectUnauthorized: false,
    handshakeTimeout,
  });
  const take = (s: TLSSocket): Upgrade | undefined => {
    const k = tupleOf(s);
    const u = pending.get(k);
    pending.delete(k);
    return u;
  };
  server.on('secureConnection', (s: TLSSocket) => {
    const u = take(s);
    if (u === undefined) s.destroy();
    else u.secure(s);
  });
  server.on('tlsClientError', (err: Error, s: TLSSocket) => {
    take(s)?.error(err);
    s.destroy();
  });
  return {
    upgrade(raw: Socket, on: Upgrade): void {
      const k = tupleOf(raw);
      pending.set(k, on);
      raw.once('close', () => pending.delete(k));
      server.emit('connection', raw);
    },
    setTls(t: TlsMaterial): void {
      server.setSecureContext(contextOptions(t));
    },
  };
}

function normalizeIp(ip: string | undefined): string {
  if (ip === undefined) return 'unknown';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m?.[1] ?? ip;
}

/** Create the server; nothing listens until `listen()`. */
export function createSmtpServer(opts: SmtpServerOptions): SmtpServer {
  const limits = withDefaults(opts.limits);
  const logger = opts.logger ?? pino({ level: 'silent' });
  const timers = opts.timers ?? nodeTimers;
  const events = opts.events ?? nullSink;
  const acceptors = new Map(opts.listeners.map((l) => [l, tlsAcceptor(l, opts.tls, limits.commandTimeoutMs)]));
  const servers: Array<{ spec: ListenerSpec; server: Server }> = [];
  const connections = new Set<SmtpConnection>();
  const newPool = (name: PoolName, max: number): Pool => ({
    name,
    max,
    connections: new Set(),
    perIp: new Map(),
    stressed: false,
  });
  const pools: Record<PoolName, Pool> = {
    mx: newPool('mx', limits.maxConnections),
    submission: newPool('submission', limits.maxSubmissionConnections),
  };
  let closing = false;
  const stats: SmtpServerStats = {
    connections: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    tlsHandshakes: 0,
    tlsFailures: 0,
    messagesAccepted: 0,
    messagesRejected: 0,
    bytesAccepted: 0,
    authSuccesses: 0,
    authFailures: 0,
    starttlsInjections: 0,
    bareLineEndings: 0,
    nulBytes: 0,
    bytesReceived: 0,
    commands: 0,
    timeouts: 0,
    junkLimitHits: 0,
    renegotiationsRefused: 0,
    outputBufferedPeak: 0,
    inputBufferedPeak: 0,
    outputStalls: 0,
  };

  /** Postfix's stress mode: above stressThreshold of a pool's slots, its sessions get short timeouts. */
  function updateStress(pool: Pool): void {
    const stressed = pool.connections.size * 100 > pool.max * limits.stressThreshold;
    if (stressed === pool.stressed) return;
    pool.stressed = stressed;
    events.emit({
      event: 'smtpd.stress',
      pool: pool.name,
      connections: pool.connections.size,
      limit: pool.max,
      on: stressed,
    });
    if (stressed) for (const c of pool.connections) c.onStress();
  }

  const REFUSALS = {
    slots: 'too many connections',
    'per-ip': 'too many connections from your address',
    'shutting-down': 'shutting down',
  } as const;

  function refuse(spec: ListenerSpec, socket: Socket, ip: string, reason: keyof typeof REFUSALS): void {
    stats.connectionsRefused++;
    events.emit({ event: 'smtpd.connection-refused', listener: spec.name, client: ip, reason, pool: spec.role });
    socket.on('error', () => undefined);
    // On an implicit-TLS port a plaintext reply would be noise to the client's TLS stack.
    if (spec.mode === 'starttls')
      socket.end(formatReply(421, '4.3.2', `${opts.hostname} Error: ${REFUSALS[reason]}, try again later`));
    else socket.destroy();
    timers.after(1000, () => socket.destroy());
  }

  function onConnection(spec: ListenerSpec, socket: Socket): void {
    stats.connectionsTotal++;
    const ip = normalizeIp(socket.remoteAddress);
    if (closing) return refuse(spec, socket, ip, 'shutting-down');
    const pool = pools[spec.role];
    if (pool.connections.size >= pool.max) return refuse(spec, socket, ip, 'slots');
    const fromIp = pool.perIp.get(ip) ?? 0;
    if (fromIp >= limits.maxConnectionsPerIp) return refuse(spec, socket, ip, 'per-ip');
    pool.perIp.set(ip, fromIp + 1);
    const c = new SmtpConnection(socket, ip, {
      hostname: opts.hostname,
      listener: spec,
      limits,
      hooks: opts.hooks,
      logger,
      events,
      stats,
      timers,
      underStress: () => pool.stressed,
      upgrade: (raw, on) => acceptors.get(spec)?.upgrade(raw, on),
    });
    connections.add(c);
    pool.connections.add(c);
    stats.connections = connections.size;
    updateStress(pool);
    void c.done.then(() => {
      connections.delete(c);
      pool.connections.delete(c);
      stats.connections = connections.size;
      updateStress(pool);
      const n = (pool.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) pool.perIp.delete(ip);
      else pool.perIp.set(ip, n);
    });
  }

  async function listen(): Promise<Array<{ name: string; address: string; port: number }>> {
    const out: Array<{ name: string; address: string; port: number }> = [];
    for (const spec of opts.listeners) {
      const server = createServer({ noDelay: true }, (s) => onConnection(spec, s));
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(
            new NetError('net-listen', `cannot listen on ${spec.address}:${spec.port} (${spec.name}): ${err.message}`, {
              cause: err,
            }),
          ),
        );
        // The accept queue holds a burst of up to maxConnections connects (the kernel caps it at
        // net.core.somaxconn): with node's default of 511, three 1,000-connect bursts
        // (bench/smtp-sessions.ts --ramp-ms 0) overflowed it 4,654 times, and each dropped SYN
        // costs the client a 1 s retransmission (RFC 6298 §2) before its 220; now 0.
        server.listen({ host: spec.address, port: spec.port, backlog: Math.max(511, limits.maxConnections) }, () =>
          resolve(),
        );
      });
      server.on('error', (err) => logger.error({ err, listener: spec.name }, 'listener error'));
      servers.push({ spec, server });
      const a = server.address();
      out.push({
        name: spec.name,
        address: spec.address,
        port: typeof a === 'object' && a !== null ? a.port : spec.port,
      });
    }
    return out;
  }

  async function close(o: { graceful: boolean; timeoutMs?: number } = { graceful: true }): Promise<void> {
    closing = true;
    const stopped = servers.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    const all = [...connections];
    if (o.graceful) {
      for (const c of all) c.shutdown();
      const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), o.timeoutMs ?? 30_000).unref());
      const finished = await Promise.race([Promise.all(all.map((c) => c.done)).then(() => 'done' as const), deadline]);
      if (finished === 'timeout') for (const c of connections) c.destroy();
    } else {
      for (const c of all) c.destroy();
    }
    await Promise.all(stopped);
    servers.length = 0;
  }

  return {
    listen,
    close,
    setTls(tls: TlsMaterial): void {
      // New sessions use the new material; established ones keep theirs.
      for (const a of acceptors.values()) a.setTls(tls);
    },
    stats: () => ({ ...stats }),
  };
}
