/**
 * Per-protocol conversation steps: SMTP (RFC 5321, RFC 3207), IMAP (RFC 9051/3501, RFC 2595)
 * and POP3 (RFC 1939, RFC 2449, RFC 2595). Each step reads bounded lines through LineReader and
 * turns refusals into StartTlsError codes. No sockets are opened here.
 */
import type { LineReader } from './reader.ts';

export type Protocol = 'smtp' | 'imap' | 'pop3';

export interface Step {
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

export interface SmtpReply {
  code: number;
  /** Text after the code, one entry per line. */
  lines: string[];
  /** The complete first line as received (escaped). */
  raw: string;
}

/** Read one (possibly multi-line) SMTP reply (RFC 5321 §4.2.1). */
export async function smtpReply(r: LineReader, s: Step, first?: string): Promise<SmtpReply> {
  const lines: string[] = [];
  let code = -1;
  let raw = '';
  for (let n = 0; ; n++) {
    const l = n === 0 && first !== undefined ? first : await r.line(s.timeoutMs, s.signal);
    const m = /^(\d{3})(?:([ -])(.*))?$/.exec(l);
    if (m === null) throw r.error('unexpected-reply', 'malformed SMTP reply line', l);
    const c = Number(m[1]);
    if (n === 0) {
      code = c;
      raw = l;
    } else if (c !== code) {
      throw r.error('unexpected-reply', 'SMTP reply code changed inside a multi-line reply', l);
    }
    lines.push(m[3] ?? '');
    if (m[2] !== '-') return { code, lines, raw };
    if (n > 500) throw r.error('reply-too-long', 'SMTP reply has too many lines', raw);
  }
}

function keyword(line: string): string {
  return (line.split(/\s+/)[0] ?? '').toUpperCase();
}

export interface PlainResult {
  greeting: string | null;
  capabilities: string[];
  advertised: boolean;
  loginDisabled: boolean;
}

/** SMTP: greeting, EHLO, STARTTLS (RFC 3207 §4). Returns once 220 to STARTTLS was read. */
export async function smtpPlain(
  r: LineReader,
  s: Step,
  ehloName: string,
  force: boolean,
  inject: string,
): Promise<PlainResult> {
  const greeting = await smtpReply(r, s);
  const gtext = greeting.lines.join('\n');
  // RFC 5321 §3.1: 421 = service not available (busy, rate limit); 554 = no service for you.
  if (greeting.code === 421) throw r.error('rate-limited', 'server refused the session (421)', greeting.raw);
  if (greeting.code !== 220) throw r.error('unexpected-reply', `unexpected greeting ${greeting.code}`, greeting.raw);

  r.write(`EHLO ${ehloName}\r\n`);
  const ehlo = await smtpReply(r, s);
  if (ehlo.code === 421) throw r.error('rate-limited', 'server closed the session after EHLO (421)', ehlo.raw);
  if (ehlo.code !== 250) {
    // Not ESMTP: HELO only to record how the server answers. No STARTTLS without EHLO.
    r.write(`HELO ${ehloName}\r\n`);
    const helo = await smtpReply(r, s).catch(() => null);
    throw r.error('starttls-not-offered', `EHLO refused (${ehlo.code}); server is not ESMTP`, helo?.raw ?? ehlo.raw);
  }
  const capabilities = ehlo.lines.slice(1);
  const advertised = capabilities.some((c) => keyword(c) === 'STARTTLS');
  if (!advertised && !force)
    throw r.error('starttls-not-offered', 'STARTTLS is not advertised in the EHLO reply', ehlo.raw);

  r.write(`STARTTLS\r\n${inject}`);
  const st = await smtpReply(r, s);
  if (st.code === 421) throw r.error('rate-limited', 'server closed the session at STARTTLS (421)', st.raw);
  // RFC 3207 §4: 454 = TLS not available due to temporary reason; 5xx = refused.
  if (st.code === 454 || (st.code >= 500 && st.code < 600)) {
    throw r.error('starttls-refused', `STARTTLS refused (${st.code})`, st.raw);
  }
  if (st.code !== 220) throw r.error('unexpected-reply', `unexpected reply ${st.code} to STARTTLS`, st.raw);
  return { greeting: gtext, capabilities, advertised, loginDisabled: false };
}

/** IMAP tagged-response loop: collect untagged lines until `tag` completes. */
async function imapCommand(
  r: LineReader,
  s: Step,
  tag: string,
  command: string,
): Promise<{ status: 'OK' | 'NO' | 'BAD'; line: string; untagged: string[] }> {
  r.write(`${tag} ${command}`);
  const untagged: string[] = [];
  for (let n = 0; n < 1000; n++) {
    const l = await r.line(s.timeoutMs, s.signal);
    const m = new RegExp(`^${tag} (OK|NO|BAD)\\b`, 'i').exec(l);
    if (m?.[1] !== undefined) return { status: m[1].toUpperCase() as 'OK' | 'NO' | 'BAD', line: l, untagged };
    // RFC 9051 §7.1.5: BYE means the server is closing the connection.
    if (/^\* BYE\b/i.test(l)) throw r.error('unexpected-reply', 'server sent BYE', l);
    if (!l.startsWith('* ') && !l.startsWith('+')) throw r.error('unexpected-reply', 'unexpected IMAP response', l);
    untagged.push(l);
  }
  throw r.error('reply-too-long', 'too many untagged responses', null);
}

/** CAPABILITY atoms from '* CAPABILITY …' lines or a '[CAPABILITY …]' response code. */
export function imapCapabilities(lines: string[]): string[] {
  for (const l of lines) {
    const m = /^\* CAPABILITY (.*)$/i.exec(l) ?? /\[CAPABILITY ([^\]]*)\]/i.exec(l);
    if (m?.[1] !== undefined) return m[1].trim().split(/\s+/).filter(Boolean);
  }
  return [];
}

