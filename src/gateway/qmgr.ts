/**
 * The queue manager (Postfix's qmgr): picks due messages from the spool, hands them to delivery,
 * records per-recipient results, and turns final failures, expiries and long delays into RFC 3464
 * DSNs. The spool is the only hand-off between receiving and delivering.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventSink } from '../core/events.ts';
import { deliverMessage } from '../delivery/deliver.ts';
import type { AdmittedSession, DeliveryDeps } from '../delivery/deliver.ts';
import { planDsn } from '../queue/dsn.ts';
import type { DsnAction, DsnRecipient } from '../queue/dsn.ts';
import { dsnStatus } from '../queue/schedule.ts';
import type { SqliteSpool } from '../queue/sqlite.ts';
import type { QueuedMessage, RecipientStatus } from '../queue/types.ts';
import { ConnectionPool } from '../smtp/client/pool.ts';

export interface QueueManagerOptions {
  hostname: string;
  /** Messages delivered at once. */
  concurrency: number;
  /** How often the spool is polled when nothing kicks the manager. */
  pollMs: number;
  maxLifetimeMs: number;
  log: Logger;
  /** Typed events (src/core/events.ts); default: none. */
  events?: EventSink;
  /** Called after each delivery attempt (metrics). */
  onResult?: (r: RecipientStatus) => void;
}

/** 432000000 → "5 days", 5400000 → "1.5 hours", 90000 → "2 minutes" (for bounce texts). */
export function describeDuration(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size) {
      const n = Math.round((ms / size) * 10) / 10;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}

/** "550 5.7.1 text" → DSN status and diagnostic. */
function replyParts(reply: string | null, fallback: string): { status: string; diagnostic?: string } {
  const m = reply ? /^(\d{3})(?:[ -](\d\.\d{1,3}\.\d{1,3}))?/.exec(reply) : null;
  if (!m || !reply) return { status: fallback };
  return { status: dsnStatus(Number(m[1]), m[2] ?? null), diagnostic: `smtp; ${reply}` };
}

export class QueueManager {
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private ticking: Promise<void> | null = null;
  private again = false;
  private readonly active = new Set<Promise<void>>();
  private readonly spool: SqliteSpool;
  private readonly deps: DeliveryDeps;
  private readonly opts: QueueManagerOptions;
  /**
   * One connection cache for every delivery (unless deps brings its own), so consecutive messages
   * to a destination reuse an admitted session (no new connect, EHLO, STARTTLS) and the
   * per-destination concurrency limit holds across messages, as with Postfix's scache. A per-call
   * pool reused nothing: bench/mta-relay.ts measured every message paying a TLS handshake.
   */
  private readonly pool: ConnectionPool<AdmittedSession>;
  private readonly ownPool: boolean;

  constructor(spool: SqliteSpool, deps: DeliveryDeps, opts: QueueManagerOptions) {
    this.spool = spool;
    this.deps = deps;
    this.opts = opts;
    this.ownPool = deps.pool === undefined;
    this.pool = deps.pool ?? new ConnectionPool<AdmittedSession>();
  }

  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /** Something was queued or retried: look now rather than at the next poll. */
  kick(): void {
    if (this.running) this.schedule(0);
  }

