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

/** A message with every recipient still queued, as `spool.claim()` hands it out. */
export function queuedMessage(id: string, recipients: string[], data: Buffer, o: QueuedOptions = {}): QueuedMessage {
  const now = new Date().toISOString();
  return {
    id,
    createdAt: now,
    warned: false,
    size: data.length,
    envelope: {
      mailFrom: o.mailFrom ?? 'alice@sender.test',
      recipients: recipients.map((address) => ({ address, dsn: { notify: null, orcpt: null } })),
      size: data.length,
      body: o.body ?? '7BIT',
      smtputf8: false,
      requireTls: o.requireTls ?? false,
      dsnRet: null,
      dsnEnvid: null,
      arrival: {
        listener: o.listener ?? 'mx',
        clientAddress: '127.0.0.1',
        clientHelo: 'x',
        authUser: null,
        tls: null,
        receivedAt: now,
      },
    },
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
