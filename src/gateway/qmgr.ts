/**
 * The queue manager (Postfix's qmgr): picks due messages from the spool, hands them to delivery,
 * records per-recipient results, and turns final failures, expiries and long delays into RFC 3464
 * DSNs. The spool is the only hand-off between receiving and delivering.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { createEventSink } from '../core/events.ts';
import type { EventSink } from '../core/events.ts';
import { deliverMessage } from '../delivery/deliver.ts';
import type { AdmittedSession, DeliveryDeps } from '../delivery/deliver.ts';
import { planDsn, returnContent } from '../queue/dsn.ts';
import type { DsnAction, DsnRecipient } from '../queue/dsn.ts';
import { dsnStatus } from '../queue/schedule.ts';
import type { Schedule } from '../queue/schedule.ts';
import type {
  ArrivalInfo,
  Claim,
  ClaimedMessage,
  ClaimSelect,
  NewMessage,
  QueuedMessage,
  RecipientStatus,
  Spool,
} from '../queue/types.ts';
import { ConnectionPool } from '../smtp/client/pool.ts';

export interface QueueManagerOptions {
  hostname: string;
  /** Messages delivered at once. */
  concurrency: number;
  /** How often the spool is polled when nothing kicks the manager. */
  pollMs: number;
  /** Backoff, lifetime and delay-warning age: the one place they are computed. */
  schedule: Schedule;
  /**
   * How long a claim holds (default 1 h). Claims in flight are renewed every third of it, so a
   * slow delivery keeps its message; a node that dies loses its claims when they lapse. A message
   * this manager re-claims while it is still delivering it only renews the lease.
   */
  leaseMs?: number;
  /**
   * Did the mail come from a trusted network (relay `networks`)? With SMTP AUTH or this, a failure
   * report returns the full message; otherwise headers only (`returnContent`). Default: no.
   */
  trustedClient?: (arrival: ArrivalInfo) => boolean;
  log: Logger;
  /** Typed events (src/core/events.ts); default: logged through `log`. */
  events?: EventSink;
  /** Called after each delivery attempt (metrics). */
  onResult?: (r: RecipientStatus) => void;
  /** The delivery step (default `deliverMessage`); tests give a fake with scripted results. */
  deliver?: (
    msg: QueuedMessage,
    body: Buffer,
    deps: DeliveryDeps,
    pool: ConnectionPool<AdmittedSession>,
  ) => Promise<RecipientStatus[]>;
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

/** A DSN ready to enqueue with the results that cause it, and what to report once it is. */
interface PlannedDsn {
  mail: NewMessage;
  action: DsnAction;
  recipients: string[];
}

const DEFAULT_LEASE_MS = 3_600_000;

export class QueueManager {
  /** Messages this manager is working on, with their current claim (renewed by a re-claim). */
  private readonly inFlight = new Map<string, Claim>();
  private timer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private running = false;
  private ticking: Promise<void> | null = null;
  private again = false;
  private readonly active = new Set<Promise<void>>();
  private readonly spool: Spool;
  private readonly deps: DeliveryDeps;
  private readonly opts: QueueManagerOptions;
  private readonly events: EventSink;
  /**
   * One connection cache for every delivery (unless deps brings its own), so consecutive messages
   * to a destination reuse an admitted session (no new connect, EHLO, STARTTLS) and the
   * per-destination concurrency limit holds across messages, as with Postfix's scache. A per-call
   * pool reused nothing: bench/mta-relay.ts measured every message paying a TLS handshake.
   */
  private readonly pool: ConnectionPool<AdmittedSession>;
  private readonly ownPool: boolean;

  constructor(spool: Spool, deps: DeliveryDeps, opts: QueueManagerOptions) {
    this.spool = spool;
    this.deps = deps;
    this.opts = opts;
    this.events = opts.events ?? createEventSink({ log: opts.log });
    this.ownPool = deps.pool === undefined;
    this.pool = deps.pool ?? new ConnectionPool<AdmittedSession>();
  }

  start(): void {
    this.running = true;
    this.schedule(0);
    const every = Math.max(1000, Math.floor((this.opts.leaseMs ?? DEFAULT_LEASE_MS) / 3));
    this.renewTimer = setInterval(() => void this.renewLeases(), every);
    this.renewTimer.unref();
  }

