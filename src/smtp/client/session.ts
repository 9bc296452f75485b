/**
 * Outbound ESMTP client (RFC 5321): connect, greeting, EHLO (HELO fallback), STARTTLS with the TLS
 * engine's handshake (RFC 3207), MAIL/RCPT/DATA with PIPELINING (RFC 2920), per-recipient replies,
 * RSET/QUIT. The policy decision — whether STARTTLS must happen and whether the session is good
 * enough — is made by the caller (src/policy/decide.ts); this module only does what it is told and
 * reports exactly what happened.
 *
 * Every wait is bounded (RFC 5321 §4.5.3.2 timeouts, configurable); replies are read through the
 * engine's bounded LineReader; bytes the server sends after its STARTTLS go-ahead are discarded
 * unread (RFC 3207 §4.2 response injection), and a reply nobody asked for is a protocol error, so
 * an injected "250" can never be taken for the answer to a command.
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tlsHandshake } from '../../tls/handshake.ts';
import type { HandshakeOptions } from '../../tls/handshake.ts';
import type { NegotiatedSession } from '../../tls/session.ts';
import { smtpReply } from '../../tls/starttls/dialects.ts';
import type { SmtpReply } from '../../tls/starttls/dialects.ts';
import { LineReader, StartTlsError, escapeLine } from '../../tls/starttls/reader.ts';
import type { TranscriptLine } from '../../tls/starttls/reader.ts';
import type { EnvelopeRecipient } from '../../core/envelope.ts';
import { isCompletion, replyClass } from '../protocol/reply-class.ts';
import { SmtpClientError } from './errors.ts';
import type { SmtpStage } from './errors.ts';
import { encodeData, enhancedCode, parseEhlo, transactionCommands } from './protocol.ts';
import type { Extensions, MailFromInput } from './protocol.ts';

/** RFC 5321 §4.5.3.2 timeouts, in ms. */
export interface SmtpTimeouts {
  connectMs: number;
  /** Initial 220: 5 minutes. */
  greetingMs: number;
  ehloMs: number;
  /** STARTTLS reply and the TLS handshake. */
  tlsMs: number;
  /** MAIL: 5 minutes. */
  mailMs: number;
  /** RCPT: 5 minutes. */
  rcptMs: number;
  /** DATA initiation: 2 minutes. */
  dataInitMs: number;
  /** DATA termination (the reply to the final "."): 10 minutes. */
  dataEndMs: number;
  /** RSET, QUIT. */
  shortMs: number;
}

export const DEFAULT_TIMEOUTS: Readonly<SmtpTimeouts> = Object.freeze({
  connectMs: 30_000,
  greetingMs: 300_000,
  ehloMs: 300_000,
  tlsMs: 300_000,
  mailMs: 300_000,
  rcptMs: 300_000,
  dataInitMs: 120_000,
  dataEndMs: 600_000,
  shortMs: 60_000,
});

export interface SmtpConnectOptions {
  /** Host name (MX name) for logs and SNI; `address` is where we connect. */
  host: string;
  address: string;
  port: number;
  /** Our EHLO name. */
  heloName: string;
  timeouts?: Partial<SmtpTimeouts>;
  signal?: AbortSignal;
}

/** TLS settings for STARTTLS (a subset of the engine's HandshakeOptions). */
export type StartTlsClientOptions = Pick<
  HandshakeOptions,
  | 'servername'
  | 'minVersion'
  | 'maxVersion'
  | 'ciphers'
  | 'ciphersuites'
  | 'groups'
  | 'sigalgs'
  | 'ca'
  | 'minDHSize'
  | 'captureChain'
>;

/** A reply, flattened for storage and logs. */
export interface ReplyInfo {
  code: number;
  enhanced: string | null;
  /** One line: "250 2.1.5 Ok" (multi-line replies joined with spaces). */
  text: string;
}

