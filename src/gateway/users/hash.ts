/**
 * Password hashing for SMTP AUTH users. Hashes are self-describing: `$scrypt$ln=…,r=…,p=…$salt$hash`
 * (RFC 7914, made here) or `$argon2id$v=19$m=…,t=…,p=…$salt$hash` (PHC format, RFC 9106, accepted
 * for imported users). Verification compares in constant time.
 */
import { argon2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

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
export const MAX_PASSWORD_BYTES = 1024;

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

export type ParsedHash =
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

/**
 * Verified when the user does not exist, so an unknown name costs the same single hash as a known
 * one (no user enumeration by timing), with the same parameters. Matches no password: the "hash"
 * is all zero bytes.
 */
export const DUMMY_HASH = `$scrypt$ln=${SCRYPT_PARAMS.ln},r=${SCRYPT_PARAMS.r},p=${SCRYPT_PARAMS.p}$${b64(Buffer.alloc(SALT_BYTES))}$${b64(Buffer.alloc(KEY_BYTES))}`;
