/**
 * Bounded line reader over a socket for the plaintext (and post-TLS) command phase. Every line is
 * capped (a peer cannot make us buffer without limit), every wait has a timeout and honours an
 * AbortSignal, and the reader can be detached so the socket is handed on untouched.
 */
import type { Duplex } from 'node:stream';
import { PosternError } from '../../core/errors.ts';

export interface TranscriptLine {
  dir: 'C' | 'S';
  /** Printable-escaped (see escapeLine). */
  line: string;
}

export type StartTlsErrorCode =
  | 'starttls-not-offered'
  | 'starttls-refused'
  | 'rate-limited'
  | 'unexpected-reply'
  | 'reply-too-long'
  | 'imap-preauth'
  | 'unsupported-dialect'
  | 'net-connect'
  | 'net-timeout'
  /** The whole plaintext dialogue (greeting, EHLO, STARTTLS) overran its budget, line by line. */
  | 'net-too-slow'
  | 'net-closed'
  | 'aborted';

/** A STARTTLS dialogue failed. `reply` is the server line that decided it (escaped), if any. */
export class StartTlsError extends PosternError {
  readonly reply: string | null;
  readonly transcript: TranscriptLine[];
  constructor(
    code: StartTlsErrorCode,
    message: string,
    o: { reply?: string | null; transcript?: TranscriptLine[]; cause?: unknown } = {},
  ) {
    super(code, message, o.cause === undefined ? {} : { cause: o.cause });
    this.name = 'StartTlsError';
    this.reply = o.reply ?? null;
    this.transcript = o.transcript ?? [];
  }
}

/** Render peer bytes safely for logs and reports: printable ASCII kept, everything else \xNN. */
export function escapeLine(b: Buffer | string): string {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else out += '\\x' + (c & 0xff).toString(16).padStart(2, '0');
  }
  return out;
}

export interface ReaderLimits {
  /** Longest accepted line, without CRLF (RFC 5321 §4.5.3.1.5 allows 512 for replies; be lenient). */
  maxLine: number;
  /** Total bytes accepted over the reader's life. */
  maxTotal: number;
}

export const DEFAULT_LIMITS: ReaderLimits = { maxLine: 4096, maxTotal: 256 * 1024 };

export class LineReader {
  readonly transcript: TranscriptLine[];
  readonly #socket: Duplex;
  readonly #limits: ReaderLimits;
  #buf: Buffer = Buffer.alloc(0);
  #total = 0;
  #failure: StartTlsError | null = null;
  #ended = false;
  #wake: (() => void) | null = null;

  readonly #onData = (chunk: Buffer): void => {
    this.#total += chunk.length;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#total > this.#limits.maxTotal) {
      this.#failure ??= this.error('reply-too-long', `server sent more than ${this.#limits.maxTotal} bytes`);
    }
    this.#notify();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#notify();
  };
  readonly #onError = (e: Error): void => {
    this.#failure ??= this.error(
      'net-closed',
      `connection error: ${(e as NodeJS.ErrnoException).code ?? e.message}`,
      null,
      e,
    );
    this.#notify();
  };

  constructor(socket: Duplex, transcript: TranscriptLine[], limits: ReaderLimits = DEFAULT_LIMITS) {
    this.#socket = socket;
    this.transcript = transcript;
    this.#limits = limits;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
    socket.resume();
  }

  error(code: StartTlsErrorCode, message: string, reply: string | null = null, cause?: unknown): StartTlsError {
    return new StartTlsError(code, message, { reply, transcript: this.transcript, cause });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Take one complete line out of the buffer (CRLF or bare LF), or null. */
  #takeLine(): string | null {
    const nl = this.#buf.indexOf(0x0a);
    if (nl === -1) {
      if (this.#buf.length > this.#limits.maxLine) {
        throw this.error(
          'reply-too-long',
          `server line exceeds ${this.#limits.maxLine} bytes`,
          escapeLine(this.#buf.subarray(0, 80)),
        );
      }
      return null;
    }
    const end = nl > 0 && this.#buf[nl - 1] === 0x0d ? nl - 1 : nl;
    if (end > this.#limits.maxLine) {
      throw this.error(
        'reply-too-long',
        `server line exceeds ${this.#limits.maxLine} bytes`,
        escapeLine(this.#buf.subarray(0, 80)),
      );
    }
    const line = escapeLine(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(nl + 1);
    this.transcript.push({ dir: 'S', line });
    return line;
  }

  /** Wait for `ms` or until woken; rejects on abort. */
  #wait(ms: number, signal: AbortSignal | undefined, onTimeout: () => StartTlsError | null): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (e: StartTlsError | null): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#wake = null;
        if (e === null) resolve();
        else reject(e);
      };
      const onAbort = (): void => done(this.error('aborted', 'STARTTLS dialogue aborted'));
      const timer = setTimeout(() => done(onTimeout()), ms);
      this.#wake = () => done(null);
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Read the next line, waiting up to `timeoutMs`. */
  async line(timeoutMs: number, signal?: AbortSignal): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      const l = this.#takeLine();
      if (l !== null) return l;
      if (this.#ended) throw this.error('net-closed', 'server closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw this.error('net-timeout', `no reply from server within ${timeoutMs} ms`);
      await this.#wait(left, signal, () => this.error('net-timeout', `no reply from server within ${timeoutMs} ms`));
    }
  }

  /** Complete lines that arrive within `ms` (already-buffered ones included); never throws on silence. */
  async linesWithin(ms: number, signal?: AbortSignal): Promise<string[]> {
    const out: string[] = [];
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      const l = this.#takeLine();
      if (l !== null) {
        out.push(l);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.#ended) return out;
      await this.#wait(left, signal, () => null);
    }
  }

  /** Wait `ms` and return every byte received but not consumed (no line parsing, not transcribed). */
  async drain(ms: number, signal?: AbortSignal): Promise<Buffer> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.#failure !== null) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0 || this.#ended) break;
      await this.#wait(left, signal, () => null);
    }
    const b = this.#buf;
    this.#buf = Buffer.alloc(0);
    return b;
  }

  /** Send a command (or several lines in one write); each line is transcribed. */
  write(text: string): void {
    for (const l of text.split('\r\n')) if (l !== '') this.transcript.push({ dir: 'C', line: escapeLine(l) });
    this.#socket.write(text);
  }

  /**
   * Stop reading: pause the socket, remove our listeners. Unconsumed bytes are returned; with
   * `unshift` they are pushed back into the socket for the next reader instead.
   */
  detach(unshift = false): Buffer {
    this.#socket.pause();
    this.#socket.removeListener('data', this.#onData);
    this.#socket.removeListener('end', this.#onEnd);
    this.#socket.removeListener('close', this.#onEnd);
    this.#socket.removeListener('error', this.#onError);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    if (unshift && rest.length > 0) this.#socket.unshift(rest);
    return rest;
  }
}
