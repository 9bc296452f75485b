/**
 * Which IP addresses an outbound HTTPS fetch driven by DNS data (MTA-STS policy hosts, TLS-RPT
 * rua URIs) may connect to. A hostile record must not make postern talk to its own host or
 * network (SSRF), so everything but global unicast is refused by default: the IANA special-purpose
 * registries (RFC 6890; IPv4 and IPv6 special-purpose address registries), with IPv6 forms that
 * carry an IPv4 address (IPv4-mapped RFC 4291 §2.5.5.2, NAT64 RFC 6052 §2.1 / RFC 8215, 6to4
 * RFC 3056) judged by the IPv4 address inside. Inputs in the legacy inet_aton forms ("127.1",
 * "0x7f.0.0.1", "2130706433") are read as the address getaddrinfo would connect to.
 */

/** Why an address is not public; 'public' means global unicast. */
export type AddressKind =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'reserved'
  | 'invalid';

export interface AddressClass {
  kind: AddressKind;
  /** The canonical address the input denotes (IPv4 dotted quad, IPv6 lower-case compressed), or null. */
  address: string | null;
  /** For IPv6 forms embedding IPv4: the embedded address that decided the kind. */
  embedded?: string;
}

/** The parts of an inet_aton address: "a", "a.b", "a.b.c", "a.b.c.d", each decimal, 0x hex or 0 octal. */
export function parseIPv4Loose(s: string): number[] | null {
  if (s.length === 0 || s.length > 64) return null;
  const parts = s.split('.');
  if (parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p, 8);
    else if (/^(?:0|[1-9][0-9]*)$/.test(p)) n = Number(p);
    else return null;
    if (!Number.isSafeInteger(n)) return null;
    nums.push(n);
  }
  // The last part fills the remaining bytes (inet_aton(3)): "127.1" = 127.0.0.1.
  const last = nums.pop() as number;
  if (nums.some((n) => n > 255)) return null;
  if (last >= 2 ** (8 * (4 - nums.length))) return null;
  const out = [...nums];
  for (let i = 4 - nums.length - 1; i >= 0; i--) out.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return out;
}

/** 16 bytes of an IPv6 address (RFC 4291 §2.2, dotted-quad tail allowed), or null. Zones are refused. */
export function parseIPv6(s: string): number[] | null {
  if (s.length === 0 || s.length > 45 || s.includes('%')) return null;
  let tail: number[] = [];
  let text = s;
  const m = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (m !== null) {
    tail = (m[2] ?? '').split('.').map(Number);
    if (tail.some((x) => x > 255)) return null;
    const prefix = m[1] ?? '';
    text = prefix.endsWith('::') ? prefix : prefix.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0] ?? '');
  const rest = halves.length === 2 ? groups(halves[1] ?? '') : [];
  if (head === null || rest === null) return null;
  const needed = tail.length > 0 ? 6 : 8;
  let g16: number[];
  if (halves.length === 1) {
    if (head.length !== needed) return null;
    g16 = head;
  } else {
    // "::" stands for at least one zero group (RFC 4291 §2.2 item 2).
    if (head.length + rest.length > needed - 1) return null;
    g16 = [...head, ...new Array<number>(needed - head.length - rest.length).fill(0), ...rest];
  }
  return [...g16.flatMap((g) => [g >> 8, g & 0xff]), ...tail];
}

function v4(b: readonly number[]): string {
  return b.join('.');
}

function v6(b: readonly number[]): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // RFC 5952 §4.2: compress the longest run of two or more zero groups (the first if tied).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** [first address, prefix length, kind] — checked in order, the first match decides. */
const V4_RANGES: ReadonlyArray<readonly [readonly number[], number, AddressKind]> = [
  [[0, 0, 0, 0], 8, 'unspecified'], // RFC 791 "this network"; 0.0.0.0 reaches the local host
  [[10, 0, 0, 0], 8, 'private'], // RFC 1918
  [[100, 64, 0, 0], 10, 'cgnat'], // RFC 6598 shared address space
  [[127, 0, 0, 0], 8, 'loopback'], // RFC 1122 §3.2.1.3
  [[169, 254, 0, 0], 16, 'link-local'], // RFC 3927 (cloud metadata services live here)
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'reserved'], // RFC 6890 IETF protocol assignments
  [[192, 0, 2, 0], 24, 'documentation'], // RFC 5737
  [[192, 88, 99, 0], 24, 'reserved'], // RFC 7526 deprecated 6to4 relays
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'reserved'], // RFC 2544 benchmarking
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'], // RFC 5771
  [[255, 255, 255, 255], 32, 'broadcast'], // RFC 919
  [[240, 0, 0, 0], 4, 'reserved'], // RFC 1112 class E
];

