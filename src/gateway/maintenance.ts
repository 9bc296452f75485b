/**
 * The gateway's periodic jobs (hourly by default): send finished days' TLS-RPT reports (RFC 8460
 * §4.1: daily, spread after midnight UTC) and refresh MTA-STS policies before they expire (RFC
 * 8461 §5.1). Runs are serialised: a slow run delays the next, never overlaps it.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema.ts';
import { TLSRPT_LISTENER } from '../delivery/deliver.ts';
import type { DeliveryDeps } from '../delivery/deliver.ts';
import type { StsPolicyCache } from '../policy/mta-sts/cache.ts';
import { sendDueReports } from '../report/tlsrpt/send.ts';
import type { PostReportOptions } from '../report/tlsrpt/send.ts';
import type { TlsRptStore } from '../report/tlsrpt/store.ts';
import type { Envelope, Spool } from '../queue/types.ts';

export interface MaintenanceContext {
  config: GatewayConfig;
  deps: DeliveryDeps;
  tlsrpt: TlsRptStore | null;
  spool: Pick<Spool, 'enqueue'>;
  /** A report was queued: tell the queue manager. */
  queued(): void;
  now: () => Date;
  log: Logger;
  ca?: string[];
  tlsrptPost?: PostReportOptions;
  /** Default 1 h. */
  intervalMs?: number;
}

export interface Maintenance {
  /** Run once now (after any run in progress) and wait for it. */
  run(): Promise<void>;
  /** No more runs; waits for the one in progress. */
  stop(): Promise<void>;
}

/** The envelope of a TLS-RPT report mail (RFC 8460 §3: it must get through where TLS fails). */
export function tlsrptEnvelope(mail: { mailFrom: string; recipients: string[]; raw: Buffer }, now: Date): Envelope {
  return {
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
      receivedAt: now.toISOString(),
    },
  };
}

/** One maintenance pass: MTA-STS refresh, then due TLS-RPT reports. Never throws (logs instead). */
async function maintain(ctx: MaintenanceContext): Promise<void> {
  const { config, deps, tlsrpt, log, now } = ctx;
  try {
    await (deps.sts as StsPolicyCache | undefined)?.refreshDue();
    if (tlsrpt === null) return;
    const r = await sendDueReports({
      store: tlsrpt,
      dns: deps.dns,
      enqueue: async (mail) => {
        const id = await ctx.spool.enqueue(tlsrptEnvelope(mail, now()), mail.raw);
        log.info({ event: 'tlsrpt.queued', msgId: id, recipients: mail.recipients });
        ctx.queued();
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
      postOptions: { ...(ctx.ca ? { ca: ctx.ca } : {}), ...(ctx.tlsrptPost ?? {}) },
    });
    if (r.sent + r.failed + r.skipped > 0) log.info({ event: 'tlsrpt.run', ...r });
  } catch (e) {
    log.error({ event: 'maintenance.error', err: (e as Error).message }, 'TLS-RPT / MTA-STS maintenance failed');
  }
}

/** Run maintenance now and then every `intervalMs`. */
export function startMaintenance(ctx: MaintenanceContext): Maintenance {
  let last: Promise<void> = maintain(ctx);
  const timer = setInterval(() => {
    last = last.then(() => maintain(ctx));
  }, ctx.intervalMs ?? 3_600_000);
  timer.unref();
  return {
    run: async () => {
      last = last.then(() => maintain(ctx));
      await last;
    },
    stop: async () => {
      clearInterval(timer);
      await last;
    },
  };
}
