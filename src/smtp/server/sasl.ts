/**
 * SASL helpers for SMTP AUTH (RFC 4954): strict base64 and the PLAIN message (RFC 4616 §2).
 * The exchange itself (334 challenges, `*` cancel) lives in connection.ts.
 */

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decode base64 strictly (RFC 4648 §4, padding required); null when malformed. */
export function decodeBase64Strict(text: string): Buffer | null {
  return BASE64.test(text) ? Buffer.from(text, 'base64') : null;
}

/** Decode UTF-8 strictly; null when invalid or when it contains NUL. */
export function utf8Strict(b: Buffer): string | null {
  try {
    const s = utf8.decode(b);
    return s.includes('\0') ? null : s;
  } catch {
    return null;
  }
}

/** RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd. Null when malformed. */
export function parsePlain(b: Buffer): { authzid: string; authcid: string; password: string } | null {
  const first = b.indexOf(0);
  const second = first === -1 ? -1 : b.indexOf(0, first + 1);
  if (first === -1 || second === -1 || b.indexOf(0, second + 1) !== -1) return null;
  const authzid = utf8Strict(b.subarray(0, first));
  const authcid = utf8Strict(b.subarray(first + 1, second));
  const password = utf8Strict(b.subarray(second + 1));
  if (authzid === null || authcid === null || password === null) return null;
  if (authcid === '' || password === '') return null;
  return { authzid, authcid, password };
}
