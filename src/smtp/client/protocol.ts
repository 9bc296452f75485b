/**
 * Pure pieces of the outbound SMTP client: EHLO parsing, MAIL/RCPT parameters (only those the
 * server advertised), DATA encoding (line ends, dot-stuffing) and the PIPELINING command group.
 * No sockets here, so each rule is unit-testable.
 */
import type { EnvelopeRecipient, Envelope } from '../../core/envelope.ts';
import { enhancedOf } from '../protocol/reply-class.ts';
import { SmtpClientError } from './errors.ts';

/** EHLO keywords (upper case) → their parameters (may be ''). */
export type Extensions = ReadonlyMap<string, string>;

/** Parse the lines of a 250 EHLO reply (the first is the greeting line; RFC 5321 §4.1.1.1). */
export function parseEhlo(lines: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(l.trim());
    if (m?.[1] !== undefined) out.set(m[1].toUpperCase(), (m[2] ?? '').trim());
  }
  return out;
}

/** The server's SIZE limit (RFC 1870): a number > 0, or null when none is declared. */
export function sizeLimit(ext: Extensions): number | null {
  const v = ext.get('SIZE');
  if (v === undefined || !/^\d+$/.test(v)) return null;
  const n = Number(v);
  return n > 0 ? n : null;
}

/** RFC 3461 §4 xtext: '+', '=', controls, space and non-ASCII bytes as +HH. */
export function encodeXtext(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out +=
      b < 33 || b > 126 || b === 0x2b || b === 0x3d
        ? '+' + b.toString(16).toUpperCase().padStart(2, '0')
        : String.fromCharCode(b);
  }
  return out;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** The header section of a message (up to the first empty line). */
function headerSection(message: Buffer): Buffer {
  const end = message.indexOf('\r\n\r\n');
  return end === -1 ? message : message.subarray(0, end);
}

/**
 * Does this transaction need SMTPUTF8 (RFC 6531 §3.2)? Only when the sender asked for it and an
 * address or header actually carries UTF-8; an ASCII-only message goes without it.
 */
export function needsSmtpUtf8(
  tx: Pick<Envelope, 'mailFrom' | 'smtputf8'> & { recipients: readonly EnvelopeRecipient[] },
  message: Buffer,
): boolean {
  if (NON_ASCII.test(tx.mailFrom) || tx.recipients.some((r) => NON_ASCII.test(r.address))) return true;
  if (!tx.smtputf8) return false;
  return headerSection(message).some((b) => b >= 0x80);
}

export interface MailFromInput {
  mailFrom: string;
  recipients: readonly EnvelopeRecipient[];
  body: Envelope['body'];
  smtputf8: boolean;
  requireTls: boolean;
  dsnRet: Envelope['dsnRet'];
  dsnEnvid: string | null;
}

/**
 * MAIL FROM parameters for this server. Never sends a parameter the server did not advertise;
 * throws a permanent SmtpClientError when the message cannot be sent to it as it is:
 * SMTPUTF8 needed but not offered → 5.6.7 (RFC 6531 §3.2); too big for its SIZE → 5.3.4
 * (RFC 1870 §6); BINARYMIME without BINARYMIME/CHUNKING → 5.6.3 (RFC 3030). REQUIRETLS is checked
 * by the session (it needs the TLS state).
 */
export function mailFromParams(ext: Extensions, tx: MailFromInput, size: number, utf8Needed: boolean): string[] {
  const p: string[] = [];
  if (utf8Needed && !ext.has('SMTPUTF8')) {
    throw new SmtpClientError(
      'smtputf8-unsupported',
      'the message needs SMTPUTF8 (internationalized addresses or headers) but the receiving server does not offer it',
      { stage: 'mail', temporary: false, smtpCode: 553, enhanced: '5.6.7' },
    );
  }
  if (ext.has('SIZE')) {
    const limit = sizeLimit(ext);
    if (limit !== null && size > limit) {
      throw new SmtpClientError('message-too-big', `message size ${size} exceeds the server's limit of ${limit}`, {
        stage: 'mail',
        temporary: false,
        smtpCode: 552,
        enhanced: '5.3.4',
      });
    }
    p.push(`SIZE=${size}`);
  }
  if (tx.body === 'BINARYMIME') {
    throw new SmtpClientError('body-unsupported', 'BINARYMIME content cannot be sent with DATA (RFC 3030 needs BDAT)', {
      stage: 'mail',
      temporary: false,
      smtpCode: 554,
      enhanced: '5.6.3',
    });
  }
  // RFC 6152 §3: BODY=8BITMIME only to servers that offer it. Without it the bytes go as they are
  // (what Postfix does with MIME conversion disabled); no downgrade is attempted.
  if (tx.body === '8BITMIME' && ext.has('8BITMIME')) p.push('BODY=8BITMIME');
  if ((tx.smtputf8 || utf8Needed) && ext.has('SMTPUTF8')) p.push('SMTPUTF8');
  if (tx.requireTls && ext.has('REQUIRETLS')) p.push('REQUIRETLS');
  if (ext.has('DSN')) {
    if (tx.dsnRet !== null) p.push(`RET=${tx.dsnRet}`);
    if (tx.dsnEnvid !== null) p.push(`ENVID=${encodeXtext(tx.dsnEnvid)}`);
  }
  return p;
}

