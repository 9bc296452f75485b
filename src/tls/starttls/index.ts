/**
 * Client side of STARTTLS for SMTP, IMAP and POP3 (and implicit TLS): bring a plain TCP
 * connection to the point where the ClientHello must go, record what the server said on the way,
 * and after the handshake re-learn capabilities as RFC 3207 §4.2 / RFC 2595 §3.1 require.
 */
import { connectTcp } from '../connect.ts';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tlsHandshake } from '../handshake.ts';
import { capabilitiesAfterTls, imapCapabilities, imapPlain, pop3Plain, smtpPlain, smtpReply } from './dialects.ts';
import type { PlainResult, Protocol, Step } from './dialects.ts';
import { LineReader, StartTlsError, escapeLine } from './reader.ts';
import type { TranscriptLine } from './reader.ts';

export { StartTlsError, escapeLine } from './reader.ts';
export type { StartTlsErrorCode, TranscriptLine } from './reader.ts';
export type { Protocol } from './dialects.ts';

export type Dialect = 'smtp' | 'imap' | 'pop3' | 'implicit';

export interface StartTlsOptions {
  /** Address or name to connect to. */
  host: string;
  port: number;
  dialect: Dialect;
  /** Default 'postern.invalid'. */
  ehloName?: string;
  /** Per step; default 10 000. */
  timeoutMs?: number;
  /**
   * Total for the plaintext dialogue after connect (greeting, EHLO, STARTTLS go-ahead); default
   * 3 × timeoutMs. A per-line timeout alone lets a server that drips one `250-` line just inside
   * it hold the connection for 500 lines; this caps it (error code `net-too-slow`).
   */
  dialogueBudgetMs?: number;
  signal?: AbortSignal;
  /** Extra plaintext sent with the STARTTLS command in the same write (CVE-2011-0411 probe). */
  injectAfterStartTls?: string;
  /** Send STARTTLS even when it is not advertised (to detect stripping). Default false. */
  forceStartTls?: boolean;
  /**
   * How long to wait for injected bytes after the go-ahead (default 150 ms). Bytes already
   * received are always set aside; a prober that has seen a clean first session may use 0.
   */
  injectionWindowMs?: number;
}

export interface StartTlsReady {
  /** Plain TCP positioned where the ClientHello must go; paused, no data listeners. */
  socket: Socket;
  dialect: Dialect;
  /** 220 banner / '* OK' / '+OK' line(s); null for implicit TLS. */
  greeting: string | null;
  /** EHLO keywords / IMAP CAPABILITY atoms / POP3 CAPA lines, before TLS. */
  capabilities: string[];
  /** STARTTLS/STLS was advertised before TLS (implicit: false). */
  advertised: boolean;
  /** IMAP LOGINDISABLED was advertised before TLS (RFC 2595 §3.2); false for other dialects. */
  loginDisabled: boolean;
  /** Bytes the server sent after its go-ahead and before our ClientHello; discarded, never parsed. */
  injectedBytes: Buffer | null;
  transcript: TranscriptLine[];
}

/** How long to listen for response injection after the go-ahead (RFC 3207 §4.2 / "NO STARTTLS"). */
const INJECTION_WINDOW_MS = 150;

/** A socket handed on must not crash the process on a late reset before its new owner listens. */
function quietErrors(s: Socket | TLSSocket): void {
  if (s.listenerCount('error') === 0) s.on('error', () => undefined);
}

/**
 * Connect and run the plaintext part of the dialect up to the server's STARTTLS go-ahead.
 * Throws StartTlsError (socket destroyed) on refusal, rate limiting, malformed replies or timeouts.
 */
