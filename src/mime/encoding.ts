/**
 * Content-Transfer-Encodings (RFC 2045 §6): base64 in 76-character lines and quoted-printable of
 * UTF-8 text, both with CRLF line ends so the result can go into a message as is.
 */

/** True when every character (or octet) is 7-bit. */
export function isAscii(s: string | Buffer): boolean {
  if (typeof s === 'string') {
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
    return true;
  }
  return !s.some((b) => b >= 0x80);
}

/** Base64 wrapped at 76 characters per line (RFC 2045 §6.8), lines joined by CRLF, no final CRLF. */
export function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join('\r\n');
}

function hex2(b: number): string {
  return b.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * RFC 2045 §6.7 quoted-printable of UTF-8 text with CRLF line ends; encoded lines ≤ 76
 * characters (soft breaks "="), trailing white space encoded, every line CRLF-terminated.
 */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.replace(/\r\n$/, '').split('\r\n')) {
    const bytes = Buffer.from(line, 'utf8');
    let cur = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      const last = i === bytes.length - 1;
      let tok: string;
      if ((b === 0x20 || b === 0x09) && last)
        tok = `=${hex2(b)}`; // rule 3: trailing white space would be lost in transport
      else if ((b >= 33 && b <= 126 && b !== 0x3d) || b === 0x20 || b === 0x09) tok = String.fromCharCode(b);
      else tok = `=${hex2(b)}`;
      if (cur.length + tok.length > 75) {
        out.push(cur + '=');
        cur = '';
      }
      cur += tok;
    }
    out.push(cur);
  }
  return out.map((l) => l + '\r\n').join('');
}