  /**
   * Extend the lease of every message in flight (runs every third of the lease): another node
   * sharing the spool must not take over a delivery that is merely slow.
   */
  async renewLeases(): Promise<void> {
    const now = this.deps.now();
    const leaseMs = this.opts.leaseMs ?? DEFAULT_LEASE_MS;
    await Promise.all(
      [...this.inFlight].map(async ([id, claim]) => {
        try {
          const renewed = await this.spool.renew(claim, now, leaseMs);
          // Only if the work is still running with this claim (it may have completed meanwhile).
          if (this.inFlight.get(id) === claim) this.inFlight.set(id, renewed);
        } catch {
          // Deleted or taken over: the holder's complete() reports it (qmgr.deliver-error).
        }
      }),
    );
  }

  /** One pass now (expiries, delay warnings, due mail), resolved when its deliveries have finished. */
  async pass(): Promise<void> {
    await this.ticking;
    await this.tick();
    await Promise.allSettled([...this.active]);
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
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
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
      .catch((e: unknown) => this.events.emit({ event: 'qmgr.error', err: errText(e) }))
      .finally(() => {
        this.ticking = null;
        if (!this.running) return;
        const again = this.again;
        this.again = false;
        this.schedule(again ? 0 : this.opts.pollMs);
      });
    await this.ticking;
  }

  /** Claim messages; those already in flight here only renew their lease and are not started twice. */
  private async claim(now: Date, limit: number, select: ClaimSelect): Promise<ClaimedMessage[]> {
    const claimed = await this.spool.claim(now, limit, {
      select,
      leaseMs: this.opts.leaseMs ?? DEFAULT_LEASE_MS,
    });
    return claimed.filter((m) => {
      if (!this.inFlight.has(m.id)) return true;
      this.inFlight.set(m.id, m.claim);
      return false;
    });
  }

  private async runOnce(): Promise<void> {
    const now = this.deps.now();
    const sched = this.opts.schedule;
    for (const msg of await this.claim(now, 100, { kind: 'expired', createdBefore: sched.expiredBefore(now) })) {
      await this.guarded(msg, () => this.expire(msg, now));
    }
    const warnBefore = sched.warnBefore(now);
    if (warnBefore !== null) {
      for (const msg of await this.claim(now, 100, { kind: 'delay-warning', createdBefore: warnBefore })) {
        await this.guarded(msg, () => this.warn(msg));
      }
    }
    const free = this.opts.concurrency - this.inFlight.size;
    if (free <= 0) return;
    for (const msg of await this.claim(now, free, { kind: 'due' })) {
      // A message deleted or changed while in flight (`postern queue delete`) makes readMessage /
      // complete throw; that must be reported, never become an unhandled rejection that would
      // stop the server.
      const p = this.guarded(msg, () => this.deliver(msg)).finally(() => {
        this.active.delete(p);
        if (this.running) this.kick();
      });
      this.active.add(p);
    }
  }

  /** Run one message's work holding its claim; a failure is reported and the claim given back. */
  private async guarded(msg: ClaimedMessage, work: () => Promise<void>): Promise<void> {
    this.inFlight.set(msg.id, msg.claim);
    try {
      await work();
    } catch (e) {
      this.events.emit({ event: 'qmgr.deliver-error', msgId: msg.id, err: errText(e) });
      await this.spool.release(this.claimOf(msg)).catch(() => undefined);
    } finally {
      this.inFlight.delete(msg.id);
    }
  }

  private claimOf(msg: ClaimedMessage): Claim {
    return this.inFlight.get(msg.id) ?? msg.claim;
  }

  /** Store the results and the DSNs they cause in one step, then report the DSNs. */
  private async complete(
    msg: ClaimedMessage,
    recipients: RecipientStatus[],
    dsns: PlannedDsn[],
    warned = false,
  ): Promise<void> {
    const now = this.deps.now();
    const settled = recipients.map((r) => this.opts.schedule.settle(r, now));
    const { dsnIds } = await this.spool.complete(this.claimOf(msg), {
      recipients: settled,
      dsns: dsns.map((d) => d.mail),
      ...(warned ? { warned } : {}),
    });
    dsns.forEach((d, i) =>
      this.events.emit({
        event: 'qmgr.dsn',
        msgId: msg.id,
        dsnId: dsnIds[i] ?? '',
        action: d.action,
        recipients: d.recipients,
      }),
    );
  }

