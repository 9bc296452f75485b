/**
 * postern's DNS client. One small interface (`DnsClient`) that the scanner, and later the gateway's
 * delivery loop and DANE/MTA-STS lookups, take as a parameter, so tests can point it at a real
 * server on loopback and products can point it at `--dns-server`.
 *
 * Backend today: node:dns/promises `Resolver` (c-ares). It cannot report the AD bit, so lookups
 * that later need DNSSEC status (TLSA, RFC 7672 §2.2) will get a second backend with its own wire
 * codec behind the same `Backend` seam below; the result objects (`MxLookup`, …) are where a
 * `secure` flag will appear, which is why rich lookups return objects rather than bare arrays.
 */
import { lookup as systemLookup } from 'node:dns/promises';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { PosternError, UsageError } from '../core/errors.ts';

export interface DnsClientOptions {
  /** 'ip', 'ip:port' or '[v6]:port'; default: the system resolver (and getaddrinfo for addresses). */
  servers?: string[];
  /** Per-try timeout (default 3000 ms). */
  timeoutMs?: number;
  /** Tries per server (default 2). */
  tries?: number;
}

export interface MxRecord {
  exchange: string;
  priority: number;
}

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

export interface MxLookup {
  /** In preference order (lowest priority value first; ties by name, for a stable report). */
  records: MxRecord[];
  /** RFC 7505: the domain publishes a single `MX 0 .` and accepts no mail. */
  nullMx: boolean;
  /** RFC 5321 §5.1: no MX but A/AAAA, so the domain itself is the (only) MX, at priority 0. */
  implicit: boolean;
  /** A "." exchange was published alongside other MX records (RFC 7505 §3 forbids that); it is dropped. */
  nullMxMixed: boolean;
}

export interface SrvLookup {
  /** In RFC 2782 order: priority ascending, then weight descending, then name. */
  records: SrvRecord[];
  /** RFC 2782 / RFC 6186 §3: a single target "." means the service is decidedly not available. */
  notAvailable: boolean;
}

export interface DnsClient {
  /** Where mail for `domain` goes, in preference order: its MX records, or the implicit MX; [] for a null MX or none. `mxLookup` tells the cases apart. */
  mx(domain: string): Promise<MxRecord[]>;
  /** MX with RFC 7505 null MX and RFC 5321 §5.1 implicit MX resolved. */
  mxLookup(domain: string): Promise<MxLookup>;
  /** A then AAAA. Without `servers`: getaddrinfo (dns.lookup), so /etc/hosts applies. */
  addresses(host: string): Promise<string[]>;
  txt(name: string): Promise<string[][]>;
  srv(name: string): Promise<SrvLookup>;
  /** The servers in use, or null for the system resolver. */
  readonly servers: readonly string[] | null;
}

export type DnsErrorCode =
  'dns-nxdomain' | 'dns-nodata' | 'dns-timeout' | 'dns-servfail' | 'dns-refused' | 'dns-failed';

/** A lookup that failed; `temporary` is false only for answers that say the data does not exist. */
export class DnsError extends PosternError {
  declare readonly code: DnsErrorCode;
  /** The name and record type that failed, e.g. 'mx1.example.org', 'A/AAAA'. */
  readonly qname: string;
  readonly qtype: string;
  constructor(code: DnsErrorCode, name: string, rrtype: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, {
      ...options,
      hint:
        code === 'dns-timeout' || code === 'dns-failed'
          ? 'check the DNS server (--dns-server ip[:port]) is reachable'
          : undefined,
    });
    this.name = 'DnsError';
    this.qname = name;
    this.qtype = rrtype;
  }

  /** NXDOMAIN and NODATA are authoritative answers; everything else may succeed on a retry. */
  get temporary(): boolean {
    return this.code !== 'dns-nxdomain' && this.code !== 'dns-nodata';
  }
}

/** Maps a c-ares / getaddrinfo error code to postern's DNS error code. */
export function dnsErrorCode(sysCode: string | undefined): DnsErrorCode {
  switch (sysCode) {
    case 'ENOTFOUND': // c-ares: NXDOMAIN; getaddrinfo: EAI_NONAME (name or data unknown)
      return 'dns-nxdomain';
    case 'ENODATA': // NOERROR with an empty answer section
      return 'dns-nodata';
    case 'ETIMEOUT':
    case 'ETIMEDOUT':
      return 'dns-timeout';
    case 'ESERVFAIL':
    case 'EAI_AGAIN': // getaddrinfo's "temporary failure in name resolution"
      return 'dns-servfail';
    case 'EREFUSED':
      return 'dns-refused';
    default:
      return 'dns-failed';
  }
}