  /** Stop picking messages; wait for deliveries in flight (SIGTERM: finish, then exit). */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    await Promise.allSettled([...this.active]);
    if (this.ownPool) await this.pool.close();
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.tick();
    }, ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.runOnce()
      .catch((e: unknown) =>
        this.opts.log.error({ event: 'qmgr.error', err: e instanceof Error ? e.message : String(e) }),
      )
      .finally(() => {
        this.ticking = null;
        if (!this.running) return;
        const again = this.again;
        this.again = false;
        this.schedule(again ? 0 : this.opts.pollMs);
      });
    await this.ticking;
  }

  private async runOnce(): Promise<void> {
    const now = this.deps.now();
    for (const msg of await this.spool.expired(now, 100)) {
      if (this.inFlight.has(msg.id)) continue;
      await this.expire(msg, now);
    }
    for (const msg of await this.spool.delayWarningsDue(now, 100)) {
      if (this.inFlight.has(msg.id)) continue;
      await this.warn(msg, now);
    }
    const free = this.opts.concurrency - this.inFlight.size;
    if (free <= 0) return;
    const due = (await this.spool.due(now, free + this.inFlight.size)).filter((m) => !this.inFlight.has(m.id));
    for (const msg of due.slice(0, free)) {
      this.inFlight.add(msg.id);
      // A message deleted or changed while in flight (`postern queue delete`) makes readMessage /
      // updateRecipients throw; that must be logged, never become an unhandled rejection that
      // would stop the server.
      const p = this.deliver(msg)
        .catch((e: unknown) =>
          this.opts.log.warn({
            event: 'qmgr.deliver-error',
            msgId: msg.id,
            err: e instanceof Error ? e.message : String(e),
          }),
        )
        .finally(() => {
          this.inFlight.delete(msg.id);
          this.active.delete(p);
          if (this.running) this.kick();
        });
      this.active.add(p);
    }
  }

  private async deliver(msg: QueuedMessage): Promise<void> {
    const body = await this.spool.readMessage(msg.id);
    let results: RecipientStatus[];
    try {
      results = await deliverMessage(msg, body, this.deps, this.pool);
    } catch (e) {
      // A bug or a local failure must not lose the message: leave it deferred.
      this.opts.log.error({
        event: 'qmgr.deliver-error',
        msgId: msg.id,
        err: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    for (const r of results) this.opts.onResult?.(r);
    const bounced = results.filter((r) => r.state === 'bounced');
    const delivered = results.filter((r) => r.state === 'delivered');
    if (bounced.length) await this.report(msg, body, 'failed', bounced, '5.0.0');
    if (delivered.length) await this.report(msg, body, 'delivered', delivered, '2.0.0');
    await this.spool.updateRecipients(msg.id, results);
  }

  /** Past its lifetime: every pending recipient bounces with the last reason it was deferred for. */
  private async expire(msg: QueuedMessage, now: Date): Promise<void> {
    const pending = msg.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred');
    if (pending.length === 0) return;
    const final: RecipientStatus[] = pending.map((r) => ({
      ...r,
      state: 'bounced',
      reason: `${r.reason ?? 'delivery was not possible'} — gave up after ${describeDuration(this.opts.maxLifetimeMs)} in the queue`,
      nextAttemptAt: null,
      updatedAt: now.toISOString(),
    }));
    const body = await this.spool.readMessage(msg.id);
    // Keep the 4.x.x status: the failure that kept it queued was temporary (RFC 3464 §2.3.4).
    await this.report(msg, body, 'failed', final, '4.4.7');
    await this.spool.updateRecipients(msg.id, final);
    this.opts.log.info({ event: 'qmgr.expired', msgId: msg.id, recipients: final.map((r) => r.address) });
  }

  private async warn(msg: QueuedMessage, now: Date): Promise<void> {
    const pending = msg.recipients.filter((r) => r.state === 'deferred');
    if (pending.length) {
      const body = await this.spool.readMessage(msg.id);
      const until = new Date(Date.parse(msg.createdAt) + this.opts.maxLifetimeMs);
      await this.report(msg, body, 'delayed', pending, '4.0.0', until);
    }
    await this.spool.markWarned(msg.id);
    void now;
  }

  private async report(
    msg: QueuedMessage,
    body: Buffer,
    action: DsnAction,
    recipients: RecipientStatus[],
    fallback: string,
    until?: Date,
  ): Promise<void> {
    const now = this.deps.now();
    const dsnRecipients: DsnRecipient[] = recipients.map((r) => ({
      address: r.address,
      ...replyParts(r.lastReply, fallback),
      reason:
        r.reason ?? (action === 'delivered' ? 'The message was delivered.' : 'The message could not be delivered.'),
      lastAttempt: new Date(r.updatedAt),
      ...(until ? { willRetryUntil: until } : {}),
    }));
    const plan = planDsn({
      reportingMta: this.opts.hostname,
      envelope: msg.envelope,
      originalMessage: body,
      action,
      recipients: dsnRecipients,
      now,
      messageId: `${randomBytes(9).toString('base64url')}@${this.opts.hostname}`,
      queueId: msg.id,
    });
    if (!plan.send) {
      if (plan.why === 'null-sender')
        this.opts.log.warn({ event: 'qmgr.dsn-dropped', msgId: msg.id, why: 'bounce of a bounce' });
      return;
    }
    const id = await this.spool.enqueue(plan.envelope, plan.message);
    this.opts.log.info({ event: 'qmgr.dsn', msgId: msg.id, dsnId: id, action, recipients: plan.recipients });
  }
}
