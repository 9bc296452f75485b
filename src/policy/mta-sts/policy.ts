/**
 * MTA-STS policy file parsing (RFC 8461 §3.2). Pure: the fetcher hands over the decoded body of
 * `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
 *
 *   sts-policy-record      = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP)
 *                            [sts-policy-term]
 *   sts-policy-field-delim = ":" *WSP
 *   sts-policy-term        = LF / CRLF
 *   sts-policy-mx-value    = ["*."] Domain
 *   sts-policy-max-age-value = 1*10(DIGIT)
 *   sts-policy-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *   sts-policy-ext-value   = sts-policy-vchar [*(%x20 / sts-policy-vchar) sts-policy-vchar]
 */

/** Upper bound on a policy body (RFC 8461 §3.3 suggests ~64 KiB); the fetcher enforces it too. */
export const MAX_POLICY_BYTES = 65536;

/** Largest allowed `max_age` in seconds (RFC 8461 §3.2: about one year). */
export const MAX_MAX_AGE = 31557600;

export const STS_MODES = ['enforce', 'testing', 'none'] as const;
export type StsMode = (typeof STS_MODES)[number];

export interface StsPolicy {
  version: 'STSv1';
  mode: StsMode;
  /** MX patterns, lower-cased, as listed (`host.example.com` or `*.example.com`). */
  mx: string[];
  /** Cache lifetime in seconds, 0..MAX_MAX_AGE. */
  maxAge: number;
}

export type StsPolicyResult = { ok: true; policy: StsPolicy } | { ok: false; reason: string };

// Key names are case-sensitive (%s"..." in RFC 8461 §3.2, RFC 7405).
const LINE_RE = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*(.*?)[ \t]*$/s;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_AGE_RE = /^[0-9]{1,10}$/;

/**
 * sts-policy-ext-value: vchar [*(SP / vchar) vchar], where vchar is %x21-7E or non-ASCII UTF-8.
 * The line regex already trimmed WSP, so only the interior needs checking.
 */
function isValue(value: string): boolean {
  if (value === '' || value.startsWith(' ') || value.endsWith(' ')) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

function fail(reason: string): StsPolicyResult {
  return { ok: false, reason };
}

/** `["*."] Domain` with RFC 5321 sub-domains (LDH labels, no trailing dot), ≤ 253 octets. */
function isMxPattern(value: string): boolean {
  const domain = value.startsWith('*.') ? value.slice(2) : value;
  if (domain.length === 0 || domain.length > 253) return false;
  return domain.split('.').every((label) => LABEL_RE.test(label));
}

/**
 * Parse an MTA-STS policy body strictly (RFC 8461 §3.2). `version: STSv1` is required (in any position: the §3.2 grammar sets no order, and rejecting a valid policy would silently drop MTA-STS protection);
 * `mode` and `max_age` are required exactly once, `mx` one or more times unless mode is `none`.
 * Unknown keys are ignored but must be well-formed. Lines end in LF or CRLF. Never throws.
 */
export function parseStsPolicy(text: string): StsPolicyResult {
  if (typeof text !== 'string') return fail('policy is not text');
  if (Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    return fail(`policy larger than ${MAX_POLICY_BYTES} bytes`);
  }
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  // The grammar allows one final terminator; trailing blank lines are tolerated (common in the
  // wild), blank lines between fields are not.
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) return fail('empty policy');

  let version: 'STSv1' | undefined;
  let mode: StsMode | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const n = i + 1;
    const m = LINE_RE.exec(line);
    if (m === null) return fail(`line ${n}: not a "key: value" field`);
    const key = m[1] ?? '';
    const value = m[2] ?? '';
    if (!isValue(value)) return fail(`line ${n}: empty or invalid value for ${key}`);

    switch (key) {
      case 'version':
        if (version !== undefined) return fail(`line ${n}: duplicate version`);
        if (value !== 'STSv1') return fail(`line ${n}: unsupported version`);
        version = 'STSv1';
        break;
      case 'mode':
        if (mode !== undefined) return fail(`line ${n}: duplicate mode`);
        if (!(STS_MODES as readonly string[]).includes(value)) return fail(`line ${n}: invalid mode`);
        mode = value as StsMode;
        break;
      case 'max_age': {
        if (maxAge !== undefined) return fail(`line ${n}: duplicate max_age`);
        if (!MAX_AGE_RE.test(value)) return fail(`line ${n}: max_age must be 1-10 digits`);
        const seconds = Number(value);
        if (seconds > MAX_MAX_AGE) return fail(`line ${n}: max_age above ${MAX_MAX_AGE}`);
        maxAge = seconds;
        break;
      }
      case 'mx':
        if (!isMxPattern(value.toLowerCase())) return fail(`line ${n}: invalid mx pattern`);
        mx.push(value.toLowerCase());
        break;
      default:
        // Extension fields are ignored (RFC 8461 §3.2).
        break;
    }
  }

  if (version === undefined) return fail('missing version');
  if (mode === undefined) return fail('missing mode');
  if (maxAge === undefined) return fail('missing max_age');
  if (mx.length === 0 && mode !== 'none') return fail('missing mx (required unless mode is none)');
  return { ok: true, policy: { version, mode, mx, maxAge } };
}
