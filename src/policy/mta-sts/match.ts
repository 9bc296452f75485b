/**
 * MX host matching against MTA-STS policy `mx` patterns (RFC 8461 §4.1). Pure.
 */
import type { StsPolicy } from './policy.ts';

function normalise(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * Does MX `host` match policy pattern `pattern`? Case-insensitive, one trailing dot ignored on
 * either side. A leading "*." matches exactly one left-most label (RFC 8461 §4.1):
 * `*.example.com` matches `mail.example.com` but not `a.b.example.com` nor `example.com`.
 */
export function mxMatches(pattern: string, host: string): boolean {
  if (typeof pattern !== 'string' || typeof host !== 'string') return false;
  const p = normalise(pattern);
  const h = normalise(host);
  // An MX name from DNS is a hostname: empty names, empty labels or a literal "*" never match.
  if (h === '' || h.includes('*') || h.startsWith('.') || h.includes('..')) return false;
  if (p.startsWith('*.')) {
    const suffix = p.slice(1); // ".example.com"
    if (suffix.length < 2 || !h.endsWith(suffix)) return false;
    const label = h.slice(0, h.length - suffix.length);
    return label !== '' && !label.includes('.');
  }
  return p !== '' && p === h;
}

/** Is MX `host` listed by any of the policy's `mx` patterns (RFC 8461 §4.1)? */
export function policyCovers(policy: Pick<StsPolicy, 'mx'>, host: string): boolean {
  return policy.mx.some((pattern) => mxMatches(pattern, host));
}
