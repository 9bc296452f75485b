/**
 * DNSSEC-aware lookups (issue 5): the answers DANE (RFC 7672) and the gateway's policy chain need,
 * each with its DNSSEC status read from the AD bit of a validating resolver.
 *
 * Contract (shared by src/policy/dane, src/delivery and src/scan; the implementation may change,
 * these types may only grow):
 * - `secure`: the resolver is trusted (see `validating`) and set AD on the answer (RFC 4035 §3.2.3).
 * - `insecure`: a NOERROR/NXDOMAIN answer without AD (or AD from an untrusted resolver).
 * - `bogus`: SERVFAIL that a repeat with CD=1 (RFC 4035 §3.2.2) answers: validation failed.
 * - `indeterminate`: SERVFAIL both ways, REFUSED, timeout, malformed reply: nothing is known.
 * RFC 7672 §2.1.1: bogus and indeterminate must never be treated as insecure (no downgrade).
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import { UsageError, WireError } from '../core/errors.ts';
import { parseDnsServer } from './resolver.ts';
import {
  canonicalName as canonicalDnsName,
  decodeHeader,
  decodeResponse,
  describeEde,
  encodeQuery,
  namesEqual,
  RCODE,
  rcodeName,
  RR_TYPES,
  responseMatches,
} from './wire.ts';
import type { DnsMessage, RecordData, ResourceRecord } from './wire.ts';
import type { MxRecord } from './resolver.ts';

export type DnssecStatus = 'secure' | 'insecure' | 'bogus' | 'indeterminate';

/** One TLSA RR (RFC 6698 §2.1). `data` is the certificate association data. */
export interface TlsaRecord {
  usage: number;
  selector: number;
  matchingType: number;
  data: Buffer;
}

export interface DnssecAnswer<T> {
  /** The name asked, canonical (lower case, no trailing dot). */
  qname: string;
  qtype: 'A' | 'AAAA' | 'MX' | 'TXT' | 'TLSA';
  status: DnssecStatus;
  /** 'NOERROR' (records may be empty: NODATA) or 'NXDOMAIN'; null when status is bogus/indeterminate. */
  rcode: 'NOERROR' | 'NXDOMAIN' | null;
  records: T[];
  /** Owner name after following CNAMEs in the answer (RFC 7672 §2.2.2 TLSA base domain); = qname when none. */
  canonicalName: string;
  /** Why bogus/indeterminate (e.g. 'SERVFAIL; CD=1 answered: validation failed', 'timeout'), else null. */
  detail: string | null;
}

export interface DnssecResolverOptions {
  /** 'ip', 'ip:port' or '[v6]:port' (parseDnsServer syntax). Default: first nameserver of /etc/resolv.conf. */
  server?: string;
  /** Per-try timeout (default 3000 ms). */
  timeoutMs?: number;
  /** Tries (default 2). */
  tries?: number;
  /** Trust the AD bit from: 'loopback' (default; like Postfix and maddy) or 'any' server. */
  trustAd?: 'loopback' | 'any';
  /** Where the default server comes from (default /etc/resolv.conf); for tests. */
  resolvConf?: string;
}

export interface DnssecResolver {
  /** The server in use, 'ip:port'. */
  readonly server: string;
  /** True when AD from this server is trusted; when false no answer is ever `secure`. */
  readonly validating: boolean;
  /** A then AAAA; status is the weaker of the two (secure only if both are secure). */
  addresses(host: string): Promise<DnssecAnswer<string>>;
  mx(domain: string): Promise<DnssecAnswer<MxRecord>>;
  txt(name: string): Promise<DnssecAnswer<string[]>>;
  /** `_port._tcp.host` TLSA (RFC 6698 §3). */
  tlsa(host: string, port: number): Promise<DnssecAnswer<TlsaRecord>>;
}

// ---------------------------------------------------------------------------------------------
// Implementation.
//
// A small hand-written stub resolver rather than node:dns: c-ares (behind node:dns) returns only
// the record data, never the header, so the AD bit — the whole point here — is invisible. The
// codec is src/dns/wire.ts; this file does transport (UDP, TCP on TC=1) and the status rules.

/** Longest CNAME chain followed inside one answer (resolvers themselves stop around 8-16). */
const MAX_CNAME_HOPS = 8;
const DEFAULT_PORT = 53;

