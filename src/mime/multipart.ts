/**
 * Multipart bodies (RFC 2046 §5.1) — multipart/report (RFC 6522) for DSNs and TLS-RPT today,
 * multipart/signed and multipart/encrypted (RFC 1847, RFC 3156 PGP/MIME, RFC 8551 S/MIME) later.
 * The body is built from parts whose header lines and content the caller supplies; the boundary
 * is chosen so that it occurs in no part (§5.1.1), and the caller puts it in its Content-Type.
 */
import { randomBytes } from 'node:crypto';

export interface MimePart {
  /** Complete header lines without their CRLF (folded lines contain "\r\n "), in order. */
  headers: readonly string[];
  /**
   * The content, exactly. The CRLF before the next delimiter belongs to the delimiter (§5.1.1),
   * so content ending in CRLF keeps that CRLF as its own last line end.
   */
  body: Buffer | string;
}

export interface MultipartOptions {
  /** Text before the first part, for readers without MIME (one line, no CRLF). */
  preamble?: string;
  /** Use this boundary (tests, golden files); it must not occur in any part. */
  boundary?: string;
  /** Tag in a generated boundary, `=_<tag>_<24 hex>` (default "postern"). */
  tag?: string;
  /** Random source for the boundary (tests); default crypto.randomBytes. */
  random?: (n: number) => Buffer;
}

export interface Multipart {
  boundary: string;
  /** The body: preamble, each part after its delimiter, the close delimiter, a final CRLF. */
  body: Buffer;
}

// RFC 2046 §5.1.1: 1–70 characters from bchars, not ending in a space.
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

function contains(part: MimePart, boundary: string): boolean {
  const needle = Buffer.from(boundary, 'latin1');
  const inBody = typeof part.body === 'string' ? part.body.includes(boundary) : part.body.includes(needle);
  return inBody || part.headers.some((h) => h.includes(boundary));
}

/**
 * A boundary no part contains: `=_<tag>_` and 24 random hex digits ("=_" cannot occur in base64
 * or quoted-printable output, so a clash is left to the check only for 8-bit or binary content).
 */
export function newBoundary(
  parts: readonly MimePart[],
  tag = 'postern',
  random: (n: number) => Buffer = (n) => randomBytes(n),
): string {
  for (;;) {
    const b = `=_${tag}_${random(12).toString('hex')}`;
    if (!parts.some((p) => contains(p, b))) return b;
  }
}

/** Build a multipart body (RFC 2046 §5.1.1). Throws on an unusable boundary or one found in a part. */
export function buildMultipart(parts: readonly MimePart[], opts: MultipartOptions = {}): Multipart {
  if (parts.length === 0) throw new RangeError('a multipart body needs at least one part');
  const boundary = opts.boundary ?? newBoundary(parts, opts.tag, opts.random);
  if (!BOUNDARY_RE.test(boundary)) throw new RangeError(`unusable MIME boundary "${boundary.slice(0, 80)}"`);
  if (opts.boundary !== undefined && parts.some((p) => contains(p, boundary)))
    throw new RangeError('the MIME boundary occurs inside a part');
  const chunks: Buffer[] = [];
  const text = (s: string): void => void chunks.push(Buffer.from(s, 'utf8'));
  // The preamble's CRLF ends its line; the delimiter brings its own leading CRLF (a blank line).
  if (opts.preamble !== undefined) text(`${opts.preamble}\r\n`);
  parts.forEach((p, i) => {
    text(`${i === 0 && opts.preamble === undefined ? '' : '\r\n'}--${boundary}\r\n`);
    text(p.headers.map((h) => `${h}\r\n`).join('') + '\r\n');
    chunks.push(typeof p.body === 'string' ? Buffer.from(p.body, 'utf8') : p.body);
  });
  text(`\r\n--${boundary}--\r\n`);
  return { boundary, body: Buffer.concat(chunks) };
}
