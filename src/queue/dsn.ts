/**
 * Delivery status notifications (RFC 3464) in a multipart/report (RFC 6522), honouring the RFC
 * 3461 parameters NOTIFY, RET, ENVID and ORCPT. The first part says in plain words why; the second
 * is the machine-readable message/delivery-status; the third returns the message or its headers.
 * The output is CRLF throughout, every line ≤ 998 octets, every header 7-bit (except an
 * internationalised sender's own address, which needs SMTPUTF8 anyway).
 */
import { PosternError } from '../core/errors.ts';
import { buildMultipart, mimeField, quotedPrintable, rfc5322Date } from '../mime/index.ts';
import type { MimePart } from '../mime/index.ts';
import type { Envelope, RecipientDsn } from './types.ts';

/** RFC 3464 §2.3.3 actions ('relayed'/'expanded': successful hand-off without further DSNs). */
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** The envelope recipient (RCPT TO) this report is about: Final-Recipient. */
  address: string;
  /**
   * Its recipient id (`envelope.recipients[id]`), whose NOTIFY and ORCPT apply. Without an id the
   * first envelope recipient with this address is used (the same address can appear twice).
   */
  id?: number;
  /** ORCPT override; by default taken from the envelope recipient. */
  orcpt?: string | null;
  /** RFC 3463 status, e.g. '5.7.1' (normalised to the class the action implies). */
  status: string;
  /** e.g. 'smtp; 550 5.7.1 TLS required' (RFC 3464 §2.3.6); 'smtp; ' is added when missing. */
  diagnostic?: string;
  /** Host name of the remote MTA (RFC 3464 §2.3.5). */
  remoteMta?: string;
  /** Plain words for a person, e.g. "The receiving server mx.example.org offered TLS 1.0 only; …". */
  reason: string;
  lastAttempt: Date;
  /** For 'delayed': when the queue gives up (RFC 3464 §2.3.9 Will-Retry-Until). */
  willRetryUntil?: Date;
}

export interface DsnInput {
  /** This MTA's host name (Reporting-MTA, and MAILER-DAEMON@ in From). */
  reportingMta: string;
  envelope: Envelope;
  originalMessage: Buffer;
  action: DsnAction;
  recipients: DsnRecipient[];
  now: Date;
  /** Message-ID of the DSN itself, with or without angle brackets. */
  messageId: string;
  /** Queue id of the original message (shown to the user and as X-Postern-Queue-ID). */
  queueId?: string;
  /** Largest original message returned in full (default 50 000 octets, Postfix's bounce_size_limit). */
  maxOriginalBytes?: number;
  /**
   * What a failure report returns (RFC 3461 §4.3): default the sender's RET, FULL when none.
   * The queue manager passes `returnContent(...)`, which returns headers only for mail that
   * arrived unauthenticated from outside the trusted networks.
   */
  ret?: 'FULL' | 'HDRS';
}

/**
 * RET for a report about `env`. The sender's own RET wins (RFC 3461 §4.3). Without one, the full
 * message goes back only when the sender is known: the mail arrived with SMTP AUTH
 * (`arrival.authUser`) or from a trusted network (`trustedClient`, the relay `networks`). For
 * anything else the sender address may be forged, and a bounce carrying the whole message would
 * deliver it to a third party (backscatter): such reports carry the headers only, as RET=HDRS.
 */
export function returnContent(env: Envelope, trustedClient: boolean): 'FULL' | 'HDRS' {
  if (env.dsnRet !== null) return env.dsnRet;
  return env.arrival.authUser !== null || trustedClient ? 'FULL' : 'HDRS';
}

/** The envelope recipient a report line is about: by id when given, else the first with the address. */
function envelopeRecipient(env: Envelope, r: DsnRecipient): Envelope['recipients'][number] | undefined {
  if (r.id !== undefined) {
    const byId = env.recipients[r.id];
    if (byId !== undefined && byId.address === r.address) return byId;
  }
  return env.recipients.find((e) => e.address === r.address);
}

export const DEFAULT_MAX_ORIGINAL_BYTES = 50_000;
const MAX_LINE = 998; // RFC 5322 §2.1.1, excluding CRLF

