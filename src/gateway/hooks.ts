/**
 * smtpd's hooks for `postern serve`: SASL against the users file with the failed-login limiter,
 * path parsing, the relay rules for MAIL FROM / RCPT TO, and the hand-off to the spool (250 only
 * after it committed).
 */
import type { EventSink } from '../core/events.ts';
import { PosternError } from '../core/errors.ts';
import type { Envelope, Spool } from '../queue/types.ts';
import type { SessionInfo, SmtpServerHooks } from '../smtp/server/index.ts';
import { isPathError, parsePath } from './address.ts';
import type { GatewayMetrics } from './metrics.ts';
import type { RelaySession } from './relay.ts';
import type { LiveConfig } from './reload.ts';
import { checkLogin } from './users.ts';
import type { AuthRateLimiter } from './users.ts';

export interface HookContext {
  live: LiveConfig;
  limiter: AuthRateLimiter;
  metrics: GatewayMetrics;
  spool: Pick<Spool, 'enqueue'>;
  events: EventSink;
  /** A message was queued: tell the queue manager. */
  queued(): void;
}

function relaySession(s: SessionInfo): RelaySession {
  return { authUser: s.authUser, clientAddress: s.clientAddress, listener: { role: s.listener.role } };
}

/** smtpd parsed the path with the same parser; a failure here is a bug, not the client's. */
function reparse(address: string, kind: 'reverse' | 'forward') {
  const p = parsePath(`<${address}>`, { smtputf8: true, kind });
  if (isPathError(p)) throw new PosternError('internal', `path did not re-parse: ${address}`);
  return p;
}

/** The hooks smtpd calls, over the gateway's live users, relay rules and spool. */
export function smtpHooks(ctx: HookContext): SmtpServerHooks {
  const { live, limiter, metrics } = ctx;
  return {
    authenticate: async (user, password, s) => {
      // Counted as in flight before hashing: parallel guesses cannot outrun the limit.
      const verify = (u: string, p: string): Promise<boolean> => live.users?.verify(u, p) ?? Promise.resolve(false);
      const r = await checkLogin(limiter, verify, s.clientAddress, user, password);
      metrics.auth.inc({ result: typeof r === 'string' ? r : r.result });
      return r;
    },
    authenticateExternal: (_subject, certificate) => {
      const fp = (certificate.fingerprint256 ?? '').replaceAll(':', '').toUpperCase();
      return Promise.resolve(live.users?.userForCertificate(fp) ?? null);
    },
    parsePath: (text, o) => {
      const p = parsePath(text, { smtputf8: o.smtputf8, kind: o.kind });
      return isPathError(p) ? p : { address: p.address, local: p.local, domain: p.domain };
    },
    // eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw (reparse) into the rejection smtpd's runHook answers with 451
    checkSender: async (address, s) => {
      const d = live.relay.checkSender(reparse(address, 'reverse'), relaySession(s));
      return d.ok ? { ok: true } : d;
    },
    // eslint-disable-next-line @typescript-eslint/require-await -- async turns a throw (reparse) into the rejection smtpd's runHook answers with 451
    checkRecipient: async (address, s) => {
      const d = live.relay.checkRecipient(reparse(address, 'forward'), relaySession(s));
      if (!d.ok) metrics.rejected.inc({ reason: 'relay' });
      return d.ok ? { ok: true, ...(d.rewrite !== undefined ? { address: d.rewrite } : {}) } : d;
    },
    enqueue: async (envelope: Envelope, message: Buffer) => {
      const id = await ctx.spool.enqueue(envelope, message);
      metrics.accepted.inc({ listener: envelope.arrival.listener });
      ctx.events.emit({
        event: 'queue.accepted',
        msgId: id,
        from: envelope.mailFrom,
        rcpts: envelope.recipients.length,
        size: message.length,
        listener: envelope.arrival.listener,
        tls: envelope.arrival.tls?.protocol ?? null,
      });
      ctx.queued();
      return id;
    },
  };
}
