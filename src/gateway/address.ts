/**
 * MAIL FROM / RCPT TO path syntax (RFC 5321 §4.1.2, with the RFC 6531 §3.3 SMTPUTF8 extensions).
 * Pure: text in, a parsed address or the SMTP reply to send out. Strict where strictness costs
 * nothing and protects the relay decision (no control characters, no trailing dots, the
 * RFC 5321 §4.5.3.1 length limits); source routes are accepted and discarded as RFC 5321
 * §4.1.1.3 and Appendix C ask.
 */
import { isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';

/** A syntactically valid path. */
export interface ParsedPath {
  /**
   * The mailbox in canonical wire form: local part (quoted only when it must be) `@` domain as
   * written. `''` for the null reverse-path `<>`, `'postmaster'` for RCPT TO:<Postmaster>.
   */
  address: string;
  /** The local part, decoded: quotes and quoted-pair backslashes removed. */
  local: string;
  /** The domain as written (address literals keep their brackets); `''` for `<>` and `<Postmaster>`. */
  domain: string;
  /** The local part was a Quoted-string. */
  quoted: boolean;
  /** The domain is an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). */
  literal: boolean;
  /** A source route (`<@a,@b:user@d>`) was given and dropped. */
  routeDiscarded: boolean;
  /** Contains non-ASCII characters (only possible with SMTPUTF8). */
  utf8: boolean;
}

/** The SMTP reply for a path that is refused. */
export interface PathError {
  error: { code: 501 | 553; enhanced: string; message: string };
}

export interface ParsePathOptions {
  /** MAIL FROM was given with the SMTPUTF8 parameter (RFC 6531 §3.4). */
  smtputf8: boolean;
  /** 'reverse' (MAIL FROM: `<>` allowed) or 'forward' (RCPT TO: `<Postmaster>` allowed). Default 'forward'. */
  kind?: 'reverse' | 'forward';
}

// RFC 5321 §4.5.3.1.1–3.
const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;
const MAX_PATH = 256;

/** atext (RFC 5322 §3.2.3) as used by RFC 5321's Atom. */
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;
const LDH_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/;

/**
 * Characters that never belong in an address even with SMTPUTF8: C0/C1 controls, DEL, U+FFFD
 * (left behind by invalid UTF-8 decoding), lone surrogates, and bidi/format controls that make
 * an address display as something else (RFC 8264 §9.1 "Bidirectional characters" risks).
 */
const FORBIDDEN =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\ufffd\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]|\p{Cs}/u;

const isAscii = (s: string): boolean => ![...s].some((c) => c > '\x7f');
const octets = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Does `s` need quoting as a local part (i.e. is it not a Dot-string)? */
function needsQuoting(s: string, utf8: boolean): boolean {
  if (s === '') return true;
  return s.split('.').some((atom) => atom === '' || [...atom].some((ch) => !(ATEXT.test(ch) || (utf8 && ch > '\x7f'))));
}

