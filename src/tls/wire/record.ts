/**
 * Encoding helpers shared by the ClientHello builder and the server-side builders: length-prefixed
 * vectors (RFC 8446 §3.4), handshake message framing (RFC 8446 §4) and record framing with
 * fragmentation at 2^14 bytes (RFC 8446 §5.1, RFC 5246 §6.2.1).
 */
import { PosternError } from '../../core/errors.ts';

/** Largest plaintext fragment a record may carry (RFC 5246 §6.2.1). */
export const MAX_FRAGMENT = 16384;

function lengthError(what: string, n: number, max: number): PosternError {
  return new PosternError('wire-encode', `${what} is ${n} bytes, more than the ${max} its length field allows`);
}

export function u8(n: number): Buffer {
  return Buffer.from([n & 0xff]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

export function u24(n: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntBE(n & 0xffffff, 0, 3);
  return b;
}

/** `opaque x<0..2^8-1>` */
export function vec8(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  if (body.length > 0xff) throw lengthError('vector8', body.length, 0xff);
  return Buffer.concat([u8(body.length), body]);
}

/** `opaque x<0..2^16-1>` */
export function vec16(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  if (body.length > 0xffff) throw lengthError('vector16', body.length, 0xffff);
  return Buffer.concat([u16(body.length), body]);
}

/** `opaque x<0..2^24-1>` */
export function vec24(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  if (body.length > 0xffffff) throw lengthError('vector24', body.length, 0xffffff);
  return Buffer.concat([u24(body.length), body]);
}

/** A list of 16-bit values as `uint16 x<..>` with a 2-byte length prefix. */
export function u16List(values: readonly number[]): Buffer {
  return vec16(...values.map(u16));
}

/** One extension: `ExtensionType type; opaque data<0..2^16-1>` (RFC 8446 §4.2). */
export function extension(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([u16(type), vec16(data)]);
}

/** A handshake message: `HandshakeType msg_type; uint24 length; body` (RFC 8446 §4). */
export function handshakeMessage(type: number, body: Buffer): Buffer {
  return Buffer.concat([u8(type), vec24(body)]);
}

/** Frames `payload` into TLSPlaintext records, splitting at 2^14 bytes (RFC 5246 §6.2.1). */
export function encodeRecords(contentType: number, recordVersion: number, payload: Buffer): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  do {
    const frag = payload.subarray(off, off + MAX_FRAGMENT);
    out.push(Buffer.from([contentType & 0xff]), u16(recordVersion), u16(frag.length), frag);
    off += MAX_FRAGMENT;
  } while (off < payload.length);
  return Buffer.concat(out);
}