  private async deliver(msg: ClaimedMessage): Promise<void> {
    const body = await this.spool.readMessage(msg.id);
    let results: RecipientStatus[];
    try {
      results = await (this.opts.deliver ?? deliverMessage)(msg, body, this.deps, this.pool);
    } catch (e) {
      // A bug or a local failure must not lose the message: give it back unchanged.
      this.events.emit({ event: 'qmgr.deliver-error', msgId: msg.id, err: errText(e) });
      await this.spool.release(this.claimOf(msg));
      return;
    }
    for (const r of results) this.opts.onResult?.(r);
    const bounced = results.filter((r) => r.state === 'bounced');
    // RFC 3461 §5.2.1: a next hop that took NOTIFY/ORCPT reports success itself, so postern stays
    // silent. §5.2.2: relayed to a next hop without DSN, a NOTIFY=SUCCESS recipient gets a
    // "relayed" report (RFC 3464 §2.3.3), never "delivered": postern does no final delivery.
    const relayed = results.filter((r) => r.state === 'delivered' && r.dsnPassedOn !== true);
    const dsns = [
      this.plan(msg, body, 'failed', bounced, '5.0.0'),
      this.plan(msg, body, 'relayed', relayed, '2.0.0'),
    ].filter((d) => d !== null);
    await this.complete(msg, results, dsns);
  }

  /** Past its lifetime: every pending recipient bounces with the last reason it was deferred for. */
  private async expire(msg: ClaimedMessage, now: Date): Promise<void> {
    const pending = msg.recipients.filter((r) => r.state === 'queued' || r.state === 'deferred');
    if (pending.length === 0) return this.spool.release(this.claimOf(msg));
    const final: RecipientStatus[] = pending.map((r) => ({
      ...r,
      state: 'bounced',
      reason: `${r.reason ?? 'delivery was not possible'} — gave up after ${describeDuration(this.opts.schedule.maxLifetimeMs)} in the queue`,
      nextAttemptAt: null,
      updatedAt: now.toISOString(),
    }));
    const body = await this.spool.readMessage(msg.id);
    // Keep the 4.x.x status: the failure that kept it queued was temporary (RFC 3464 §2.3.4).
    const dsn = this.plan(msg, body, 'failed', final, '4.4.7');
    await this.complete(msg, final, dsn ? [dsn] : []);
    this.events.emit({ event: 'qmgr.expired', msgId: msg.id, recipients: final.map((r) => r.address) });
  }

  private async warn(msg: ClaimedMessage): Promise<void> {
    const pending = msg.recipients.filter((r) => r.state === 'deferred');
    let dsn: PlannedDsn | null = null;
    if (pending.length) {
      const body = await this.spool.readMessage(msg.id);
      const until = this.opts.schedule.retryUntil(msg.createdAt);
      dsn = this.plan(msg, body, 'delayed', pending, '4.0.0', until);
    }
    await this.complete(msg, [], dsn ? [dsn] : [], true);
  }

  /** The DSN `recipients` cause, or null when none is to be sent (NOTIFY, null sender). */
  private plan(
    msg: QueuedMessage,
    body: Buffer,
    action: DsnAction,
    recipients: RecipientStatus[],
    fallback: string,
    until?: Date,
  ): PlannedDsn | null {
    if (recipients.length === 0) return null;
    const now = this.deps.now();
    const dsnRecipients: DsnRecipient[] = recipients.map((r) => ({
      address: r.address,
      id: r.id,
      ...replyParts(r.lastReply, fallback),
      reason:
        r.reason ??
        (action === 'failed' || action === 'delayed'
          ? 'The message could not be delivered.'
          : 'The message was delivered.'),
      lastAttempt: new Date(r.updatedAt),
      ...(until ? { willRetryUntil: until } : {}),
    }));
    const trusted = this.opts.trustedClient?.(msg.envelope.arrival) ?? false;
    const plan = planDsn({
      reportingMta: this.opts.hostname,
      envelope: msg.envelope,
      originalMessage: body,
      action,
      recipients: dsnRecipients,
      now,
      messageId: `${randomBytes(9).toString('base64url')}@${this.opts.hostname}`,
      queueId: msg.id,
      ret: returnContent(msg.envelope, trusted),
    });
    if (!plan.send) {
      if (plan.why === 'null-sender') {
        this.events.emit({ event: 'qmgr.dsn-dropped', msgId: msg.id, action, why: 'null-sender' });
      }
      return null;
    }
    return { mail: { envelope: plan.envelope, message: plan.message }, action, recipients: plan.recipients };
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
