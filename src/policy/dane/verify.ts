/**
 * DANE for SMTP (RFC 7672 §3, RFC 7671 §5, RFC 6698 §2.1): which TLSA records count, and whether a
 * certificate chain as sent by the server matches them. Pure: no I/O, the clock is an input.
 *
 * - DANE-EE(3): only the server certificate (depth 0) is compared; its names and validity period
 *   are not checked (RFC 7672 §3.1.1, RFC 7671 §5.1).
 * - DANE-TA(2): the trust anchor is a certificate *in the chain as sent* (depth ≥ 1) whose
 *   association matches; RFC 7672 §3.1.2 and RFC 7671 §5.2.3 make servers send it, so a "2 1 0"
 *   bare key or a "2 0 0" certificate that only lives in DNS is not used as an anchor here. From the
 *   server certificate up to that anchor every signature must verify and every issuer must be a CA;
 *   every certificate on that path (anchor included, as OpenSSL does) must be within its validity
 *   period; the server certificate must name one of the reference identifiers (RFC 7672 §3.2.2,
 *   §3.2.3: DNS-ID SANs, the CN only when there is no DNS-ID SAN).
 * - PKIX-TA(0)/PKIX-EE(1) are unusable for SMTP (RFC 7672 §3.1.3). Records are OR'ed: one usable
 *   record that matches is enough (RFC 6698 §2.1).
 */
import { X509Certificate, createHash } from 'node:crypto';
import { WireError } from '../../core/errors.ts';
import type { TlsaRecord } from '../../dns/dnssec.ts';
import { issuedBy } from '../../tls/cert/analyze.ts';
import { commonNames, parseCertificate, parseSan, readNode } from '../../tls/cert/der.ts';
import { matchHostname } from '../../tls/cert/hostname.ts';

export interface TlsaUsability {
  usable: TlsaRecord[];
  unusable: Array<{ record: TlsaRecord; why: string }>;
}

export type DaneFailure =
  'no-usable-records' | 'no-certificate' | 'no-match' | 'ta-chain-invalid' | 'name-mismatch' | 'ta-expired';

export interface DaneVerdict {
  ok: boolean;
  matched: { record: TlsaRecord; depth: number } | null;
  failure: DaneFailure | null;
  /** Plain words an admin understands, naming the records and certificates. */
  reason: string;
}

export interface DaneInput {
  records: readonly TlsaRecord[];
  /** DER certificates, server certificate first, in the order the server sent them. */
  chain: readonly Buffer[];
  /** Reference identifiers for DANE-TA(2): TLSA base domain first, then e.g. the MX name. */
  names: readonly string[];
  now: Date;
}

/** Longest chain looked at; a real server sends 2–4 certificates. */
const MAX_CHAIN = 16;

const USAGE_NAMES: Record<number, string> = { 0: 'PKIX-TA', 1: 'PKIX-EE', 2: 'DANE-TA', 3: 'DANE-EE' };
const DIGEST_LENGTH: Record<number, number> = { 1: 32, 2: 64 };

/** TLSA presentation form of the fields after the owner name: '3 1 1 <lowercase hex>'. */
export function formatTlsa(r: TlsaRecord): string {
  return `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`;
}

/** formatTlsa, with long data (full certificates or keys) cut for messages. */
function show(r: TlsaRecord): string {
  const hex = r.data.toString('hex');
  return `${r.usage} ${r.selector} ${r.matchingType} ${hex.length > 64 ? `${hex.slice(0, 32)}…` : hex}`;
}

/**
 * Split records into those an SMTP client uses and those it ignores, with why (RFC 7672 §3.1.3,
 * RFC 6698 §2.1, RFC 7218 acronyms in the reasons).
 */
export function classifyTlsa(records: readonly TlsaRecord[]): TlsaUsability {
  const usable: TlsaRecord[] = [];
  const unusable: TlsaUsability['unusable'] = [];
  for (const record of records) {
    const why = unusableWhy(record);
    if (why === null) usable.push(record);
    else unusable.push({ record, why });
  }
  return { usable, unusable };
}

