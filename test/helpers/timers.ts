/**
 * Helpers for tests that drive timeouts with node:test's mocked timers (`t.mock.timers`) instead
 * of waiting on the wall clock: a timeout is proven by ticking the mocked clock up to just before
 * the deadline (nothing happens) and then to it (the timeout fires), never by measuring elapsed
 * milliseconds, which is flaky on a loaded 2-core machine (timing belongs in bench/).
 *
 * Only `setTimeout` is mocked; `setImmediate` stays real, so these helpers let sockets and promise
 * chains make progress while the mocked clock stands still. They count event-loop turns, not time.
 */

/** Lets `n` event-loop turns pass (I/O callbacks and microtasks run; mocked timers do not). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Waits, turn by turn, until `cond()` holds; fails after `maxTurns` turns (not milliseconds). */
export async function until(cond: () => boolean, what: string, maxTurns = 1_000_000): Promise<void> {
  for (let i = 0; i < maxTurns; i++) {
    if (cond()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new Error(`not reached after ${maxTurns} event-loop turns: ${what}`);
}

/** A promise with a synchronous view of whether it has settled. */
export function tracked<T>(p: Promise<T>): { promise: Promise<T>; readonly settled: boolean } {
  let settled = false;
  const promise = p.finally(() => {
    settled = true;
  });
  return {
    promise,
    get settled() {
      return settled;
    },
  };
}