/** RCPT TO parameters: NOTIFY and ORCPT only when DSN is advertised (RFC 3461 §4). */
export function rcptParams(ext: Extensions, r: EnvelopeRecipient): string[] {
  if (!ext.has('DSN')) return [];
  const p: string[] = [];
  const n = r.dsn.notify;
  if (n === 'NEVER') p.push('NOTIFY=NEVER');
  else if (n !== null && n.length > 0) p.push(`NOTIFY=${n.join(',')}`);
  if (r.dsn.orcpt !== null) {
    const semi = r.dsn.orcpt.indexOf(';');
    // RFC 3461 §4.2: ORCPT=addr-type;xtext(address)
    if (semi > 0) p.push(`ORCPT=${r.dsn.orcpt.slice(0, semi)};${encodeXtext(r.dsn.orcpt.slice(semi + 1))}`);
  }
  return p;
}

/** A command line with parameters, CRLF-terminated. */
export function commandLine(verb: string, arg: string, params: readonly string[]): string {
  return [`${verb} ${arg}`, ...params].join(' ') + '\r\n';
}

/**
 * The commands of one transaction, in order. With PIPELINING (RFC 2920 §3.1) they go in one
 * write: MAIL, every RCPT, and DATA as the last command of the group.
 */
export function transactionCommands(
  ext: Extensions,
  tx: MailFromInput,
  message: Buffer,
): { mail: string; rcpts: string[]; data: string } {
  // Defence in depth: an address with a line break, bracket or space would inject commands.
  // eslint-disable-next-line no-control-regex
  const bad = (a: string): boolean => /[\x00-\x20<>\x7f]/.test(a);
  if (bad(tx.mailFrom)) {
    throw new SmtpClientError('smtp-protocol', 'invalid sender address', {
      stage: 'mail',
      temporary: false,
      smtpCode: 553,
      enhanced: '5.1.7',
    });
  }
  for (const r of tx.recipients) {
    if (bad(r.address) || r.address === '') {
      throw new SmtpClientError('smtp-protocol', `invalid recipient address ${JSON.stringify(r.address)}`, {
        stage: 'rcpt',
        temporary: false,
        smtpCode: 553,
        enhanced: '5.1.3',
      });
    }
  }
  const params = mailFromParams(ext, tx, message.length, needsSmtpUtf8(tx, message));
  return {
    mail: commandLine('MAIL', `FROM:<${tx.mailFrom}>`, params),
    rcpts: tx.recipients.map((r) => commandLine('RCPT', `TO:<${r.address}>`, rcptParams(ext, r))),
    data: 'DATA\r\n',
  };
}

/**
 * Encode a message for DATA (RFC 5321 §4.5.2): every line ends in CRLF — a bare LF or bare CR is
 * turned into CRLF and counted, so no ambiguous line end ever leaves postern (SMTP smuggling,
 * CVE-2023-51764 class) — a leading '.' is doubled, a missing final CRLF is added, and the
 * terminating '.' CRLF is appended.
 */
export function encodeData(message: Buffer): { data: Buffer; fixedLineEnds: number } {
  const len = message.length;
  const out = Buffer.allocUnsafe(len * 2 + 5);
  let o = 0;
  let i = 0;
  let fixed = 0;
  while (i < len) {
    let j = i;
    while (j < len) {
      const c = message[j];
      if (c === 0x0a || c === 0x0d) break;
      j++;
    }
    if (message[i] === 0x2e) out[o++] = 0x2e;
    o += message.copy(out, o, i, j);
    out[o++] = 0x0d;
    out[o++] = 0x0a;
    if (j >= len) break;
    if (message[j] === 0x0d && message[j + 1] === 0x0a) i = j + 2;
    else {
      fixed++;
      i = j + 1;
    }
  }
  out[o++] = 0x2e;
  out[o++] = 0x0d;
  out[o++] = 0x0a;
  return { data: out.subarray(0, o), fixedLineEnds: fixed };
}

/** Enhanced status code at the start of a reply text (RFC 3463), or null. */
export function enhancedCode(text: string): string | null {
  return enhancedOf(text);
}
