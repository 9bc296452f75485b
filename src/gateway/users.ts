/**
 * The users who may log in (SMTP AUTH), kept in a small YAML file:
 *
 *   users:
 *     alice@example.org:
 *       password: $scrypt$ln=15,r=8,p=1$<salt>$<hash>
 *       addresses: [alice@example.org, a.smith@example.org]   # optional
 *       certificates: [<sha256 hex>]                           # optional, SASL EXTERNAL
 *
 * Password hashes are self-describing: `$scrypt$ln=…,r=…,p=…$salt$hash` (RFC 7914, made here) or
 * `$argon2id$v=19$m=…,t=…,p=…$salt$hash` (PHC format, RFC 9106, accepted for imported users).
 * Verification compares in constant time, and an unknown user costs one hash too, so timing does
 * not tell which names exist. Rewrites are atomic (temp file, fsync, rename, fsync of the
 * directory; mode 0600) and serialised with a lock file.
 */
import { argon2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isMap, isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import { PosternError } from '../core/errors.ts';
import { ipBytes } from '../config/net.ts';
import { validateYaml } from '../config/yaml-errors.ts';
import { comparableAddress, comparableDomain } from './address.ts';

// ---- password hashing --------------------------------------------------------------------------

/**
 * scrypt cost for new hashes. ln=15, r=8, p=1 (32 MiB) measured ≈ 98 ms per hash on the
 * development machine (ln=14: 48 ms, ln=16: 196 ms), inside the 50–100 ms target.
 */
export const SCRYPT_PARAMS = Object.freeze({ ln: 15, r: 8, p: 1 });

/** Upper bounds for stored parameters, so a hash line cannot make one login use gigabytes. */
const MAX_MEMORY = 256 * 1024 * 1024;
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** SASL passwords longer than this are refused without hashing (nothing legitimate is this long). */
const MAX_PASSWORD_BYTES = 1024;

function b64(buf: Buffer): string {
  return buf.toString('base64').replace(/=+$/, '');
}

function unb64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return null;
  return Buffer.from(s, 'base64');
}

/** RFC 8265 §4.2 OpaqueString, reduced to what matters for comparison: Unicode NFC. */
function preparePassword(password: string): Buffer {
  return Buffer.from(password.normalize('NFC'), 'utf8');
}

