/**
 * One inbound SMTP session: guards, then a handler per verb (RFC 5321 §4.1), STARTTLS (RFC 3207),
 * AUTH (RFC 4954), DATA (data.ts), limits and timeouts.
 *
 * Input is processed strictly in order, one command at a time (RFC 2920 PIPELINING: replies in
 * command order), so a slow hook simply holds back the following commands. Only CRLF ends a
 * command line. On STARTTLS the plaintext reader is detached and whatever was buffered after the
 * STARTTLS line is thrown away before the handshake starts (RFC 3207 §4.2, CVE-2011-0411).
 *
 * Output is bounded too: once the socket's user-space write buffer reaches its high-water mark
 * (write() returned false, `writableNeedDrain`; 64 KiB in node 22+), no further command is read
 * or processed until the client has taken the replies ('drain'). This is what Postfix gets by
 * writing synchronously; without it a client that pipelines commands and never reads makes the
 * server queue every reply (5 MB of HELP became 75 MB). A client that never drains meets the
 * command timeout.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { EventSink, SmtpdEvent } from '../../core/events.ts';
import type { ArrivalInfo, Envelope, EnvelopeRecipient } from '../../core/envelope.ts';
import { hasControl, MAX_AUTH_LINE, parseCommand, splitPathAndParams } from '../protocol/command.ts';
import { parseMailParams, parseRcptParams, type MailParams } from '../protocol/params.ts';
import { formatReply, type ReplyError } from '../protocol/reply.ts';
import { DataReader } from './data.ts';
import { receivedHeader } from './received.ts';
import { decodeBase64Strict, parsePlain, utf8Strict } from './sasl.ts';
import { describeTls } from './tls-info.ts';
import type {
  HookReply,
  RecipientReply,
  ListenerSpec,
  SessionInfo,
  SmtpLimits,
  SmtpServerHooks,
  SmtpServerStats,
  SmtpTimers,
} from './types.ts';

export interface ConnectionDeps {
  hostname: string;
  listener: ListenerSpec;
  limits: Required<SmtpLimits>;
  hooks: SmtpServerHooks;
  logger: Logger;
  /** Typed events (src/core/events.ts). */
  events: EventSink;
  stats: SmtpServerStats;
  timers: SmtpTimers;
  /** Is this session's slot pool under stress (short timeouts, Postfix smtpd_timeout)? */
  underStress(): boolean;
  /**
   * Start the server side of a TLS handshake on `raw` (done by a node tls.Server so that client
   * certificates are verified by node itself); exactly one of the callbacks is called.
   */
  upgrade(raw: Socket, on: { secure(t: TLSSocket): void; error(err: Error): void }): void;
}

/** Omit over each member of a union (so the event variants keep their own fields). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The events that belong to one session (the others are the server's). */
type SessionEvent = Extract<SmtpdEvent, { session: string }>;

type Mode = 'handshake' | 'command' | 'sasl' | 'data' | 'closed';
type Mechanism = 'PLAIN' | 'LOGIN' | 'EXTERNAL';

interface Transaction {
  from: string;
  params: MailParams;
  recipients: EnvelopeRecipient[];
}

const EMPTY = Buffer.alloc(0);
const CRLF = Buffer.from('\r\n');
const TOO_LONG = Symbol('too-long');
/** Input buffered while a command is being handled before the socket is paused. */
const HIGH_WATER = 64 * 1024;
/** Commands that do no work (Postfix smtpd_junk_command_limit counts NOOP, VRFY, ETRN, RSET). */
const JUNK_VERBS = new Set(['NOOP', 'RSET', 'VRFY', 'HELP']);
/**
 * While the slot pool is under stress, the junk and error limits drop to Postfix's stress values
 * (smtpd_junk_command_limit = ${stress?1}..., smtpd_hard_error_limit = ${stress?1}...): a session
 * that does no work, or fails, gives its slot back at once.
 */
const STRESS_JUNK_LIMIT = 1;
const STRESS_ERROR_LIMIT = 1;
/** HTTP verbs: a browser or proxy talking to us (cross-protocol attack); Postfix drops these too. */
const HTTP_VERBS = new Set(['GET', 'POST', 'HEAD', 'PUT', 'CONNECT', 'OPTIONS']);
/** A Received header id: session id + transaction counter; base32-ish, never confusable. */
const ID_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ0123456789';