export interface RecipientResult {
  address: string;
  /** The recipient was delivered (DATA accepted with it among the recipients). */
  ok: boolean;
  temporary: boolean;
  /** The reply that decided this recipient's fate. */
  reply: ReplyInfo;
  stage: 'mail' | 'rcpt' | 'data';
}

export interface TransactionResult {
  mail: ReplyInfo;
  recipients: RecipientResult[];
  data: ReplyInfo | null;
  pipelined: boolean;
  /** Bare CR/LF line ends turned into CRLF while encoding DATA. */
  fixedLineEnds: number;
}

export interface OutboundTransaction extends MailFromInput {
  recipients: EnvelopeRecipient[];
}

const MAX_TRANSCRIPT = 200;

function info(r: SmtpReply): ReplyInfo {
  const text = r.lines.join(' ');
  return { code: r.code, enhanced: enhancedCode(text), text: `${r.code} ${text}`.trimEnd() };
}

/**
 * A reply that is not a completion is temporary unless its code says permanent: one rule for the
 * client, delivery and the queue (src/smtp/protocol/reply-class.ts, RFC 5321 §4.2.1).
 */
function temporaryReply(code: number): boolean {
  return replyClass(code) !== 'permanent';
}

/** Map engine/reader errors (timeouts, closes, malformed replies) to SmtpClientError; all temporary. */
function mapError(e: unknown, stage: SmtpStage): SmtpClientError {
  if (e instanceof SmtpClientError) return e;
  if (e instanceof StartTlsError) {
    const code =
      e.code === 'net-timeout' || e.code === 'net-closed' || e.code === 'net-connect'
        ? e.code
        : e.code === 'aborted'
          ? 'net-closed'
          : 'smtp-protocol';
    return new SmtpClientError(code, `${stage}: ${e.message}`, { stage, temporary: true, reply: e.reply, cause: e });
  }
  const err = e as NodeJS.ErrnoException;
  return new SmtpClientError('net-closed', `${stage}: ${err.code ?? err.message ?? String(e)}`, {
    stage,
    temporary: true,
    cause: e,
  });
}

function connectTcp(o: SmtpConnectOptions, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: o.address, port: o.port });
    const done = (e: SmtpClientError | null): void => {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      s.removeListener('error', onError);
      if (e === null) resolve(s);
      else {
        s.destroy();
        reject(e);
      }
    };
    const where = `${o.host} [${o.address}]:${o.port}`;
    const onError = (e: NodeJS.ErrnoException): void =>
      done(
        new SmtpClientError('net-connect', `connect to ${where} failed: ${e.code ?? e.message}`, {
          stage: 'connect',
          temporary: true,
          cause: e,
        }),
      );
    const onAbort = (): void =>
      done(new SmtpClientError('net-closed', `connect to ${where} aborted`, { stage: 'connect', temporary: true }));
    const timer = setTimeout(
      () =>
        done(
          new SmtpClientError('net-timeout', `connect to ${where} timed out after ${timeoutMs} ms`, {
            stage: 'connect',
            temporary: true,
          }),
        ),
      timeoutMs,
    );
    s.once('connect', () => done(null));
    s.once('error', onError);
    if (o.signal?.aborted === true) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One outbound SMTP connection. Create with SmtpClient.connect(). */
export class SmtpClient {
  readonly host: string;
  readonly address: string;
  readonly port: number;
  readonly heloName: string;
  readonly timeouts: SmtpTimeouts;
  /** Lines exchanged (last 200), replies escaped; DATA content is not recorded. */
  readonly transcript: TranscriptLine[] = [];
  #socket: Socket | TLSSocket;
  #signal: AbortSignal | undefined;
  #closed = false;
  #busy = false;
  #greeting = '';
  #ehloName: string | null = null;
  #ext: Map<string, string> = new Map();
  #esmtp = false;
  #tls: NegotiatedSession | null = null;
  #transactions = 0;
  /** Bytes received after the last reply we read; must be empty before the next command. */
  #leftover: Buffer = Buffer.alloc(0);