/** Local part in canonical wire form: a Dot-string when possible, else a Quoted-string (RFC 5321 §4.1.2). */
export function formatLocalPart(local: string): string {
  if (!needsQuoting(local, true)) return local;
  return `"${local.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** A DNS domain per RFC 5321 `Domain` (LDH labels), or RFC 6531 U-labels when allowed; error text otherwise. */
function checkDomain(domain: string, utf8: boolean): string | null {
  if (domain === '') return 'missing domain';
  if (octets(domain) > MAX_DOMAIN) return `domain longer than ${MAX_DOMAIN} octets`;
  const labels = domain.split('.');
  for (const label of labels) {
    if (label === '') return domain.endsWith('.') ? 'domain ends with a dot' : 'empty label in domain';
    if (isAscii(label)) {
      if (!LDH_LABEL.test(label) || label.length > 63) return `invalid domain label '${label}'`;
    } else if (!utf8) {
      return 'non-ASCII domain without SMTPUTF8';
    }
  }
  if (!isAscii(domain)) {
    // U-labels must be valid IDNA: convertible to A-labels and already in their canonical
    // (lower-case, NFC, unmapped) form, so 'ｅｘａｍｐｌｅ.org' cannot pass as 'example.org'.
    const ascii = domainToASCII(domain);
    if (ascii === '' || domainToUnicode(ascii) !== domain.toLowerCase()) return 'invalid internationalized domain';
  }
  return null;
}

/** RFC 5321 §4.1.3 address literal contents (without brackets); error text or null. */
function checkLiteral(inner: string): string | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(inner);
  if (v4 !== null) return v4.slice(1).every((n) => Number(n) <= 255) ? null : 'invalid IPv4 address literal';
  const v6 = /^IPv6:(.+)$/i.exec(inner);
  if (v6?.[1] !== undefined) return isIPv6(v6[1]) && !v6[1].includes('%') ? null : 'invalid IPv6 address literal';
  // General-address-literal: no tags besides IPv6 are registered, so nothing could route it.
  return 'unsupported address literal';
}

/** Reads a Quoted-string starting at s[0] === '"'; returns the decoded text and the index after it. */
function readQuoted(s: string, utf8: boolean): { text: string; end: number } | string {
  let out = '';
  let i = 1;
  while (i < s.length) {
    const ch = s[i] as string;
    if (ch === '"') return { text: out, end: i + 1 };
    if (ch === '\\') {
      // quoted-pairSMTP = %d92 %d32-126
      const next = s[i + 1];
      if (next === undefined || next < ' ' || next > '~') return 'invalid quoted-pair in local part';
      out += next;
      i += 2;
      continue;
    }
    // qtextSMTP = %d32-33 / %d35-91 / %d93-126 (RFC 6531: / UTF8-non-ascii)
    const cp = ch.codePointAt(0) ?? 0;
    if (cp > 0x7f) {
      if (!utf8) return 'non-ASCII local part without SMTPUTF8';
      const full = String.fromCodePoint(cp);
      out += full;
      i += full.length;
      continue;
    }
    if (cp < 32 || cp > 126) return 'control character in local part';
    out += ch;
    i++;
  }
  return 'unterminated quoted local part';
}

/**
 * Parses a MAIL FROM / RCPT TO path: `<local@domain>`, `<>` (reverse path only),
 * `<Postmaster>` (forward path only, RFC 5321 §4.1.1.3), `<@relay1,@relay2:local@domain>` (route
 * discarded), quoted local parts and address literals. Angle brackets are required. Non-ASCII
 * is allowed only with `smtputf8` (553 5.6.7 otherwise, RFC 6531 §3.5). Limits: local part 64,
 * domain 255, whole path 256 octets (RFC 5321 §4.5.3.1).
 */
export function parsePath(text: string, opts: ParsePathOptions): ParsedPath | PathError {
  const kind = opts.kind ?? 'forward';
  // RFC 3463: X.1.7 bad sender's address syntax, X.1.3 bad destination address syntax.
  const enhanced = kind === 'reverse' ? '5.1.7' : '5.1.3';
  const what = kind === 'reverse' ? 'sender' : 'recipient';
  const bad = (why: string): PathError => ({
    error: { code: 501, enhanced, message: `Bad ${what} address syntax (${why})` },
  });
  if (octets(text) > MAX_PATH) return bad(`path longer than ${MAX_PATH} octets`);
  if (FORBIDDEN.test(text)) return bad('control or invalid character');
  if (!text.startsWith('<') || !text.endsWith('>') || text.length < 2) return bad('angle brackets required');
  const utf8 = !isAscii(text);
  if (utf8 && !opts.smtputf8) {
    return {
      error: { code: 553, enhanced: '5.6.7', message: `Non-ASCII ${what} address requires SMTPUTF8 (RFC 6531)` },
    };
  }
  let inner = text.slice(1, -1);
  const none = { quoted: false, literal: false, routeDiscarded: false, utf8: false };
  if (inner === '') {
    if (kind === 'reverse') return { address: '', local: '', domain: '', ...none };
    return bad('empty address');
  }
  let routeDiscarded = false;
  if (inner.startsWith('@')) {
    // A-d-l = At-domain *( "," At-domain ) ":" — At-domains are plain domains, never literals.
    const colon = inner.indexOf(':');
    if (colon < 0) return bad('source route without ":"');
    for (const hop of inner.slice(0, colon).split(',')) {
      if (!hop.startsWith('@')) return bad('invalid source route');
      const err = checkDomain(hop.slice(1), opts.smtputf8);
      if (err !== null) return bad(`source route: ${err}`);
    }
    inner = inner.slice(colon + 1);
    routeDiscarded = true;
  }
  if (kind === 'forward' && !routeDiscarded && inner.toLowerCase() === 'postmaster') {
    // RFC 5321 §4.1.1.3: "Postmaster" without a domain, case-insensitive, must be accepted.
    return { address: 'postmaster', local: 'postmaster', domain: '', ...none };
  }
  let local: string;
  let quoted = false;
  let rest: string;
  if (inner.startsWith('"')) {
    const q = readQuoted(inner, opts.smtputf8);
    if (typeof q === 'string') return bad(q);
    local = q.text;
    quoted = true;
    rest = inner.slice(q.end);
    if (octets(inner.slice(0, q.end)) > MAX_LOCAL)
      return { error: { code: 553, enhanced, message: `Local part longer than ${MAX_LOCAL} octets` } };
  } else {
    const at = inner.indexOf('@');
    if (at < 0) return bad('missing @domain');
    local = inner.slice(0, at);
    rest = inner.slice(at);
    for (const atom of local.split('.')) {
      if (atom === '') return bad('empty atom in local part (leading, trailing or double dot)');
      for (const ch of atom) {
        if (!(ATEXT.test(ch) || (opts.smtputf8 && ch > '\x7f'))) return bad(`'${ch}' not allowed in local part`);
      }
    }
    if (octets(local) > MAX_LOCAL)
      return { error: { code: 553, enhanced, message: `Local part longer than ${MAX_LOCAL} octets` } };
  }
  if (!rest.startsWith('@')) return bad('missing @domain');
  const domain = rest.slice(1);
  let literal = false;
  if (domain.startsWith('[')) {
    if (!domain.endsWith(']')) return bad('unterminated address literal');
    const err = checkLiteral(domain.slice(1, -1));
    if (err !== null) return bad(err);
    literal = true;
  } else {
    const err = checkDomain(domain, opts.smtputf8);
    if (err !== null) return bad(err);
  }
  return {
    address: `${formatLocalPart(local)}@${domain}`,
    local,
    domain,
    quoted,
    literal,
    routeDiscarded,
    utf8,
  };
}

/** Type guard: did {@link parsePath} refuse the path? */
export function isPathError(r: ParsedPath | PathError): r is PathError {
  return 'error' in r;
}

/**
 * The domain as compared against configured domains: lower case, A-labels; null for address
 * literals, empty domains and anything that is not already a canonical U-label/LDH name.
 */
export function comparableDomain(domain: string): string | null {
  if (domain === '' || domain.startsWith('[')) return null;
  if (isAscii(domain)) return domain.toLowerCase();
  const ascii = domainToASCII(domain);
  if (ascii === '' || domainToUnicode(ascii) !== domain.toLowerCase()) return null;
  return ascii;
}

/**
 * An address as compared for ownership (MAIL FROM vs. a user's addresses): local part lower-cased
 * (Postfix's lookup tables fold case too) and the domain as {@link comparableDomain}. Accepts
 * `local@domain` with an unquoted or quoted local part; null when it is not an address.
 */
export function comparableAddress(address: string): string | null {
  const p = parsePath(`<${address}>`, { smtputf8: true, kind: 'forward' });
  if (isPathError(p) || p.domain === '') return null;
  const d = p.literal ? p.domain.toLowerCase() : comparableDomain(p.domain);
  if (d === null) return null;
  return `${formatLocalPart(p.local.toLowerCase())}@${d}`;
}