export async function openStartTls(opts: StartTlsOptions): Promise<StartTlsReady> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const socket = await connectTcp(opts.host, opts.port, timeoutMs, opts.signal, (code, message, cause) =>
    code === 'aborted'
      ? new StartTlsError('aborted', 'STARTTLS dialogue aborted')
      : new StartTlsError(code, message, cause === undefined ? {} : { cause }),
  );
  if (opts.dialect === 'implicit') {
    socket.pause();
    quietErrors(socket);
    const base = { greeting: null, capabilities: [], advertised: false, loginDisabled: false, injectedBytes: null };
    return { socket, dialect: 'implicit', ...base, transcript: [] };
  }
  const transcript: TranscriptLine[] = [];
  const r = new LineReader(socket, transcript);
  const inject = opts.injectAfterStartTls ?? '';
  const force = opts.forceStartTls === true;
  const budget = dialogueBudget(opts.dialogueBudgetMs ?? 3 * timeoutMs, opts.signal);
  const step: Step = { timeoutMs, signal: budget.signal };
  try {
    let res: PlainResult;
    if (opts.dialect === 'smtp') res = await smtpPlain(r, step, opts.ehloName ?? 'postern.invalid', force, inject);
    else if (opts.dialect === 'imap') res = await imapPlain(r, step, force, inject);
    else if (opts.dialect === 'pop3') res = await pop3Plain(r, step, force, inject);
    else throw r.error('unsupported-dialect', `unknown dialect ${String(opts.dialect)}`);
    // After the go-ahead, anything from the server before our ClientHello is response injection
    // (RFC 3207 §4.2): set aside unread; the next thing we parse must be a TLS record.
    const injected = await r.drain(opts.injectionWindowMs ?? INJECTION_WINDOW_MS, step.signal);
    budget.dispose();
    r.detach();
    quietErrors(socket);
    if (injected.length > 0)
      transcript.push({
        dir: 'S',
        line: `[discarded ${injected.length} injected bytes] ${escapeLine(injected.subarray(0, 200))}`,
      });
    return { socket, dialect: opts.dialect, ...res, injectedBytes: injected.length > 0 ? injected : null, transcript };
  } catch (e) {
    budget.dispose();
    r.detach();
    socket.destroy();
    if (budget.expired()) throw budget.error(transcript);
    throw e instanceof StartTlsError ? e : new StartTlsError('unexpected-reply', String(e), { transcript, cause: e });
  }
}

/**
 * One timer for a whole dialogue, folded into the caller's signal: when it fires, the pending
 * read is aborted and the caller reports `net-too-slow` (not the caller's own abort).
 */
function dialogueBudget(
  budgetMs: number,
  outer: AbortSignal | undefined,
): {
  signal: AbortSignal;
  expired: () => boolean;
  dispose: () => void;
  error: (t: TranscriptLine[], from?: number) => StartTlsError;
} {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), budgetMs);
  return {
    signal: outer === undefined ? ac.signal : AbortSignal.any([outer, ac.signal]),
    expired: () => ac.signal.aborted && outer?.aborted !== true,
    dispose: () => clearTimeout(timer),
    error: (transcript, from = 0) => {
      const lines = transcript.slice(from).filter((l) => l.dir === 'S');
      const last = lines[lines.length - 1]?.line ?? null;
      return new StartTlsError(
        'net-too-slow',
        `greeting and capabilities not complete after ${budgetMs} ms (${lines.length} server lines received)`,
        { reply: last, transcript },
      );
    },
  };
}

export interface AfterTlsOptions {
  /** Default 'postern.invalid'. */
  ehloName?: string;
  timeoutMs?: number;
  /** Total for the greeting (implicit TLS) and capabilities; default 3 × timeoutMs (see StartTlsOptions). */
  dialogueBudgetMs?: number;
  signal?: AbortSignal;
  /**
   * How long to listen for unsolicited replies before the first command (default 0: only what
   * has already arrived). The CVE-2011-0411 probe uses ~500 ms.
   */
  settleMs?: number;
  /** For dialect 'implicit': the protocol spoken; default detected from the greeting. */
  protocol?: Protocol;
  /** Transcript to append to (e.g. StartTlsReady.transcript); default a fresh one. */
  transcript?: TranscriptLine[];
}

export interface AfterTlsResult {
  /** Greeting read over TLS (implicit TLS only), else null. */
  greeting: string | null;
  capabilities: string[];
  /** STARTTLS/STLS offered again inside TLS (RFC 3207 §4.2 says it must not be). */
  startTlsReAdvertised: boolean;
  /** Complete reply lines that arrived before our first post-TLS command. */
  extraReplies: string[];
  protocol: Protocol;
  transcript: TranscriptLine[];
}

