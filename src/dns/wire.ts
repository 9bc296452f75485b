/**
 * DNS message codec (RFC 1035 §4), pure: bytes in, typed message out, and the one query postern
 * sends. It exists because node:dns cannot show the AD bit (see dnssec.ts).
 *
 * Decoding treats the message as hostile: every length is checked before it is read, compression
 * pointers may only point backwards (so they cannot loop), names are capped at 255 octets
 * (RFC 1035 §2.3.4), record counts are capped by what the message could hold, and anything
 * malformed is a `WireError` — never another exception. Work is linear in the message size.
 */
import { UsageError, WireError } from '../core/errors.ts';

/** RR TYPE codes postern reads or asks for (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 4034, RFC 6698). */
export const RR_TYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  NSEC3: 50,
  TLSA: 52,
} as const;
export type RrTypeName = keyof typeof RR_TYPES;

/** RCODEs (RFC 1035 §4.1.1; BADVERS from RFC 6891 §9). */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

/** EDNS0 option code of Extended DNS Errors (RFC 8914 §2). */
export const EDE_OPTION = 15;

/** RFC 8914 §4 INFO-CODE names, for messages. */
const EDE_NAMES = [
  'Other Error',
  'Unsupported DNSKEY Algorithm',
  'Unsupported DS Digest Type',
  'Stale Answer',
  'Forged Answer',
  'DNSSEC Indeterminate',
  'DNSSEC Bogus',
  'Signature Expired',
  'Signature Not Yet Valid',
  'DNSKEY Missing',
  'RRSIGs Missing',
  'No Zone Key Bit Set',
  'NSEC Missing',
  'Cached Error',
  'Not Ready',
  'Blocked',
  'Censored',
  'Filtered',
  'Prohibited',
  'Stale NXDOMAIN Answer',
  'Not Authoritative',
  'Not Supported',
  'No Reachable Authority',
  'Network Error',
  'Invalid Data',
];

const CLASS_IN = 1;
const HEADER_LEN = 12;
const MAX_NAME_OCTETS = 255; // RFC 1035 §2.3.4
const MAX_LABEL = 63;
const MAX_POINTER_HOPS = 64;
/** Smallest possible RR: root owner (1) + type, class, ttl, rdlength (10). */
const MIN_RR_LEN = 11;
/** Smallest possible question: root name (1) + type, class (4). */
const MIN_Q_LEN = 5;

/** 'TLSA' for 52, 'TYPE65534' for codes postern has no name for (RFC 3597 §5). */
export function rrTypeName(code: number): string {
  for (const [name, value] of Object.entries(RR_TYPES)) if (value === code) return name;
  return `TYPE${code}`;
}

/** 'SERVFAIL' for 2, 'RCODE9' for codes without a name here. */
export function rcodeName(code: number): string {
  for (const [name, value] of Object.entries(RCODE)) if (value === code) return name;
  return `RCODE${code}`;
}

