/**
 * Chain report: per-certificate facts, a PKIX path from the leaf to a trust anchor (Mozilla's
 * store as bundled in node, or caller-supplied PEMs) using intermediates from the sent chain,
 * the RFC 9525 name check, and leaf validity at an injectable `now`.
 *
 * Path building is deliberately simple (RFC 5280 §6 subset): issuer name/AKID match
 * (X509_check_issued), signature verification, cA flag on intermediates, validity at `now` for
 * every certificate on the path. Not checked: name constraints, policies, path length, EKU,
 * revocation. Error strings reuse OpenSSL/node verify codes so they read like node's own
 * `authorizationError`.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { WireError } from '../../core/errors.ts';
import { analyzeCertificate, isSelfSigned, issuedBy, parseX509, signedBy } from './analyze.ts';
import type { CertInfo } from './analyze.ts';
import { matchHostname } from './hostname.ts';

export interface ChainReport {
  leaf: CertInfo;
  /** As sent, leaf first. */
  chain: CertInfo[];
  trust: { trusted: boolean; anchor: string | null; error: string | null };
  hostname: { checked: string | null; matches: boolean; matchedName: string | null };
  validity: { expired: boolean; notYetValid: boolean; daysLeft: number };
}

export interface AnalyzeChainOptions {
  /** Reference identity to check (DNS name or IP literal); omitted = no check. */
  hostname?: string;
  /** Trust anchors as PEM (one or more certificates per string); default node's Mozilla store. */
  ca?: string[];
  /** Evaluation time; default the current time. */
  now?: Date;
}

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Parse PEM strings into certificates, skipping blocks OpenSSL cannot read. */
export function parsePemBundle(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    for (const block of pem.match(PEM_RE) ?? []) {
      try {
        out.push(new X509Certificate(block));
      } catch {
        // An unreadable anchor cannot anchor anything; ignore it.
      }
    }
  }
  return out;
}

let mozillaRoots: X509Certificate[] | null = null;
function defaultAnchors(): X509Certificate[] {
  mozillaRoots ??= parsePemBundle(rootCertificates);
  return mozillaRoots;
}

function timeError(x: X509Certificate, now: Date): string | null {
  if (now < x.validFromDate) return 'CERT_NOT_YET_VALID';
  if (now > x.validToDate) return 'CERT_HAS_EXPIRED';
  return null;
}

interface PathResult {
  trusted: boolean;
  anchor: string | null;
  error: string | null;
}

/** Find a path leaf → … → anchor through `sent` (index 0 is the leaf). */
function buildPath(sent: X509Certificate[], anchors: X509Certificate[], now: Date): PathResult {
  const anchorPrints = new Set(anchors.map((a) => a.fingerprint256));
  let firstError: string | null = null;
  let nodes = 0;

  const walk = (cert: X509Certificate, path: X509Certificate[]): PathResult | null => {
    if (++nodes > 1000 || path.length > 10) return null;
    const finish = (anchor: X509Certificate): PathResult => {
      for (const c of [...path, anchor]) {
        const err = timeError(c, now);
        if (err !== null) return { trusted: false, anchor: oneLine(anchor.subject), error: err };
      }
      return { trusted: true, anchor: oneLine(anchor.subject), error: null };
    };
    // The certificate itself is a configured anchor (e.g. a pinned self-signed leaf).
    if (anchorPrints.has(cert.fingerprint256)) return finish(cert);
    for (const a of anchors) if (issuedBy(cert, a)) return finish(a);
    let best: PathResult | null = null;
    for (let i = 1; i < sent.length; i++) {
      const next = sent[i];
      if (next === undefined || path.includes(next)) continue;
      if (!issuedBy(cert, next)) {
        // Right name and key but not allowed to sign certificates (no cA / keyCertSign).
        if (cert.issuer === next.subject && signedBy(cert, next)) firstError ??= 'INVALID_CA';
        continue;
      }
      if (!next.ca) {
        firstError ??= 'INVALID_CA';
        continue;
      }
      const r = walk(next, [...path, next]);
      if (r?.trusted === true) return r;
      best ??= r;
    }
    if (best !== null) return best;
    // Dead end: say why, the way OpenSSL would at this depth.
    const selfSigned = isSelfSigned(cert);
    if (path.length === 1) {
      firstError ??= selfSigned
        ? 'DEPTH_ZERO_SELF_SIGNED_CERT'
        : (nameOnlyIssuer(cert, sent) ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } else {
      firstError ??= selfSigned
        ? 'SELF_SIGNED_CERT_IN_CHAIN'
        : (nameOnlyIssuer(cert, sent) ?? 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    }
    return null;
  };

  const leaf = sent[0];
  if (leaf === undefined) return { trusted: false, anchor: null, error: 'NO_CERTIFICATE' };
  const r = walk(leaf, [leaf]);
  return r ?? { trusted: false, anchor: null, error: firstError ?? 'UNABLE_TO_GET_ISSUER_CERT' };
}

/** An issuer that matches by name but whose signature does not verify. */
function nameOnlyIssuer(cert: X509Certificate, sent: X509Certificate[]): string | null {
  for (const c of sent) {
    if (c === cert) continue;
    if (cert.issuer === c.subject && !signedBy(cert, c)) return 'CERT_SIGNATURE_FAILURE';
  }
  return null;
}

function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/**
 * Analyse a chain as sent by a server (leaf first): facts per certificate, trust path, hostname
 * match and leaf validity. Throws WireError for an empty chain or unparseable certificates.
 */
export function analyzeChain(ders: Buffer[], opts: AnalyzeChainOptions = {}): ChainReport {
  if (ders.length === 0) throw new WireError('cert-empty-chain', 'no certificates to analyse');
  const now = opts.now ?? new Date();
  const chain = ders.map((d) => analyzeCertificate(d));
  const leaf = chain[0] as CertInfo;
  const sent = ders.map((d) => parseX509(d));
  const anchors = opts.ca === undefined ? defaultAnchors() : parsePemBundle(opts.ca);
  const trust = buildPath(sent, anchors, now);
  const matchedName = opts.hostname === undefined ? null : matchHostname(opts.hostname, leaf);
  const notBefore = new Date(leaf.notBefore);
  const notAfter = new Date(leaf.notAfter);
  return {
    leaf,
    chain,
    trust,
    hostname: { checked: opts.hostname ?? null, matches: matchedName !== null, matchedName },
    validity: {
      expired: now > notAfter,
      notYetValid: now < notBefore,
      daysLeft: Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000),
    },
  };
}