function detectProtocol(greeting: string): Protocol | null {
  if (/^\d{3}[ -]/.test(greeting) || /^\d{3}$/.test(greeting)) return 'smtp';
  if (greeting.startsWith('* ')) return 'imap';
  if (/^[+-](OK|ERR)\b/i.test(greeting)) return 'pop3';
  return null;
}

/**
 * After the TLS handshake: read the greeting (implicit TLS), then ask for capabilities again
 * (SMTP EHLO, IMAP CAPABILITY, POP3 CAPA). Leaves the socket paused with unread bytes pushed back.
 */
export async function afterTls(
  tlsSocket: TLSSocket,
  dialect: Dialect,
  opts: AfterTlsOptions = {},
): Promise<AfterTlsResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const budget = dialogueBudget(opts.dialogueBudgetMs ?? 3 * timeoutMs, opts.signal);
  const step: Step = { timeoutMs, signal: budget.signal };
  const transcript = opts.transcript ?? [];
  const transcriptStart = transcript.length;
  const r = new LineReader(tlsSocket, transcript);
  const ehloName = opts.ehloName ?? 'postern.invalid';
  try {
    let protocol: Protocol;
    let greeting: string | null = null;
    let greetingCaps: string[] = [];
    if (dialect === 'implicit') {
      const first = await r.line(step.timeoutMs, step.signal);
      const p = opts.protocol ?? detectProtocol(first);
      if (p === null) throw r.error('unexpected-reply', 'unrecognised greeting over TLS', first);
      protocol = p;
      greeting = await implicitGreeting(r, step, protocol, first);
      if (protocol === 'imap') greetingCaps = imapCapabilities([first]);
    } else {
      protocol = dialect;
    }
    const extraReplies = await r.linesWithin(opts.settleMs ?? 0, step.signal);
    const caps = await capabilitiesAfterTls(r, step, protocol, ehloName);
    budget.dispose();
    r.detach(true);
    quietErrors(tlsSocket);
    return {
      greeting,
      capabilities: caps.capabilities.length > 0 ? caps.capabilities : greetingCaps,
      startTlsReAdvertised: caps.startTlsReAdvertised,
      extraReplies,
      protocol,
      transcript,
    };
  } catch (e) {
    budget.dispose();
    r.detach();
    tlsSocket.destroy();
    if (budget.expired()) throw budget.error(transcript, transcriptStart);
    throw e instanceof StartTlsError ? e : new StartTlsError('unexpected-reply', String(e), { transcript, cause: e });
  }
}

/** Finish reading and classify a greeting whose first line is `first`. */
async function implicitGreeting(r: LineReader, s: Step, protocol: Protocol, first: string): Promise<string> {
  if (protocol === 'smtp') {
    const g = await smtpReply(r, s, first);
    if (g.code === 421) throw r.error('rate-limited', 'server refused the session (421)', g.raw);
    if (g.code !== 220) throw r.error('unexpected-reply', `unexpected greeting ${g.code}`, g.raw);
    return g.lines.join('\n');
  }
  if (protocol === 'imap') {
    if (/^\* BYE\b/i.test(first)) throw r.error('rate-limited', 'server refused the session (BYE greeting)', first);
    if (!/^\* (OK|PREAUTH)\b/i.test(first)) throw r.error('unexpected-reply', 'unexpected IMAP greeting', first);
    return first;
  }
  if (/^-ERR\b/i.test(first)) throw r.error('rate-limited', 'server refused the session (-ERR greeting)', first);
  if (!/^\+OK\b/i.test(first)) throw r.error('unexpected-reply', 'unexpected POP3 greeting', first);
  return first;
}

/** The plaintext commands that a vulnerable server would run inside TLS. */
const INJECTED: Record<Protocol, string> = {
  smtp: 'NOOP\r\n',
  imap: 'a003 NOOP\r\n',
  pop3: 'NOOP\r\n',
};

const GOODBYE: Record<Protocol, string> = { smtp: 'QUIT\r\n', imap: 'b009 LOGOUT\r\n', pop3: 'QUIT\r\n' };