/** RFC 3461 §4.1: does this recipient want a DSN for this action? Default NOTIFY is FAILURE,DELAY. */
export function wantsDsn(notify: RecipientDsn['notify'], action: DsnAction): boolean {
  if (notify === 'NEVER') return false;
  const set = notify ?? ['FAILURE', 'DELAY'];
  if (action === 'failed') return set.includes('FAILURE');
  if (action === 'delayed') return set.includes('DELAY');
  return set.includes('SUCCESS');
}

export type DsnPlan =
  | { send: true; envelope: Envelope; message: Buffer; recipients: string[] }
  | { send: false; why: 'null-sender' | 'not-requested'; recipients: string[] };

/**
 * Decide whether a DSN goes out and build it with its envelope: from the null sender `<>` to the
 * original envelope sender (RFC 3461 §6.2, RFC 5321 §4.5.5). Mail from `<>` never gets a DSN (a
 * bounce of a bounce is dropped: `why: 'null-sender'`, log it); recipients whose NOTIFY does not
 * ask for this action are left out, and with none left nothing is sent (`why: 'not-requested'`).
 */
export function planDsn(input: DsnInput): DsnPlan {
  const env = input.envelope;
  const wanted = input.recipients.filter((r) => {
    const er = envelopeRecipient(env, r);
    return wantsDsn(er ? er.dsn.notify : null, input.action);
  });
  const all = input.recipients.map((r) => r.address);
  if (isNullSender(env.mailFrom)) return { send: false, why: 'null-sender', recipients: all };
  if (wanted.length === 0) return { send: false, why: 'not-requested', recipients: all };
  const message = buildDsn({ ...input, recipients: wanted });
  const eightBit = message.some((b) => b >= 0x80);
  const envelope: Envelope = {
    mailFrom: '',
    // NOTIFY=NEVER: a DSN about a DSN is never wanted (RFC 3461 §6.2).
    recipients: [{ address: env.mailFrom, dsn: { notify: 'NEVER', orcpt: null } }],
    size: message.length,
    body: eightBit ? '8BITMIME' : '7BIT',
    smtputf8: env.smtputf8 && (!isAscii(env.mailFrom) || eightBit),
    // RFC 8689 §5: a report about a REQUIRETLS message carries its content, so it needs the same protection.
    requireTls: env.requireTls,
    dsnRet: null,
    dsnEnvid: null,
    arrival: {
      listener: 'dsn',
      clientAddress: '127.0.0.1',
      clientHelo: null,
      authUser: null,
      tls: null,
      receivedAt: input.now.toISOString(),
    },
  };
  return { send: true, envelope, message, recipients: wanted.map((r) => r.address) };
}