function unusableWhy(r: TlsaRecord): string | null {
  if (r.usage === 0 || r.usage === 1)
    return `usage ${USAGE_NAMES[r.usage]}(${r.usage}) relies on public CAs, which SMTP does not use (RFC 7672 §3.1.3)`;
  if (r.usage !== 2 && r.usage !== 3) return `unknown certificate usage ${r.usage}`;
  if (r.selector !== 0 && r.selector !== 1) return `unknown selector ${r.selector}`;
  if (r.matchingType !== 0 && r.matchingType !== 1 && r.matchingType !== 2)
    return `unknown matching type ${r.matchingType}`;
  const want = DIGEST_LENGTH[r.matchingType];
  if (want !== undefined && r.data.length !== want)
    return `${r.matchingType === 1 ? 'SHA2-256' : 'SHA2-512'} data is ${r.data.length} bytes, not ${want}`;
  if (r.data.length === 0) return 'empty association data';
  return null;
}

/**
 * The SubjectPublicKeyInfo exactly as encoded in the certificate (RFC 5280 §4.1). Taken from the
 * bytes rather than re-exported by OpenSSL, which could re-encode (e.g. an EC point's form).
 */
function spkiDer(certDer: Buffer): Buffer {
  const cert = readNode(certDer, 0);
  if (cert.tag !== 0x30) throw new WireError('cert-parse', 'certificate is not a DER SEQUENCE');
  const tbs = readNode(cert.value, 0);
  if (tbs.tag !== 0x30) throw new WireError('cert-parse', 'TBSCertificate is not a DER SEQUENCE');
  const fields: Array<{ tag: number; raw: Buffer }> = [];
  for (let at = 0; at < tbs.value.length && fields.length < 7;) {
    const n = readNode(tbs.value, at);
    fields.push({ tag: n.tag, raw: tbs.value.subarray(at, n.end) });
    at = n.end;
  }
  // [0] version (optional), serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
  const spki = fields[fields[0]?.tag === 0xa0 ? 6 : 5];
  if (spki?.tag !== 0x30) throw new WireError('cert-parse', 'certificate has no SubjectPublicKeyInfo');
  return spki.raw;
}

/**
 * Certificate association data (RFC 6698 §2.1.2–2.1.3) of one DER certificate: selector 0 = the
 * whole certificate, 1 = its SubjectPublicKeyInfo; matching type 0 = as is, 1 = SHA-256, 2 = SHA-512.
 * Throws WireError on malformed DER or an unknown selector/matching type.
 */
export function tlsaAssociation(certDer: Buffer, selector: number, matchingType: number): Buffer {
  let data: Buffer;
  if (selector === 0) {
    const cert = readNode(certDer, 0); // bounds-checks the outer element
    if (cert.tag !== 0x30) throw new WireError('cert-parse', 'certificate is not a DER SEQUENCE');
    data = certDer.subarray(0, cert.end);
  } else if (selector === 1) {
    data = spkiDer(certDer);
  } else {
    throw new WireError('tlsa-selector', `unknown TLSA selector ${selector}`);
  }
  if (matchingType === 0) return Buffer.from(data);
  if (matchingType === 1) return createHash('sha256').update(data).digest();
  if (matchingType === 2) return createHash('sha512').update(data).digest();
  throw new WireError('tlsa-matching-type', `unknown TLSA matching type ${matchingType}`);
}

interface ChainCert {
  der: Buffer;
  /** null: not parseable as X.509; such an entry can be neither anchor nor link. */
  x: X509Certificate | null;
  depth: number;
}

function parse(der: Buffer, depth: number): ChainCert {
  try {
    return { der, x: new X509Certificate(der), depth };
  } catch {
    return { der, x: null, depth };
  }
}

function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

function describe(c: ChainCert): string {
  if (c.x === null) return `the unparseable certificate at depth ${c.depth}`;
  const what = c.depth === 0 ? 'the server certificate' : `the certificate at depth ${c.depth}`;
  return `${what} '${oneLine(c.x.subject)}'`;
}

/** Association of a chain entry, or null when its bytes cannot yield one. */
function association(c: ChainCert, r: TlsaRecord): Buffer | null {
  try {
    return tlsaAssociation(c.der, r.selector, r.matchingType);
  } catch {
    return null;
  }
}