/** True for 127.0.0.0/8 and ::1 (also ::ffff:127.x.y.z): the only servers whose AD bit is trusted by default. */
export function isLoopbackAddress(host: string): boolean {
  const h = host.toLowerCase();
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) !== 6) return false;
  if (h.startsWith('::ffff:') && isIP(h.slice(7)) === 4) return h.slice(7).startsWith('127.');
  // Normalise any spelling of ::1 (0:0:0:0:0:0:0:1, ::0:1, …) by expanding the groups.
  const [head = '', tail] = h.split('::');
  const hg = head ? head.split(':') : [];
  const tg = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hg : [...hg, ...Array<string>(8 - hg.length - tg.length).fill('0'), ...tg];
  return (
    groups.length === 8 &&
    groups.slice(0, 7).every((g) => Number.parseInt(g, 16) === 0) &&
    groups[7] !== undefined &&
    Number.parseInt(groups[7], 16) === 1
  );
}

/** The first usable `nameserver` of a resolv.conf text (resolv.conf(5)); null when none parses. */
export function nameserverFromResolvConf(text: string): string | null {
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m?.[1]) continue;
    try {
      return parseDnsServer(m[1]);
    } catch {
      // A host name or junk: not something we can send to; try the next line.
    }
  }
  return null;
}

/** 'ip' | 'ip:port' | 'v6' | '[v6]:port' (already validated) → host and port. */
function splitServer(spec: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(spec);
  if (v6) return { host: v6[1] ?? '', port: Number(v6[2]) };
  if (isIP(spec) === 6) return { host: spec, port: DEFAULT_PORT };
  const i = spec.lastIndexOf(':');
  return i >= 0 ? { host: spec.slice(0, i), port: Number(spec.slice(i + 1)) } : { host: spec, port: DEFAULT_PORT };
}

/** Validates and canonicalises a name the caller asks about; bad names are a UsageError. */
function queryName(name: string): string {
  if (typeof name !== 'string') throw new UsageError('DNS name must be a string');
  const n = canonicalDnsName(name.trim());
  if (n === '' || n === '.') throw new UsageError(`invalid DNS name "${name}"`);
  // encodeQuery re-checks labels and lengths; run it once here so the error comes before any I/O.
  encodeQuery({ id: 0, name: n, type: RR_TYPES.A });
  return n;
}

type Exchange = { ok: true; msg: DnsMessage } | { ok: false; detail: string };

interface Query {
  id: number;
  name: string;
  type: number;
  bytes: Buffer;
}

/**
 * One UDP try. The socket is connect()ed, so the kernel drops datagrams from any other address or
 * port, and it is bound to port 0: a fresh random source port per try (RFC 5452 §9.2). Replies with
 * another id or question are ignored, not fatal: they may be spoofed (RFC 5452 §4.1).
 */
