/**
 * `postern serve`: wires smtpd (src/smtp/server), the spool (src/queue), the queue manager and
 * outbound delivery (src/delivery, src/policy) together, plus the admin endpoint (metrics, queue
 * API). The spool is the only hand-off between receiving and delivering; smtpd answers 250 only
 * after the spool has committed the message. Wiring only: smtpd's hooks are in hooks.ts, what
 * SIGHUP reloads in reload.ts, the hourly TLS-RPT / MTA-STS jobs in maintenance.ts.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { PosternError } from '../core/errors.ts';
import { createEventSink } from '../core/events.ts';
import type { EventSink } from '../core/events.ts';
import type { DeliveryDeps } from '../delivery/deliver.ts';
import { createDnssecResolver } from '../dns/dnssec.ts';
import { createDnsClient } from '../dns/resolver.ts';
import { wantsDane } from '../policy/levels.ts';
import { StsPolicyCache } from '../policy/mta-sts/cache.ts';
import type { PostReportOptions } from '../report/tlsrpt/send.ts';
import { TlsRptStore } from '../report/tlsrpt/store.ts';
import { PolicyTable } from '../policy/table.ts';
import { createSchedule } from '../queue/schedule.ts';
import { openSqliteSpool } from '../queue/sqlite.ts';
import type { Spool } from '../queue/types.ts';
import { createSmtpServer } from '../smtp/server/index.ts';
import type { SmtpServer } from '../smtp/server/index.ts';
import { adminTokens, startAdmin, warnLooseMode } from './admin.ts';
import type { AdminServer } from './admin.ts';
import { smtpHooks } from './hooks.ts';
import { startMaintenance } from './maintenance.ts';
import { countOutboundTls, createMetrics, registerQueueMetrics } from './metrics.ts';
import type { GatewayMetrics } from './metrics.ts';
import { QueueManager } from './qmgr.ts';
import { loadLiveConfig, policySpec } from './reload.ts';
import { AuthRateLimiter, watchUsersFile } from './users.ts';

export interface Gateway {
  listeners: Array<{ name: string; address: string; port: number }>;
  admin: { address: string; port: number } | null;
  spool: Spool;
  /** TLS-RPT session results (RFC 8460), or null when disabled. */
  tlsrpt: TlsRptStore | null;
  /** Run the TLS-RPT sender and MTA-STS refresher now (they also run hourly). */
  maintenance(): Promise<void>;
  /** SIGHUP: reload users and the policy table from `next` (listeners and the spool stay). */
  reload(next?: GatewayConfig): Promise<void>;
  /** SIGTERM: stop accepting, finish in-flight deliveries and SMTP sessions, close the spool. */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
}

export interface GatewayOptions {
  log: Logger;
  /** Tests: deliver to this address/port instead of what DNS says for a host. */
  connectOverride?: DeliveryDeps['connectOverride'];
  /** Extra trust anchors for outbound verify/secure, MTA-STS policy fetches and TLS-RPT POSTs (PEM). */
  ca?: string[];
  /** Tests: fetch MTA-STS policies from this port instead of 443. */
  mtaStsPort?: number;
  /** Tests: options for TLS-RPT HTTPS POSTs (e.g. a port). */
  tlsrptPost?: PostReportOptions;
  /** How often the TLS-RPT sender and the MTA-STS refresher run (default 1 h). */
  maintenanceMs?: number;
  /** Queue manager poll interval (default 1000 ms). */
  pollMs?: number;
  /** Outbound concurrency (messages at once, default 20). */
  concurrency?: number;
  now?: () => Date;
}

