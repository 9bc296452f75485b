/**
 * Test builders shared by the delivery tests: a queued message as the spool would hand it to
 * `deliverMessage`, and a TLS-RPT sink that records what the delivery loop reports.
 */
import type { TlsRptSink } from '../../src/delivery/deliver.ts';
import type { Envelope, QueuedMessage } from '../../src/queue/types.ts';
import type { TlsRptFailure, TlsRptSession } from '../../src/report/tlsrpt/aggregate.ts';

export interface QueuedOptions {
  /** Default alice@sender.test. */
  mailFrom?: string;
  body?: Envelope['body'];
  requireTls?: boolean;
  /** Default 'mx'. */
  listener?: string;
}

/** What differs between the tests' envelopes; everything else is a plain 7-bit message. */
export interface EnvelopeOptions {
  notify?: Envelope['recipients'][number]['dsn']['notify'];
  size?: number | null;
  body?: Envelope['body'];
  requireTls?: boolean;
  listener?: string;
  clientAddress?: string;
  clientHelo?: string;
  receivedAt?: string;
}

/** An envelope as smtpd would hand it to the spool (no AUTH, no TLS, no DSN parameters). */
export function testEnvelope(mailFrom: string, recipients: string[], o: EnvelopeOptions = {}): Envelope {
  return {
    mailFrom,
    recipients: recipients.map((address) => ({ address, dsn: { notify: o.notify ?? null, orcpt: null } })),
    size: o.size ?? null,
    body: o.body ?? '7BIT',
    smtputf8: false,
    requireTls: o.requireTls ?? false,
    dsnRet: null,
    dsnEnvid: null,
    arrival: {
      listener: o.listener ?? 'mx',
      clientAddress: o.clientAddress ?? '127.0.0.1',
      clientHelo: o.clientHelo ?? 'x',
      authUser: null,
      tls: null,
      receivedAt: o.receivedAt ?? new Date().toISOString(),
    },
  };
}

/** A message with every recipient still queued, as `spool.claim()` hands it out. */
export function queuedMessage(id: string, recipients: string[], data: Buffer, o: QueuedOptions = {}): QueuedMessage {
  const now = new Date().toISOString();
  return {
    id,
    createdAt: now,
    warned: false,
    size: data.length,
    envelope: testEnvelope(o.mailFrom ?? 'alice@sender.test', recipients, {
      size: data.length,
      body: o.body ?? '7BIT',
      requireTls: o.requireTls ?? false,
      listener: o.listener ?? 'mx',
      receivedAt: now,
    }),
    recipients: recipients.map((address, id) => ({
      id,
      address,
      state: 'queued' as const,
      attempts: 0,
      lastReply: null,
      reason: null,
      nextAttemptAt: null,
      updatedAt: now,
    })),
  };
}

/** Collects the TLS-RPT session results the delivery loop reports. */
export class RecordingTlsRptSink implements TlsRptSink {
  ok: TlsRptSession[] = [];
  failed: TlsRptFailure[] = [];
  recordSuccess(s: TlsRptSession): void {
    this.ok.push(s);
  }
  recordFailure(f: TlsRptFailure): void {
    this.failed.push(f);
  }
}

/** Short client timeouts for tests against local servers. */
export const TEST_TIMEOUTS = {
  greetingMs: 5000,
  tlsMs: 5000,
  ehloMs: 5000,
  mailMs: 5000,
  rcptMs: 5000,
  dataInitMs: 5000,
  dataEndMs: 5000,
};