/** DNS-IDs of the server certificate; the last (most specific) CN only when there is none (RFC 7672 §3.2.3). */
function presentedNames(c: ChainCert): string[] {
  try {
    const fields = parseCertificate(c.der);
    const san = fields.extensions.get('2.5.29.17');
    const dns = san === undefined ? [] : parseSan(san).dnsNames;
    if (dns.length > 0) return dns;
    const cns = commonNames(fields.subject);
    const last = cns[cns.length - 1];
    return last === undefined ? [] : [last];
  } catch {
    return [];
  }
}

/** Indices from the server certificate (0) up to `ta`, each issued by the next; null when none verifies. */
function pathTo(certs: readonly ChainCert[], ta: number): number[] | null {
  const tried = new Set<number>([0]);
  const walk = (from: number): number[] | null => {
    const child = certs[from]?.x;
    if (child === null || child === undefined) return null;
    const anchor = certs[ta]?.x;
    if (anchor !== null && anchor !== undefined && anchor.ca && issuedBy(child, anchor)) return [from, ta];
    for (let i = 1; i < certs.length; i++) {
      const issuer = certs[i]?.x;
      if (i === ta || tried.has(i) || issuer === null || issuer === undefined || !issuer.ca) continue;
      if (!issuedBy(child, issuer)) continue;
      tried.add(i); // shared across branches: each certificate is expanded at most once
      const rest = walk(i);
      if (rest !== null) return [from, ...rest];
    }
    return null;
  };
  return walk(0);
}

/** Stages of a DANE-TA(2) check, in order; a failure further along is reported in preference. */
const STAGE: Record<'ta-chain-invalid' | 'ta-expired' | 'name-mismatch', number> = {
  'ta-chain-invalid': 1,
  'ta-expired': 2,
  'name-mismatch': 3,
};

type TaResult =
  | { ok: true; reason: string }
  | { ok: false; failure: 'ta-chain-invalid' | 'ta-expired' | 'name-mismatch'; reason: string };

function checkTrustAnchor(
  certs: readonly ChainCert[],
  record: TlsaRecord,
  ta: ChainCert,
  names: readonly string[],
  now: Date,
): TaResult {
  const leaf = certs[0] as ChainCert;
  const taWords = `${describe(ta)} matches TLSA ${show(record)}`;
  const path = pathTo(certs, ta.depth);
  if (path === null) {
    return {
      ok: false,
      failure: 'ta-chain-invalid',
      reason: `${taWords}, but ${describe(leaf)} does not chain to it: no path of valid signatures by CA certificates leads from it to that trust anchor within the certificates sent`,
    };
  }
  for (const i of path) {
    const c = certs[i];
    if (c?.x === null || c?.x === undefined) continue;
    const from = c.x.validFromDate;
    const to = c.x.validToDate;
    if (now < from || now > to) {
      const when = now > to ? `expired on ${to.toISOString()}` : `is not valid before ${from.toISOString()}`;
      return {
        ok: false,
        failure: 'ta-expired',
        reason: `${taWords} and the chain verifies, but ${describe(c)} ${when} (DANE-TA checks validity periods; only DANE-EE ignores them)`,
      };
    }
  }
  const presented = presentedNames(leaf);
  const hit = names.find((n) => matchHostname(n, { dnsNames: presented, ipAddresses: [] }) !== null);
  if (hit === undefined) {
    const have = presented.length === 0 ? 'no DNS names' : presented.join(', ');
    const want = names.length === 0 ? 'none were given' : names.join(', ');
    return {
      ok: false,
      failure: 'name-mismatch',
      reason: `${taWords} and the chain verifies, but ${describe(leaf)} names ${have}, which matches none of the expected names (${want}); with DANE-TA the server certificate must carry the TLSA base domain or the MX name (RFC 7672 §3.2.2)`,
    };
  }
  const via =
    path.length > 2 ? ` through ${path.length - 2} intermediate certificate${path.length > 3 ? 's' : ''}` : '';
  return {
    ok: true,
    reason: `${taWords} (DANE-TA trust anchor); ${describe(leaf)} chains to it${via}, all are within their validity periods, and it names ${hit}`,
  };
}

function fail(failure: DaneFailure, reason: string): DaneVerdict {
  return { ok: false, matched: null, failure, reason };
}

