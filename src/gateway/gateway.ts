/**
 * `postern serve`: wires smtpd (src/smtp/server), the spool (src/queue), the queue manager and
 * outbound delivery (src/delivery, src/policy) together, plus the admin endpoint (metrics, queue
 * API). The spool is the only hand-off between receiving and delivering; smtpd answers 250 only
 * after the spool has committed the message.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { PosternError } from '../core/errors.ts';
import { TLSRPT_LISTENER } from '../delivery/deliver.ts';
import type { DeliveryDeps } from '../delivery/deliver.ts';
import { createDnssecResolver } from '../dns/dnssec.ts';
import { createDnsClient } from '../dns/resolver.ts';
import { wantsDane } from '../policy/levels.ts';
import { StsPolicyCache } from '../policy/mta-sts/cache.ts';
import { sendDueReports } from '../report/tlsrpt/send.ts';
import type { PostReportOptions } from '../report/tlsrpt/send.ts';
import { TlsRptStore } from '../report/tlsrpt/store.ts';
import { PolicyTable } from '../policy/table.ts';
import type { PolicyTableSpec } from '../policy/table.ts';
import { openSqliteSpool } from '../queue/sqlite.ts';
import type { SqliteSpool } from '../queue/sqlite.ts';
import type { Envelope } from '../queue/types.ts';
import { createSmtpServer } from '../smtp/server/index.ts';
import type { SessionInfo, SmtpServer } from '../smtp/server/index.ts';
import { isPathError, parsePath } from './address.ts';
import { startAdmin } from './admin.ts';
import type { AdminServer } from './admin.ts';
import { createMetrics } from './metrics.ts';
import type { GatewayMetrics } from './metrics.ts';
import { QueueManager } from './qmgr.ts';
import { relayPolicyFromConfig } from './relay.ts';
import type { RelayPolicy, RelaySession } from './relay.ts';
import { AuthRateLimiter, loadUsers } from './users.ts';
import type { UserStore } from './users.ts';

export interface Gateway {
  listeners: Array<{ name: string; address: string; port: number }>;
  admin: { address: string; port: number } | null;
  spool: SqliteSpool;
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

function policySpec(config: GatewayConfig): PolicyTableSpec {
  const entry = (p: GatewayConfig['policy']['default']) => ({ level: p.level, profile: p.profile?.profile ?? null });
  return {
    default: entry(config.policy.default),
    domains: Object.fromEntries([...config.policy.domains].map(([d, p]) => [d, entry(p)])),
  };
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
  const sts = config.mtaSts.enabled
    ? new StsPolicyCache({
        dir: config.mtaSts.cacheDir,
        fetch: { dns, ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.mtaStsPort ? { port: opts.mtaStsPort } : {}) },
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

/** Starts everything the config describes. Throws PosternError (config/listen/queue) on failure. */
export async function startGateway(config: GatewayConfig, opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log;
  const now = opts.now ?? (() => new Date());
  const [key, cert, clientCa] = await Promise.all([
    readFile(config.tls.key, 'utf8'),
    readFile(config.tls.cert, 'utf8'),
    config.tls.clientCa ? readFile(config.tls.clientCa, 'utf8') : Promise.resolve(null),
  ]).catch((e: unknown) => {
    throw new PosternError('config-tls', `cannot read the TLS key/certificate: ${(e as Error).message}`, {
      hint: 'check tls.cert and tls.key in the config (PEM files)',
    });
  });

  let users: UserStore | null = config.users ? await loadUsers(config.users, { allowMissing: true }) : null;
  let relay: RelayPolicy = relayPolicyFromConfig(config.relay, users);
  let policy = new PolicyTable(policySpec(config));
  const limiter = new AuthRateLimiter(config.authRateLimit);
  const metrics: GatewayMetrics = createMetrics();

  const spool = await openSqliteSpool(config.queue.dir, {
    retry: { initialMs: config.queue.retry.initialMs, maxMs: config.queue.retry.maxMs },
    maxLifetimeMs: config.queue.maxLifetimeMs,
    delayWarningMs: config.queue.delayWarningMs,
    now,
  });

  const tlsrpt = config.tlsrpt.enabled ? TlsRptStore.open(config.tlsrpt.store, { now }) : null;
  const deps: DeliveryDeps = {
    ...deliveryDeps(config, opts),
    ...(tlsrpt !== null ? { tlsrpt } : {}),
    get policy() {
      return policy;
    },
  };
  const qmgr = new QueueManager(spool, deps, {
    hostname: config.hostname,
    concurrency: opts.concurrency ?? 20,
    pollMs: opts.pollMs ?? 1000,
    maxLifetimeMs: config.queue.maxLifetimeMs,
    log,
    onResult: (r) => metrics.deliveries.inc({ state: r.state }),
  });

  const relaySession = (s: SessionInfo): RelaySession => ({
    authUser: s.authUser,
    clientAddress: s.clientAddress,
    listener: { role: s.listener.role },
  });
  const reparse = (address: string, kind: 'reverse' | 'forward') => {
    const p = parsePath(`<${address}>`, { smtputf8: true, kind });
    if (isPathError(p)) throw new PosternError('internal', `path did not re-parse: ${address}`);
    return p;
  };

  const smtp: SmtpServer = createSmtpServer({
    hostname: config.hostname,
    listeners: config.listen.map((l) => ({ ...l })),
    tls: { key, cert, ...(clientCa ? { ca: [clientCa] } : {}) },
    limits: { ...config.limits },
    logger: log,
    hooks: {
      authenticate: async (user, password, s) => {
        const check = limiter.check(s.clientAddress, user);
        if (!check.allowed) {
          metrics.auth.inc({ result: 'rate-limited' });
          return 'rate-limited';
        }
        const ok = users !== null && (await users.verify(user, password));
        if (ok) limiter.recordSuccess(s.clientAddress, user);
        else limiter.recordFailure(s.clientAddress, user);
        metrics.auth.inc({ result: ok ? 'ok' : 'bad' });
        return ok ? 'ok' : 'bad';
      },
      authenticateExternal: (_subject, certificate) => {
        const fp = (certificate.fingerprint256 ?? '').replaceAll(':', '').toUpperCase();
        return Promise.resolve(users?.userForCertificate(fp) ?? null);
      },
      parsePath: (text, o) => {
        const p = parsePath(text, { smtputf8: o.smtputf8 });
        return isPathError(p) ? p : { address: p.address, local: p.local, domain: p.domain };
      },
      // eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw (reparse) into the rejection smtpd's runHook answers with 451
      checkSender: async (address, s) => {
        const d = relay.checkSender(reparse(address, 'reverse'), relaySession(s));
        return d.ok ? { ok: true } : d;
      },
      // eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw (reparse) into the rejection smtpd's runHook answers with 451
      checkRecipient: async (address, s) => {
        const d = relay.checkRecipient(reparse(address, 'forward'), relaySession(s));
        if (!d.ok) metrics.rejected.inc({ reason: 'relay' });
        return d.ok ? { ok: true } : d;
      },
      enqueue: async (envelope: Envelope, message: Buffer) => {
        const id = await spool.enqueue(envelope, message);
        metrics.accepted.inc({ listener: envelope.arrival.listener });
        log.info({
          event: 'queue.accepted',
          msgId: id,
          from: envelope.mailFrom,
          rcpts: envelope.recipients.length,
          size: message.length,
          listener: envelope.arrival.listener,
          tls: envelope.arrival.tls?.protocol ?? null,
        });
        qmgr.kick();
        return id;
      },
    },
  });

  let listeners: Gateway['listeners'];
  try {
    listeners = await smtp.listen();
  } catch (e) {
    await spool.close();
    throw e;
  }
  qmgr.start();

  // Hourly: send finished days' TLS-RPT reports (RFC 8460 §4.1: daily, spread after midnight UTC)
  // and refresh MTA-STS policies before they expire (RFC 8461 §5.1).
  const maintenance = async (): Promise<void> => {
    try {
      await (deps.sts as StsPolicyCache | undefined)?.refreshDue();
      if (tlsrpt !== null) {
        const r = await sendDueReports({
          store: tlsrpt,
          dns: deps.dns,
          enqueue: async (mail) => {
            const id = await spool.enqueue(
              {
                mailFrom: mail.mailFrom,
                recipients: mail.recipients.map((address) => ({ address, dsn: { notify: ['FAILURE'], orcpt: null } })),
                size: mail.raw.length,
                body: '7BIT',
                smtputf8: false,
                requireTls: false,
                dsnRet: 'HDRS',
                dsnEnvid: null,
                arrival: {
                  listener: TLSRPT_LISTENER,
                  clientAddress: '127.0.0.1',
                  clientHelo: null,
                  authUser: null,
                  tls: null,
                  receivedAt: now().toISOString(),
                },
              },
              mail.raw,
            );
            log.info({ event: 'tlsrpt.queued', msgId: id, recipients: mail.recipients });
            qmgr.kick();
          },
          report: {
            organizationName: config.tlsrpt.organization,
            contactInfo: config.tlsrpt.contact,
            reportIdPrefix: `${config.hostname}_`,
          },
          from: config.tlsrpt.from,
          submitter: config.hostname,
          now,
          log,
          postOptions: { ...(opts.ca ? { ca: opts.ca } : {}), ...(opts.tlsrptPost ?? {}) },
        });
        if (r.sent + r.failed + r.skipped > 0) log.info({ event: 'tlsrpt.run', ...r });
      }
    } catch (e) {
      log.error({ event: 'maintenance.error', err: (e as Error).message }, 'TLS-RPT / MTA-STS maintenance failed');
    }
  };
  let maintenanceRun: Promise<void> = maintenance();
  const maintenanceTimer = setInterval(() => {
    maintenanceRun = maintenanceRun.then(maintenance);
  }, opts.maintenanceMs ?? 3_600_000);
  maintenanceTimer.unref();

  let admin: AdminServer | null = null;
  if (config.admin) {
    admin = await startAdmin({ ...config.admin, spool, metrics, kick: () => qmgr.kick(), log });
  }
  log.info({ event: 'gateway.started', listeners, admin: admin?.address ?? null, queue: config.queue.dir });

  return {
    listeners,
    admin: admin ? admin.address : null,
    spool,
    tlsrpt,
    maintenance: async () => {
      maintenanceRun = maintenanceRun.then(maintenance);
      await maintenanceRun;
    },
    async reload(next = config) {
      users = next.users ? await loadUsers(next.users, { allowMissing: true }) : null;
      relay = relayPolicyFromConfig(next.relay, users);
      policy = new PolicyTable(policySpec(next));
      log.info({ event: 'gateway.reloaded', users: users?.size ?? 0 });
    },
    async stop(o = {}) {
      log.info({ event: 'gateway.stopping' });
      await smtp.close({ graceful: true, timeoutMs: o.timeoutMs ?? 30_000 });
      clearInterval(maintenanceTimer);
      await maintenanceRun;
      await qmgr.stop();
      await admin?.close();
      tlsrpt?.close();
      await spool.close();
      log.info({ event: 'gateway.stopped' });
    },
  };
}
