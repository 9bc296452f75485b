/**
 * Builds DNS messages byte by byte for tests (uncompressed names unless a test writes pointers
 * itself), so decoder fixtures do not depend on the encoder under test.
 */
import { prng } from '../../helpers/prng.ts';

/** Seeded PRNG, shared with the wire fuzz tests. */
export { prng };

/** 'a.b' → 01 61 01 62 00; '.' or '' → 00. */
export function wireName(name: string): Buffer {
  const text = name.replace(/\.$/, '');
  if (text === '') return Buffer.from([0]);
  const parts = text.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function question(name: string, type: number, klass = 1): Buffer {
  return Buffer.concat([wireName(name), u16(type), u16(klass)]);
}

/** One RR; `owner` is a name or raw bytes (e.g. a pointer). */
export function rr(owner: string | Buffer, type: number, rdata: Buffer, ttl = 300, klass = 1): Buffer {
  const o = typeof owner === 'string' ? wireName(owner) : owner;
  return Buffer.concat([o, u16(type), u16(klass), u32(ttl), u16(rdata.length), rdata]);
}

/** OPT pseudo-RR (RFC 6891 §6.1.2). */
export function opt(
  o: { udpSize?: number; extRcode?: number; dnssecOk?: boolean; options?: Array<{ code: number; data: Buffer }> } = {},
): Buffer {
  const rdata = Buffer.concat((o.options ?? []).map((x) => Buffer.concat([u16(x.code), u16(x.data.length), x.data])));
  const ttl = ((o.extRcode ?? 0) << 24) | ((o.dnssecOk ?? true) ? 0x8000 : 0);
  return rr('.', 41, rdata, ttl, o.udpSize ?? 1232);
}

/** EDE option (RFC 8914 §2). */
export function ede(infoCode: number, text = ''): { code: number; data: Buffer } {
  return { code: 15, data: Buffer.concat([u16(infoCode), Buffer.from(text, 'utf8')]) };
}

export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080, AD: 0x0020, CD: 0x0010 } as const;

export function message(m: {
  id: number;
  flags: number;
  rcode?: number;
  qd?: Buffer[];
  an?: Buffer[];
  ns?: Buffer[];
  ar?: Buffer[];
}): Buffer {
  const qd = m.qd ?? [];
  const an = m.an ?? [];
  const ns = m.ns ?? [];
  const ar = m.ar ?? [];
  return Buffer.concat([
    u16(m.id),
    u16(m.flags | ((m.rcode ?? 0) & 0xf)),
    u16(qd.length),
    u16(an.length),
    u16(ns.length),
    u16(ar.length),
    ...qd,
    ...an,
    ...ns,
    ...ar,
  ]);
}

export const rdata = {
  a: (ip: string): Buffer => Buffer.from(ip.split('.').map(Number)),
  aaaa: (hex32: string): Buffer => Buffer.from(hex32, 'hex'),
  mx: (pref: number, exchange: string): Buffer => Buffer.concat([u16(pref), wireName(exchange)]),
  cname: (target: string): Buffer => wireName(target),
  txt: (...chunks: string[]): Buffer =>
    Buffer.concat(
      chunks.map((c) => Buffer.concat([Buffer.from([Buffer.byteLength(c, 'latin1')]), Buffer.from(c, 'latin1')])),
    ),
  tlsa: (usage: number, selector: number, mtype: number, hex: string): Buffer =>
    Buffer.concat([Buffer.from([usage, selector, mtype]), Buffer.from(hex, 'hex')]),
};