function udpTry(host: string, port: number, q: Query, timeoutMs: number): Promise<Exchange | 'truncated'> {
  return new Promise((resolve) => {
    const sock = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    let malformed: string | null = null;
    let settled = false;
    const done = (r: Exchange | 'truncated'): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const timer = setTimeout(
      () => done({ ok: false, detail: malformed ? `malformed reply: ${malformed}` : 'timeout' }),
      timeoutMs,
    );
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, detail: `udp: ${e.code ?? e.message}` }));
    sock.on('message', (buf) => {
      let msg: DnsMessage;
      try {
        const h = decodeHeader(buf);
        if (!h.qr || h.id !== q.id) return;
        // RFC 1035 §4.2.1 / RFC 7766 §5: TC=1 means retry over TCP; the partial message may not
        // even decode, so the id is all that is checked here (TCP's own reply is checked fully).
        if (h.tc) return done('truncated');
        msg = decodeResponse(buf);
      } catch (e) {
        malformed = e instanceof WireError ? e.message : 'undecodable';
        return;
      }
      if (responseMatches(msg, q)) done({ ok: true, msg });
    });
    sock.connect(port, host, () => {
      sock.send(q.bytes, (err) => {
        if (err) done({ ok: false, detail: `udp: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
      });
    });
  });
}

/** One TCP try: 2-byte length prefix each way (RFC 1035 §4.2.2, RFC 7766 §8). */
function tcpTry(host: string, port: number, q: Query, timeoutMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = tcpConnect({ host, port });
    const chunks: Buffer[] = [];
    let have = 0;
    let settled = false;
    const done = (r: Exchange): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: 'tcp: timeout' }), timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, detail: `tcp: ${e.code ?? e.message}` }));
    sock.on('close', () => done({ ok: false, detail: 'tcp: connection closed before a full reply' }));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.bytes.length, 0);
      // No half-close: some servers drop a connection whose read side is shut (RFC 7766 §6.2.1).
      sock.write(Buffer.concat([len, q.bytes]));
    });
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      have += d.length;
      // The prefix caps the reply at 65535 bytes; anything beyond it is ignored.
      if (have < 2) return;
      const all = Buffer.concat(chunks);
      const need = all.readUInt16BE(0);
      if (all.length < 2 + need) return;
      try {
        const msg = decodeResponse(all.subarray(2, 2 + need));
        done(
          responseMatches(msg, q) ? { ok: true, msg } : { ok: false, detail: 'tcp: reply does not match the query' },
        );
      } catch (e) {
        done({ ok: false, detail: `malformed reply: ${e instanceof WireError ? e.message : 'undecodable'}` });
      }
    });
  });
}

type Collected<T> = { ok: true; records: T[]; canonicalName: string } | { ok: false; detail: string };

/**
 * The records of `type` owned by `qname` or, when the answer holds a CNAME chain from `qname`
 * (RFC 1034 §4.3.2), by the chain's last name. Records owned by any other name are ignored.
 */
function collect<T>(msg: DnsMessage, qname: string, type: number, pick: (d: RecordData) => T | null): Collected<T> {
  const answers = msg.answers.filter((rr: ResourceRecord) => rr.class === 1);
  let name = qname;
  for (let hop = 0; ; hop++) {
    const own = answers.filter((rr) => rr.type === type && namesEqual(rr.name, name));
    if (own.length > 0) {
      const records: T[] = [];
      for (const rr of own) {
        const r = pick(rr.data);
        if (r !== null) records.push(r);
      }
      return { ok: true, records, canonicalName: name };
    }
    const cname = answers.find((rr) => rr.type === RR_TYPES.CNAME && namesEqual(rr.name, name));
    if (!cname || cname.data.kind !== 'CNAME') return { ok: true, records: [], canonicalName: name };
    if (hop >= MAX_CNAME_HOPS) return { ok: false, detail: `CNAME chain longer than ${MAX_CNAME_HOPS}` };
    name = canonicalDnsName(cname.data.target);
  }
}

const SYSTEMD_RESOLVED: ReadonlySet<string> = new Set(['127.0.0.53', '127.0.0.54']);

/** Weakest first: bogus dominates, then indeterminate, insecure, secure. */
const STRENGTH: Record<DnssecStatus, number> = { bogus: 0, indeterminate: 1, insecure: 2, secure: 3 };

/**
 * Creates a DNSSEC-aware resolver. Sends nothing until asked; throws UsageError for a malformed
 * `server`. Lookups never throw for DNS failures (they become `bogus`/`indeterminate`), only
 * UsageError for bad arguments.
 */
export function createDnssecResolver(opts: DnssecResolverOptions = {}): DnssecResolver {
  let spec: string;
  if (opts.server !== undefined) spec = parseDnsServer(opts.server);
  else {
    let text = '';
    try {
      text = readFileSync(opts.resolvConf ?? '/etc/resolv.conf', 'latin1');
    } catch {
      // No resolv.conf: the resolver library default is the local host (resolv.conf(5)).
    }
    spec = nameserverFromResolvConf(text) ?? '127.0.0.1';
  }
  const { host, port } = splitServer(spec);
  const server = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  const timeoutMs = opts.timeoutMs ?? 3000;
  const tries = opts.tries ?? 2;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 60_000)
    throw new UsageError(`invalid DNS timeout ${timeoutMs} ms`);
  if (!Number.isInteger(tries) || tries < 1 || tries > 10) throw new UsageError(`invalid DNS tries ${tries}`);
  const trustAd = opts.trustAd ?? 'loopback';
  if (trustAd !== 'loopback' && trustAd !== 'any') throw new UsageError(`invalid trustAd "${String(trustAd)}"`);
  // RFC 6698 §4.1 / RFC 7672 §2.1: AD is only worth something over a path nobody can tamper with;
  // a resolver on this host is the one case that holds without TSIG/DoT (Postfix, maddy agree).
  // systemd-resolved's stub (127.0.0.53) and proxy (127.0.0.54) sit on loopback but may copy an
  // upstream AD bit without validating (systemd issue #34121): never trusted by default.
  const validating = trustAd === 'any' || (isLoopbackAddress(host) && !SYSTEMD_RESOLVED.has(host));

  async function exchange(name: string, type: number, cd: boolean): Promise<Exchange> {
    let last: Exchange = { ok: false, detail: 'not sent' };
    for (let i = 0; i < tries; i++) {
      const id = randomInt(0x10000);
      const q: Query = { id, name, type, bytes: encodeQuery({ id, name, type, cd }) };
      const udp = await udpTry(host, port, q, timeoutMs);
      last = udp === 'truncated' ? await tcpTry(host, port, q, timeoutMs) : udp;
      if (last.ok) return last;
    }
    return last;
  }

  async function lookup<T>(
    qtype: DnssecAnswer<T>['qtype'],
    rawName: string,
    pick: (d: RecordData) => T | null,
  ): Promise<DnssecAnswer<T>> {
    const qname = queryName(rawName);
    const type = RR_TYPES[qtype];
    const result = (
      status: DnssecStatus,
      rcode: DnssecAnswer<T>['rcode'],
      records: T[],
      canonical: string,
      detail: string | null,
    ): DnssecAnswer<T> => ({ qname, qtype, status, rcode, records, canonicalName: canonical, detail });
    const failed = (status: 'bogus' | 'indeterminate', detail: string): DnssecAnswer<T> =>
      result(status, null, [], qname, detail);

    const first = await exchange(qname, type, false);
    if (!first.ok) return failed('indeterminate', first.detail);
    const msg = first.msg;
    const ede = msg.edns?.ede.length ? ` (${msg.edns.ede.map(describeEde).join('; ')})` : '';
    if (msg.rcode === RCODE.NOERROR || msg.rcode === RCODE.NXDOMAIN) {
      const got = collect(msg, qname, type, pick);
      if (!got.ok) return failed('indeterminate', got.detail);
      // RFC 4035 §3.2.3: AD covers the whole answer, CNAME chain included; trusted only when validating.
      const status = validating && msg.header.ad ? 'secure' : 'insecure';
      return result(
        status,
        msg.rcode === RCODE.NXDOMAIN ? 'NXDOMAIN' : 'NOERROR',
        got.records,
        got.canonicalName,
        null,
      );
    }
    if (msg.rcode === RCODE.SERVFAIL) {
      // RFC 4035 §3.2.2: with CD=1 the resolver skips validation; if the data then resolves, the
      // SERVFAIL was a validation failure (bogus), not an unreachable zone.
      const again = await exchange(qname, type, true);
      if (again.ok && (again.msg.rcode === RCODE.NOERROR || again.msg.rcode === RCODE.NXDOMAIN))
        return failed('bogus', `SERVFAIL; CD=1 answered: validation failed${ede}`);
      const second = again.ok ? rcodeName(again.msg.rcode) : again.detail;
      return failed('indeterminate', `SERVFAIL${ede}; CD=1: ${second}`);
    }
    return failed('indeterminate', `${rcodeName(msg.rcode)}${ede}`);
  }

  const address = (d: RecordData): string | null => (d.kind === 'A' || d.kind === 'AAAA' ? d.address : null);

  return {
    server,
    validating,
    async addresses(name: string): Promise<DnssecAnswer<string>> {
      const [a, aaaa] = await Promise.all([lookup('A', name, address), lookup('AAAA', name, address)]);
      const weakest = STRENGTH[a.status] <= STRENGTH[aaaa.status] ? a : aaaa;
      const status = weakest.status;
      const ok = status === 'secure' || status === 'insecure';
      const details = [a, aaaa].filter((x) => x.detail !== null).map((x) => `${x.qtype}: ${x.detail}`);
      return {
        qname: a.qname,
        qtype: 'A',
        status,
        rcode: !ok ? null : a.rcode === 'NXDOMAIN' && aaaa.rcode === 'NXDOMAIN' ? 'NXDOMAIN' : 'NOERROR',
        records: ok ? [...a.records, ...aaaa.records] : [],
        canonicalName: a.rcode !== null ? a.canonicalName : aaaa.canonicalName,
        detail: details.length > 0 ? details.join('; ') : null,
      };
    },
    async mx(domain: string): Promise<DnssecAnswer<MxRecord>> {
      const r = await lookup('MX', domain, (d) =>
        d.kind === 'MX' ? { exchange: canonicalDnsName(d.exchange), priority: d.priority } : null,
      );
      // A stable order for reports and tests: preference, then name (RFC 5321 §5.1 randomises ties).
      r.records.sort(
        (x, y) => x.priority - y.priority || (x.exchange < y.exchange ? -1 : x.exchange > y.exchange ? 1 : 0),
      );
      return r;
    },
    txt(name: string): Promise<DnssecAnswer<string[]>> {
      // latin1 maps each byte to one code unit, as node:dns resolveTxt does: the two clients agree.
      return lookup('TXT', name, (d) => (d.kind === 'TXT' ? d.chunks.map((c) => c.toString('latin1')) : null));
    },
    async tlsa(name: string, port: number): Promise<DnssecAnswer<TlsaRecord>> {
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`invalid TLSA port ${port}`);
      // RFC 6698 §3: _<port>._tcp.<host>.
      return lookup('TLSA', `_${port}._tcp.${queryName(name)}`, (d) =>
        d.kind === 'TLSA' ? { usage: d.usage, selector: d.selector, matchingType: d.matchingType, data: d.data } : null,
      );
    },
  };
}