/** Read and classify an IMAP greeting (RFC 9051 §7.1). */
export async function imapGreeting(r: LineReader, s: Step): Promise<string> {
  const g = await r.line(s.timeoutMs, s.signal);
  if (/^\* BYE\b/i.test(g)) throw r.error('rate-limited', 'server refused the session (BYE greeting)', g);
  if (/^\* PREAUTH\b/i.test(g)) {
    // RFC 9051 §6.2.1: STARTTLS is only valid in the not-authenticated state; a PREAUTH greeting
    // on a plaintext connection makes TLS impossible (and is how STARTTLS gets stripped).
    throw r.error('imap-preauth', 'server greeted with PREAUTH: STARTTLS is impossible on this connection', g);
  }
  if (!/^\* OK\b/i.test(g)) throw r.error('unexpected-reply', 'unexpected IMAP greeting', g);
  return g;
}

/** IMAP: greeting, CAPABILITY, STARTTLS (RFC 2595 §3.1, RFC 9051 §6.2.1). */
export async function imapPlain(r: LineReader, s: Step, force: boolean, inject: string): Promise<PlainResult> {
  const greeting = await imapGreeting(r, s);
  const cap = await imapCommand(r, s, 'a001', 'CAPABILITY\r\n');
  let capabilities = imapCapabilities(cap.untagged);
  if (capabilities.length === 0) capabilities = imapCapabilities([greeting]);
  const has = (a: string): boolean => capabilities.some((c) => c.toUpperCase() === a);
  const advertised = has('STARTTLS');
  if (!advertised && !force)
    throw r.error('starttls-not-offered', 'STARTTLS is not in the CAPABILITY list', cap.untagged[0] ?? cap.line);
  const st = await imapCommand(r, s, 'a002', `STARTTLS\r\n${inject}`);
  if (st.status !== 'OK') throw r.error('starttls-refused', `STARTTLS refused (${st.status})`, st.line);
  return { greeting, capabilities, advertised, loginDisabled: has('LOGINDISABLED') };
}

