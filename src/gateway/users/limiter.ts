/**
 * Failed-login rate limiting for SMTP AUTH (per client IP and per user name).
 *
 * An attempt counts from the moment it is admitted, not from when its (≈100 ms) hash finishes:
 * otherwise N parallel guesses from one address all pass the check before the first failure is
 * recorded (the hostile review got 20 guesses through a limit of 5). {@link AuthRateLimiter.begin}
 * admits an attempt only while failures + attempts in flight stay under the limit.
 */
import { ipBytes } from '../../config/net.ts';
import { canonicalUserName } from './store.ts';

export interface RateLimitRule {
  failures: number;
  windowMs: number;
}

/** An admitted login attempt: call `finish` once with the outcome (later calls are ignored). */
export interface LoginTicket {
  allowed: true;
  finish(ok: boolean): void;
}

/** A refused attempt: which limit held, and when an attempt will be admitted again (at the latest). */
export interface LoginRefusal {
  allowed: false;
  scope: 'address' | 'user';
  retryAfterMs: number;
  until: Date;
}

/**
 * Failed logins per client IP and per user name, in sliding windows: after `failures` failures
 * within `windowMs`, further attempts are refused until the oldest failure leaves the window.
 * Memory is bounded: at most `maxEntries` keys per table, least recently touched dropped first,
 * and each key keeps at most `failures` timestamps. A success clears the user's failures but
 * not the IP's (otherwise one valid account would reset an attacker's budget for guessing others).
 */
export class AuthRateLimiter {
  readonly #perIp: RateLimitRule;
  readonly #perUser: RateLimitRule;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #ips = new Map<string, number[]>();
  readonly #users = new Map<string, number[]>();
  /** Attempts admitted and not yet finished, per key (entries removed at zero: bounded by sessions). */
  readonly #ipsInFlight = new Map<string, number>();
  readonly #usersInFlight = new Map<string, number>();