const DESCRIBE: Record<DnsErrorCode, string> = {
  'dns-nxdomain': 'no such domain (NXDOMAIN)',
  'dns-nodata': 'no records of that type (NODATA)',
  'dns-timeout': 'timed out',
  'dns-servfail': 'server failure (SERVFAIL)',
  'dns-refused': 'query refused (REFUSED)',
  'dns-failed': 'lookup failed',
};

function toDnsError(e: unknown, name: string, rrtype: string): DnsError {
  if (e instanceof DnsError) return e;
  const sys = (e as NodeJS.ErrnoException | null)?.code;
  const code = dnsErrorCode(sys);
  const detail = code === 'dns-failed' && sys ? ` (${sys})` : '';
  return new DnsError(code, name, rrtype, `${rrtype} ${name}: ${DESCRIBE[code]}${detail}`, { cause: e });
}

/**
 * Validates one `--dns-server` value: an IP literal with an optional port ('192.0.2.1',
 * '192.0.2.1:5353', '::1', '[::1]:5353'). Host names are refused: resolving the resolver would
 * need a resolver. Returns the normalized form node:dns `setServers` accepts.
 */
export function parseDnsServer(spec: string): string {
  const text = spec.trim();
  const bad = (why: string): UsageError =>
    new UsageError(`invalid DNS server "${spec}": ${why}`, { hint: 'use ip, ip:port or [ipv6]:port' });
  let host: string;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1] ?? '';
    port = v6[2];
    if (isIP(host) !== 6) throw bad('not an IPv6 address in brackets');
  } else if (isIP(text) === 6) {
    host = text;
  } else {
    const i = text.lastIndexOf(':');
    host = i >= 0 ? text.slice(0, i) : text;
    port = i >= 0 ? text.slice(i + 1) : undefined;
    if (isIP(host) !== 4) throw bad('not an IP address');
  }
  if (port !== undefined) {
    const n = Number(port);
    if (!/^\d+$/.test(port) || n < 1 || n > 65535) throw bad(`invalid port "${port}"`);
    return isIP(host) === 6 ? `[${host}]:${n}` : `${host}:${n}`;
  }
  return host;
}

