/**
 * A manual clock for src/smtp/server's timer seam (SmtpTimers): timeouts fire only when a test
 * calls `advance`, so tests state "after N ms of silence" without waiting N ms or measuring
 * wall-clock windows (no timing assertions, STANDARDS).
 */
import type { SmtpTimers } from '../../src/smtp/server/types.ts';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

export class ManualTimers implements SmtpTimers {
  /** Milliseconds since the clock was made. */
  now = 0;
  /** How many timers were ever armed (a test waits for this to grow to know the server acted). */
  armed = 0;
  private seq = 0;
  private pending = new Set<Pending>();

  after(ms: number, fn: () => void): () => void {
    const t: Pending = { at: this.now + ms, seq: this.seq++, fn };
    this.pending.add(t);
    this.armed++;
    return () => this.pending.delete(t);
  }

  /** Timers waiting to fire, with their delays from now (earliest first). */
  delays(): number[] {
    return [...this.pending].map((t) => t.at - this.now).sort((a, b) => a - b);
  }

  /** Move the clock forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: Pending | null = null;
      for (const t of this.pending)
        if (t.at <= end && (next === null || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      if (next === null) break;
      this.pending.delete(next);
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }
}

/** Resolve once `cond()` holds (polled; gives up after `maxPolls` polls, a hang guard, not a timing claim). */
export async function until(cond: () => boolean, what: string, maxPolls = 10_000): Promise<void> {
  for (let i = 0; i < maxPolls; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, i < 100 ? 0 : 5));
  }
  throw new Error(`never happened: ${what}`);
}