const V6_RANGES: ReadonlyArray<readonly [string, number, AddressKind]> = [
  ['::', 128, 'unspecified'], // RFC 4291 §2.5.2
  ['::1', 128, 'loopback'], // RFC 4291 §2.5.3
  ['64:ff9b:1::', 48, 'private'], // RFC 8215 local-use NAT64
  ['100::', 64, 'reserved'], // RFC 6666 discard-only
  ['2001::', 32, 'reserved'], // RFC 4380 Teredo (tunnels to anywhere)
  ['2001:2::', 48, 'reserved'], // RFC 5180 benchmarking
  ['2001:10::', 28, 'reserved'], // RFC 4843 ORCHID
  ['2001:20::', 28, 'reserved'], // RFC 7343 ORCHIDv2
  ['2001:db8::', 32, 'documentation'], // RFC 3849
  ['3fff::', 20, 'documentation'], // RFC 9637
  ['fc00::', 7, 'private'], // RFC 4193 unique local
  ['fe80::', 10, 'link-local'], // RFC 4291 §2.5.6
  ['fec0::', 10, 'private'], // RFC 3879 deprecated site-local
  ['ff00::', 8, 'multicast'], // RFC 4291 §2.7
  ['::', 96, 'reserved'], // RFC 4291 §2.5.5.1 deprecated IPv4-compatible
];

function inPrefix(bytes: readonly number[], net: readonly number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((net[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

const V6_NETS = V6_RANGES.map(([n, bits, kind]) => [parseIPv6(n) as number[], bits, kind] as const);
const MAPPED = parseIPv6('::ffff:0:0') as number[];
const NAT64 = parseIPv6('64:ff9b::') as number[];
const SIX_TO_FOUR = parseIPv6('2002::') as number[];

function classify4(b: readonly number[]): AddressKind {
  for (const [net, bits, kind] of V4_RANGES) if (inPrefix(b, net, bits)) return kind;
  return 'public';
}

/**
 * Classify an address literal (IPv4 in any inet_aton form, IPv6 with or without brackets).
 * Anything that is not an address is 'invalid' — never public.
 */
export function classifyAddress(input: string): AddressClass {
  const s = input.trim().replace(/^\[(.*)\]$/, '$1');
  const quad = s.includes(':') ? null : parseIPv4Loose(s);
  if (quad !== null) return { kind: classify4(quad), address: v4(quad) };
  const b = parseIPv6(s);
  if (b === null) return { kind: 'invalid', address: null };
  const address = v6(b);
  // IPv6 forms that carry an IPv4 address are as public as that address (a mapped loopback is loopback).
  let embedded: number[] | null = null;
  if (inPrefix(b, MAPPED, 96) || inPrefix(b, NAT64, 96)) embedded = b.slice(12, 16);
  else if (inPrefix(b, SIX_TO_FOUR, 16)) embedded = b.slice(2, 6);
  if (embedded !== null) {
    const kind = classify4(embedded);
    return { kind, address, embedded: v4(embedded) };
  }
  for (const [net, bits, kind] of V6_NETS) if (inPrefix(b, net, bits)) return { kind, address };
  // RFC 4291 §2.4: global unicast is 2000::/3; the rest of the space is unassigned.
  return { kind: inPrefix(b, [0x20], 3) ? 'public' : 'reserved', address };
}

/** True only for global unicast addresses (see classifyAddress). */
export function isPublicAddress(address: string): boolean {
  return classifyAddress(address).kind === 'public';
}
