/**
 * Service identity check per RFC 9525 §6: DNS-IDs from subjectAltName only (no CN fallback,
 * §6.2.1), wildcard only as the complete left-most label matching exactly one label (§6.3),
 * ASCII case-insensitive, A-labels compared as-is (no IDNA conversion here). IP literals match
 * iPAddress SANs byte-for-byte (§6.5).
 */
import { isIP } from 'node:net';

function normDns(s: string): string {
  const lower = s.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** Canonical bytes of an IP literal, or null. Accepts '[::1]' as well as '::1'. */
function ipBytes(s: string): Buffer | null {
  const t = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const v = isIP(t);
  if (v === 4) return Buffer.from(t.split('.').map(Number));
  if (v !== 6) return null;
  // Expand '::' and an embedded dotted quad into 8 words.
  let text = t;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1] !== undefined) {
    const q = dotted[1].split('.').map(Number);
    text =
      text.slice(0, -dotted[1].length) +
      (((q[0] ?? 0) << 8) | (q[1] ?? 0)).toString(16) +
      ':' +
      (((q[2] ?? 0) << 8) | (q[3] ?? 0)).toString(16);
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const words = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), i * 2));
  return b;
}

function wildcardMatches(pattern: string, name: string): boolean {
  // Only '*.' + at least two labels: '*.com' style patterns are refused, as most PKIX clients do.
  if (!pattern.startsWith('*.')) return false;
  const rest = pattern.slice(2);
  if (rest.includes('*') || !rest.includes('.')) return false;
  const dot = name.indexOf('.');
  if (dot <= 0) return false; // the wildcard must stand for exactly one non-empty label
  return name.slice(dot + 1) === rest;
}

/**
 * Return the SAN entry that matches `name` (a DNS name or an IP literal), or null.
 * Matching is RFC 9525 §6.3/§6.5; subject CN is never consulted.
 */
export function matchHostname(name: string, cert: { dnsNames: string[]; ipAddresses: string[] }): string | null {
  const ip = ipBytes(name);
  if (ip !== null) {
    for (const candidate of cert.ipAddresses) {
      const c = ipBytes(candidate);
      if (c !== null && c.equals(ip)) return candidate;
    }
    return null;
  }
  const ref = normDns(name);
  // A reference identity is a plain hostname; '*' or empty labels never match anything.
  if (ref === '' || ref.includes('*') || ref.split('.').some((l) => l === '')) return null;
  for (const candidate of cert.dnsNames) {
    const pat = normDns(candidate);
    if (pat === ref) return candidate;
    if (pat.includes('*') && wildcardMatches(pat, ref)) return candidate;
  }
  return null;
}
