/**
 * Header fields for the messages postern writes itself (DSNs, TLS-RPT reports, and later PGP/MIME
 * and S/MIME): MIME parameters quoted only where RFC 2045 §5.1 requires it, and folding at the
 * places the caller allows (RFC 5322 §2.2.3), lines ≤ 78 where possible.
 */

/** RFC 2045 §5.1 tspecials, space and controls: a parameter value with any of these is quoted. */
// eslint-disable-next-line no-control-regex -- controls are exactly what must be caught
const NEEDS_QUOTES = /[()<>@,;:\\"/[\]?=\x00-\x20\x7f]/;

/**
 * One parameter: name, value, and 'quoted' to quote a value even where a token would do (some
 * readers expect `filename="…"`, and RFC 8460 §5.3 shows `report-type="tlsrpt"`).
 */
export type MimeParam = readonly [name: string, value: string, quote?: 'quoted'];

/** A quoted-string (RFC 5322 §3.2.4): `"` and `\\` escaped, controls replaced by spaces. */
function quoted(value: string): string {
  // eslint-disable-next-line no-control-regex -- CR/LF and other controls cannot be quoted safely
  return `"${value.replace(/[\x00-\x1f\x7f]/g, ' ').replace(/(["\\])/g, '\\$1')}"`;
}

/** `value` as a MIME parameter value: a token as is, anything else as a quoted-string. */
export function paramValue(value: string): string {
  return value !== '' && !NEEDS_QUOTES.test(value) ? value : quoted(value);
}

/**
 * A complete `Content-Type:` (or `Content-Disposition:`) field: the value, then one parameter
 * per folded line, e.g. `Content-Type: multipart/report; report-type=tlsrpt;\r\n boundary="=_x"`.
 */
export function mimeField(name: string, value: string, params: readonly MimeParam[] = []): string {
  const items = [value, ...params.map(([k, v, quote]) => `${k}=${quote === 'quoted' ? quoted(v) : paramValue(v)}`)];
  return foldList(name, items, ';');
}

/**
 * Join `parts` into one field, `sep` after each but the last, folding ("\r\n ") before a part
 * that would carry the line past 78 characters (RFC 5322 §2.1.1), the first one included; a part
 * longer than that stays whole on its own line (998 is the hard limit, the caller's to respect).
 */
export function foldList(name: string, parts: readonly string[], sep: string): string {
  let out = `${name}:`;
  let lineLen = out.length;
  parts.forEach((p, i) => {
    const piece = i < parts.length - 1 ? `${p}${sep}` : p;
    if (lineLen + 1 + piece.length > 78) {
      out += `\r\n ${piece}`;
      lineLen = 1 + piece.length;
    } else {
      out += ` ${piece}`;
      lineLen += 1 + piece.length;
    }
  });
  return out;
}
