/**
 * The DATA phase as a byte-level state machine (RFC 5321 §4.1.1.4, §4.5.2).
 *
 * Only CRLF "." CRLF ends the message. A bare LF or bare CR never ends a line here, so `LF.LF`,
 * `CR.CR`, `LF.CRLF` and friends are message content, never an end of data: SMTP smuggling
 * (CVE-2023-51764 class) needs a receiver that ends DATA where the sender's next hop does not.
 * Messages that contain a bare CR or LF are still rejected afterwards (the caller decides), so
 * that no hop after us can read them differently either.
 *
 * Memory is bounded: bytes beyond `maxSize` are counted but not stored; the reader keeps scanning
 * for the terminator so that the session stays in sync and can answer 552.
 */

export interface DataLimits {
  /** Maximum message size in octets (after dot-unstuffing). */
  maxSize: number;
  /** Maximum octets per line, excluding CRLF (RFC 5322 §2.1.1: 998). */
  maxLineLength: number;
}

export interface DataResult {
  /** The message (CRLF line endings, dot-unstuffed); null when it was too big to keep. */
  message: Buffer | null;
  /** Octets received after unstuffing, including those not stored. */
  size: number;
  tooBig: boolean;
  bareLf: boolean;
  bareCr: boolean;
  lineTooLong: boolean;
  /**
   * A NUL octet: RFC 5321 §4.5.2 / RFC 5322 §2.3 exclude it from text, and a next hop that strips
   * NULs would read `CRLF NUL . CRLF` as the end of data (smuggling one hop later).
   */
  nul: boolean;
  /** Any octet ≥ 0x80 (8-bit content, RFC 6152). */
  eightBit: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

// States. LINE_START: after CRLF (or right after the DATA command). DOT: "." at line start
// (held back). DOT_CR: ".\r" at line start. MID: inside a line. CR: a CR inside a line (held).
/** First buffer of a DATA transfer (most mail is a few KiB; larger messages grow it by doubling). */
const INITIAL_BUFFER = 4096;
const LINE_START = 0;
const DOT_STATE = 1;
const DOT_CR = 2;
const MID = 3;
const CR_STATE = 4;

/** Incremental reader for one DATA transfer. Feed it socket chunks until it reports `done`. */
export class DataReader {
  private state = LINE_START;
  private buf: Buffer;
  private len = 0;
  private size = 0;
  private lineLen = 0;
  private readonly limits: DataLimits;
  private flags = { tooBig: false, bareLf: false, bareCr: false, lineTooLong: false, nul: false, eightBit: false };

  constructor(limits: DataLimits) {
    this.limits = limits;
    // Start small and double: the message is a view of this buffer until it is queued, so a
    // 64 KiB start held 64 KiB per small message in flight (60 MiB at 1,000 sessions).
    this.buf = Buffer.allocUnsafe(Math.min(INITIAL_BUFFER, limits.maxSize + 1));
  }

  /**
   * Consume bytes from `chunk`. Returns how many were consumed; when `done` is true the end of
   * data was seen and the rest of the chunk (from `consumed`) belongs to the command stream
   * (RFC 2920 allows commands pipelined after the final ".").
   */
  feed(chunk: Buffer): { consumed: number; done: boolean } {
    let i = 0;
    while (i < chunk.length) {
      const b = chunk[i] as number;
      switch (this.state) {
        case LINE_START:
          if (b === DOT) {
            this.state = DOT_STATE;
            i++;
            continue;
          }
          this.state = MID;
          continue; // reprocess b as line content
        case DOT_STATE:
          if (b === CR) {
            this.state = DOT_CR;
            i++;
            continue;
          }
          // RFC 5321 §4.5.2: a line starting with "." followed by more text: drop the first dot.
          this.state = MID;
          continue;
        case DOT_CR:
          if (b === LF) return { consumed: i + 1, done: true };
          // ".\r" followed by anything but LF: the dot was stuffing, the CR is bare.
          this.flags.bareCr = true;
          this.content(CR);
          this.state = MID;
          continue;
        case MID:
          if (b === CR) this.state = CR_STATE;
          else {
            if (b === LF) this.flags.bareLf = true;
            else if (b === 0) this.flags.nul = true;
            else if (b >= 0x80) this.flags.eightBit = true;
            this.content(b);
          }
          i++;
          continue;
        case CR_STATE:
          if (b === LF) {
            this.emit(CR);
            this.emit(LF);
            this.lineLen = 0;
            this.state = LINE_START;
            i++;
            continue;
          }
          this.flags.bareCr = true;
          this.content(CR);
          this.state = MID;
          continue; // reprocess b (it may be another CR)
      }
    }
    return { consumed: chunk.length, done: false };
  }

  /** The result once `feed` reported `done`. */
  result(): DataResult {
    return {
      message: this.flags.tooBig ? null : this.buf.subarray(0, this.len),
      size: this.size,
      ...this.flags,
    };
  }

  /** A line-content octet: counts towards the line length (RFC 5322 §2.1.1). */
  private content(b: number): void {
    if (++this.lineLen > this.limits.maxLineLength) this.flags.lineTooLong = true;
    this.emit(b);
  }

  private emit(b: number): void {
    this.size++;
    if (this.size > this.limits.maxSize) {
      // Stop storing: never buffer more than the limit (the size is still counted).
      this.flags.tooBig = true;
      return;
    }
    if (this.len === this.buf.length) {
      const next = Buffer.allocUnsafe(Math.min(this.buf.length * 2, this.limits.maxSize + 1));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.buf[this.len++] = b;
  }
}