/**
 * Safe CVE-2011-0411 test: send STARTTLS and a harmless NOOP in one write, complete TLS (any
 * certificate, @SECLEVEL=0, TLS ≥ 1.0), then see whether the NOOP is answered inside TLS without
 * being asked. A server that buffers plaintext across STARTTLS is vulnerable (RFC 3207 §4.2).
 */
export async function probeCommandInjection(
  opts: Omit<StartTlsOptions, 'injectAfterStartTls'> & { servername?: string; ca?: string[] },
): Promise<{ vulnerable: boolean; evidence: string[] }> {
  if (opts.dialect === 'implicit')
    throw new StartTlsError('unsupported-dialect', 'command injection needs a STARTTLS dialect');
  const protocol: Protocol = opts.dialect;
  const ready = await openStartTls({ ...opts, injectAfterStartTls: INJECTED[protocol] });
  const evidence: string[] = [];
  if (ready.injectedBytes !== null) {
    // Answered in plaintext before TLS: odd, but not the CVE (nothing crossed into the session).
    evidence.push(`plaintext reply before TLS (discarded): ${escapeLine(ready.injectedBytes.subarray(0, 200))}`);
  }
  const hs: Parameters<typeof tlsHandshake>[0] = {
    socket: ready.socket,
    host: opts.host,
    port: opts.port,
    minVersion: 'TLSv1',
    ciphers: 'DEFAULT:@SECLEVEL=0',
    minDHSize: 1,
    captureChain: false,
  };
  if (opts.servername !== undefined) hs.servername = opts.servername;
  if (opts.ca !== undefined) hs.ca = opts.ca;
  if (opts.timeoutMs !== undefined) hs.timeoutMs = opts.timeoutMs;
  if (opts.signal !== undefined) hs.signal = opts.signal;
  const { tlsSocket } = await tlsHandshake(hs);
  try {
    const extra = await repliesBeforeGoodbye(tlsSocket, protocol, ready.transcript, opts.signal);
    for (const l of extra) evidence.push(`unsolicited reply inside TLS: ${l}`);
    return { vulnerable: extra.length > 0, evidence };
  } finally {
    setTimeout(() => tlsSocket.destroy(), 200).unref();
  }
}

/** Upper bound on waiting for the server's goodbye in the injection probe. */
const INJECTION_SETTLE_MS = 500;

/**
 * Say goodbye at once and collect every reply that precedes the answer to it. A server answers
 * commands in order, so anything before the QUIT/LOGOUT reply was not asked for inside TLS: the
 * injected command's reply (RFC 3207 §4.2). This ends as soon as the goodbye is answered (or the
 * server closes) instead of always waiting out a fixed settle time; INJECTION_SETTLE_MS still caps it.
 */
async function repliesBeforeGoodbye(
  tlsSocket: TLSSocket,
  protocol: Protocol,
  transcript: TranscriptLine[],
  signal: AbortSignal | undefined,
): Promise<string[]> {
  const r = new LineReader(tlsSocket, transcript);
  const lines: string[] = [];
  const deadline = Date.now() + INJECTION_SETTLE_MS;
  try {
    r.write(GOODBYE[protocol]);
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      let l: string;
      try {
        l = await r.line(left, signal);
      } catch (e) {
        // Silence or a close ends the collection; what arrived before is the evidence.
        if (e instanceof StartTlsError && (e.code === 'net-timeout' || e.code === 'net-closed')) break;
        throw e;
      }
      if (protocol === 'smtp') {
        if (/^221(?: |$)/.test(l)) break; // last line of the reply to QUIT
        if (/^221-/.test(l)) continue;
      } else if (protocol === 'imap') {
        if (/^b009 /i.test(l)) break; // tagged reply to LOGOUT
        if (/^\* BYE\b/i.test(l)) continue;
      }
      lines.push(l);
    }
  } finally {
    r.detach();
    tlsSocket.end();
  }
  // POP3 replies carry no tag: the last line before the server closed answered QUIT.
  if (protocol === 'pop3' && lines.length > 0 && /^\+OK\b/i.test(lines[lines.length - 1] ?? '')) lines.pop();
  return lines;
}