  constructor(opts: { perIp: RateLimitRule; perUser: RateLimitRule; maxEntries?: number; now?: () => number }) {
    this.#perIp = opts.perIp;
    this.#perUser = opts.perUser;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  /** May this IP try to log in as this user now? `retryAfterMs` is 0 when allowed. Admits nothing. */
  check(ip: string, user: string | null): { allowed: boolean; retryAfterMs: number } {
    const now = this.#now();
    const a = this.#wait(this.#ips, ipKey(ip), this.#perIp, now, this.#ipsInFlight.get(ipKey(ip)) ?? 0);
    const uk = user === null ? null : userKey(user);
    const b = uk === null ? 0 : this.#wait(this.#users, uk, this.#perUser, now, this.#usersInFlight.get(uk) ?? 0);
    const retryAfterMs = Math.max(a, b);
    return { allowed: retryAfterMs === 0, retryAfterMs };
  }

  /**
   * Admits one attempt (counted as in flight until `finish`) or refuses it. Refused once the
   * failures in the window plus the attempts in flight reach the limit; the time given assumes
   * the attempts in flight fail, so it is the latest moment the client has to wait for.
   */
  begin(ip: string, user: string | null): LoginTicket | LoginRefusal {
    const now = this.#now();
    const ik = ipKey(ip);
    const uk = user === null ? null : userKey(user);
    const a = this.#wait(this.#ips, ik, this.#perIp, now, this.#ipsInFlight.get(ik) ?? 0);
    const b = uk === null ? 0 : this.#wait(this.#users, uk, this.#perUser, now, this.#usersInFlight.get(uk) ?? 0);
    if (a > 0 || b > 0) {
      const retryAfterMs = Math.max(a, b);
      return { allowed: false, scope: a >= b ? 'address' : 'user', retryAfterMs, until: new Date(now + retryAfterMs) };
    }
    bump(this.#ipsInFlight, ik, 1);
    if (uk !== null) bump(this.#usersInFlight, uk, 1);
    let done = false;
    return {
      allowed: true,
      finish: (ok) => {
        if (done) return;
        done = true;
        bump(this.#ipsInFlight, ik, -1);
        if (uk !== null) bump(this.#usersInFlight, uk, -1);
        if (ok && user !== null) this.recordSuccess(ip, user);
        else if (!ok) this.recordFailure(ip, user);
      },
    };
  }

  /** Records a failed login (what {@link begin}'s `finish(false)` does). */
  recordFailure(ip: string, user: string | null): void {
    const now = this.#now();
    this.#add(this.#ips, ipKey(ip), this.#perIp, now);
    if (user !== null) this.#add(this.#users, userKey(user), this.#perUser, now);
  }

  /** Records a successful login: clears the user's failures, not the address's. */
  recordSuccess(_ip: string, user: string): void {
    this.#users.delete(userKey(user));
  }

  /** Number of tracked keys (for metrics and tests). */
  get size(): { ips: number; users: number } {
    return { ips: this.#ips.size, users: this.#users.size };
  }

  #recent(table: Map<string, number[]>, key: string, rule: RateLimitRule, now: number): number[] {
    const list = table.get(key);
    if (list === undefined) return [];
    const recent = list.filter((t) => now - t < rule.windowMs);
    if (recent.length === 0) table.delete(key);
    else if (recent.length !== list.length) table.set(key, recent);
    return recent;
  }

  #wait(table: Map<string, number[]>, key: string, rule: RateLimitRule, now: number, inFlight: number): number {
    const recent = this.#recent(table, key, rule, now);
    if (recent.length + inFlight < rule.failures) return 0;
    // Allowed again once enough failures have aged out to leave room for one more; attempts in
    // flight count as failures happening now (the worst case).
    const counted = [...recent, ...Array<number>(inFlight).fill(now)];
    const oldest = counted[counted.length - rule.failures] ?? now;
    return Math.max(1, oldest + rule.windowMs - now);
  }

  #add(table: Map<string, number[]>, key: string, rule: RateLimitRule, now: number): void {
    const recent = this.#recent(table, key, rule, now);
    recent.push(now);
    table.delete(key); // re-insert: Map order doubles as least-recently-touched order
    table.set(key, recent.slice(-rule.failures));
    while (table.size > this.#maxEntries) {
      const first = table.keys().next();
      if (first.done === true) break;
      table.delete(first.value);
    }
  }
}

function bump(table: Map<string, number>, key: string, by: number): void {
  const n = (table.get(key) ?? 0) + by;
  if (n <= 0) table.delete(key);
  else table.set(key, n);
}

/** What a password login came to: the shape of the smtpd `authenticate` hook's answer. */
export type LoginResult =
  'ok' | 'bad' | { result: 'rate-limited'; scope: 'address' | 'user'; until: Date; retryAfterMs: number };

/**
 * One password login under the limiter: admitted (counted in flight) BEFORE the hash is computed,
 * finished with its outcome after. `verify` is the store's constant-cost check.
 */
export async function checkLogin(
  limiter: AuthRateLimiter,
  verify: (user: string, password: string) => Promise<boolean>,
  ip: string,
  user: string,
  password: string,
): Promise<LoginResult> {
  const t = limiter.begin(ip, user);
  if (!t.allowed) return { result: 'rate-limited', scope: t.scope, until: t.until, retryAfterMs: t.retryAfterMs };
  let ok = false;
  try {
    ok = await verify(user, password);
  } finally {
    t.finish(ok);
  }
  return ok ? 'ok' : 'bad';
}

function userKey(user: string): string {
  return canonicalUserName(user) ?? user;
}

/** IPv6 clients are counted per /64 (one host usually holds a whole /64); IPv4-mapped as IPv4. */
function ipKey(ip: string): string {
  const bytes = ipBytes(ip.replace(/%.*$/, ''));
  if (bytes === null) return ip;
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return bytes.subarray(12).join('.');
  return `${Buffer.from(bytes.subarray(0, 8)).toString('hex')}/64`;
}