function hostPort(h: { host: string; port: number }): string {
  return h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

/** Does any policy entry ask for DANE? Only then is a DNSSEC resolver needed. */
function anyDane(config: GatewayConfig): boolean {
  return wantsDane(config.policy.default.level) || [...config.policy.domains.values()].some((p) => wantsDane(p.level));
}

/** Outbound delivery dependencies from the config (also used by `postern policy check`). */
export function deliveryDeps(
  config: GatewayConfig,
  opts: Pick<GatewayOptions, 'log' | 'ca' | 'connectOverride' | 'now' | 'mtaStsPort'>,
): DeliveryDeps {
  const dns = createDnsClient(config.dns.servers.length ? { servers: config.dns.servers } : {});
  const now = opts.now ?? (() => new Date());
  // Always made (it sends nothing until asked), so a SIGHUP that adds a `dane` level finds it.
  const dnssec = createDnssecResolver({
    ...(config.dns.servers[0] !== undefined ? { server: config.dns.servers[0] } : {}),
    trustAd: config.dns.trustAd,
  });
  {
    if (anyDane(config) && !dnssec.validating)
      opts.log.warn(
        { event: 'dane.resolver-untrusted', server: dnssec.server },
        `DANE is configured but the DNS server ${dnssec.server} is not trusted to validate (not on loopback, or systemd-resolved's stub): no TLSA record counts as secure (run a validating resolver such as unbound on this host and list it in dns.servers, or set dns.trustAd: any)`,
      );
  }
  if (config.mtaSts.enabled && config.mtaSts.allowPrivateAddresses === true)
    opts.log.warn(
      { event: 'mta-sts.private-addresses-allowed' },
      'mtaSts.allowPrivateAddresses is on (insecure): a domain can make postern fetch its policy from loopback or the local network',
    );
  const sts = config.mtaSts.enabled
    ? new StsPolicyCache({
        dir: config.mtaSts.cacheDir,
        fetch: {
          dns,
          ...(opts.ca ? { ca: opts.ca } : {}),
          ...(opts.mtaStsPort ? { port: opts.mtaStsPort } : {}),
          ...(config.mtaSts.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
        },
        now,
        log: opts.log,
      })
    : undefined;
  return {
    dns,
    dnssec,
    ...(sts !== undefined ? { sts } : {}),
    policy: new PolicyTable(policySpec(config)),
    routes: Object.fromEntries([...config.routes].map(([d, h]) => [d, hostPort(h)])),
    ...(config.relayhost ? { relayhost: hostPort(config.relayhost) } : {}),
    heloName: config.hostname,
    ...(opts.ca ? { ca: opts.ca } : {}),
    now,
    log: opts.log,
    ...(opts.connectOverride ? { connectOverride: opts.connectOverride } : {}),
  };
}

/** The TLS key, certificate and client CA the listeners use. */
async function readTlsMaterial(config: GatewayConfig): Promise<{ key: string; cert: string; ca?: string[] }> {
  const [key, cert, clientCa] = await Promise.all([
    readFile(config.tls.key, 'utf8'),
    readFile(config.tls.cert, 'utf8'),
    config.tls.clientCa ? readFile(config.tls.clientCa, 'utf8') : Promise.resolve(null),
  ]).catch((e: unknown) => {
    throw new PosternError('config-tls', `cannot read the TLS key/certificate: ${(e as Error).message}`, {
      hint: 'check tls.cert and tls.key in the config (PEM files)',
    });
  });
  return { key, cert, ...(clientCa ? { ca: [clientCa] } : {}) };
}

/**
 * The gateway's one event sink, for every area: logged through pino, counted in
 * postern_events_total, and the events with richer metrics (delivery.attempt →
 * postern_outbound_tls_total) counted there too.
 */
export function gatewayEventSink(log: Logger, metrics: GatewayMetrics): EventSink {
  return createEventSink({ log, registry: metrics.registry, extra: (e) => countOutboundTls(metrics, e) });
}

/** Starts everything the config describes. Throws PosternError (config/listen/queue) on failure. */
export async function startGateway(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const now = opts.now ?? (() => new Date());
  const tls = await readTlsMaterial(config);
  const metrics: GatewayMetrics = createMetrics();
  const events = gatewayEventSink(log, metrics);
  const live = await loadLiveConfig(config);
  const limiter = new AuthRateLimiter(config.authRateLimit);
  // Secrets others can read, the admin tokens, and `postern user …` taking effect at once.
  await warnLooseMode(config.tls.key, 'private-key', events);
  if (config.users) await warnLooseMode(config.users, 'users', events);
  const tokens = config.admin ? await adminTokens(config.admin, events) : null;
  let usersWatch = watchUsersFile(config.users, events, (store) => live.setUsers(store));

  const spool = await openSqliteSpool(config.queue.dir, { now });
  registerQueueMetrics(metrics.registry, spool, now);
  const tlsrpt = config.tlsrpt.enabled ? TlsRptStore.open(config.tlsrpt.store, { now }) : null;
  const deps: DeliveryDeps = {
    ...deliveryDeps(config, opts),
    ...(tlsrpt !== null ? { tlsrpt } : {}),
    events,
    get policy() {
      return live.policy;
    },
  };
  const qmgr = new QueueManager(spool, deps, {
    hostname: config.hostname,
    concurrency: opts.concurrency ?? 20,
    pollMs: opts.pollMs ?? 1000,
    schedule: createSchedule({
      retry: { initialMs: config.queue.retry.initialMs, maxMs: config.queue.retry.maxMs },
      maxLifetimeMs: config.queue.maxLifetimeMs,
      delayWarningMs: config.queue.delayWarningMs,
    }),
    trustedClient: (a) => live.relay.isTrustedNetwork(a.clientAddress),
    log,
    events,
    onResult: (r) => metrics.deliveries.inc({ state: r.state }),
  });

  const smtp: SmtpServer = createSmtpServer({
    hostname: config.hostname,
    listeners: config.listen.map((l) => ({ ...l })),
    tls,
    limits: { ...config.limits },
    logger: log,
    events,
    hooks: smtpHooks({ live, limiter, metrics, spool, events, queued: () => qmgr.kick() }),
  });

  let listeners: Gateway['listeners'];
  try {
    listeners = await smtp.listen();
  } catch (e) {
    await spool.close();
    throw e;
  }
  qmgr.start();
  const maintenance = startMaintenance({
    config,
    deps,
    tlsrpt,
    spool,
    queued: () => qmgr.kick(),
    now,
    log,
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(opts.tlsrptPost ? { tlsrptPost: opts.tlsrptPost } : {}),
    ...(opts.maintenanceMs !== undefined ? { intervalMs: opts.maintenanceMs } : {}),
  });

  let admin: AdminServer | null = null;
  if (config.admin && tokens) {
    admin = await startAdmin({ ...config.admin, spool, metrics, tokens, kick: () => qmgr.kick(), log, events });
  }
  log.info({ event: 'gateway.started', listeners, admin: admin?.address ?? null, queue: config.queue.dir });

  return {
    listeners,
    admin: admin ? admin.address : null,
    spool,
    tlsrpt,
    maintenance: () => maintenance.run(),
    async reload(next = config) {
      await live.reload(next);
      usersWatch?.close();
      usersWatch = watchUsersFile(next.users, events, (store) => live.setUsers(store));
      log.info({ event: 'gateway.reloaded', users: live.users?.size ?? 0 });
    },
    async stop(o = {}) {
      log.info({ event: 'gateway.stopping' });
      usersWatch?.close();
      await smtp.close({ graceful: true, timeoutMs: o.timeoutMs ?? 30_000 });
      await maintenance.stop();
      await qmgr.stop();
      await admin?.close();
      tlsrpt?.close();
      await spool.close();
      log.info({ event: 'gateway.stopped' });
    },
  };
}