function newId(): string {
  return Array.from(randomBytes(12), (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('');
}

/** RFC 5321 §4.1.1.1: a domain or address literal; we only refuse empty, spaced or control text. */
function validHelo(s: string): boolean {
  return s.length > 0 && s.length <= 255 && !/\s/.test(s) && !hasControl(s);
}

export class SmtpConnection {
  readonly id = newId();
  readonly clientAddress: string;
  /** Resolves once the socket is closed. */
  readonly done: Promise<void>;

  private readonly raw: Socket;
  private socket: Socket;
  private readonly d: ConnectionDeps;
  private readonly log: Logger;
  private readonly onDataBound = (chunk: Buffer): void => this.onData(chunk);
  private mode: Mode = 'command';
  private pending: Buffer = EMPTY;
  private discarding = false;
  private busy = false;
  /** Cancels the pending idle timer (command, DATA chunk or handshake). */
  private timer: (() => void) | null = null;
  /** Cancels the overall DATA deadline. */
  private dataDeadline: (() => void) | null = null;
  /** The idle timer was armed with the short timeout of a pool under stress. */
  private timerStressed = false;
  /** Waiting for 'drain' before reading more commands (see outputBlocked). */
  private stalled = false;
  private errors = 0;
  private junk = 0;
  private txCount = 0;
  private shuttingDown = false;
  private resolveDone: () => void = () => undefined;

  // Session state; all of it is reset after STARTTLS (RFC 3207 §4.2).
  private helo: string | null = null;
  private esmtp = false;
  private tls: ArrivalInfo['tls'] = null;
  private clientCert: PeerCertificate | null = null;
  private unverifiedCert = false;
  private authUser: string | null = null;
  private tx: Transaction | null = null;
  private sasl: { mech: Mechanism; user: string | null } | null = null;
  /** The mechanism of the last AUTH command (for the auth-failure event, after `sasl` is reset). */
  private authMechanism: Mechanism | '' = '';
  private data: DataReader | null = null;

  private readonly handlers: ReadonlyMap<string, (args: string) => Promise<void> | void>;

  constructor(socket: Socket, clientAddress: string, deps: ConnectionDeps) {
    this.raw = socket;
    this.socket = socket;
    this.d = deps;
    this.clientAddress = clientAddress;
    this.log = deps.logger.child({ session: this.id, listener: deps.listener.name, client: clientAddress });
    this.handlers = new Map<string, (args: string) => Promise<void> | void>([
      ['EHLO', (a) => this.onHelo(a, true)],
      ['HELO', (a) => this.onHelo(a, false)],
      ['STARTTLS', (a) => this.onStarttls(a)],
      ['AUTH', (a) => this.onAuth(a)],
      ['MAIL', (a) => this.onMail(a)],
      ['RCPT', (a) => this.onRcpt(a)],
      ['DATA', (a) => this.onDataCommand(a)],
      ['RSET', (a) => this.onRset(a)],
      ['NOOP', () => this.ok(250, '2.0.0', 'Ok')],
      ['QUIT', () => this.quit()],
      [
        'HELP',
        () => this.ok(214, '2.0.0', ['Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA', 'RSET NOOP QUIT HELP VRFY']),
      ],
      // RFC 5321 §3.5.3: 252 when we will not verify but will accept.
      ['VRFY', () => this.ok(252, '2.5.2', 'Cannot VRFY user, but will accept message and attempt delivery')],
      // Never expand lists (address harvesting); RFC 5321 §3.5.2 allows refusing.
      ['EXPN', () => this.fail({ code: 502, enhanced: '5.5.1', message: 'Error: EXPN not supported' })],
    ]);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    socket.once('close', () => this.onClosed());
    socket.on('error', (err) => {
      this.log.debug({ err: err.message }, 'socket error');
      this.destroy();
    });

    if (deps.listener.mode === 'implicit') {
      this.startTls(); // RFC 8314 §3: TLS first, then the greeting inside it
    } else {
      socket.on('data', this.onDataBound);
      this.greet();
    }
  }

  /** Session facts handed to hooks (a fresh snapshot each time). */
  info(): SessionInfo {
    return {
      id: this.id,
      listener: this.d.listener,
      clientAddress: this.clientAddress,
      helo: this.helo,
      tls: this.tls === null ? null : { ...this.tls },
      authUser: this.authUser,
    };
  }

  /** Graceful shutdown: idle sessions get 421 now, busy ones after their current transaction. */
  shutdown(): void {
    this.shuttingDown = true;
    if (this.mode === 'handshake') this.destroy();
    else if (!this.busy && this.tx === null && this.mode === 'command')
      this.closeWith(421, '4.3.2', `${this.d.hostname} Service shutting down`);
  }

  private maybeFinishShutdown(): void {
    if (this.shuttingDown && this.tx === null && this.mode === 'command') {
      this.closeWith(421, '4.3.2', `${this.d.hostname} Service shutting down`);
    }
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.mode = 'closed';
    this.clearTimers();
    this.socket.destroy();
    this.raw.destroy();
  }

  // ---------------------------------------------------------------- input

  private greet(): void {
    this.write(formatReply(220, null, `${this.d.hostname} ESMTP postern`));
    this.armCommandTimer();
  }

  private onData(chunk: Buffer): void {
    if (this.mode === 'closed' || this.mode === 'handshake') return;
    this.d.stats.bytesReceived += chunk.length;
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > this.d.stats.inputBufferedPeak) this.d.stats.inputBufferedPeak = this.pending.length;
    if (this.mode === 'data') this.armDataTimer();
    if (this.pending.length > HIGH_WATER && this.mode !== 'data') this.socket.pause();
    void this.drain();
  }

  /** Replies not yet taken by the client fill the write buffer: stop reading until 'drain'. */
  private outputBlocked(): boolean {
    // writableNeedDrain, not a length of our own: 'drain' is only emitted after write() said false.
    if (!this.socket.writableNeedDrain) return false;
    if (!this.stalled) {
      this.stalled = true;
      this.d.stats.outputStalls++;
      this.emit({ event: 'smtpd.output-stall', buffered: this.socket.writableLength });
      const socket = this.socket;
      socket.pause();
      socket.once('drain', () => {
        this.stalled = false;
        if (this.mode === 'closed' || socket !== this.socket) return;
        socket.resume();
        void this.drain();
      });
    }
    // The client must read within the command timeout, like any idle client.
    this.armCommandTimer();
    return true;
  }

  /** Process buffered input in order, one command (or one DATA transfer) at a time. */
  private async drain(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.mode === 'command' || this.mode === 'sasl' || this.mode === 'data') {
        if (this.mode !== 'data' && this.outputBlocked()) break;
        if (this.mode === 'data') {
          const reader = this.data;
          if (reader === null || this.pending.length === 0) break;
          const r = reader.feed(this.pending);
          this.pending = this.pending.subarray(r.consumed);
          if (!r.done) break;
          await this.endOfData(reader);
          this.maybeFinishShutdown();
          continue;
        }
        const line = this.nextLine();
        if (line === null) {
          this.armCommandTimer();
          break;
        }
        this.clearTimers();
        if (line === TOO_LONG) {
          // RFC 4954 §6 names 500 5.5.6 for an over-long AUTH exchange line.
          const inSasl = this.mode === 'sasl';
          if (inSasl) this.endSasl();
          this.emit({ event: 'smtpd.limit', limit: 'command-line' });
          await this.fail({ code: 500, enhanced: inSasl ? '5.5.6' : '5.5.2', message: 'Error: line too long' });
        } else if (this.mode === 'sasl') {
          await this.onSaslLine(line);
        } else {
          await this.onCommand(line);
        }
        this.maybeFinishShutdown();
      }
    } catch (err) {
      // A bug or a hook that threw unexpectedly: never take the process down for one session.
      this.log.error({ err }, 'session failed');
      this.closeWith(421, '4.3.0', `${this.d.hostname} Error: internal error`);
    } finally {
      this.busy = false;
    }
    if (this.mode !== 'closed' && !this.stalled && this.socket.isPaused() && this.pending.length < HIGH_WATER)
      this.socket.resume();
  }

  /** Next CRLF-terminated line, TOO_LONG after an over-long one was skipped, or null. */
  private nextLine(): Buffer | typeof TOO_LONG | null {
    const idx = this.pending.indexOf(CRLF);
    if (idx === -1) {
      if (this.pending.length > MAX_AUTH_LINE) {
        // Bounded buffering: drop the line's bytes, keep the last one (it may be the CR).
        this.discarding = true;
        this.pending = this.pending.subarray(this.pending.length - 1);
      }
      return null;
    }
    const line = this.pending.subarray(0, idx);
    this.pending = this.pending.subarray(idx + 2);
    if (this.discarding) {
      this.discarding = false;
      return TOO_LONG;
    }
    return line;
  }

  private async onCommand(line: Buffer): Promise<void> {
    this.d.stats.commands++;
    const cmd = parseCommand(line);
    if ('error' in cmd) return this.fail(cmd.error);
    if (HTTP_VERBS.has(cmd.verb)) {
      this.emit({ event: 'smtpd.http-request', verb: cmd.verb });
      return this.closeWith(421, '4.7.0', `${this.d.hostname} Error: not an HTTP server`);
    }
    const junkLimit = this.d.underStress()
      ? Math.min(STRESS_JUNK_LIMIT, this.d.limits.junkCommandLimit)
      : this.d.limits.junkCommandLimit;
    if (JUNK_VERBS.has(cmd.verb) && ++this.junk > junkLimit) {
      // A session kept alive by NOOPs (or harvesting with VRFY) holds a slot for ever otherwise.
      this.d.stats.junkLimitHits++;
      this.emit({ event: 'smtpd.limit', limit: 'junk-commands', detail: cmd.verb });
      return this.closeWith(421, '4.7.0', `${this.d.hostname} Error: too many ${cmd.verb} commands`);
    }
    const handler = this.handlers.get(cmd.verb);
    if (handler === undefined)
      return this.fail({ code: 500, enhanced: '5.5.2', message: 'Error: command not recognized' });
    await handler(cmd.args);
  }

  // ---------------------------------------------------------------- replies

  private write(s: string): void {
    if (this.mode !== 'closed' && this.socket.writable) {
      this.socket.write(s);
      const n = this.socket.writableLength;
      if (n > this.d.stats.outputBufferedPeak) this.d.stats.outputBufferedPeak = n;
    }
  }

  /** A typed event about this session (src/core/events.ts). */
  private emit(e: DistributiveOmit<SessionEvent, 'session' | 'client'>): void {
    this.d.events.emit({ ...e, session: this.id, client: this.clientAddress });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => this.d.timers.after(ms, r));
  }

  private ok(code: number, enhanced: string, text: string | string[]): void {
    this.write(formatReply(code, enhanced, text));
  }

  /**
   * An error reply: slowed down by errorDelayMs (Postfix smtpd_error_sleep_time) and counted;
   * maxErrors of them end the session with 421 4.7.0. `penalize: false` for replies that are part
   * of normal operation (452 too many recipients, 451 queue trouble).
   */
  private async fail(e: ReplyError, o: { penalize?: boolean } = {}): Promise<void> {
    const penalize = o.penalize !== false;
    if (penalize) {
      this.errors++;
      if (this.d.limits.errorDelayMs > 0) await this.sleep(this.d.limits.errorDelayMs);
    }
    if (this.mode === 'closed') return;
    this.write(formatReply(e.code, e.enhanced, e.message));
    const maxErrors = this.d.underStress()
      ? Math.min(STRESS_ERROR_LIMIT, this.d.limits.maxErrors)
      : this.d.limits.maxErrors;
    if (penalize && this.errors >= maxErrors) {
      this.emit({ event: 'smtpd.limit', limit: 'errors', detail: String(this.errors) });
      this.closeWith(421, '4.7.0', `${this.d.hostname} Error: too many errors`);
    }
  }

  private closeWith(code: number, enhanced: string, text: string): void {
    if (this.mode === 'closed') return;
    this.write(formatReply(code, enhanced, text));
    this.mode = 'closed';
    this.clearTimers();
    this.socket.end();
    // A client that never reads must not keep the socket (and its buffers) alive.
    const socket = this.socket;
    this.d.timers.after(2000, () => socket.destroy());
  }

  private quit(): void {
    this.closeWith(221, '2.0.0', 'Bye');
  }

  private onClosed(): void {
    this.resolveDone();
    this.mode = 'closed';
    this.clearTimers();
    this.pending = EMPTY;
    this.data = null;
  }

  // ---------------------------------------------------------------- timers

  /** An idle timeout: the short stress timeout while the slot pool is under stress. */
  private idleTimeout(normal: number): number {
    this.timerStressed = this.d.underStress() && this.d.limits.stressTimeoutMs < normal;
    return this.timerStressed ? this.d.limits.stressTimeoutMs : normal;
  }

  /** Waiting for a command: partial lines do not reset this timer (bounds slowloris clients). */
  private armCommandTimer(): void {
    if (this.timer !== null) return;
    const ms = this.idleTimeout(this.d.limits.commandTimeoutMs);
    this.timer = this.d.timers.after(ms, () => this.timeout('command'));
  }

  /** In DATA: idle timeout per chunk, plus a deadline for the whole transfer (dataDeadlineMs). */
  private armDataTimer(): void {
    this.timer?.();
    const ms = this.idleTimeout(this.d.limits.dataTimeoutMs);
    this.timer = this.d.timers.after(ms, () => this.timeout('data'));
    this.dataDeadline ??= this.d.timers.after(this.d.limits.dataDeadlineMs, () => {
      this.emit({ event: 'smtpd.limit', limit: 'data-deadline', detail: `${this.d.limits.dataDeadlineMs} ms` });
      this.timeout('data');
    });
  }

  /**
   * The slot pool just came under stress: an idle session waiting for a command with the normal
   * timeout gets the short one from now on (otherwise the sessions that filled the pool keep their
   * 5 minutes).
   */
  onStress(): void {
    if (this.mode !== 'command' || this.busy || this.timer === null || this.timerStressed) return;
    this.timer();
    this.timer = null;
    this.armCommandTimer();
  }

  private clearTimers(): void {
    this.timer?.();
    this.dataDeadline?.();
    this.timer = null;
    this.dataDeadline = null;
  }

  private timeout(what: 'command' | 'data' | 'handshake'): void {
    this.d.stats.timeouts++;
    this.emit({ event: 'smtpd.timeout', phase: what, stressed: this.timerStressed });
    if (what === 'handshake') return this.destroy();
    // A hook still running (busy) holds the session; the timer only fires while waiting for the client.
    this.closeWith(421, '4.4.2', `${this.d.hostname} Error: timeout exceeded`);
  }

  // ---------------------------------------------------------------- TLS

  private onStarttls(args: string): Promise<void> {
    if (this.d.listener.mode !== 'starttls' || this.tls !== null) {
      return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: TLS already active' });
    }
    if (args !== '') return this.fail({ code: 501, enhanced: '5.5.4', message: 'Syntax: STARTTLS' });
    this.ok(220, '2.0.0', 'Ready to start TLS');
    // RFC 3207 §4.2 / CVE-2011-0411: nothing received in plaintext after STARTTLS may be acted on
    // inside TLS. Detach the parser and drop the buffer before the handshake starts.
    if (this.pending.length > 0) {
      this.d.stats.starttlsInjections++;
      this.emit({ event: 'smtpd.starttls-injection', bytes: this.pending.length });
    }
    this.pending = EMPTY;
    this.discarding = false;
    this.raw.removeListener('data', this.onDataBound);
    this.startTls();
    return Promise.resolve();
  }

  private startTls(): void {
    this.mode = 'handshake';
    this.timer = this.d.timers.after(this.idleTimeout(this.d.limits.commandTimeoutMs), () => this.timeout('handshake'));
    this.d.upgrade(this.raw, {
      error: (err) => {
        // Per-socket TLS errors (garbage handshakes included) end this session only.
        this.d.stats.tlsFailures++;
        this.log.debug({ err: err.message }, 'TLS handshake failed');
        this.destroy();
      },
      secure: (tls) => this.onSecure(tls),
    });
  }

  private onSecure(tls: TLSSocket): void {
    this.clearTimers();
    this.socket = tls;
    // Client-initiated renegotiation (RFC 5746 §4.4 allows refusing it): every renegotiation costs
    // the server a full handshake, a cheap CPU exhaustion; node would allow 3 per 10 minutes. With
    // this, the next ClientHello on the session is an error and the session ends.
    tls.disableRenegotiation();
    tls.once('close', () => this.onClosed());
    tls.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_RENEGOTIATION_DISABLED') {
        this.d.stats.renegotiationsRefused++;
        this.emit({ event: 'smtpd.renegotiation-refused' });
      } else this.log.debug({ err: err.message }, 'TLS error');
      this.destroy();
    });
    if (this.mode === 'closed') return this.destroy();
    const h = describeTls(tls, this.d.listener.clientCertificates === 'request');
    this.d.stats.tlsHandshakes++;
    // RFC 3207 §4.2: forget everything learnt before TLS; the client must EHLO again.
    this.tls = h.tls;
    this.clientCert = h.verifiedCert;
    this.unverifiedCert = h.unverifiedCert;
    this.helo = null;
    this.esmtp = false;
    this.authUser = null;
    this.tx = null;
    this.sasl = null;
    this.pending = EMPTY;
    this.mode = 'command';
    this.log.info({ tls: h.tls }, 'TLS established');
    tls.on('data', this.onDataBound);
    if (this.d.listener.mode === 'implicit') this.greet();
    else this.armCommandTimer();
  }

  // ---------------------------------------------------------------- EHLO / HELO / RSET

  private async onHelo(args: string, esmtp: boolean): Promise<void> {
    if (!validHelo(args))
      return this.fail({ code: 501, enhanced: '5.5.4', message: `Syntax: ${esmtp ? 'EHLO' : 'HELO'} hostname` });
    // RFC 5321 §4.1.4: EHLO/HELO also resets any transaction.
    this.helo = args;
    this.esmtp = esmtp;
    this.tx = null;
    if (!esmtp) return this.write(formatReply(250, null, this.d.hostname));
    const l = this.d.listener;
    const lines = [
      this.d.hostname,
      'PIPELINING',
      `SIZE ${this.d.limits.maxMessageSize}`,
      '8BITMIME',
      'SMTPUTF8',
      'ENHANCEDSTATUSCODES',
      'DSN',
    ];
    if (l.mode === 'starttls' && this.tls === null) lines.push('STARTTLS');
    // RFC 4954 §4 / Postfix smtpd_tls_auth_only: no AUTH offered outside TLS.
    if (l.auth !== 'none' && this.tls !== null && this.authUser === null)
      lines.push(`AUTH ${this.mechanisms().join(' ')}`);
    // RFC 8689 §4.1: REQUIRETLS is only offered in a TLS session.
    if (this.tls !== null) lines.push('REQUIRETLS');
    // RFC 2034 §3: no enhanced codes in the EHLO response.
    this.write(formatReply(250, null, lines));
  }

  private async onRset(args: string): Promise<void> {
    if (args !== '') return this.fail({ code: 501, enhanced: '5.5.4', message: 'Syntax: RSET' });
    this.tx = null;
    this.ok(250, '2.0.0', 'Ok');
  }

  // ---------------------------------------------------------------- AUTH

  private mechanisms(): Mechanism[] {
    const m: Mechanism[] = ['PLAIN', 'LOGIN'];
    // EXTERNAL only with a verified client certificate and someone to map it to a user.
    if (this.clientCert !== null && this.d.hooks.authenticateExternal !== undefined) m.push('EXTERNAL');
    return m;
  }

  private async onAuth(args: string): Promise<void> {
    if (this.d.listener.auth === 'none')
      return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: authentication not enabled' });
    // RFC 4954 §4 and §6: plaintext mechanisms need TLS first.
    if (this.tls === null)
      return this.fail({
        code: 538,
        enhanced: '5.7.11',
        message: 'Encryption required for requested authentication mechanism',
      });
    if (!this.esmtp) return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: send EHLO first' });
    if (this.authUser !== null)
      return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: already authenticated' });
    if (this.tx !== null)
      return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: MAIL transaction in progress' });
    const parts = args.split(/[ \t]+/).filter((p) => p !== '');
    const [mechText, initial] = parts;
    if (mechText === undefined || parts.length > 2)
      return this.fail({ code: 501, enhanced: '5.5.4', message: 'Syntax: AUTH mechanism [initial-response]' });
    const mech = this.mechanisms().find((m) => m === mechText.toUpperCase());
    if (mech === undefined)
      return this.fail({ code: 504, enhanced: '5.5.4', message: 'Unrecognized authentication type' });
    this.sasl = { mech, user: null };
    this.authMechanism = mech;
    // RFC 4954 §4: "=" is an empty initial response.
    if (initial !== undefined) return this.saslResponse(initial === '=' ? '' : initial);
    this.mode = 'sasl';
    this.write(mech === 'LOGIN' ? '334 VXNlcm5hbWU6\r\n' : '334 \r\n'); // "Username:"
  }

  private endSasl(): void {
    this.sasl = null;
    if (this.mode === 'sasl') this.mode = 'command';
  }

  private async onSaslLine(line: Buffer): Promise<void> {
    const text = line.toString('latin1').trim();
    if (text === '*') {
      this.endSasl();
      return this.fail({ code: 501, enhanced: '5.0.0', message: 'Authentication cancelled' });
    }
    return this.saslResponse(text);
  }

  private async saslResponse(b64: string): Promise<void> {
    const s = this.sasl;
    if (s === null) return;
    const bytes = decodeBase64Strict(b64);
    if (bytes === null) {
      this.endSasl();
      return this.fail({ code: 501, enhanced: '5.5.2', message: 'Cannot decode response' });
    }
    if (s.mech === 'PLAIN') {
      const p = parsePlain(bytes);
      if (p === null) {
        this.endSasl();
        return this.fail({ code: 501, enhanced: '5.5.2', message: 'Invalid PLAIN response' });
      }
      // No proxy authorization: the authorization identity, if given, must be the user itself.
      if (p.authzid !== '' && p.authzid !== p.authcid) return this.authFailed();
      return this.checkPassword(p.authcid, p.password);
    }
    const text = utf8Strict(bytes);
    if (text === null) {
      this.endSasl();
      return this.fail({ code: 501, enhanced: '5.5.2', message: 'Invalid UTF-8 in response' });
    }
    if (s.mech === 'LOGIN') {
      if (s.user === null) {
        if (text === '') return this.authFailed();
        s.user = text;
        this.mode = 'sasl';
        this.write('334 UGFzc3dvcmQ6\r\n'); // "Password:"
        return;
      }
      return this.checkPassword(s.user, text);
    }
    return this.checkExternal(text === '' ? null : text);
  }

  private async checkPassword(user: string, password: string): Promise<void> {
    this.endSasl();
    let r: Awaited<ReturnType<SmtpServerHooks['authenticate']>>;
    try {
      r = await this.d.hooks.authenticate(user, password, this.info());
    } catch (err) {
      this.log.error({ err }, 'authenticate hook failed');
      r = 'rate-limited';
    }
    if (r === 'ok') return this.authOk(user);
    if (r === 'rate-limited') {
      this.d.stats.authFailures++;
      return this.fail({ code: 454, enhanced: '4.7.0', message: 'Temporary authentication failure' });
    }
    if (r !== 'bad') {
      // A failed-login limit: RFC 4954 §6 454 4.7.0 (temporary), saying when it ends, so a user
      // who mistyped knows how long to wait instead of retrying into a longer lockout.
      this.d.stats.authFailures++;
      const clock = r.until.toISOString().slice(11, 19);
      const s = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
      const m = Math.ceil(s / 60);
      const wait = s < 60 ? `${s} second${s === 1 ? '' : 's'}` : `${m} minute${m === 1 ? '' : 's'}`;
      const who = r.scope === 'address' ? 'from your address' : 'for this user';
      return this.fail({
        code: 454,
        enhanced: '4.7.0',
        message: `Too many failed logins ${who}; try again after ${clock} UTC (in ${wait})`,
      });
    }
    return this.authFailed(user);
  }

  /** SASL EXTERNAL (RFC 4422 Appendix A): the identity comes from the verified client certificate. */
  private async checkExternal(authzid: string | null): Promise<void> {
    this.endSasl();
    const cert = this.clientCert;
    const hook = this.d.hooks.authenticateExternal;
    if (cert === null || hook === undefined || this.tls === null) return this.authFailed();
    let user: string | null;
    try {
      user = await hook(this.tls.clientCertSubject ?? '', cert, this.info(), authzid);
    } catch (err) {
      this.log.error({ err }, 'authenticateExternal hook failed');
      return this.fail({ code: 454, enhanced: '4.7.0', message: 'Temporary authentication failure' });
    }
    if (user === null) return this.authFailed();
    // RFC 4422 Appendix A.1: an authorization identity the server cannot act for must fail the
    // exchange; postern does no proxy authorization, so only the certificate's own user may be named.
    if (authzid !== null && authzid !== user) {
      this.emit({ event: 'smtpd.authzid-mismatch', user });
      return this.authFailed(user);
    }
    return this.authOk(user);
  }

  private authOk(user: string): void {
    this.authUser = user;
    this.d.stats.authSuccesses++;
    this.log.info({ user }, 'authenticated');
    this.ok(235, '2.7.0', 'Authentication successful');
  }

  private authFailed(user?: string): Promise<void> {
    this.endSasl();
    this.d.stats.authFailures++;
    this.emit({ event: 'smtpd.auth-failure', user: user ?? null, mechanism: this.authMechanism });
    return this.fail({ code: 535, enhanced: '5.7.8', message: 'Authentication credentials invalid' });
  }

  // ---------------------------------------------------------------- MAIL / RCPT

  private async runHook<R extends HookReply | RecipientReply>(p: Promise<R>, what: string): Promise<R | HookReply> {
    try {
      return await p;
    } catch (err) {
      this.log.error({ err }, `${what} hook failed`);
      return { ok: false, code: 451, enhanced: '4.3.0', message: 'Error: temporary failure, try again later' };
    }
  }

  private async onMail(args: string): Promise<void> {
    if (this.helo === null) return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: send HELO/EHLO first' });
    if (this.tx !== null) return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: nested MAIL command' });
    // RFC 4954 §6: 530 5.7.0 when the policy requires authentication.
    if (this.d.listener.auth === 'required' && this.authUser === null) {
      return this.fail({ code: 530, enhanced: '5.7.0', message: 'Authentication required' });
    }
    const sp = splitPathAndParams(args, 'FROM');
    if ('error' in sp) return this.fail(sp.error);
    if (sp.params.length > 0 && !this.esmtp)
      return this.fail({ code: 555, enhanced: '5.5.4', message: 'Error: parameters need EHLO' });
    const pp = parseMailParams(sp.params);
    if ('error' in pp) return this.fail(pp.error);
    const params = pp.ok;
    if (params.requireTls && this.tls === null) {
      // RFC 8689 §4.1: REQUIRETLS is only valid on a TLS session (5.7.10 "encryption needed").
      return this.fail({ code: 530, enhanced: '5.7.10', message: 'REQUIRETLS needs a TLS session' });
    }
    // RFC 1870 §6.1: declared size over our limit → 552 5.3.4.
    if (params.size !== null && params.size > this.d.limits.maxMessageSize) {
      return this.fail({ code: 552, enhanced: '5.3.4', message: 'Error: message size exceeds fixed limit' });
    }
    let address = '';
    if (sp.path !== '<>') {
      const parsed = this.d.hooks.parsePath(sp.path, { smtputf8: params.smtputf8, kind: 'reverse' });
      if ('error' in parsed) return this.fail(parsed.error);
      address = parsed.address;
    }
    const verdict = await this.runHook(this.d.hooks.checkSender(address, this.info()), 'checkSender');
    if (!verdict.ok) return this.fail(verdict);
    this.tx = { from: address, params, recipients: [] };
    this.ok(250, '2.1.0', 'Ok');
  }

  private async onRcpt(args: string): Promise<void> {
    const tx = this.tx;
    if (tx === null) return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: need MAIL command' });
    const sp = splitPathAndParams(args, 'TO');
    if ('error' in sp) return this.fail(sp.error);
    if (sp.params.length > 0 && !this.esmtp)
      return this.fail({ code: 555, enhanced: '5.5.4', message: 'Error: parameters need EHLO' });
    const rp = parseRcptParams(sp.params);
    if ('error' in rp) return this.fail(rp.error);
    // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest later.
    if (tx.recipients.length >= this.d.limits.maxRecipients) {
      this.emit({ event: 'smtpd.limit', limit: 'recipients', detail: String(this.d.limits.maxRecipients) });
      return this.fail({ code: 452, enhanced: '4.5.3', message: 'Error: too many recipients' }, { penalize: false });
    }
    const parsed = this.d.hooks.parsePath(sp.path, { smtputf8: tx.params.smtputf8, kind: 'forward' });
    if ('error' in parsed) return this.fail(parsed.error);
    const verdict: RecipientReply = await this.runHook(
      this.d.hooks.checkRecipient(parsed.address, this.info()),
      'checkRecipient',
    );
    if (!verdict.ok) return this.fail(verdict);
    if (this.tx !== tx) return; // the session was reset meanwhile (cannot happen in order, but be safe)
    const address = verdict.address ?? parsed.address;
    if (!tx.recipients.some((r) => r.address === address)) tx.recipients.push({ address, dsn: rp.ok });
    this.ok(250, '2.1.5', 'Ok');
  }

  // ---------------------------------------------------------------- DATA

  private async onDataCommand(args: string): Promise<void> {
    const tx = this.tx;
    if (tx === null) return this.fail({ code: 503, enhanced: '5.5.1', message: 'Error: need MAIL command' });
    if (args !== '') return this.fail({ code: 501, enhanced: '5.5.4', message: 'Syntax: DATA' });
    // RFC 5321 §3.3: DATA without any accepted recipient → 554 (or 503).
    if (tx.recipients.length === 0)
      return this.fail({ code: 554, enhanced: '5.5.1', message: 'Error: no valid recipients' });
    this.write(formatReply(354, null, 'End data with <CR><LF>.<CR><LF>'));
    // maxLineLength counts the CRLF (RFC 5321 §4.5.3.1.6); the reader counts text octets only.
    this.data = new DataReader({
      maxSize: this.d.limits.maxMessageSize,
      maxLineLength: this.d.limits.maxLineLength - 2,
    });
    this.mode = 'data';
    this.armDataTimer();
  }

  private async endOfData(reader: DataReader): Promise<void> {
    this.clearTimers();
    this.data = null;
    this.mode = 'command';
    const tx = this.tx;
    this.tx = null; // RFC 5321 §4.1.1.4: the transaction ends with the reply to the final "."
    if (tx === null) return;
    const r = reader.result();
    if (r.bareLf || r.bareCr) {
      // SMTP smuggling (CVE-2023-51764 class). Only CRLF.CRLF ended this DATA, so the session is
      // still in sync and we can refuse just this message (550 is listed for DATA end, RFC 5321
      // §4.3.2) rather than disconnect like Postfix's 521; nothing is queued either way.
      this.d.stats.bareLineEndings++;
      this.d.stats.messagesRejected++;
      this.emit({ event: r.bareLf ? 'smtpd.bare-lf' : 'smtpd.bare-cr' });
      return this.fail({
        code: 550,
        enhanced: '5.6.0',
        message: 'Error: bare LF or CR in message, only CRLF line endings are allowed (RFC 5321 section 2.3.8)',
      });
    }
    if (r.nul) {
      // Refused like bare LF: a next hop that drops NULs would see CRLF "." CRLF where we did not.
      this.d.stats.nulBytes++;
      this.d.stats.messagesRejected++;
      this.emit({ event: 'smtpd.nul' });
      return this.fail({
        code: 550,
        enhanced: '5.6.0',
        message: 'Error: NUL character in message (RFC 5321 section 4.5.2)',
      });
    }
    if (r.tooBig || r.message === null) {
      this.d.stats.messagesRejected++;
      this.emit({ event: 'smtpd.limit', limit: 'message-size', detail: String(r.size) });
      return this.fail({ code: 552, enhanced: '5.3.4', message: 'Error: message file too big' });
    }
    if (r.lineTooLong) {
      this.d.stats.messagesRejected++;
      this.emit({ event: 'smtpd.limit', limit: 'message-line' });
      return this.fail({
        code: 550,
        enhanced: '5.6.0',
        message: `Error: message line longer than ${this.d.limits.maxLineLength - 2} octets plus CRLF (RFC 5321 section 4.5.3.1.6)`,
      });
    }
    if (r.eightBit && tx.params.body !== '8BITMIME') this.log.info('8-bit data without BODY=8BITMIME accepted');
    const now = new Date();
    const localId = `${this.id}.${++this.txCount}`;
    const envelope: Envelope = {
      mailFrom: tx.from,
      recipients: tx.recipients,
      size: tx.params.size,
      // Be liberal: undeclared 8-bit content is accepted but recorded as 8BITMIME, so delivery
      // knows it needs an 8BITMIME-capable next hop.
      body: tx.params.body ?? (r.eightBit ? '8BITMIME' : '7BIT'),
      smtputf8: tx.params.smtputf8,
      requireTls: tx.params.requireTls,
      dsnRet: tx.params.ret,
      dsnEnvid: tx.params.envid,
      arrival: {
        listener: this.d.listener.name,
        clientAddress: this.clientAddress,
        clientHelo: this.helo,
        authUser: this.authUser,
        tls: this.tls === null ? null : { ...this.tls },
        receivedAt: now.toISOString(),
      },
    };
    const header = receivedHeader({
      hostname: this.d.hostname,
      helo: this.helo,
      esmtp: this.esmtp,
      clientAddress: this.clientAddress,
      tls: this.tls,
      unverifiedClientCert: this.unverifiedCert,
      authenticated: this.authUser !== null,
      id: localId,
      recipients: tx.recipients.map((x) => x.address),
      date: now,
    });
    const message = Buffer.concat([Buffer.from(header, 'utf8'), r.message]);
    let queueId: string;
    try {
      queueId = await this.d.hooks.enqueue(envelope, message);
    } catch (err) {
      // Not stored durably: the client must keep the message and retry.
      this.d.stats.messagesRejected++;
      this.log.error({ err }, 'enqueue failed');
      return this.fail({ code: 451, enhanced: '4.3.0', message: 'Error: queue file write error' }, { penalize: false });
    }
    this.d.stats.messagesAccepted++;
    this.d.stats.bytesAccepted += message.length;
    this.junk = 0; // a session that delivers mail is doing real work
    this.log.info(
      { queueId, localId, size: message.length, from: tx.from, rcpts: tx.recipients.length },
      'message accepted',
    );
    this.ok(250, '2.0.0', `Ok: queued as ${queueId}`);
  }
}
