/**
 * The TLS-RPT policy record published as TXT at `_smtp._tls.<domain>` (RFC 8460 §3).
 * Pure parsing: the DNS lookup lives elsewhere and hands us the TXT RRset.
 */

/** One usable reporting URI from `rua=`. */
export interface TlsRptRua {
  kind: 'mailto' | 'https';
  uri: string;
}

/** Result of {@link parseTlsRptRecord}: never throws on malformed DNS data. */
export type TlsRptRecordResult = { ok: true; rua: TlsRptRua[] } | { ok: false; reason: string };

// RFC 8460 §3 ABNF: `v` *WSP "=" *WSP "TLSRPTv1" *WSP ";" — the version must come first and be
// followed by a field delimiter (the rua field is mandatory, so a bare "v=TLSRPTv1" is invalid).
const VERSION_RE = /^v[ \t]*=[ \t]*TLSRPTv1[ \t]*;/;
// A record that merely starts with the version tag (even if malformed afterwards) still counts
// toward the "exactly one record" rule, so that two half-broken records are not silently merged.
const VERSION_PREFIX_RE = /^v[ \t]*=[ \t]*TLSRPTv1(?![0-9A-Za-z])/;

/**
 * Parse the TXT RRset of `_smtp._tls.<domain>` (each record given as its character-strings,
 * which are concatenated per RFC 8460 §3). Exactly one `v=TLSRPTv1` record must exist; unknown
 * fields are ignored; `rua` URIs other than mailto: and https: are ignored (RFC 8460 §3).
 */
export function parseTlsRptRecord(txt: string[][]): TlsRptRecordResult {
  const candidates = txt.map((chunks) => chunks.join('')).filter((r) => VERSION_PREFIX_RE.test(r));
  if (candidates.length === 0) return { ok: false, reason: 'no v=TLSRPTv1 record' };
  // RFC 8460 §3: "If the number of resulting records is not one, senders MUST assume the
  // recipient domain does not implement TLSRPT."
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} v=TLSRPTv1 records (need exactly one)` };
  const record = candidates[0] ?? '';
  if (!VERSION_RE.test(record)) return { ok: false, reason: 'v=TLSRPTv1 not followed by ";"' };

  const fields = record.split(';').slice(1);
  let ruaValue: string | undefined;
  for (const raw of fields) {
    const field = raw.trim();
    if (field === '') continue; // trailing or doubled delimiter
    const eq = field.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `malformed field "${truncate(field)}"` };
    const name = field.slice(0, eq).trim();
    const value = field.slice(eq + 1).trim();
    // Field names are case-sensitive in the ABNF (%x72 %x75 %x61); extensions are ignored.
    if (name !== 'rua') continue;
    if (ruaValue !== undefined) return { ok: false, reason: 'more than one rua field' };
    ruaValue = value;
  }
  if (ruaValue === undefined) return { ok: false, reason: 'missing rua field' };

  const rua: TlsRptRua[] = [];
  // Commas inside a URI MUST be percent-encoded (RFC 8460 §3), so splitting on "," is exact.
  for (const part of ruaValue.split(',')) {
    const uri = part.trim();
    const parsed = classifyUri(uri);
    if (parsed !== undefined) rua.push(parsed);
  }
  if (rua.length === 0) return { ok: false, reason: 'no mailto: or https: URI in rua' };
  return { ok: true, rua };
}

function classifyUri(uri: string): TlsRptRua | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.protocol === 'https:') return url.hostname === '' ? undefined : { kind: 'https', uri };
  if (url.protocol === 'mailto:') {
    // A mailto: URI needs at least "local@domain" before any "?" header part (RFC 6068 §2).
    const addr = decodeSafe(url.pathname);
    return /^[^@\s]+@[^@\s]+$/.test(addr) ? { kind: 'mailto', uri } : undefined;
  }
  return undefined;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
