/**
 * The users who may log in (SMTP AUTH), in memory: lookup by (canonical) name and by client
 * certificate fingerprint, and constant-cost password checks bounded in concurrency.
 */
import { PosternError } from '../../core/errors.ts';
import { comparableAddress, comparableDomain } from '../address.ts';
import { DUMMY_HASH, MAX_PASSWORD_BYTES, verifyPassword } from './hash.ts';

/** One user as stored. */
export interface UserRecord {
  name: string;
  /** Self-describing hash (users/hash.ts). */
  password: string;
  /** Sender addresses this user may use; `@domain` means any address at that domain. */
  addresses: string[];
  /** SHA-256 fingerprints (lower-case hex) of client certificates that log in as this user. */
  certificates: string[];
}

/** User names: printable, no whitespace or ':'; compared case-insensitively (stored lower-case, NFC). */
export function canonicalUserName(name: string): string | null {
  const n = name.normalize('NFC').toLowerCase();
  if (n.length < 1 || n.length > 256 || /[\s:\p{C}]/u.test(n)) return null;
  return n;
}

/** A SHA-256 fingerprint in canonical form (lower-case hex, no colons), or null. */
export function normalizeFingerprint(fp: string): string | null {
  const hex = fp.replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

/** Why `a` is not a usable sender address or '@domain', or null when it is. */
export function checkAddress(a: string): string | null {
  if (a.startsWith('@')) return comparableDomain(a.slice(1)) === null ? `'${a}' is not '@domain'` : null;
  return comparableAddress(a) === null ? `'${a}' is not an email address` : null;
}

/** Bounds concurrent hash computations: each scrypt takes 32 MiB, and libuv has 4 threads. */
class Semaphore {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** The users, loaded. Immutable: a reload (file watcher, SIGHUP) loads a new store. */
export class UserStore {
  /** The file this store came from, or null. */
  readonly path: string | null;
  /** Problems worth a log line (e.g. a users file readable by others). */
  readonly warnings: readonly string[];
  readonly #users: ReadonlyMap<string, UserRecord>;
  readonly #byCert: ReadonlyMap<string, string>;
  readonly #limit: Semaphore;

  constructor(
    records: UserRecord[],
    opts: { path?: string | null; warnings?: string[]; maxConcurrentHashes?: number } = {},
  ) {
    const users = new Map<string, UserRecord>();
    const byCert = new Map<string, string>();
    for (const r of records) {
      const name = canonicalUserName(r.name);
      if (name === null) throw new PosternError('users-invalid', `invalid user name '${r.name}'`);
      users.set(name, { ...r, name });
      for (const fp of r.certificates) {
        const n = normalizeFingerprint(fp);
        if (n !== null) byCert.set(n, name);
      }
    }
    this.#users = users;
    this.#byCert = byCert;
    this.path = opts.path ?? null;
    this.warnings = Object.freeze([...(opts.warnings ?? [])]);
    this.#limit = new Semaphore(opts.maxConcurrentHashes ?? 4);
  }

  get size(): number {
    return this.#users.size;
  }

  /** The stored (canonical) name for a login name, or null when there is no such user. */
  canonicalName(name: string): string | null {
    const n = canonicalUserName(name);
    return n !== null && this.#users.has(n) ? n : null;
  }

  has(name: string): boolean {
    return this.canonicalName(name) !== null;
  }

  /**
   * Checks a login. Always costs one hash computation, whether or not the user exists, so the
   * answer time does not reveal valid names.
   */
  async verify(name: string, password: string): Promise<boolean> {
    const n = canonicalUserName(name);
    const user = n === null ? undefined : this.#users.get(n);
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
    return this.#limit.run(async () => {
      const ok = await verifyPassword(password, user?.password ?? DUMMY_HASH);
      return ok && user !== undefined;
    });
  }

  /** Sender addresses the user may use: the configured list, else the user name if it is an address. */
  addresses(name: string): string[] {
    const n = canonicalUserName(name);
    const user = n === null ? undefined : this.#users.get(n);
    if (user === undefined) return [];
    if (user.addresses.length > 0) return [...user.addresses];
    return comparableAddress(user.name) === null ? [] : [user.name];
  }

  /** The user a client certificate (SHA-256 fingerprint, hex, colons optional) logs in as, or null. */
  userForCertificate(fingerprint: string): string | null {
    const n = normalizeFingerprint(fingerprint);
    return n === null ? null : (this.#byCert.get(n) ?? null);
  }

  /** All users (copies), sorted by name. */
  list(): UserRecord[] {
    return [...this.#users.values()]
      .map((u) => ({ ...u, addresses: [...u.addresses], certificates: [...u.certificates] }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