function scryptAsync(pw: Buffer, salt: Buffer, len: number, p: { N: number; r: number; p: number }): Promise<Buffer> {
  const maxmem = 128 * p.N * p.r * p.p + 128 * p.r * p.p + 4 * 1024 * 1024;
  return new Promise((resolve, reject) =>
    scrypt(pw, salt, len, { N: p.N, r: p.r, p: p.p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

type ParsedHash =
  | { scheme: 'scrypt'; N: number; r: number; p: number; salt: Buffer; hash: Buffer }
  | { scheme: 'argon2id'; m: number; t: number; p: number; salt: Buffer; hash: Buffer };

/** Parses a stored hash, or returns the reason it is unusable. */
export function parseHash(encoded: string): ParsedHash | string {
  const s = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([^$]+)\$([^$]+)$/.exec(encoded);
  if (s !== null) {
    const [ln, r, p] = [Number(s[1]), Number(s[2]), Number(s[3])];
    const salt = unb64(s[4] as string);
    const hash = unb64(s[5] as string);
    if (ln < 10 || ln > 24 || r < 1 || r > 32 || p < 1 || p > 16) return 'scrypt parameters out of range';
    if (128 * 2 ** ln * r * p > MAX_MEMORY) return 'scrypt parameters need more than 256 MiB';
    if (salt === null || hash === null || salt.length < 8 || hash.length < 16) return 'bad scrypt salt or hash';
    return { scheme: 'scrypt', N: 2 ** ln, r, p, salt, hash };
  }
  const a = /^\$argon2id\$v=19\$m=(\d{1,7}),t=(\d{1,2}),p=(\d{1,2})\$([^$]+)\$([^$]+)$/.exec(encoded);
  if (a !== null) {
    const [m, t, p] = [Number(a[1]), Number(a[2]), Number(a[3])];
    const salt = unb64(a[4] as string);
    const hash = unb64(a[5] as string);
    if (m < 8 * p || m * 1024 > MAX_MEMORY || t < 1 || t > 20 || p < 1 || p > 16)
      return 'argon2id parameters out of range';
    if (salt === null || hash === null || salt.length < 8 || hash.length < 16) return 'bad argon2id salt or hash';
    return { scheme: 'argon2id', m, t, p, salt, hash };
  }
  return "unknown hash format (expected '$scrypt$ln=…' or '$argon2id$v=19$…')";
}

async function derive(h: ParsedHash, pw: Buffer): Promise<Buffer> {
  if (h.scheme === 'scrypt') return scryptAsync(pw, h.salt, h.hash.length, h);
  return new Promise((resolve, reject) =>
    argon2(
      'argon2id',
      { message: pw, nonce: h.salt, parallelism: h.p, tagLength: h.hash.length, memory: h.m, passes: h.t },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

/** Hashes a password with scrypt: `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`. */
export async function hashPassword(
  password: string,
  params: { ln: number; r: number; p: number } = SCRYPT_PARAMS,
): Promise<string> {
  const pw = preparePassword(password);
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(pw, salt, KEY_BYTES, { N: 2 ** params.ln, r: params.r, p: params.p });
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Checks a password against a stored hash in constant time; false for unusable hashes. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const h = parseHash(encoded);
  if (typeof h === 'string') return false;
  const key = await derive(h, preparePassword(password));
  return key.length === h.hash.length && timingSafeEqual(key, h.hash);
}

// ---- the users file -----------------------------------------------------------------------------

/** One user as stored. */
export interface UserRecord {
  name: string;
  /** Self-describing hash (see {@link hashPassword}). */
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

function normalizeFingerprint(fp: string): string | null {
  const hex = fp.replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

function checkAddress(a: string): string | null {
  if (a.startsWith('@')) return comparableDomain(a.slice(1)) === null ? `'${a}' is not '@domain'` : null;
  return comparableAddress(a) === null ? `'${a}' is not an email address` : null;
}

const UserEntry = z.strictObject({
  password: z.string().superRefine((v, ctx) => {
    const h = parseHash(v);
    if (typeof h === 'string') ctx.addIssue({ code: 'custom', message: h });
  }),
  addresses: z
    .array(
      z.string().superRefine((v, ctx) => {
        const err = checkAddress(v);
        if (err !== null) ctx.addIssue({ code: 'custom', message: err });
      }),
    )
    .optional(),
  certificates: z
    .array(z.string().refine((v) => normalizeFingerprint(v) !== null, 'expected a SHA-256 fingerprint (64 hex digits)'))
    .optional(),
});

const UsersFile = z.strictObject({
  users: z
    .record(z.string(), UserEntry)
    .nullable()
    .superRefine((users, ctx) => {
      const seen = new Set<string>();
      for (const name of Object.keys(users ?? {})) {
        const c = canonicalUserName(name);
        if (c === null)
          ctx.addIssue({ code: 'custom', message: 'invalid user name (no spaces, controls or ":")', path: [name] });
        else if (seen.has(c)) ctx.addIssue({ code: 'custom', message: `user '${c}' is listed twice`, path: [name] });
        else seen.add(c);
      }
    }),
});

const HINT = 'manage the users file with `postern user add|passwd|remove|list` (docs/configuration.md)';
const HEADER = `# postern users file — managed with \`postern user add|passwd|remove|list\`; see docs/configuration.md.
# Each user: password (scrypt or argon2id hash), optional addresses (allowed MAIL FROM; '@domain' = any
# address there; default: the user name when it is an address), optional certificates (SHA-256
# fingerprints of client certificates for SASL EXTERNAL).
users:
`;

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

/**
 * Verified when the user does not exist, so an unknown name costs the same single hash as a known
 * one (no user enumeration by timing). Matches no password: the "hash" is all zero bytes.
 */
/** Hashed in place of a missing user's hash, with the same parameters, so both cost the same. */
export const DUMMY_HASH = `$scrypt$ln=${SCRYPT_PARAMS.ln},r=${SCRYPT_PARAMS.r},p=${SCRYPT_PARAMS.p}$${b64(Buffer.alloc(SALT_BYTES))}$${b64(Buffer.alloc(KEY_BYTES))}`;

/** The users, loaded. Immutable: reload (SIGHUP) by loading a new store. */
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

const MAX_FILE_BYTES = 16 * 1024 * 1024;

async function readUsersText(path: string): Promise<string | null> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new PosternError('users-invalid', `${path}: cannot read users file: ${why}`, { hint: HINT, cause: e });
  }
}

function parseUsersText(text: string, label: string) {
  const src = validateYaml(UsersFile, text, label, { hint: HINT });
  const records: UserRecord[] = Object.entries(src.value.users ?? {}).map(([name, u]) => ({
    name,
    password: u.password,
    addresses: u.addresses ?? [],
    certificates: (u.certificates ?? []).map((c) => normalizeFingerprint(c) ?? c),
  }));
  return { ...src, records };
}

/**
 * Loads the users file. A missing file is an error ('users-missing') unless `allowMissing`,
 * which gives an empty store (the embedded default before the first `postern user add`).
 */
export async function loadUsers(path: string, opts: { allowMissing?: boolean } = {}): Promise<UserStore> {
  const text = await readUsersText(path);
  if (text === null) {
    if (opts.allowMissing) return new UserStore([], { path });
    throw new PosternError('users-missing', `${path}: no such users file`, {
      hint: `create it with \`postern user add <name> --users ${path}\``,
    });
  }
  const { records } = parseUsersText(text, path);
  const warnings: string[] = [];
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0)
    warnings.push(`${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`);
  return new UserStore(records, { path, warnings });
}

// ---- atomic rewrites ----------------------------------------------------------------------------

const LOCK_STALE_MS = 30_000;

async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fh = await open(lock, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new PosternError(
          'users-write',
          `cannot lock ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
          {
            hint: 'check that the directory of the users file exists and is writable',
            cause: e,
          },
        );
      }
      const st = await stat(lock).catch(() => null);
      if (st !== null && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
        await rm(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline)
        throw new PosternError('users-locked', `${path} is locked by another postern process`, {
          hint: `if no other \`postern user\` command is running, remove ${lock}`,
        });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** Writes `text` to `path` atomically: temp file (0600) in the same directory, fsync, rename, fsync dir. */
export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(text);
      await fh.chmod(mode); // umask may have narrowed or the platform widened the mode
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    await rm(tmp, { force: true });
    if (e instanceof PosternError) throw e;
    throw new PosternError('users-write', `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      hint: 'check that the directory of the users file exists and is writable',
      cause: e,
    });
  }
}

/** Read-modify-write of the users file under the lock; `edit` changes the YAML document (comments survive). */
async function editUsers(
  path: string,
  edit: (doc: ReturnType<typeof parseDocument>, users: UserRecord[]) => void,
): Promise<void> {
  await withLock(path, async () => {
    const text = (await readUsersText(path)) ?? HEADER;
    const { records } = parseUsersText(text, path);
    const doc = parseDocument(text);
    const users = doc.get('users', true);
    if (!isMap(users) || users.items.length === 0) {
      // `users:` with nothing under it (or `users: {}`): give it a block mapping to add to.
      const fresh = doc.createNode({});
      fresh.flow = false;
      doc.set('users', fresh);
    }
    edit(doc, records);
    await writeFileAtomic(path, doc.toString({ lineWidth: 0 }));
  });
}

/** The key under `users:` as written in the file for a canonical name. */
function writtenKey(doc: ReturnType<typeof parseDocument>, name: string): string | null {
  const users: unknown = doc.get('users', true);
  if (!isMap(users)) return null;
  for (const pair of users.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (canonicalUserName(k) === name) return k;
  }
  return null;
}

function requireName(name: string): string {
  const n = canonicalUserName(name);
  if (n === null)
    throw new PosternError('usage', `invalid user name '${name}'`, {
      hint: 'user names are printable text without spaces or ":", usually the email address',
    });
  return n;
}

function requirePassword(password: string): void {
  if ([...password].length < 8)
    throw new PosternError('usage', 'password too short', { hint: 'use at least 8 characters' });
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES)
    throw new PosternError('usage', `password longer than ${MAX_PASSWORD_BYTES} bytes`);
}

function requireAddresses(addresses: readonly string[]): string[] {
  for (const a of addresses) {
    const err = checkAddress(a);
    if (err !== null)
      throw new PosternError('usage', err, { hint: "give an address (user@example.org) or '@example.org'" });
  }
  return [...addresses];
}

/** Adds a user (the file is created, mode 0600, when missing). Throws 'user-exists' if present. */
export async function addUser(
  path: string,
  name: string,
  password: string,
  opts: { addresses?: readonly string[]; certificates?: readonly string[] } = {},
): Promise<void> {
  const n = requireName(name);
  requirePassword(password);
  const addresses = requireAddresses(opts.addresses ?? []);
  const certificates = (opts.certificates ?? []).map((c) => {
    const fp = normalizeFingerprint(c);
    if (fp === null) throw new PosternError('usage', `'${c}' is not a SHA-256 certificate fingerprint`);
    return fp;
  });
  const hash = await hashPassword(password);
  await editUsers(path, (doc, records) => {
    if (records.some((r) => canonicalUserName(r.name) === n))
      throw new PosternError('user-exists', `user '${n}' already exists in ${path}`, {
        hint: `change the password with \`postern user passwd ${n}\``,
      });
    const entry: Record<string, unknown> = { password: hash };
    if (addresses.length > 0) entry['addresses'] = addresses;
    if (certificates.length > 0) entry['certificates'] = certificates;
    doc.setIn(['users', n], doc.createNode(entry));
  });
}

/** Replaces a user's password. Throws 'user-unknown' when there is no such user. */
export async function setPassword(path: string, name: string, password: string): Promise<void> {
  const n = requireName(name);
  requirePassword(password);
  const hash = await hashPassword(password);
  await editUsers(path, (doc) => {
    const key = writtenKey(doc, n);
    if (key === null) throw unknownUser(path, n);
    doc.setIn(['users', key, 'password'], hash);
  });
}

/** Removes a user. Throws 'user-unknown' when there is no such user. */
export async function removeUser(path: string, name: string): Promise<void> {
  const n = requireName(name);
  await editUsers(path, (doc) => {
    const key = writtenKey(doc, n);
    if (key === null) throw unknownUser(path, n);
    doc.deleteIn(['users', key]);
  });
}

/** The users in the file (a missing file has none): name, addresses, hash scheme. */
export async function listUsers(
  path: string,
): Promise<Array<{ name: string; addresses: string[]; certificates: number; scheme: string }>> {
  const store = await loadUsers(path, { allowMissing: true });
  return store.list().map((u) => {
    const h = parseHash(u.password);
    return {
      name: u.name,
      addresses: store.addresses(u.name),
      certificates: u.certificates.length,
      scheme: typeof h === 'string' ? 'invalid' : h.scheme,
    };
  });
}

function unknownUser(path: string, name: string): PosternError {
  return new PosternError('user-unknown', `no user '${name}' in ${path}`, { hint: 'see `postern user list`' });
}

// ---- failed-login rate limiting -----------------------------------------------------------------

export interface RateLimitRule {
  failures: number;
  windowMs: number;
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

  constructor(opts: { perIp: RateLimitRule; perUser: RateLimitRule; maxEntries?: number; now?: () => number }) {
    this.#perIp = opts.perIp;
    this.#perUser = opts.perUser;
    this.#maxEntries = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  /** May this IP try to log in as this user now? `retryAfterMs` is 0 when allowed. */
  check(ip: string, user: string | null): { allowed: boolean; retryAfterMs: number } {
    const now = this.#now();
    const a = this.#wait(this.#ips, ipKey(ip), this.#perIp, now);
    const b = user === null ? 0 : this.#wait(this.#users, userKey(user), this.#perUser, now);
    const retryAfterMs = Math.max(a, b);
    return { allowed: retryAfterMs === 0, retryAfterMs };
  }

  recordFailure(ip: string, user: string | null): void {
    const now = this.#now();
    this.#add(this.#ips, ipKey(ip), this.#perIp, now);
    if (user !== null) this.#add(this.#users, userKey(user), this.#perUser, now);
  }

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

  #wait(table: Map<string, number[]>, key: string, rule: RateLimitRule, now: number): number {
    const recent = this.#recent(table, key, rule, now);
    if (recent.length < rule.failures) return 0;
    // Allowed again once enough failures have aged out to leave room for one more.
    const oldest = recent[recent.length - rule.failures] ?? now;
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
