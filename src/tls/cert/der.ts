/**
 * Just enough DER (X.690) reading to pull the fields node's X509Certificate does not expose in
 * structured form: SAN entries, subject CN values, and the signature AlgorithmIdentifier
 * parameters (RSASSA-PSS hash). Every read is bounds-checked; malformed input throws WireError.
 */
import { WireError } from '../../core/errors.ts';

export interface DerNode {
  /** Full identifier octet (class | constructed | tag number, low-tag-number form only). */
  tag: number;
  /** Content octets. */
  value: Buffer;
  /** Offset just past this element in the parent buffer. */
  end: number;
}

/** Read one TLV at `at`. Only definite lengths (DER forbids indefinite). */
export function readNode(buf: Buffer, at: number): DerNode {
  const tag = buf[at];
  const first = buf[at + 1];
  if (tag === undefined || first === undefined) throw new WireError('der-truncated', 'truncated DER element');
  if ((tag & 0x1f) === 0x1f) throw new WireError('der-unsupported', 'high-tag-number form not supported');
  let len = first;
  let off = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new WireError('der-bad-length', 'unsupported DER length form');
    len = 0;
    for (let i = 0; i < n; i++) {
      const b = buf[off + i];
      if (b === undefined) throw new WireError('der-truncated', 'truncated DER length');
      len = len * 256 + b;
    }
    off += n;
  }
  const end = off + len;
  if (end > buf.length) throw new WireError('der-truncated', 'DER element exceeds its container');
  return { tag, value: buf.subarray(off, end), end };
}

/** The children of a constructed element. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let at = 0; at < node.value.length;) {
    const c = readNode(node.value, at);
    out.push(c);
    at = c.end;
    if (out.length > 10_000) throw new WireError('der-too-many', 'too many DER elements');
  }
  return out;
}

/** Decode an OBJECT IDENTIFIER's content octets to dotted form. */
export function decodeOid(v: Buffer): string {
  if (v.length === 0) throw new WireError('der-bad-oid', 'empty OID');
  const parts: number[] = [];
  let acc = 0;
  for (const b of v) {
    acc = acc * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      parts.push(acc);
      acc = 0;
    }
  }
  const head = parts.shift() ?? 0;
  const a = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [a, head - a * 40, ...parts].join('.');
}

/** Decode a directory string (UTF8, Printable, IA5, T61, BMP, Universal) to a JS string. */
export function decodeString(n: DerNode): string {
  switch (n.tag) {
    case 0x1e: {
      // BMPString: UTF-16BE.
      const s: string[] = [];
      for (let i = 0; i + 1 < n.value.length; i += 2) s.push(String.fromCharCode(n.value.readUInt16BE(i)));
      return s.join('');
    }
    case 0x1c: {
      // UniversalString: UCS-4BE.
      const s: string[] = [];
      for (let i = 0; i + 3 < n.value.length; i += 4) s.push(String.fromCodePoint(n.value.readUInt32BE(i) % 0x110000));
      return s.join('');
    }
    case 0x14:
      return n.value.toString('latin1');
    default:
      return n.value.toString('utf8');
  }
}

export interface TbsFields {
  subject: DerNode;
  extensions: Map<string, Buffer>;
  /** Outer signatureAlgorithm: OID and the raw parameters element (if any). */
  sigAlgOid: string;
  sigAlgParams: DerNode | null;
}

/** Split a Certificate (RFC 5280 §4.1) into the parts postern reads itself. */
export function parseCertificate(der: Buffer): TbsFields {
  const cert = readNode(der, 0);
  if (cert.tag !== 0x30) throw new WireError('der-not-certificate', 'certificate is not a SEQUENCE');
  const [tbs, sigAlg] = children(cert);
  if (tbs === undefined || sigAlg === undefined) throw new WireError('der-not-certificate', 'certificate too short');
  const t = children(tbs);
  let i = 0;
  if (t[0]?.tag === 0xa0) i = 1; // [0] EXPLICIT version
  // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  const subject = t[i + 4];
  if (subject === undefined || t[i + 5] === undefined)
    throw new WireError('der-not-certificate', 'TBSCertificate too short');
  const extensions = new Map<string, Buffer>();
  for (const n of t.slice(i + 6)) {
    if (n.tag !== 0xa3) continue; // [3] EXPLICIT Extensions
    const seq = children(n)[0];
    if (seq === undefined) continue;
    for (const ext of children(seq)) {
      const parts = children(ext);
      const oid = parts[0];
      const value = parts[parts.length - 1];
      if (oid?.tag === 0x06 && value?.tag === 0x04) extensions.set(decodeOid(oid.value), value.value);
    }
  }
  const alg = children(sigAlg);
  const oidNode = alg[0];
  if (oidNode?.tag !== 0x06) throw new WireError('der-not-certificate', 'bad signatureAlgorithm');
  return { subject, extensions, sigAlgOid: decodeOid(oidNode.value), sigAlgParams: alg[1] ?? null };
}

/** subjectAltName (RFC 5280 §4.2.1.6): dNSName [2] and iPAddress [7] entries. */
export function parseSan(extValue: Buffer): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  const seq = readNode(extValue, 0);
  for (const gn of children(seq)) {
    if (gn.tag === 0x82) dnsNames.push(gn.value.toString('latin1'));
    else if (gn.tag === 0x87) {
      const ip = formatIp(gn.value);
      if (ip !== null) ipAddresses.push(ip);
    }
  }
  return { dnsNames, ipAddresses };
}

/** Format 4 or 16 address octets; IPv6 in RFC 5952 canonical text form. */
export function formatIp(b: Buffer): string | null {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return null;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i));
  // Longest run of ≥2 zero words becomes '::' (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

/** All commonName (2.5.4.3) values of a Name, in order. */
export function commonNames(name: DerNode): string[] {
  const out: string[] = [];
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      if (type?.tag === 0x06 && value !== undefined && decodeOid(type.value) === '2.5.4.3')
        out.push(decodeString(value));
    }
  }
  return out;
}
