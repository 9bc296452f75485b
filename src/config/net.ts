/**
 * Small, strict parsers for the network values in the config: IP addresses, CIDR blocks
 * (Postfix `mynetworks`), `host:port` next hops and DNS server addresses, and domain names.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

/** A parsed CIDR block. `bytes` has the host bits cleared. */
export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  /** Canonical text, e.g. `192.0.2.0/24`, `2001:db8::/32`. */
  text: string;
}

/** A next hop: host name or IP address (no brackets) and port. */
export interface HostPort {
  host: string;
  port: number;
}

/** Bytes of an IPv4 or IPv6 address, or null when `text` is not one (zone ids are refused). */
export function ipBytes(text: string): Uint8Array | null {
  if (isIPv4(text)) return Uint8Array.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) return null;
  let s = text;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1] !== undefined) {
    tail.push(...v4[1].split('.').map(Number));
    s = s.slice(0, -v4[1].length) + '0:0';
  }
  const [head = '', rest] = s.split('::');
  const hs = head === '' ? [] : head.split(':');
  const rs = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - rs.length).fill('0'), ...rs];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/** IPv4-mapped IPv6 (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) → the IPv4 bytes; other input unchanged. */
function unmapped(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.slice(12);
}

function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run (≥ 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Narrowest networks accepted in `relay.networks`: anything wider is almost certainly an open relay. */
export const MIN_PREFIX = { 4: 8, 6: 16 } as const;

/**
 * Parses `192.0.2.0/24`, `2001:db8::/32` or a bare address (a /32 or /128). Host bits must be
 * zero (Postfix only warns; a typo like `10.1.2.3/8` silently widening the network is worse).
 * Returns an error message for bad input.
 */
export function parseCidr(text: string): Cidr | string {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  const addr = m?.[1];
  const bytes = addr === undefined ? null : ipBytes(addr);
  if (m === null || bytes === null)
    return `'${text}' is not an IP address or CIDR block (e.g. 192.0.2.0/24, 2001:db8::/32)`;
  const family = bytes.length === 4 ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return `prefix /${prefix} is longer than ${max} bits`;
  if (prefix < MIN_PREFIX[family])
    return `'${text}' is too wide (shorter than /${MIN_PREFIX[family]}); clients there could relay anywhere without a password — postern is never an open relay`;
  const masked = bytes.slice();
  for (let bit = prefix; bit < max; bit++) masked[bit >> 3] = (masked[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
  if (masked.some((b, i) => b !== bytes[i]))
    return `'${text}' has host bits set; did you mean ${formatIp(masked)}/${prefix}?`;
  return { family, bytes: masked, prefix, text: `${formatIp(masked)}/${prefix}` };
}

/** Is `address` (IPv4, IPv6, IPv4-mapped IPv6; a zone id is ignored) inside `cidr`? */
export function cidrContains(cidr: Cidr, address: string): boolean {
  const raw = ipBytes(address.replace(/%.*$/, ''));
  if (raw === null) return false;
  const bytes = cidr.family === 4 ? unmapped(raw) : raw;
  if (bytes.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit++) {
    const mask = 0x80 >> (bit & 7);
    if (((bytes[bit >> 3] ?? 0) & mask) !== ((cidr.bytes[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * A DNS name as postern stores it: lower case, A-labels (IDNA via WHATWG `domainToASCII`), no
 * trailing dot, LDH labels of 1–63 octets, at most 253 octets (RFC 1035 §2.3.4); or `{ error }`.
 */
export function parseDomain(text: string): { domain: string } | { error: string } {
  const trimmed = text.endsWith('.') ? text.slice(0, -1) : text;
  if (trimmed === '' || /[\s/:@[\]]/.test(trimmed)) return { error: `'${text}' is not a domain name` };
  const ascii = /^[\x21-\x7e]+$/.test(trimmed) ? trimmed.toLowerCase() : domainToASCII(trimmed);
  if (ascii === '') return { error: `'${text}' is not a valid internationalized domain name` };
  if (ascii.length > 253) return { error: `'${text}' is longer than 253 octets` };
  for (const label of ascii.split('.')) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label))
      return { error: `'${text}' is not a domain name (label '${label}')` };
  }
  if (/^\d+$/.test(ascii.split('.').pop() ?? '')) return { error: `'${text}' looks like an IP address, not a domain` };
  return { domain: ascii };
}

/** `host`, `host:port`, `[host]:port`, `192.0.2.1:25`, `[2001:db8::1]:25`; port defaults to `defaultPort`. */
export function parseHostPort(text: string, defaultPort: number): HostPort | { error: string } {
  const bad = { error: `'${text}' is not host:port (e.g. mx.example.org:25, 192.0.2.1:25, [2001:db8::1]:25)` };
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket?.[1] !== undefined) {
    host = bracket[1];
    portText = bracket[2];
  } else {
    if (isIPv6(text)) return { error: `'${text}': write IPv6 next hops in brackets with a port, e.g. [${text}]:25` };
    const m = /^([^:]+)(?::(\d+))?$/.exec(text);
    if (m?.[1] === undefined) return bad;
    host = m[1];
    portText = m[2];
  }
  const port = portText === undefined ? defaultPort : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `'${text}': port must be 1..65535` };
  if (isIPv4(host) || isIPv6(host)) {
    if (host.includes('%')) return bad;
    return { host, port };
  }
  const d = parseDomain(host);
  if ('error' in d) return { error: d.error };
  return { host: d.domain, port };
}
