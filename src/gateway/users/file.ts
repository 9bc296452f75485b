/**
 * The users file, a small YAML file:
 *
 *   users:
 *     alice@example.org:
 *       password: $scrypt$ln=15,r=8,p=1$<salt>$<hash>
 *       addresses: [alice@example.org, a.smith@example.org]   # optional
 *       certificates: [<sha256 hex>]                           # optional, SASL EXTERNAL
 *
 * Loading validates it (errors name file:line:key); rewrites keep comments, are atomic
 * (core/fs.ts: temp file, fsync, rename, fsync of the directory; mode 0600) and are serialised
 * with a lock file.
 */
import { open, readFile, rm, stat } from 'node:fs/promises';
import { isMap, isScalar, parseDocument } from 'yaml';
import { z } from 'zod';
import { PosternError } from '../../core/errors.ts';
import { looseMode, SECRET_MODE, writeFileAtomic } from '../../core/fs.ts';
import { validateYaml } from '../../core/yaml.ts';
import { hashPassword, MAX_PASSWORD_BYTES, parseHash } from './hash.ts';
import { canonicalUserName, checkAddress, normalizeFingerprint, UserStore } from './store.ts';
import type { UserRecord } from './store.ts';

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
  const mode = looseMode((await stat(path)).mode);
  if (mode !== null) warnings.push(`${path} is readable by group/others (mode ${mode}); run chmod 600 ${path}`);
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
    try {
      await writeFileAtomic(path, doc.toString({ lineWidth: 0 }), { mode: SECRET_MODE });
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
      throw new PosternError('users-write', `cannot write ${path}: ${why}`, {
        hint: 'check that the directory of the users file exists and is writable',
        cause: e,
      });
    }
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