/** Build an RFC 3464 DSN. Throws `dsn-invalid` when there is nothing to report or nobody to send to. */
export function buildDsn(input: DsnInput): Buffer {
  const { envelope: env, action, now } = input;
  if (input.recipients.length === 0) throw new PosternError('dsn-invalid', 'a DSN needs at least one recipient');
  if (isNullSender(env.mailFrom)) throw new PosternError('dsn-invalid', 'never send a DSN to the null sender');
  const host = hostOnly(input.reportingMta);
  const returned = chooseReturned(input);
  const text = humanText(input, host, returned.note);
  const status = deliveryStatus(input, host);

  const subject = {
    failed: 'Undelivered Mail Returned to Sender',
    delayed: 'Delayed Mail (still being retried)',
    delivered: 'Successful Mail Delivery Report',
    relayed: 'Mail Relayed (no further delivery reports)',
    expanded: 'Mail Delivered to a List (no further delivery reports)',
  }[action];

  const head: string[] = [];
  head.push(...header('From', `Mail Delivery System <MAILER-DAEMON@${host}>`));
  head.push(...header('To', `<${env.mailFrom}>`, { utf8: true }));
  head.push(...header('Subject', subject));
  head.push(...header('Date', rfc5322Date(now)));
  head.push(...header('Message-ID', angle(input.messageId)));
  const origId = originalMessageId(input.originalMessage);
  if (origId) {
    head.push(...header('In-Reply-To', origId));
    head.push(...header('References', origId));
  }
  // RFC 3834 §5: machine-generated in reply to a message, so responders must not answer it.
  head.push('Auto-Submitted: auto-replied');
  if (input.queueId) head.push(...header('X-Postern-Queue-ID', input.queueId));
  head.push('MIME-Version: 1.0');

  const textIsAscii = isAscii(text);
  const parts: MimePart[] = [
    {
      headers: [
        'Content-Description: Notification',
        ...(textIsAscii
          ? ['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit']
          : ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable']),
      ],
      body: textIsAscii ? text : quotedPrintable(text),
    },
    {
      headers: ['Content-Description: Delivery report', 'Content-Type: message/delivery-status'],
      body: status,
    },
  ];
  if (returned.body)
    parts.push({
      headers: [
        `Content-Description: ${returned.description}`,
        `Content-Type: ${returned.type}`,
        ...(returned.body.some((b) => b >= 0x80) ? ['Content-Transfer-Encoding: 8bit'] : []),
      ],
      // The returned message keeps its own final CRLF: the delimiter brings its own (RFC 2046 §5.1.1).
      body: returned.body,
    });
  const mime = buildMultipart(parts, { preamble: 'This is a MIME-encapsulated delivery status report (RFC 3464).' });
  head.push(
    mimeField('Content-Type', 'multipart/report', [
      ['report-type', 'delivery-status'],
      ['boundary', mime.boundary],
    ]),
  );
  return Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n', 'utf8'), mime.body]);
}

// --- the returned message (RFC 3461 §4.3 RET, RFC 6522 §3) ---------------------------------------

interface Returned {
  body: Buffer | null;
  type: string;
  description: string;
  note: string;
}

function chooseReturned(input: DsnInput): Returned {
  const msg = input.originalMessage;
  const cap = input.maxOriginalBytes ?? DEFAULT_MAX_ORIGINAL_BYTES;
  const global = input.envelope.smtputf8; // RFC 6532 §3.7 / RFC 6533 §6: message/global for SMTPUTF8 mail
  const failed = input.action === 'failed';
  // RET only governs failure DSNs (RFC 3461 §4.3); other reports carry the headers only.
  const full = failed && (input.ret ?? input.envelope.dsnRet) !== 'HDRS';
  const desc = failed ? 'Undelivered Message' : input.action === 'delayed' ? 'Delayed Message' : 'Delivered Message';
  if (full && msg.length <= cap && isSafeText(msg)) {
    const type = global ? 'message/global' : 'message/rfc822';
    return { body: msg, type, description: desc, note: 'Your message is attached below.' };
  }
  let headers = headerBlock(msg);
  let note = 'The headers of your message are attached below.';
  if (full) {
    note =
      msg.length > cap
        ? `The headers of your message are attached below; at ${msg.length} bytes it is too large to return in full.`
        : 'The headers of your message are attached below; its body could not be returned as it is.';
  }
  if (headers.length > cap) {
    const cut = headers.lastIndexOf('\r\n', cap);
    headers = headers.subarray(0, cut > 0 ? cut + 2 : 0);
    note = 'The first part of the headers of your message is attached below.';
  }
  if (headers.length === 0 || !isSafeText(headers)) {
    return { body: null, type: '', description: '', note: 'Your message could not be attached.' };
  }
  return {
    body: headers,
    type: global ? 'message/global-headers' : 'text/rfc822-headers',
    description: `${desc} Headers`,
    note,
  };
}

/** Everything up to and including the blank line that ends the header section. */
function headerBlock(msg: Buffer): Buffer {
  if (msg.subarray(0, 2).equals(Buffer.from('\r\n'))) return Buffer.alloc(0);
  const end = msg.indexOf('\r\n\r\n');
  return end < 0 ? msg : msg.subarray(0, end + 2);
}

/** CRLF-only lines of ≤ 998 octets, no NUL: safe to embed unencoded (else it would need BINARYMIME). */
function isSafeText(b: Buffer): boolean {
  let lineLen = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0) return false;
    if (c === 0x0d) {
      if (b[i + 1] !== 0x0a) return false;
      i++;
      lineLen = 0;
      continue;
    }
    if (c === 0x0a) return false;
    if (++lineLen > MAX_LINE) return false;
  }
  return true;
}

// --- the human-readable part ---------------------------------------------------------------------