/** Absolute form: c-ares would otherwise try resolv.conf `search` suffixes after an NXDOMAIN. */
function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Numeric address order (IPv4 octets; IPv6 groups after expanding "::"). */
function addressKey(ip: string): string {
  if (isIP(ip) === 4)
    return ip
      .split('.')
      .map((o) => o.padStart(3, '0'))
      .join('.');
  const [head = '', tail] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

function sortAddresses(list: string[]): string[] {
  return [...new Set(list)].sort((x, y) =>
    addressKey(x) < addressKey(y) ? -1 : addressKey(x) > addressKey(y) ? 1 : 0,
  );
}

/** The queries postern needs, as a seam for a future DNSSEC-aware backend. */
interface Backend {
  resolveMx(name: string): Promise<Array<{ exchange: string; priority: number }>>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

/** Creates a DNS client. Throws UsageError for a malformed server spec. */
export function createDnsClient(opts: DnsClientOptions = {}): DnsClient {
  const servers = opts.servers && opts.servers.length > 0 ? opts.servers.map(parseDnsServer) : null;
  const resolver = new Resolver({ timeout: opts.timeoutMs ?? 3000, tries: opts.tries ?? 2 });
  if (servers) resolver.setServers(servers);
  const backend: Backend = resolver;

  async function q<T>(rrtype: string, name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw toDnsError(e, canonical(name), rrtype);
    }
  }

  /** One address family; NXDOMAIN/NODATA become [] with the error kept for the caller to weigh. */
  async function family(rrtype: 'A' | 'AAAA', host: string): Promise<{ addrs: string[]; err: DnsError | null }> {
    try {
      const addrs = await q(rrtype, host, () =>
        rrtype === 'A' ? backend.resolve4(fqdn(host)) : backend.resolve6(fqdn(host)),
      );
      return { addrs, err: null };
    } catch (e) {
      return { addrs: [], err: e as DnsError };
    }
  }

  async function addresses(host: string): Promise<string[]> {
    const h = canonical(host);
    if (isIP(h)) return [h];
    if (!servers) {
      try {
        // getaddrinfo: honours /etc/hosts and nsswitch, as "the system resolver" promises users.
        const all = await systemLookup(h, { all: true, order: 'ipv4first' });
        const list = all.map((a) => a.address);
        return [
          ...sortAddresses(list.filter((x) => isIP(x) === 4)),
          ...sortAddresses(list.filter((x) => isIP(x) === 6)),
        ];
      } catch (e) {
        throw toDnsError(e, h, 'A/AAAA');
      }
    }
    const [a, aaaa] = await Promise.all([family('A', h), family('AAAA', h)]);
    // A hard failure of either family hides endpoints; a scanner must say so rather than scan half.
    for (const r of [a, aaaa]) if (r.err?.temporary) throw r.err;
    // Resolvers rotate RRsets (round robin); a report wants the same order every run.
    const addrs = [...sortAddresses(a.addrs), ...sortAddresses(aaaa.addrs)];
    if (addrs.length > 0) return addrs;
    // Both empty: NXDOMAIN if either family said so, else NODATA.
    const nx = [a.err, aaaa.err].find((x) => x?.code === 'dns-nxdomain');
    throw new DnsError(
      nx ? 'dns-nxdomain' : 'dns-nodata',
      h,
      'A/AAAA',
      `A/AAAA ${h}: ${DESCRIBE[nx ? 'dns-nxdomain' : 'dns-nodata']}`,
    );
  }

  function sortMx(list: MxRecord[]): MxRecord[] {
    // RFC 5321 §5.1 randomizes among equal preferences; a report wants a stable order instead.
    return list.sort(
      (x, y) => x.priority - y.priority || (x.exchange < y.exchange ? -1 : x.exchange > y.exchange ? 1 : 0),
    );
  }

  async function mxLookup(domain: string): Promise<MxLookup> {
    const d = canonical(domain);
    let raw: Array<{ exchange: string; priority: number }>;
    try {
      raw = await q('MX', d, () => backend.resolveMx(fqdn(d)));
    } catch (e) {
      if (!(e instanceof DnsError) || e.code !== 'dns-nodata') throw e;
      raw = [];
    }
    const records = raw.map((r) => ({ exchange: canonical(r.exchange), priority: r.priority }));
    // c-ares gives the root name "." as ''.
    const isNull = (r: MxRecord): boolean => r.exchange === '' || r.exchange === '.';
    if (records.length === 1 && records[0] && isNull(records[0]))
      return { records: [], nullMx: true, implicit: false, nullMxMixed: false };
    const real = records.filter((r) => !isNull(r));
    const nullMxMixed = real.length !== records.length;
    if (real.length > 0) return { records: sortMx(real), nullMx: false, implicit: false, nullMxMixed };
    // RFC 5321 §5.1: no MX records → the domain itself, if it has an address record.
    try {
      await addresses(d);
    } catch (e) {
      if (e instanceof DnsError && !e.temporary) return { records: [], nullMx: false, implicit: false, nullMxMixed };
      throw e;
    }
    return { records: [{ exchange: d, priority: 0 }], nullMx: false, implicit: true, nullMxMixed };
  }

  return {
    servers,
    async mx(domain) {
      return (await mxLookup(domain)).records;
    },
    mxLookup,
    addresses,
    async txt(name) {
      const n = canonical(name);
      return q('TXT', n, () => backend.resolveTxt(fqdn(n)));
    },
    async srv(name) {
      const n = canonical(name);
      const raw = await q('SRV', n, () => backend.resolveSrv(fqdn(n)));
      const records = raw.map((r) => ({ ...r, name: canonical(r.name) }));
      if (records.length === 1 && records[0]?.name === '') return { records: [], notAvailable: true };
      const real = records.filter((r) => r.name !== '');
      real.sort(
        (x, y) => x.priority - y.priority || y.weight - x.weight || (x.name < y.name ? -1 : x.name > y.name ? 1 : 0),
      );
      return { records: real, notAvailable: false };
    },
  };
}
