/**
 * Bounds-checked reader over a Buffer for TLS wire structures (RFC 8446 §3, RFC 5246 §4).
 *
 * Every read checks the remaining length first, so hostile length fields can only ever produce a
 * typed `WireError` — never an out-of-range read, a crash or an allocation sized by the peer.
 */
import { WireError } from '../../core/errors.ts';

export class ByteReader {
  readonly #buf: Buffer;
  readonly #end: number;
  readonly #what: string;
  #pos: number;

  /** Reads `buf` (a view: no copy). `what` names the structure in error messages. */
  constructor(buf: Buffer, what = 'message') {
    this.#buf = buf;
    this.#pos = 0;
    this.#end = buf.length;
    this.#what = what;
  }

  /** Bytes not yet consumed. */
  get remaining(): number {
    return this.#end - this.#pos;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.#pos;
  }

  /** True when every byte was consumed. */
  atEnd(): boolean {
    return this.#pos >= this.#end;
  }

  #need(n: number, field: string): void {
    if (n > this.remaining) {
      throw new WireError(
        'wire-truncated',
        `${this.#what}: ${field} needs ${n} byte(s), only ${this.remaining} left at offset ${this.#pos}`,
      );
    }
  }

  u8(field = 'u8'): number {
    this.#need(1, field);
    const v = this.#buf[this.#pos] as number;
    this.#pos += 1;
    return v;
  }

  u16(field = 'u16'): number {
    this.#need(2, field);
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }

  u24(field = 'u24'): number {
    this.#need(3, field);
    const v = this.#buf.readUIntBE(this.#pos, 3);
    this.#pos += 3;
    return v;
  }

  u32(field = 'u32'): number {
    this.#need(4, field);
    const v = this.#buf.readUInt32BE(this.#pos);
    this.#pos += 4;
    return v;
  }

  /** The next `n` bytes as a view (subarray, no copy). */
  bytes(n: number, field = 'bytes'): Buffer {
    if (!Number.isInteger(n) || n < 0) throw new WireError('wire-malformed', `${this.#what}: bad length for ${field}`);
    this.#need(n, field);
    const v = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return v;
  }

  /** Everything not yet consumed. */
  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }

  /** An opaque vector with a 1-byte length prefix, as a sub-reader. */
  vector8(field = 'vector8', min = 0): ByteReader {
    return this.#vector(this.u8(`${field} length`), field, min);
  }

  /** An opaque vector with a 2-byte length prefix, as a sub-reader. */
  vector16(field = 'vector16', min = 0): ByteReader {
    return this.#vector(this.u16(`${field} length`), field, min);
  }

  /** An opaque vector with a 3-byte length prefix, as a sub-reader. */
  vector24(field = 'vector24', min = 0): ByteReader {
    return this.#vector(this.u24(`${field} length`), field, min);
  }

  #vector(len: number, field: string, min: number): ByteReader {
    if (len < min) throw new WireError('wire-malformed', `${this.#what}: ${field} shorter than ${min} byte(s)`);
    return new ByteReader(this.bytes(len, field), `${this.#what}.${field}`);
  }

  /** Throws `wire-malformed` if bytes are left over (RFC 8446 §4: trailing data is a decode_error). */
  expectEnd(field = 'structure'): void {
    if (!this.atEnd()) {
      throw new WireError('wire-malformed', `${this.#what}: ${this.remaining} trailing byte(s) after ${field}`);
    }
  }
}
