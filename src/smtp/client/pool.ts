/**
 * Connection reuse and per-destination concurrency for outbound SMTP, after Postfix's scache and
 * `default_destination_concurrency_limit`: at most N sessions to one destination at once, and an
 * idle session is kept for a short time so the next message to the same place skips connect,
 * EHLO and the TLS handshake. A cached session carries the policy decision it was admitted
 * under; the key must include everything that decision depended on.
 */
import type { SmtpClient } from './session.ts';

/** What the pool needs of a connection (SmtpClient, or a test's fake). */
export interface PooledClient {
  readonly usable: boolean;
  readonly transactions: number;
  quit(): Promise<void>;
  close(): void;
}

export interface ConnectionPoolOptions {
  /** Concurrent sessions per destination (Postfix default_destination_concurrency_limit: 20). */
  maxPerDestination?: number;
  /** How long an idle session is kept (Postfix smtp_connection_cache_time_limit: 2 s). */
  idleMs?: number;
  /** Transactions per session before it is retired (0 = no limit). */
  maxTransactions?: number;
}

interface Idle<T, C> {
  client: C;
  meta: T;
  timer: NodeJS.Timeout;
}

interface Slots {
  active: number;
  waiters: Array<() => void>;
}

export class ConnectionPool<T = unknown, C extends PooledClient = SmtpClient> {
  readonly maxPerDestination: number;
  readonly idleMs: number;
  readonly maxTransactions: number;
  readonly #idle = new Map<string, Idle<T, C>[]>();
  readonly #slots = new Map<string, Slots>();
  #closed = false;
  /** Sessions taken from the cache (for tests and metrics). */
  reused = 0;

  constructor(o: ConnectionPoolOptions = {}) {
    this.maxPerDestination = Math.max(1, o.maxPerDestination ?? 20);
    this.idleMs = o.idleMs ?? 2000;
    this.maxTransactions = o.maxTransactions ?? 0;
  }

  /** Run `fn` holding one of the destination's slots; waits while all are in use. */
  async withSlot<R>(destination: string, fn: () => Promise<R>): Promise<R> {
    let s = this.#slots.get(destination);
    if (s === undefined) {
      s = { active: 0, waiters: [] };
      this.#slots.set(destination, s);
    }
    const slots = s;
    if (slots.active >= this.maxPerDestination) await new Promise<void>((resolve) => slots.waiters.push(resolve));
    else slots.active++;
    try {
      return await fn();
    } finally {
      const next = slots.waiters.shift();
      // Hand the slot over directly, so a newcomer cannot overtake a waiter.
      if (next !== undefined) next();
      else if (--slots.active === 0) this.#slots.delete(destination);
    }
  }

  /** Sessions to `destination` currently holding a slot. */
  active(destination: string): number {
    return this.#slots.get(destination)?.active ?? 0;
  }

  /** Take an idle session for `key`, if one is cached and still connected. */
  take(key: string): { client: C; meta: T } | null {
    const list = this.#idle.get(key);
    while (list !== undefined && list.length > 0) {
      const e = list.pop() as Idle<T, C>;
      clearTimeout(e.timer);
      if (list.length === 0) this.#idle.delete(key);
      if (e.client.usable) {
        this.reused++;
        return { client: e.client, meta: e.meta };
      }
      e.client.close();
    }
    return null;
  }

  /** Return a session after a transaction; it is kept for `idleMs`, then QUIT. */
  put(key: string, client: C, meta: T): void {
    const retire = this.maxTransactions > 0 && client.transactions >= this.maxTransactions;
    if (this.#closed || !client.usable || this.idleMs <= 0 || retire) {
      void client.quit();
      return;
    }
    const list = this.#idle.get(key) ?? [];
    const entry: Idle<T, C> = {
      client,
      meta,
      timer: setTimeout(() => {
        const l = this.#idle.get(key);
        const i = l?.indexOf(entry) ?? -1;
        if (l !== undefined && i !== -1) {
          l.splice(i, 1);
          if (l.length === 0) this.#idle.delete(key);
        }
        void client.quit();
      }, this.idleMs),
    };
    entry.timer.unref();
    list.push(entry);
    this.#idle.set(key, list);
  }

  /** Idle sessions cached (all keys). */
  get idleCount(): number {
    let n = 0;
    for (const l of this.#idle.values()) n += l.length;
    return n;
  }

  /** QUIT every idle session; later `put`s close at once. */
  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#idle.values()].flat();
    this.#idle.clear();
    for (const e of all) clearTimeout(e.timer);
    await Promise.all(all.map((e) => e.client.quit()));
  }
}