function humanText(input: DsnInput, host: string, returnedNote: string): string {
  const lines: string[] = [];
  const p = (s = ''): void => void lines.push(...wrap(s, 76));
  p(`This is the mail system at ${host}.`);
  p();
  const n = input.recipients.length === 1 ? 'the recipient below' : 'the recipients below';
  switch (input.action) {
    case 'failed':
      p(`Your message could not be delivered to ${n}. This is a permanent failure: the mail system has given up.`);
      break;
    case 'delayed': {
      const until = input.recipients.find((r) => r.willRetryUntil)?.willRetryUntil;
      p(
        `Your message has not been delivered to ${n} yet. The mail system keeps trying` +
          (until ? ` until ${rfc5322Date(until)}` : '') +
          '; you do not need to send it again.',
      );
      break;
    }
    case 'delivered':
      p(`Your message was delivered to ${n}.`);
      break;
    default:
      p(`Your message was passed on to ${n}; no further delivery reports will follow.`);
  }
  if (input.queueId) p(`Queue id: ${input.queueId}.`);
  p();
  for (const r of input.recipients) {
    p(`<${r.address}>: ${oneLine(r.reason) || 'no reason recorded'}`);
    const diag = r.diagnostic ? oneLine(r.diagnostic).replace(/^smtp;\s*/i, '') : '';
    if (r.remoteMta) p(`    Remote server: ${oneLine(r.remoteMta)}`);
    if (diag) p(`    The server said: ${diag}`);
    p(`    Last attempt: ${rfc5322Date(r.lastAttempt)}`);
    p();
  }
  p(returnedNote);
  return lines.map((l) => l + '\r\n').join('');
}

function wrap(s: string, width: number): string[] {
  if (s.length <= width) return [s];
  const indent = /^\s*/.exec(s)?.[0] ?? '';
  // Continuation lines hang under the text: paragraphs flush, "<addr>: …" and details indented.
  const hang = s.startsWith('<') ? '  ' : indent === '' ? '' : `${indent}  `;
  const out: string[] = [];
  let line = '';
  for (const word of s.trim().split(/\s+/)) {
    const candidate = line ? `${line} ${word}` : `${out.length === 0 ? indent : hang}${word}`;
    if (candidate.length > width && line) {
      out.push(line);
      line = `${hang}${word}`;
    } else {
      line = candidate;
    }
  }
  if (line) out.push(line);
  // A single word longer than a line (a URL, say): a hard cut keeps the 998-octet limit.
  return out.flatMap((l) => (Buffer.byteLength(l) > 900 ? chop(l, 900) : [l]));
}

function chop(s: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out;
}

/** RFC 2045 §6.7 quoted-printable (now in mime/, re-exported for existing callers). */
export { quotedPrintable };

// --- the machine-readable part (RFC 3464 §2.1–2.3) -----------------------------------------------

function deliveryStatus(input: DsnInput, host: string): string {
  const env = input.envelope;
  const lines: string[] = [];
  // Per-message fields, §2.2.
  if (env.dsnEnvid) lines.push(...header('Original-Envelope-Id', sanitize(env.dsnEnvid))); // RFC 3461 §4.4
  lines.push(...header('Reporting-MTA', `dns; ${host}`));
  const arrival = Date.parse(env.arrival.receivedAt);
  if (Number.isFinite(arrival)) lines.push(...header('Arrival-Date', rfc5322Date(new Date(arrival))));
  const groups = [lines.join('\r\n')];
  // Per-recipient fields, §2.3, in the order the RFC lists them.
  for (const r of input.recipients) {
    const g: string[] = [];
    const orcpt = r.orcpt !== undefined ? r.orcpt : (envelopeRecipient(env, r)?.dsn.orcpt ?? null);
    const orig = orcpt ? typedAddress(orcpt) : null;
    if (orig) g.push(...header('Original-Recipient', orig)); // RFC 3461 §6.3: ORCPT as given
    g.push(...header('Final-Recipient', addressField(r.address)));
    g.push(...header('Action', input.action));
    g.push(...header('Status', normaliseStatus(r.status, input.action)));
    if (r.remoteMta) g.push(...header('Remote-MTA', `dns; ${hostOnly(r.remoteMta)}`));
    if (r.diagnostic) {
      const d = sanitize(r.diagnostic);
      g.push(...header('Diagnostic-Code', /^[A-Za-z0-9-]+;/.test(d) ? d : `smtp; ${d}`));
    }
    g.push(...header('Last-Attempt-Date', rfc5322Date(r.lastAttempt)));
    if (input.action === 'delayed' && r.willRetryUntil)
      g.push(...header('Will-Retry-Until', rfc5322Date(r.willRetryUntil)));
    groups.push(g.join('\r\n'));
  }
  // Groups are separated by a blank line (§2.1).
  return groups.join('\r\n\r\n') + '\r\n';
}