/** POP3 multi-line response body up to the '.' terminator, dot-unstuffed (RFC 1939 §3). */
async function pop3MultiLine(r: LineReader, s: Step): Promise<string[]> {
  const out: string[] = [];
  for (let n = 0; n < 1000; n++) {
    const l = await r.line(s.timeoutMs, s.signal);
    if (l === '.') return out;
    out.push(l.startsWith('..') ? l.slice(1) : l);
  }
  throw r.error('reply-too-long', 'CAPA response too long', null);
}

/** Read and classify a POP3 greeting. */
export async function pop3Greeting(r: LineReader, s: Step): Promise<string> {
  const g = await r.line(s.timeoutMs, s.signal);
  // RFC 2449 §8.1.2 [IN-USE], [SYS/TEMP] etc.: any -ERR greeting is a refusal to serve us now.
  if (/^-ERR\b/i.test(g)) throw r.error('rate-limited', 'server refused the session (-ERR greeting)', g);
  if (!/^\+OK\b/i.test(g)) throw r.error('unexpected-reply', 'unexpected POP3 greeting', g);
  return g;
}

/** POP3 CAPA (RFC 2449 §5); -ERR means no CAPA support, i.e. nothing advertised. */
export async function pop3Capa(r: LineReader, s: Step): Promise<string[]> {
  r.write('CAPA\r\n');
  const l = await r.line(s.timeoutMs, s.signal);
  if (/^-ERR\b/i.test(l)) return [];
  if (!/^\+OK\b/i.test(l)) throw r.error('unexpected-reply', 'unexpected reply to CAPA', l);
  return pop3MultiLine(r, s);
}

/** POP3: greeting, CAPA, STLS (RFC 2595 §4). */
export async function pop3Plain(r: LineReader, s: Step, force: boolean, inject: string): Promise<PlainResult> {
  const greeting = await pop3Greeting(r, s);
  const capabilities = await pop3Capa(r, s);
  const advertised = capabilities.some((c) => keyword(c) === 'STLS');
  if (!advertised && !force) throw r.error('starttls-not-offered', 'STLS is not in the CAPA list', null);
  r.write(`STLS\r\n${inject}`);
  const st = await r.line(s.timeoutMs, s.signal);
  if (/^-ERR\b/i.test(st)) throw r.error('starttls-refused', 'STLS refused (-ERR)', st);
  if (!/^\+OK\b/i.test(st)) throw r.error('unexpected-reply', 'unexpected reply to STLS', st);
  return { greeting, capabilities, advertised, loginDisabled: false };
}

/** Capability query after TLS; returns the list and whether STARTTLS/STLS is offered again. */
export async function capabilitiesAfterTls(
  r: LineReader,
  s: Step,
  protocol: Protocol,
  ehloName: string,
): Promise<{ capabilities: string[]; startTlsReAdvertised: boolean }> {
  if (protocol === 'smtp') {
    // RFC 3207 §4.2: discard knowledge from before TLS and issue EHLO again.
    r.write(`EHLO ${ehloName}\r\n`);
    const ehlo = await smtpReply(r, s);
    if (ehlo.code === 421) throw r.error('rate-limited', 'server closed the session after EHLO (421)', ehlo.raw);
    if (ehlo.code !== 250) throw r.error('unexpected-reply', `EHLO over TLS refused (${ehlo.code})`, ehlo.raw);
    const capabilities = ehlo.lines.slice(1);
    return { capabilities, startTlsReAdvertised: capabilities.some((c) => keyword(c) === 'STARTTLS') };
  }
  if (protocol === 'imap') {
    // Tags differ from the plaintext ones so a reply to an injected 'a003' cannot be mistaken.
    const cap = await imapCommand(r, s, 'b001', 'CAPABILITY\r\n');
    const capabilities = imapCapabilities(cap.untagged);
    return { capabilities, startTlsReAdvertised: capabilities.some((c) => c.toUpperCase() === 'STARTTLS') };
  }
  const capabilities = await pop3Capa(r, s);
  return { capabilities, startTlsReAdvertised: capabilities.some((c) => keyword(c) === 'STLS') };
}
