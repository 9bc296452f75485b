/**
 * SMTP command lines (RFC 5321 §4.1): verb, arguments, line-length limits, and the split of
 * MAIL/RCPT arguments into path and ESMTP parameters. Pure: no sockets.
 */
import type { ReplyError } from './reply.ts';

/** RFC 5321 §4.5.3.1.4: 512 octets including the CRLF. */
export const MAX_COMMAND_LINE = 512;
/**
 * MAIL and RCPT carry ESMTP parameters, which may raise the limit (RFC 5321 §4.5.3.1.4, RFC 1869
 * §4.1.2): DSN alone adds ORCPT (up to 500 characters) and ENVID (up to 100), RFC 3461 §4.2, §4.4.
 */
export const MAX_MAIL_RCPT_LINE = 1024;
/** RFC 4954 §4: AUTH with an initial response may be up to 12288 octets long. */
export const MAX_AUTH_LINE = 12288;

export type ParsedCommand = { verb: string; args: string } | { error: ReplyError };

const VERB = /^[A-Za-z][A-Za-z0-9]{0,19}$/;

/** Line limit, including CRLF, for a given verb. */
export function commandLineLimit(verb: string): number {
  if (verb === 'MAIL' || verb === 'RCPT') return MAX_MAIL_RCPT_LINE;
  if (verb === 'AUTH') return MAX_AUTH_LINE;
  return MAX_COMMAND_LINE;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** True when `s` contains a C0 control character or DEL (TAB allowed when `allowTab`). */
export function hasControl(s: string, allowTab = false): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && !(allowTab && c === 0x09)) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Parse one command line (without its CRLF). Verbs are case-insensitive (RFC 5321 §2.4) and
 * returned upper-case; `args` is the rest after the first space. Over-long lines get
 * `500 5.5.2` (RFC 5321 §4.5.3.1.4, §4.2.2 "line too long"), control characters and invalid
 * UTF-8 `500 5.5.2`.
 */
export function parseCommand(line: Buffer): ParsedCommand {
  const sp = line.indexOf(0x20);
  const verbBytes = sp === -1 ? line : line.subarray(0, sp);
  const verbText = verbBytes.toString('latin1');
  if (!VERB.test(verbText)) {
    return { error: { code: 500, enhanced: '5.5.2', message: 'Error: command not recognized' } };
  }
  const verb = verbText.toUpperCase();
  if (line.length + 2 > commandLineLimit(verb)) {
    return { error: { code: 500, enhanced: '5.5.2', message: 'Error: command line too long' } };
  }
  let args: string;
  try {
    args = sp === -1 ? '' : utf8.decode(line.subarray(sp + 1));
  } catch {
    return { error: { code: 500, enhanced: '5.5.2', message: 'Error: invalid UTF-8 in command' } };
  }
  // No control characters in a command line: a NUL or bare CR/LF here is an attack or a broken
  // client, never a legitimate argument (TAB is tolerated as whitespace).
  if (hasControl(args, true)) {
    return { error: { code: 500, enhanced: '5.5.2', message: 'Error: control character in command' } };
  }
  return { verb, args: args.replace(/^[ \t]+|[ \t]+$/g, '') };
}

/**
 * Split `FROM:<path> PARAMS` / `TO:<path> PARAMS` (RFC 5321 §4.1.1.2–3). The path is returned as
 * written, with its angle brackets; a `>` inside a quoted local part does not end it. Spaces
 * after the colon are tolerated (be liberal, RFC 5321 §4.1.1.2 shows none).
 */
export function splitPathAndParams(
  args: string,
  keyword: 'FROM' | 'TO',
): { path: string; params: string[] } | { error: ReplyError } {
  const syntax = {
    code: 501,
    enhanced: '5.5.4',
    message: `Syntax: ${keyword === 'FROM' ? 'MAIL FROM' : 'RCPT TO'}:<address>`,
  };
  const prefix = `${keyword}:`;
  if (args.slice(0, prefix.length).toUpperCase() !== prefix) return { error: syntax };
  const rest = args.slice(prefix.length).replace(/^[ \t]+/, '');
  if (rest === '') return { error: syntax };
  let end: number;
  if (rest.startsWith('<')) {
    end = -1;
    let quoted = false;
    for (let i = 1; i < rest.length; i++) {
      const c = rest[i];
      if (c === '\\') {
        i++;
        continue;
      }
      if (c === '"') quoted = !quoted;
      else if (c === '>' && !quoted) {
        end = i + 1;
        break;
      }
    }
    if (end === -1) return { error: syntax };
  } else {
    // No angle brackets: not RFC 5321 syntax; hand the token to parsePath, which decides.
    const m = /^[^ \t]+/.exec(rest);
    end = m === null ? 0 : m[0].length;
  }
  const path = rest.slice(0, end);
  const tail = rest.slice(end);
  if (tail !== '' && !/^[ \t]/.test(tail)) return { error: syntax };
  const params = tail.split(/[ \t]+/).filter((p) => p !== '');
  return { path, params };
}
