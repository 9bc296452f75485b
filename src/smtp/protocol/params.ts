/**
 * ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 esmtp-param): SIZE (RFC 1870), BODY (RFC
 * 6152), SMTPUTF8 (RFC 6531), REQUIRETLS (RFC 8689), RET/ENVID/NOTIFY/ORCPT (RFC 3461). Pure.
 */
import type { RecipientDsn } from '../../core/envelope.ts';
import type { ReplyError } from './reply.ts';

export interface MailParams {
  /** SIZE=, RFC 1870 §6. */
  size: number | null;
  /** BODY=, RFC 6152 §2; null = not given (7BIT implied). */
  body: '7BIT' | '8BITMIME' | null;
  smtputf8: boolean;
  requireTls: boolean;
  ret: 'FULL' | 'HDRS' | null;
  /** ENVID, xtext-decoded. */
  envid: string | null;
}

export type RcptParams = RecipientDsn;

/** RFC 5321 §4.1.1.11: unrecognized or unimplemented parameters get 555 5.5.4. */
function unknownParam(name: string): ReplyError {
  return { code: 555, enhanced: '5.5.4', message: `Error: unsupported parameter ${name}` };
}

function badParam(message: string): ReplyError {
  return { code: 501, enhanced: '5.5.4', message: `Error: ${message}` };
}

/**
 * Decode xtext (RFC 3461 §4): printable ASCII except `+` and `=`, with `+XX` hex escapes.
 * Returns null on malformed input. Lower-case hex is accepted (be liberal).
 */
export function decodeXtext(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return null;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 2;
    } else if (c >= 33 && c <= 126 && c !== 0x3d) {
      out += text[i];
    } else {
      return null;
    }
  }
  return out;
}

/** Encode a string as xtext (RFC 3461 §4), for the outbound side. */
export function encodeXtext(text: string): string {
  let out = '';
  for (const ch of Buffer.from(text, 'utf8')) {
    out +=
      ch >= 33 && ch <= 126 && ch !== 0x2b && ch !== 0x3d
        ? String.fromCharCode(ch)
        : '+' + ch.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function splitParam(p: string): { name: string; value: string | null } {
  const eq = p.indexOf('=');
  return eq === -1
    ? { name: p.toUpperCase(), value: null }
    : { name: p.slice(0, eq).toUpperCase(), value: p.slice(eq + 1) };
}

/**
 * Parse MAIL FROM parameters. Unknown ones → 555 5.5.4; malformed or repeated ones → 501 5.5.4.
 * BODY=BINARYMIME is refused because CHUNKING is not offered (RFC 3030 §3).
 */
export function parseMailParams(params: string[]): { ok: MailParams } | { error: ReplyError } {
  const r: MailParams = { size: null, body: null, smtputf8: false, requireTls: false, ret: null, envid: null };
  const seen = new Set<string>();
  for (const p of params) {
    const { name, value } = splitParam(p);
    if (seen.has(name)) return { error: badParam(`duplicate parameter ${name}`) };
    seen.add(name);
    switch (name) {
      case 'SIZE':
        // RFC 1870 §6: size-value ::= 1*20DIGIT.
        if (value === null || !/^[0-9]{1,20}$/.test(value)) return { error: badParam('bad SIZE value') };
        r.size = Number(value);
        break;
      case 'BODY': {
        const v = value?.toUpperCase();
        if (v === '7BIT' || v === '8BITMIME') r.body = v;
        else if (v === 'BINARYMIME') return { error: unknownParam('BODY=BINARYMIME') };
        else return { error: badParam('bad BODY value') };
        break;
      }
      case 'SMTPUTF8':
        if (value !== null) return { error: badParam('SMTPUTF8 takes no value') };
        r.smtputf8 = true;
        break;
      case 'REQUIRETLS':
        // RFC 8689 §3: a keyword without a value.
        if (value !== null) return { error: badParam('REQUIRETLS takes no value') };
        r.requireTls = true;
        break;
      case 'RET': {
        const v = value?.toUpperCase();
        if (v !== 'FULL' && v !== 'HDRS') return { error: badParam('bad RET value') };
        r.ret = v;
        break;
      }
      case 'ENVID': {
        // RFC 3461 §4.4: xtext, at most 100 characters, printable ASCII once decoded.
        const d = value === null || value.length > 100 ? null : decodeXtext(value);
        if (d === null || d === '' || !/^[\x20-\x7e]+$/.test(d)) return { error: badParam('bad ENVID value') };
        r.envid = d;
        break;
      }
      default:
        return { error: unknownParam(name) };
    }
  }
  return { ok: r };
}

/** Parse RCPT TO parameters: NOTIFY and ORCPT (RFC 3461 §4.1, §4.2). */
export function parseRcptParams(params: string[]): { ok: RcptParams } | { error: ReplyError } {
  const r: RcptParams = { notify: null, orcpt: null };
  const seen = new Set<string>();
  for (const p of params) {
    const { name, value } = splitParam(p);
    if (seen.has(name)) return { error: badParam(`duplicate parameter ${name}`) };
    seen.add(name);
    if (name === 'NOTIFY') {
      if (value === null || value === '') return { error: badParam('bad NOTIFY value') };
      const items = value.toUpperCase().split(',');
      // RFC 3461 §4.1: NEVER alone, or any combination of SUCCESS, FAILURE, DELAY.
      if (items.length === 1 && items[0] === 'NEVER') {
        r.notify = 'NEVER';
        continue;
      }
      const out: Array<'SUCCESS' | 'FAILURE' | 'DELAY'> = [];
      for (const it of items) {
        if ((it !== 'SUCCESS' && it !== 'FAILURE' && it !== 'DELAY') || out.includes(it)) {
          return { error: badParam('bad NOTIFY value') };
        }
        out.push(it);
      }
      r.notify = out;
    } else if (name === 'ORCPT') {
      // RFC 3461 §4.2: addr-type ";" xtext; at most 500 characters.
      const semi = value === null ? -1 : value.indexOf(';');
      if (value === null || value.length > 500 || semi < 1) return { error: badParam('bad ORCPT value') };
      const type = value.slice(0, semi);
      const addr = decodeXtext(value.slice(semi + 1));
      if (!/^[A-Za-z0-9-]+$/.test(type) || addr === null || addr === '') return { error: badParam('bad ORCPT value') };
      // xtext can encode any octet: a decoded CR/LF (or any control character) would end up in the
      // DSN's Original-Recipient field (RFC 3461 §6.3), a header injection, so refuse it.
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      if (/[\x00-\x1f\x7f]/.test(addr)) return { error: badParam('control character in ORCPT') };
      r.orcpt = `${type};${addr}`;
    } else {
      return { error: unknownParam(name) };
    }
  }
  return { ok: r };
}