/**
 * Check a certificate chain, as the server sent it, against a TLSA RRset (RFC 7672 §3). Never
 * throws: malformed certificates and records are failures with reasons.
 */
export function verifyDane(input: DaneInput): DaneVerdict {
  try {
    return verify(input);
  } catch (e) {
    // Every step below is guarded; this only keeps a peer's bytes from ever escaping as an exception.
    return fail(
      'no-match',
      `the certificate chain could not be checked: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function verify({ records, chain, names, now }: DaneInput): DaneVerdict {
  const { usable, unusable } = classifyTlsa(records);
  if (usable.length === 0) {
    const list = unusable.map((u) => `${show(u.record)} (${u.why})`).join('; ');
    return fail(
      'no-usable-records',
      records.length === 0 ? 'there are no TLSA records to match' : `none of the TLSA records is usable: ${list}`,
    );
  }
  if (chain.length === 0) return fail('no-certificate', 'the server sent no certificate');
  const certs = chain.slice(0, MAX_CHAIN).map((der, depth) => parse(der, depth));
  const leaf = certs[0] as ChainCert;
  if (leaf.x === null) {
    return fail(
      'no-certificate',
      `the server certificate (${leaf.der.length} bytes) is not a valid X.509 certificate, so no TLSA record can match it`,
    );
  }

  // DANE-EE(3): the server certificate alone; names and dates do not matter (RFC 7672 §3.1.1).
  const eeMisses: string[] = [];
  for (const r of usable) {
    if (r.usage !== 3) continue;
    const got = association(leaf, r);
    if (got !== null && got.equals(r.data)) {
      return {
        ok: true,
        matched: { record: r, depth: 0 },
        failure: null,
        reason: `${describe(leaf)} matches TLSA ${show(r)} (DANE-EE: its names and validity period are not checked, RFC 7672 §3.1.1)`,
      };
    }
    const actual = got === null ? 'no value' : show({ ...r, data: got });
    eeMisses.push(`${show(r)} (it gives ${actual})`);
  }

  // DANE-TA(2): any certificate above the server certificate may be the anchor (RFC 7671 §5.2).
  let best: { failure: 'ta-chain-invalid' | 'ta-expired' | 'name-mismatch'; reason: string } | null = null;
  const taMisses: string[] = [];
  for (const r of usable) {
    if (r.usage !== 2) continue;
    let anyMatch = false;
    for (const c of certs.slice(1)) {
      if (c.x === null) continue;
      const got = association(c, r);
      if (got === null || !got.equals(r.data)) continue;
      anyMatch = true;
      const res = checkTrustAnchor(certs, r, c, names, now);
      if (res.ok) return { ok: true, matched: { record: r, depth: c.depth }, failure: null, reason: res.reason };
      if (best === null || STAGE[res.failure] > STAGE[best.failure]) best = res;
    }
    if (anyMatch) continue;
    // A DANE-TA record names an issuer; one that fits the server certificate itself is a
    // publishing mistake (it would need usage 3), worth saying so.
    const self = association(leaf, r);
    taMisses.push(
      self !== null && self.equals(r.data)
        ? `${show(r)} (it matches the server certificate itself, which DANE-TA does not accept as its own anchor; usage 3 would)`
        : show(r),
    );
  }
  if (best !== null) return fail(best.failure, best.reason);

  const parts: string[] = [];
  if (eeMisses.length > 0) parts.push(`${describe(leaf)} does not match ${eeMisses.join(', ')}`);
  if (taMisses.length > 0) {
    const sent = certs.length - 1;
    parts.push(
      sent === 0
        ? `the server sent no issuer certificates, so nothing can match ${taMisses.join(', ')} (a DANE-TA anchor must be sent in the chain, RFC 7672 §3.1.2)`
        : sent === 1
          ? `the one issuer certificate sent does not match ${taMisses.join(', ')}`
          : `none of the ${sent} issuer certificates sent matches ${taMisses.join(', ')}`,
    );
  }
  const ignored =
    unusable.length === 0 ? '' : ` (${unusable.length} unusable record${unusable.length === 1 ? '' : 's'} ignored)`;
  return fail('no-match', `no TLSA record matches the certificate chain: ${parts.join('; ')}${ignored}`);
}