  private constructor(o: SmtpConnectOptions, socket: Socket, timeouts: SmtpTimeouts) {
    this.host = o.host;
    this.address = o.address;
    this.port = o.port;
    this.heloName = o.heloName;
    this.timeouts = timeouts;
    this.#signal = o.signal;
    this.#socket = socket;
    this.#watch(socket);
  }

  /** Connect and read the greeting. Any non-220 greeting is a temporary failure (try the next MX; Postfix smtp_skip_5xx_greeting). */
  static async connect(o: SmtpConnectOptions): Promise<SmtpClient> {
    const t: SmtpTimeouts = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
    const socket = await connectTcp(o, t.connectMs);
    socket.setNoDelay(true);
    const c = new SmtpClient(o, socket, t);
    try {
      const g = await c.#op('greeting', async (r) => smtpReply(r, c.#step(t.greetingMs)));
      if (g.code !== 220) {
        throw new SmtpClientError('smtp-greeting', `${c.host} greeted with ${info(g).text}`, {
          stage: 'greeting',
          temporary: true,
          smtpCode: g.code,
          enhanced: enhancedCode(g.lines.join(' ')),
          reply: info(g).text,
        });
      }
      c.#greeting = g.lines.join('\n');
      return c;
    } catch (e) {
      c.close();
      throw mapError(e, 'greeting');
    }
  }

  get greeting(): string {
    return this.#greeting;
  }
  /** EHLO keywords of the current session (after STARTTLS: the ones re-learned over TLS). */
  get extensions(): Extensions {
    return this.#ext;
  }
  get esmtp(): boolean {
    return this.#esmtp;
  }
  /** The TLS session, once STARTTLS completed. */
  /** Our end of the connection (TLS-RPT `sending-mta-ip`, RFC 8460 §4.4). */
  get localAddress(): string | null {
    return this.#socket.localAddress ?? null;
  }

  /** The name the server gave in its EHLO reply (TLS-RPT `receiving-mx-helo`), or null. */
  get ehloName(): string | null {
    return this.#ehloName;
  }

  get tls(): NegotiatedSession | null {
    return this.#tls;
  }
  /** Still connected and not in the middle of a command. */
  get usable(): boolean {
    return !this.#closed && !this.#busy;
  }
  /** Transactions (MAIL FROM sent) on this connection so far. */
  get transactions(): number {
    return this.#transactions;
  }
  offersStartTls(): boolean {
    return this.#ext.has('STARTTLS');
  }
  /**
   * The server advertised DSN (RFC 3461) in its current EHLO reply, so NOTIFY/ORCPT/RET/ENVID
   * were passed on with the transaction (protocol.ts rcptParams): RFC 3461 §6.2.
   */
  get dsn(): boolean {
    return this.#ext.has('DSN');
  }

