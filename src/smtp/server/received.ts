/**
 * The Received trace header (RFC 5321 §4.4) with the TLS details of the hop, in the spirit of
 * Postfix's `smtpd_tls_received_header`, and the `with` protocol names of RFC 3848.
 */
import type { ArrivalInfo } from '../../core/envelope.ts';

export interface ReceivedInput {
  hostname: string;
  helo: string | null;
  /** True when the client said EHLO (ESMTP) rather than HELO. */
  esmtp: boolean;
  clientAddress: string;
  tls: ArrivalInfo['tls'];
  /** An unverified client certificate was presented (its subject is not shown: untrusted). */
  unverifiedClientCert: boolean;
  authenticated: boolean;
  id: string;
  /** Recipients; `for` is only written for exactly one (RFC 5321 §4.4 privacy note). */
  recipients: string[];
  date: Date;
}

/** RFC 3848 §2–4: ESMTP, ESMTPA, ESMTPS, ESMTPSA (plain HELO: SMTP). */
export function withProtocol(esmtp: boolean, tls: boolean, auth: boolean): string {
  if (!esmtp) return 'SMTP';
  return `ESMTP${tls ? 'S' : ''}${auth ? 'A' : ''}`;
}

/** RFC 5322 §3.3 date-time in UTC, e.g. `Tue, 1 Jul 2025 10:52:37 +0000`. */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Text safe inside a header comment: printable ASCII, no parentheses or backslashes or quotes. */
function commentSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]|[()\\"]/g, '?');
}

/** The client address as an RFC 5321 address-literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`). */
export function addressLiteral(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4 !== null) return `[${v4[1]}]`;
  return ip.includes(':') ? `[IPv6:${ip}]` : `[${ip}]`;
}

// A HELO name shown verbatim only when it is a plain domain or address literal; anything else
// (attacker-chosen text) is replaced so the header stays parseable.
const CLEAN_HELO =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.IPv]{2,60}\])$/;

/** Build the header field, folded with CRLF+TAB, ending in CRLF. */
export function receivedHeader(r: ReceivedInput): string {
  const helo = r.helo !== null && CLEAN_HELO.test(r.helo) ? r.helo : 'unknown';
  const lines = [`Received: from ${helo} (${addressLiteral(r.clientAddress)})`];
  if (r.tls !== null) {
    const bits = r.tls.bits === null ? '' : ` (${r.tls.bits}/${r.tls.bits} bits)`;
    lines.push(`(using ${commentSafe(r.tls.protocol)} with cipher ${commentSafe(r.tls.cipher)}${bits})`);
    if (r.tls.clientCertSubject !== null) {
      lines.push(`(client certificate "${commentSafe(r.tls.clientCertSubject)}" verified OK)`);
    } else if (r.unverifiedClientCert) {
      lines.push('(client certificate not verified)');
    }
  }
  lines.push(`by ${r.hostname} (postern) with ${withProtocol(r.esmtp, r.tls !== null, r.authenticated)} id ${r.id}`);
  const only = r.recipients.length === 1 ? r.recipients[0] : undefined;
  if (only !== undefined && /^[^\r\n<>]*$/.test(only)) lines.push(`for <${only}>; ${rfc5322Date(r.date)}`);
  else lines.push(`; ${rfc5322Date(r.date)}`);
  return lines.join('\r\n\t') + '\r\n';
}
