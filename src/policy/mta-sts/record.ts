/**
 * `_mta-sts.<domain>` TXT record parsing (RFC 8461 §3.1). Pure: the caller resolves the TXT RRset
 * and hands over each record's character-strings.
 *
 *   sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
 *   sts-field       = sts-id / sts-extension        ; sts-id is required
 *   sts-field-delim = *WSP ";" *WSP
 *   sts-version     = %s"v=STSv1"
 *   sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
 *   sts-extension   = sts-ext-name "=" sts-ext-value
 *   sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
 */

/**
 * `absent` is set when the RRset holds no v=STSv1 record at all, which is "no MTA-STS" rather than a
 * broken record (RFC 8461 §3.1); the cache reports the two differently.
 */
export type StsRecordResult = { ok: true; id: string } | { ok: false; reason: string; absent?: true };

const VERSION = 'v=STSv1';
const ID_RE = /^[A-Za-z0-9]{1,32}$/;
const EXT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}=[\x21-\x3a\x3c\x3e-\x7e]+$/;
const WSP_RE = /^[ \t]+|[ \t]+$/g;

/**
 * Does this record belong to MTA-STS at all? RFC 8461 §3.1 discards records not beginning with
 * "v=STSv1;"; we also accept WSP before the ";" (sts-field-delim, errata 6285) and a bare
 * "v=STSv1" so that it is reported as invalid instead of silently ignored.
 */
function isStsCandidate(text: string): boolean {
  if (!text.startsWith(VERSION)) return false;
  const next = text.charAt(VERSION.length);
  return next === '' || next === ';' || next === ' ' || next === '\t';
}

/** Parse one concatenated record that already starts with "v=STSv1". */
function parseOne(text: string): StsRecordResult {
  const rest = text.slice(VERSION.length);
  if (!/^[ \t]*;/.test(rest)) return { ok: false, reason: 'no fields after v=STSv1 (id= is required)' };
  // First piece is the WSP before the first ";"; the last may be empty (optional trailing delim).
  const pieces = rest.split(';').slice(1);
  let id: string | undefined;
  for (let i = 0; i < pieces.length; i++) {
    const field = (pieces[i] ?? '').replace(WSP_RE, '');
    if (field === '') {
      if (i === pieces.length - 1 && i > 0) break; // trailing ";" after at least one field
      return { ok: false, reason: 'empty field' };
    }
    if (field.startsWith('id=')) {
      if (id !== undefined) return { ok: false, reason: 'duplicate id field' };
      const value = field.slice(3);
      if (!ID_RE.test(value)) return { ok: false, reason: 'id must be 1-32 letters or digits' };
      id = value;
      continue;
    }
    // Unknown fields are ignored (RFC 8461 §3.1) but must still be well-formed extensions.
    if (!EXT_RE.test(field)) return { ok: false, reason: `malformed field "${truncate(field)}"` };
  }
  if (id === undefined) return { ok: false, reason: 'missing id field' };
  return { ok: true, id };
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}

/**
 * Select and parse the MTA-STS record from a `_mta-sts` TXT RRset (RFC 8461 §3.1). Each inner
 * array is one TXT record's character-strings, which are concatenated. Records not starting with
 * "v=STSv1" are discarded; anything other than exactly one remaining, valid record means the
 * domain has no usable MTA-STS policy. Never throws.
 */
export function parseStsRecord(txtStrings: string[][]): StsRecordResult {
  if (!Array.isArray(txtStrings)) return { ok: false, reason: 'no TXT records', absent: true };
  const candidates: string[] = [];
  for (const rec of txtStrings) {
    if (!Array.isArray(rec)) continue;
    const text = rec.filter((s) => typeof s === 'string').join('');
    if (isStsCandidate(text)) candidates.push(text);
  }
  if (candidates.length === 0) return { ok: false, reason: 'no v=STSv1 record', absent: true };
  if (candidates.length > 1) return { ok: false, reason: `${candidates.length} v=STSv1 records (exactly one allowed)` };
  return parseOne(candidates[0] ?? '');
}