/** 'EDE 6 (DNSSEC Bogus): text' (RFC 8914 §4). */
export function describeEde(e: ExtendedError): string {
  const name = EDE_NAMES[e.infoCode];
  return `EDE ${e.infoCode}${name ? ` (${name})` : ''}${e.extraText ? `: ${e.extraText}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Types

export interface QueryOptions {
  /** 16-bit message id; the caller picks it at random (RFC 5452 §9.2). */
  id: number;
  /** Absolute name, with or without the trailing dot; no escapes. */
  name: string;
  type: RrTypeName | number;
  /** Recursion desired (default true). */
  rd?: boolean;
  /** Ask for the AD bit (default true): RFC 6840 §5.7. */
  ad?: boolean;
  /** Checking disabled (default false): RFC 4035 §3.2.2. */
  cd?: boolean;
  /** EDNS0 DO bit (default true): RFC 3225 §3, so a validating resolver validates for us. */
  dnssecOk?: boolean;
  /** EDNS0 requestor's UDP payload size (default 1232, the DNS Flag Day 2020 value). */
  udpSize?: number;
}

export interface DnsHeader {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** Authentic data (RFC 4035 §3.2.3). */
  ad: boolean;
  /** Checking disabled (RFC 4035 §3.2.2). */
  cd: boolean;
  /** The 4-bit header RCODE; `DnsMessage.rcode` adds the EDNS0 extended bits. */
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

/** Decoded RDATA. Types postern does not need are kept as raw bytes (RFC 3597 §5). */
export type RecordData =
  | { kind: 'A'; address: string }
  | { kind: 'AAAA'; address: string }
  | { kind: 'MX'; priority: number; exchange: string }
  /** Each <character-string> as it was on the wire (RFC 1035 §3.3.14); callers join or not. */
  | { kind: 'TXT'; chunks: Buffer[] }
  | { kind: 'TLSA'; usage: number; selector: number; matchingType: number; data: Buffer }
  | { kind: 'CNAME'; target: string }
  | { kind: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { kind: 'raw'; rdata: Buffer };

export interface ResourceRecord {
  /** Owner name in presentation form, case preserved, no trailing dot; the root is '.'. */
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: RecordData;
}

/** One EDNS0 option (RFC 6891 §6.1.2). */
export interface EdnsOption {
  code: number;
  data: Buffer;
}

/** Extended DNS Error (RFC 8914 §2). */
export interface ExtendedError {
  infoCode: number;
  extraText: string;
}

export interface EdnsInfo {
  udpSize: number;
  extendedRcode: number;
  version: number;
  dnssecOk: boolean;
  options: EdnsOption[];
  /** The EDE options among `options`, decoded. */
  ede: ExtendedError[];
}

export interface DnsMessage {
  header: DnsHeader;
  /** Full RCODE: header bits plus the OPT extended bits (RFC 6891 §6.1.3). */
  rcode: number;
  questions: DnsQuestion[];
  answers: ResourceRecord[];
  authority: ResourceRecord[];
  /** The additional section without the OPT pseudo-RR (that is `edns`). */
  additional: ResourceRecord[];
  edns: EdnsInfo | null;
}

// ---------------------------------------------------------------------------------------------
// Names

/** Lower-cases ASCII only (RFC 4343 §3: DNS case-insensitivity is ASCII-only). */
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/** Canonical text form: ASCII lower case, no trailing dot (the root stays '.'). */
export function canonicalName(name: string): string {
  const n = asciiLower(name);
  return n.length > 1 && n.endsWith('.') ? n.slice(0, -1) : n;
}

/** Case-insensitive name comparison (RFC 4343), trailing dots ignored. */
export function namesEqual(a: string, b: string): boolean {
  return canonicalName(a) === canonicalName(b);
}

/**
 * A caller's name → wire labels. Throws UsageError: bad names are the caller's mistake, not the
 * peer's. Only printable ASCII without escapes: U-labels must be converted to A-labels first.
 */
function encodeName(name: string): Buffer {
  const text = name.endsWith('.') ? name.slice(0, -1) : name;
  if (text === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  let total = 1;
  for (const label of text.split('.')) {
    if (label === '') throw new UsageError(`invalid DNS name "${name}": empty label`);
    if (!/^[\x21-\x7e]+$/.test(label) || label.includes('\\'))
      throw new UsageError(`invalid DNS name "${name}": only printable ASCII without escapes`, {
        hint: 'convert internationalized names to A-labels (xn--…) first',
      });
    if (label.length > MAX_LABEL) throw new UsageError(`invalid DNS name "${name}": label longer than 63 octets`);
    total += 1 + label.length;
    parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  }
  if (total > MAX_NAME_OCTETS) throw new UsageError(`invalid DNS name "${name}": longer than 255 octets`);
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** One label to presentation form (RFC 1035 §5.1): '.', '\' and non-printables escaped. */
function labelText(buf: Buffer, start: number, len: number): string {
  let s = '';
  for (let i = start; i < start + len; i++) {
    const c = buf[i] ?? 0;
    if (c === 0x2e || c === 0x5c) s += `\\${String.fromCharCode(c)}`;
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${String(c).padStart(3, '0')}`;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** The query postern sends: one question, EDNS0 OPT with DO (RFC 6891 §6, RFC 3225). */
export function encodeQuery(q: QueryOptions): Buffer {
  if (!Number.isInteger(q.id) || q.id < 0 || q.id > 0xffff) throw new UsageError(`invalid DNS query id ${q.id}`);
  const type = typeof q.type === 'number' ? q.type : RR_TYPES[q.type];
  if (!Number.isInteger(type) || type < 1 || type > 0xffff) throw new UsageError(`invalid DNS type ${q.type}`);
  const udpSize = q.udpSize ?? 1232;
  if (!Number.isInteger(udpSize) || udpSize < 512 || udpSize > 0xffff)
    throw new UsageError(`invalid EDNS0 UDP size ${udpSize}`);
  const name = encodeName(q.name);
  const header = Buffer.alloc(HEADER_LEN);
  header.writeUInt16BE(q.id, 0);
  // QR=0, OPCODE=0 (QUERY), AA=0, TC=0; RD; RA=0, Z=0, AD, CD, RCODE=0 (RFC 1035 §4.1.1, RFC 4035 §3.2).
  const flags = ((q.rd ?? true) ? 0x0100 : 0) | ((q.ad ?? true) ? 0x0020 : 0) | (q.cd ? 0x0010 : 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(1, 10); // ARCOUNT: the OPT RR
  const question = Buffer.alloc(4);
  question.writeUInt16BE(type, 0);
  question.writeUInt16BE(CLASS_IN, 2);
  // OPT: root owner, TYPE 41, CLASS = UDP size, TTL = ext-rcode 0, version 0, DO (RFC 6891 §6.1.2-3).
  const opt = Buffer.alloc(11);
  opt.writeUInt16BE(RR_TYPES.OPT, 1);
  opt.writeUInt16BE(udpSize, 3);
  opt.writeUInt32BE((q.dnssecOk ?? true) ? 0x8000 : 0, 5);
  return Buffer.concat([header, name, question, opt]);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function fail(code: string, message: string): never {
  throw new WireError(code, `DNS message: ${message}`);
}

/** Decodes the fixed 12-byte header (RFC 1035 §4.1.1). */
export function decodeHeader(input: Uint8Array): DnsHeader {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length < HEADER_LEN) fail('dns-truncated', `${buf.length} bytes, shorter than the 12-byte header`);
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    ad: (flags & 0x0020) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 0xf,
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
  };
}

class MessageReader {
  readonly buf: Buffer;
  pos = HEADER_LEN;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) fail('dns-truncated', `${what} runs past the end of the message`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /**
   * A possibly compressed name (RFC 1035 §4.1.4) whose inline part ends before `limit`. A pointer
   * must point before the start of the segment it ends ("a prior occurrence"), so each jump lands
   * strictly lower than the last and loops are impossible; the hop count and the 255-octet cap
   * bound the work regardless.
   */
  name(limit: number, what: string): string {
    const buf = this.buf;
    const labels: string[] = [];
    let octets = 1;
    let p = this.pos;
    let end = -1; // where reading continues once the name is done (after the first pointer)
    let hops = 0;
    let segment = p; // where the labels now being read started
    for (;;) {
      if (p >= (end < 0 ? limit : buf.length)) fail('dns-truncated', `${what} name runs past its end`);
      const len = buf[p] ?? 0;
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        if (p + 1 >= (end < 0 ? limit : buf.length)) fail('dns-truncated', `${what} name pointer cut short`);
        const target = ((len & 0x3f) << 8) | (buf[p + 1] ?? 0);
        if (target >= segment || target < HEADER_LEN)
          fail('dns-bad-pointer', `${what} name pointer does not point backwards`);
        if (++hops > MAX_POINTER_HOPS) fail('dns-bad-pointer', `${what} name has too many pointers`);
        if (end < 0) end = p + 2;
        p = target;
        segment = target;
        continue;
      }
      if (kind !== 0) fail('dns-bad-label', `${what} name uses reserved label type 0x${kind.toString(16)}`);
      if (len === 0) {
        p += 1;
        break;
      }
      octets += 1 + len;
      if (octets > MAX_NAME_OCTETS) fail('dns-name-too-long', `${what} name longer than 255 octets`);
      if (p + 1 + len > (end < 0 ? limit : buf.length)) fail('dns-truncated', `${what} name label runs past its end`);
      labels.push(labelText(buf, p + 1, len));
      p += 1 + len;
    }
    this.pos = end < 0 ? p : end;
    return labels.length === 0 ? '.' : labels.join('.');
  }

  question(): DnsQuestion {
    const name = this.name(this.buf.length, 'question');
    return { name, type: this.u16('question type'), class: this.u16('question class') };
  }

  record(section: string): ResourceRecord {
    const name = this.name(this.buf.length, `${section} owner`);
    const type = this.u16(`${section} type`);
    const klass = this.u16(`${section} class`);
    const ttl = this.u32(`${section} TTL`);
    const rdlength = this.u16(`${section} RDLENGTH`);
    this.need(rdlength, `${rrTypeName(type)} RDATA`);
    const start = this.pos;
    const end = start + rdlength;
    const data = this.rdata(type, start, end);
    if (this.pos !== end) fail('dns-bad-rdata', `${rrTypeName(type)} RDATA has ${end - this.pos} stray bytes`);
    return { name, type, class: klass, ttl, data };
  }

  /** RDATA of the types postern reads; names in MX/CNAME/SRV may be compressed (RFC 3597 §4). */
  rdata(type: number, start: number, end: number): RecordData {
    const len = end - start;
    const exact = (n: number): void => {
      if (len !== n) fail('dns-bad-rdata', `${rrTypeName(type)} RDATA is ${len} bytes, expected ${n}`);
    };
    const at = (min: number): void => {
      if (len < min) fail('dns-bad-rdata', `${rrTypeName(type)} RDATA is ${len} bytes, expected at least ${min}`);
    };
    switch (type) {
      case RR_TYPES.A: {
        exact(4);
        const b = this.bytes(4, 'A');
        return { kind: 'A', address: `${b[0]}.${b[1]}.${b[2]}.${b[3]}` };
      }
      case RR_TYPES.AAAA:
        exact(16);
        return { kind: 'AAAA', address: formatIpv6(this.bytes(16, 'AAAA')) };
      case RR_TYPES.MX: {
        at(3);
        const priority = this.u16('MX preference');
        return { kind: 'MX', priority, exchange: this.name(end, 'MX exchange') };
      }
      case RR_TYPES.CNAME:
        at(1);
        return { kind: 'CNAME', target: this.name(end, 'CNAME target') };
      case RR_TYPES.SRV: {
        at(7);
        const priority = this.u16('SRV priority');
        const weight = this.u16('SRV weight');
        const port = this.u16('SRV port');
        return { kind: 'SRV', priority, weight, port, target: this.name(end, 'SRV target') };
      }
      case RR_TYPES.TXT: {
        // RFC 1035 §3.3.14: one or more <character-string>s, each a length octet and that many bytes.
        at(1);
        const chunks: Buffer[] = [];
        while (this.pos < end) {
          const n = this.u8('TXT string length');
          if (this.pos + n > end) fail('dns-bad-rdata', 'TXT string runs past its RDATA');
          chunks.push(Buffer.from(this.bytes(n, 'TXT string')));
        }
        return { kind: 'TXT', chunks };
      }
      case RR_TYPES.TLSA: {
        // RFC 6698 §2.1: usage, selector, matching type, then the association data.
        at(3);
        const usage = this.u8('TLSA usage');
        const selector = this.u8('TLSA selector');
        const matchingType = this.u8('TLSA matching type');
        return { kind: 'TLSA', usage, selector, matchingType, data: Buffer.from(this.bytes(end - this.pos, 'TLSA')) };
      }
      default:
        return { kind: 'raw', rdata: Buffer.from(this.bytes(len, 'RDATA')) };
    }
  }
}

/** Decodes the RDATA of an OPT pseudo-RR (RFC 6891 §6.1.2) and its EDE options (RFC 8914 §2). */
function decodeOpt(rr: ResourceRecord): EdnsInfo {
  if (rr.name !== '.') fail('dns-bad-opt', 'OPT owner is not the root');
  const rdata = rr.data.kind === 'raw' ? rr.data.rdata : Buffer.alloc(0);
  const options: EdnsOption[] = [];
  const ede: ExtendedError[] = [];
  let p = 0;
  while (p < rdata.length) {
    if (p + 4 > rdata.length) fail('dns-bad-opt', 'OPT option header cut short');
    const code = rdata.readUInt16BE(p);
    const len = rdata.readUInt16BE(p + 2);
    if (p + 4 + len > rdata.length) fail('dns-bad-opt', `OPT option ${code} runs past the RDATA`);
    const data = Buffer.from(rdata.subarray(p + 4, p + 4 + len));
    options.push({ code, data });
    if (code === EDE_OPTION) {
      if (len < 2) fail('dns-bad-opt', 'Extended DNS Error option shorter than its INFO-CODE');
      // EXTRA-TEXT is UTF-8, possibly NUL-terminated by sloppy senders (RFC 8914 §2).
      ede.push({ infoCode: data.readUInt16BE(0), extraText: data.subarray(2).toString('utf8').replace(/\0+$/, '') });
    }
    p += 4 + len;
  }
  return {
    udpSize: rr.class,
    extendedRcode: rr.ttl >>> 24,
    version: (rr.ttl >>> 16) & 0xff,
    dnssecOk: (rr.ttl & 0x8000) !== 0,
    options,
    ede,
  };
}

/**
 * Decodes a DNS message (any QR; named for its use on replies). Throws WireError, and only
 * WireError, for anything malformed: truncation, bad pointers, oversize names, RDATA that does not
 * fit its type, stray trailing bytes, or more than one OPT (RFC 6891 §6.1.1).
 */
export function decodeResponse(input: Uint8Array): DnsMessage {
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf.length > 0xffff) fail('dns-too-long', `${buf.length} bytes, longer than any DNS message`);
  const header = decodeHeader(buf);
  const room = buf.length - HEADER_LEN;
  // Bound the work by the bytes present, before allocating anything for the counts.
  if (header.qdcount * MIN_Q_LEN + (header.ancount + header.nscount + header.arcount) * MIN_RR_LEN > room)
    fail('dns-truncated', 'section counts exceed what the message could hold');
  const r = new MessageReader(buf);
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < header.qdcount; i++) questions.push(r.question());
  const answers: ResourceRecord[] = [];
  for (let i = 0; i < header.ancount; i++) answers.push(r.record('answer'));
  const authority: ResourceRecord[] = [];
  for (let i = 0; i < header.nscount; i++) authority.push(r.record('authority'));
  const additional: ResourceRecord[] = [];
  let edns: EdnsInfo | null = null;
  for (let i = 0; i < header.arcount; i++) {
    const rr = r.record('additional');
    if (rr.type !== RR_TYPES.OPT) additional.push(rr);
    else if (edns) fail('dns-bad-opt', 'more than one OPT record');
    else edns = decodeOpt(rr);
  }
  for (const rr of [...answers, ...authority])
    if (rr.type === RR_TYPES.OPT) fail('dns-bad-opt', 'OPT record outside the additional section');
  if (r.pos !== buf.length) fail('dns-trailing-bytes', `${buf.length - r.pos} bytes after the last record`);
  const rcode = edns ? (edns.extendedRcode << 4) | header.rcode : header.rcode;
  return { header, rcode, questions, answers, authority, additional, edns };
}

/**
 * True when `msg` is the reply to the query (id, name, type) asked: QR set, standard QUERY, the
 * same id and exactly that question (names compared case-insensitively). On UDP anything else is
 * ignored as a possible spoof (RFC 5452 §4.1).
 */
export function responseMatches(msg: DnsMessage, query: { id: number; name: string; type: number }): boolean {
  const q = msg.questions[0];
  return (
    msg.header.qr &&
    msg.header.opcode === 0 &&
    msg.header.id === query.id &&
    msg.questions.length === 1 &&
    q !== undefined &&
    q.type === query.type &&
    q.class === CLASS_IN &&
    namesEqual(q.name, query.name)
  );
}

/** 16 bytes → RFC 5952 text (lower case, longest zero run of ≥2 groups as '::', mapped IPv4 dotted). */
export function formatIpv6(b: Uint8Array): string {
  if (b.length !== 16) throw new WireError('dns-bad-rdata', `IPv6 address of ${b.length} bytes`);
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // RFC 5952 §5: ::ffff:0:0/96 (IPv4-mapped) in mixed notation.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}