  #watch(s: Socket | TLSSocket): void {
    // Keep late resets from becoming unhandled errors; mark the connection dead.
    s.on('error', () => {
      this.#closed = true;
    });
    s.once('close', () => {
      this.#closed = true;
    });
  }

  #step(timeoutMs: number): { timeoutMs: number; signal: AbortSignal | undefined } {
    return { timeoutMs, signal: this.#signal };
  }

  #trim(): void {
    if (this.transcript.length > MAX_TRANSCRIPT) this.transcript.splice(0, this.transcript.length - MAX_TRANSCRIPT);
  }

  /**
   * Run one exchange with a fresh bounded reader. Replies that were already waiting before we said
   * anything are unsolicited (an injected or desynchronised reply): the connection is closed,
   * never trusted further, and nothing is sent on it.
   */
  async #op<T>(stage: SmtpStage, fn: (r: LineReader) => Promise<T>, checkUnsolicited = false): Promise<T> {
    if (this.#closed) {
      throw new SmtpClientError('net-closed', `${stage}: connection to ${this.host} is closed`, {
        stage,
        temporary: true,
      });
    }
    if (this.#busy) throw new SmtpClientError('smtp-protocol', `${stage}: connection busy`, { stage, temporary: true });
    this.#busy = true;
    if (checkUnsolicited) {
      // Anything already waiting (left over from the last exchange, or buffered in the paused
      // socket) was sent before we asked: checked synchronously, so it cannot race our command.
      const buffered = this.#socket.readableLength > 0 ? (this.#socket.read() as Buffer | string | null) : null;
      const waiting = Buffer.concat([this.#leftover, buffered === null ? Buffer.alloc(0) : Buffer.from(buffered)]);
      this.#leftover = Buffer.alloc(0);
      if (waiting.length > 0) {
        this.#busy = false;
        this.close();
        const first = escapeLine(waiting.subarray(0, Math.min(waiting.length, 120))).replace(/\\x0d\\x0a.*$/, '');
        this.transcript.push({ dir: 'S', line: `[unsolicited] ${first}` });
        throw new SmtpClientError('smtp-protocol', `${this.host} sent a reply nobody asked for: ${first}`, {
          stage,
          temporary: true,
          reply: first,
        });
      }
    }
    const r = new LineReader(this.#socket, this.transcript);
    try {
      const out = await fn(r);
      this.#leftover = r.detach();
      return out;
    } catch (e) {
      r.detach();
      this.close();
      throw mapError(e, stage);
    } finally {
      this.#busy = false;
      this.#trim();
    }
  }

  /** EHLO, falling back to HELO when EHLO is refused with 5xx (RFC 5321 §4.1.4, §3.2). */
  async ehlo(): Promise<void> {
    const t = this.timeouts.ehloMs;
    await this.#op(
      'ehlo',
      async (r) => {
        r.write(`EHLO ${this.heloName}\r\n`);
        const e = await smtpReply(r, this.#step(t));
        if (e.code === 250) {
          this.#ext = parseEhlo(e.lines);
          // RFC 5321 §4.1.1.1: the first line is "<domain> [greeting]"; bounded for logs.
          this.#ehloName = (e.lines[0] ?? '').split(' ')[0]?.slice(0, 255) || null;
          this.#esmtp = true;
          return;
        }
        if (replyClass(e.code) !== 'permanent') throw this.#replyError('ehlo', e, 'EHLO');
        r.write(`HELO ${this.heloName}\r\n`);
        const h = await smtpReply(r, this.#step(t));
        if (h.code !== 250) throw this.#replyError('ehlo', h, 'HELO');
        this.#ext = new Map();
        this.#esmtp = false;
      },
      true,
    );
  }

  #replyError(stage: SmtpStage, r: SmtpReply, what: string): SmtpClientError {
    const i = info(r);
    return new SmtpClientError('smtp-reply', `${this.host} answered ${what} with ${i.text}`, {
      stage,
      temporary: temporaryReply(r.code),
      smtpCode: r.code,
      enhanced: i.enhanced,
      reply: i.text,
    });
  }

  /**
   * STARTTLS (RFC 3207): send the command alone, wait for 220, discard anything else the server
   * sent in plaintext, hand the socket to the TLS engine, then EHLO again (§4.2). A refusal
   * (454/5xx) throws 'starttls-refused' and leaves the connection usable in cleartext; a failed
   * handshake throws 'tls-handshake-failed' and closes it.
   */
  async startTls(opts: StartTlsClientOptions = {}): Promise<NegotiatedSession> {
    if (this.#tls !== null)
      throw new SmtpClientError('smtp-protocol', 'TLS already active', { stage: 'starttls', temporary: true });
    const refused = await this.#op(
      'starttls',
      async (r) => {
        r.write('STARTTLS\r\n');
        const st = await smtpReply(r, this.#step(this.timeouts.tlsMs));
        if (st.code === 220) {
          // Response-injection defence: bytes after the go-ahead are never parsed (RFC 3207 §4.2).
          const injected = await r.drain(0, this.#signal);
          if (injected.length > 0) {
            this.transcript.push({
              dir: 'S',
              line: `[discarded ${injected.length} bytes sent after the STARTTLS go-ahead] ${escapeLine(injected.subarray(0, 120))}`,
            });
          }
          return null;
        }
        return st;
      },
      true,
    );
    if (refused !== null) {
      const i = info(refused);
      throw new SmtpClientError('starttls-refused', `${this.host} refused STARTTLS: ${i.text}`, {
        stage: 'starttls',
        temporary: true,
        smtpCode: refused.code,
        enhanced: i.enhanced,
        reply: i.text,
      });
    }
    this.#busy = true;
    const raw = this.#socket;
    try {
      const hs: HandshakeOptions = {
        ...opts,
        socket: raw,
        host: this.address,
        port: this.port,
        timeoutMs: this.timeouts.tlsMs,
        // Bulk delivery: no JS stream hop to recover the exact sent chain; node's issuer walk
        // suffices for PKIX. DANE-TA asks for the chain as sent (RFC 7672 §3.1.2).
        captureChain: opts.captureChain ?? false,
      };
      if (this.#signal !== undefined) hs.signal = this.#signal;
      const { session, tlsSocket } = await tlsHandshake(hs);
      this.#socket = tlsSocket;
      this.#leftover = Buffer.alloc(0);
      this.#watch(tlsSocket);
      this.#tls = session;
    } catch (e) {
      this.#busy = false;
      this.close();
      const err = e as Error;
      throw new SmtpClientError('tls-handshake-failed', err.message, { stage: 'tls', temporary: true, cause: e });
    }
    this.#busy = false;
    // RFC 3207 §4.2: forget what was learned before TLS; EHLO again. A reply already waiting here
    // was injected before the handshake (or is a desync) and makes #op fail.
    this.#ext = new Map();
    await this.ehlo();
    return this.#tls;
  }

  /**
   * Send one message. With PIPELINING, MAIL + all RCPTs + DATA go in one write (RFC 2920 §3.1);
   * replies are matched to commands strictly in order. Throws SmtpClientError only for failures
   * that concern the whole transaction before MAIL was sent (5.6.7, 5.7.30, 5.3.4, network);
   * server rejections are returned per recipient.
   */
  async send(
    tx: OutboundTransaction,
    message: Buffer,
    opts: { nextHopAuthenticated?: boolean } = {},
  ): Promise<TransactionResult> {
    if (tx.requireTls) {
      // RFC 8689 §4.1: REQUIRETLS only to an authenticated next hop that advertises it.
      const why =
        this.#tls === null
          ? 'the connection is not encrypted'
          : opts.nextHopAuthenticated !== true
            ? 'the next hop is not authenticated (policy level below verify)'
            : !this.#ext.has('REQUIRETLS')
              ? `${this.host} does not advertise REQUIRETLS`
              : null;
      if (why !== null) {
        throw new SmtpClientError('requiretls-unavailable', `REQUIRETLS cannot be honoured: ${why}`, {
          stage: 'mail',
          temporary: false,
          smtpCode: 550,
          enhanced: '5.7.30',
        });
      }
    }
    const cmds = transactionCommands(this.#ext, tx, message);
    const { data, fixedLineEnds } = encodeData(message);
    const pipelined = this.#ext.has('PIPELINING');
    const t = this.timeouts;
    this.#transactions++;
    return await this.#op(
      'mail',
      async (r) => {
        const results: RecipientResult[] = [];
        let mail: ReplyInfo;
        let dataReply: SmtpReply | null = null;
        if (pipelined) {
          r.write(cmds.mail + cmds.rcpts.join('') + cmds.data);
          mail = info(await smtpReply(r, this.#step(t.mailMs)));
          for (const [i, rc] of tx.recipients.entries()) {
            const rr = info(await smtpReply(r, this.#step(t.rcptMs)));
            results[i] = this.#rcptResult(rc.address, mail, rr);
          }
          dataReply = await smtpReply(r, this.#step(t.dataInitMs));
        } else {
          r.write(cmds.mail);
          mail = info(await smtpReply(r, this.#step(t.mailMs)));
          if (!isCompletion(mail.code)) {
            return {
              mail,
              recipients: tx.recipients.map((rc) => this.#rcptResult(rc.address, mail, mail)),
              data: null,
              pipelined,
              fixedLineEnds,
            };
          }
          for (const [i, rc] of tx.recipients.entries()) {
            r.write(cmds.rcpts[i] ?? '');
            const rr = info(await smtpReply(r, this.#step(t.rcptMs)));
            results[i] = this.#rcptResult(rc.address, mail, rr);
          }
          if (results.some((x) => x.ok)) {
            r.write(cmds.data);
            dataReply = await smtpReply(r, this.#step(t.dataInitMs));
          }
        }
        const accepted = results.filter((x) => x.ok);
        if (dataReply === null) return { mail, recipients: results, data: null, pipelined, fixedLineEnds };
        const dr = info(dataReply);
        if (dataReply.code !== 354) {
          // DATA refused: every recipient accepted so far gets this reply (RFC 5321 §4.1.1.4).
          for (const x of accepted)
            Object.assign(x, { ok: false, temporary: temporaryReply(dr.code), reply: dr, stage: 'data' });
          return { mail, recipients: results, data: dr, pipelined, fixedLineEnds };
        }
        if (accepted.length === 0) {
          // A pipelined DATA the server accepted although nothing else was: end it empty (what
          // Postfix does) so nothing is delivered; the connection is reset before reuse.
          r.write('.\r\n');
          const end = info(await smtpReply(r, this.#step(t.dataEndMs)));
          return { mail, recipients: results, data: end, pipelined, fixedLineEnds };
        }
        this.#socket.write(data);
        this.transcript.push({ dir: 'C', line: `[message: ${data.length} bytes]` });
        const end = info(await smtpReply(r, this.#step(t.dataEndMs)));
        const ok = isCompletion(end.code);
        for (const x of accepted)
          Object.assign(x, { ok, temporary: !ok && temporaryReply(end.code), reply: end, stage: 'data' });
        return { mail, recipients: results, data: end, pipelined, fixedLineEnds };
      },
      true,
    );
  }

  #rcptResult(address: string, mail: ReplyInfo, rcpt: ReplyInfo): RecipientResult {
    if (!isCompletion(mail.code))
      return { address, ok: false, temporary: temporaryReply(mail.code), reply: mail, stage: 'mail' };
    const ok = isCompletion(rcpt.code);
    // "ok" here means accepted at RCPT; DATA decides delivery.
    return { address, ok, temporary: !ok && temporaryReply(rcpt.code), reply: rcpt, stage: 'rcpt' };
  }

  /** RSET (RFC 5321 §4.1.1.5); also a liveness check before reusing a cached connection. */
  async reset(): Promise<void> {
    await this.#op(
      'rset',
      async (r) => {
        r.write('RSET\r\n');
        const x = await smtpReply(r, this.#step(this.timeouts.shortMs));
        if (x.code !== 250) throw this.#replyError('rset', x, 'RSET');
      },
      true,
    );
  }

  /** QUIT politely and close; never throws. */
  async quit(): Promise<void> {
    if (this.#closed || this.#busy) {
      this.close();
      return;
    }
    try {
      await this.#op('quit', async (r) => {
        r.write('QUIT\r\n');
        await smtpReply(r, this.#step(Math.min(this.timeouts.shortMs, 5000)));
      });
    } catch {
      // The server may close first; either way we are done.
    }
    this.close();
  }

  /** Close the connection at once. */
  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }
}