/** RFC 3463 §2 syntax, with the class the action implies (failed: 4 or 5, delayed: 4, others: 2). */
function normaliseStatus(status: string, action: DsnAction): string {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})$/.exec(status.trim());
  const allowed = action === 'failed' ? ['5', '4'] : action === 'delayed' ? ['4'] : ['2'];
  if (m && allowed.includes(m[1]!)) return status.trim();
  return `${allowed[0]}.0.0`;
}

/** `rfc822; user@example.org`, or RFC 6533 §3 `utf-8;` with \x{HEX} escapes for non-ASCII. */
function addressField(address: string): string {
  if (isAscii(address)) return `rfc822; ${sanitize(address)}`;
  return `utf-8; ${utf8AddrXtext(address)}`;
}

function typedAddress(orcpt: string): string | null {
  const i = orcpt.indexOf(';');
  if (i <= 0) return null;
  const type = orcpt.slice(0, i).trim();
  const addr = orcpt.slice(i + 1).trim();
  if (!/^[A-Za-z0-9-]+$/.test(type) || addr === '') return null;
  if (isAscii(addr)) return `${type}; ${sanitize(addr)}`;
  return `utf-8; ${utf8AddrXtext(addr)}`;
}

function utf8AddrXtext(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += cp > 0x7e || cp < 0x21 || ch === '\\' ? `\\x{${cp.toString(16).toUpperCase()}}` : ch;
  }
  return out;
}

// --- header helpers -------------------------------------------------------------------------------

/**
 * One header field, folded at white space so lines stay ≤ 78 where possible and ≤ 998 always
 * (RFC 5322 §2.1.1, §2.2.3). Values are made 7-bit unless `utf8` (RFC 6532) is allowed.
 */
function header(name: string, value: string, opts: { utf8?: boolean } = {}): string[] {
  const v = opts.utf8 ? oneLine(value) : sanitize(value);
  const words = v.split(' ').filter((w) => w !== '');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const w of words) {
    for (const piece of Buffer.byteLength(w) > 900 ? chop(w, 900) : [w]) {
      if (line.length + 1 + piece.length > 78 && line.trim() !== `${name}:`) {
        lines.push(line);
        line = `\t${piece}`;
      } else {
        line += ` ${piece}`;
      }
    }
  }
  lines.push(line);
  return lines;
}

/** Control characters (CR, LF, …) become spaces: a peer's reply must not inject header lines. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/** oneLine + non-ASCII escaped as \x{HEX} (the RFC 6533 notation), so the field is 7-bit. */
function sanitize(s: string): string {
  let out = '';
  for (const ch of oneLine(s)) {
    const cp = ch.codePointAt(0)!;
    out += cp > 0x7e ? `\\x{${cp.toString(16).toUpperCase()}}` : ch;
  }
  return out;
}

function hostOnly(h: string): string {
  const s = sanitize(h).replace(/[^A-Za-z0-9.\-:[\]_]/g, '');
  return s === '' ? 'localhost' : s;
}

function angle(id: string): string {
  const s = sanitize(id).replace(/\s/g, '');
  return s.startsWith('<') && s.endsWith('>') ? s : `<${s.replace(/^<|>$/g, '')}>`;
}

function originalMessageId(msg: Buffer): string | null {
  const head = headerBlock(msg).toString('latin1');
  const m = /^message-id:[ \t]*(?:\r\n[ \t]+)?(<[\x21-\x7e]{1,900}?>)/im.exec(head);
  return m ? m[1]! : null;
}

function isNullSender(s: string): boolean {
  return s === '' || s === '<>';
}

function isAscii(s: string | Buffer): boolean {
  if (typeof s === 'string') {
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
    return true;
  }
  return !s.some((b) => b >= 0x80);
}
