/**
 * Politeness: bound concurrent connections per address and count every connection made.
 *
 * Scanning must never look like an attack to the server being audited (DEVELOPERS.md: "polite
 * to servers"), so every probe goes through one limiter keyed by IP address. The default of 2
 * concurrent connections per address matches what Postfix's anvil(8) tolerates by default
 * without throttling (smtpd_client_connection_count_limit is 50, but rate limits bite earlier).
 */
/** What probes need from a limiter: run under the per-address bound, and count. */
export interface Limiter {
  run<T>(address: string, fn: () => Promise<T>): Promise<T>;
  connections(address: string): number;
}

export class ConnectionLimiter implements Limiter {
  readonly maxPerAddress: number;
  private readonly active = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private readonly counts = new Map<string, number>();

  constructor(maxPerAddress = 2) {
    if (!Number.isInteger(maxPerAddress) || maxPerAddress < 1) throw new RangeError('maxPerAddress must be >= 1');
    this.maxPerAddress = maxPerAddress;
  }

  /** Runs `fn` once a slot for `address` is free; counts it as one connection. */
  async run<T>(address: string, fn: () => Promise<T>): Promise<T> {
    await this.acquire(address);
    this.counts.set(address, (this.counts.get(address) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.release(address);
    }
  }

  /**
   * A view that shares this limiter's bound but counts only its own connections: one scan run
   * shares a single bound across endpoints, while each endpoint reports its own count.
   */
  scoped(): Limiter {
    const own = new Map<string, number>();
    return {
      run: <T>(address: string, fn: () => Promise<T>): Promise<T> => {
        own.set(address, (own.get(address) ?? 0) + 1);
        return this.run(address, fn);
      },
      connections: (address: string): number => own.get(address) ?? 0,
    };
  }

  /** Connections made to `address` so far. */
  connections(address: string): number {
    return this.counts.get(address) ?? 0;
  }

  private acquire(address: string): Promise<void> {
    const n = this.active.get(address) ?? 0;
    if (n < this.maxPerAddress) {
      this.active.set(address, n + 1);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const q = this.waiting.get(address) ?? [];
      q.push(() => {
        this.active.set(address, (this.active.get(address) ?? 0) + 1);
        resolve();
      });
      this.waiting.set(address, q);
    });
  }

  private release(address: string): void {
    this.active.set(address, (this.active.get(address) ?? 1) - 1);
    const next = this.waiting.get(address)?.shift();
    if (next) next();
  }
}
