/**
 * SMTP replies: the reply line format (RFC 5321 §4.2) with enhanced status codes (RFC 2034,
 * RFC 3463). Pure: no sockets.
 */

/** A reply the server sends: code, enhanced status code (or null where RFC 2034 §3 omits it), text. */
export interface Reply {
  code: number;
  enhanced: string | null;
  text: string | string[];
}

/** A negative reply carried as data (parsers and hooks return these instead of throwing). */
export interface ReplyError {
  code: number;
  enhanced: string;
  message: string;
}

// Reply text must never carry CR or LF (a peer-supplied string echoed into a reply must not be able
// to start a new reply line) nor other control characters. It is also ASCII only: RFC 5321 §4.2
// textstring is %d9 / %d32-126 (RFC 6531 §3.7.4.2 allows UTF-8 only for SMTPUTF8 sessions, and
// postern's own texts never need it); anything else, e.g. an echoed address, becomes '?'.
function clean(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    out += c < 0x20 || c === 0x7f ? ' ' : c > 0x7e ? '?' : ch;
  }
  return out;
}

/**
 * Format a reply: one line per text element, `code-` on all but the last line and `code ` on the
 * last (RFC 5321 §4.2.1), each line prefixed with the enhanced code when given (RFC 2034 §4).
 */
export function formatReply(code: number, enhanced: string | null, text: string | string[]): string {
  if (!Number.isInteger(code) || code < 200 || code > 599) throw new RangeError(`bad SMTP reply code ${code}`);
  const lines = (Array.isArray(text) ? text : [text]).map(clean);
  if (lines.length === 0) lines.push('');
  if (enhanced !== null && !/^[245]\.\d{1,3}\.\d{1,3}$/.test(enhanced))
    throw new RangeError(`bad enhanced status code ${enhanced}`);
  const prefix = enhanced === null ? '' : `${enhanced} `;
  return lines.map((l, i) => `${code}${i === lines.length - 1 ? ' ' : '-'}${prefix}${l}\r\n`).join('');
}

/** Format a {@link ReplyError}. */
export function formatError(e: ReplyError): string {
  return formatReply(e.code, e.enhanced, e.message);
}
