/**
 * Facts about one X.509 certificate, read with node:crypto's X509Certificate (OpenSSL) plus a
 * small DER reader for SANs, CNs and signature parameters. No judgement here: grading happens in
 * tls/evaluate, enforcement in the gateway's policy engine.
 */
import { X509Certificate } from 'node:crypto';
import { WireError } from '../../core/errors.ts';
import { children, commonNames, decodeOid, parseCertificate, parseSan } from './der.ts';
import type { DerNode } from './der.ts';

export type KeyType = 'RSA' | 'EC' | 'Ed25519' | 'Ed448' | 'DSA' | 'ML-DSA' | 'unknown';
export type SignatureHash = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512' | 'intrinsic' | 'unknown';

export interface CertInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  /** ISO 8601. */
  notBefore: string;
  notAfter: string;
  keyType: KeyType;
  keyBits: number;
  curve: string | null;
  /** OpenSSL long name, e.g. 'sha256WithRSAEncryption', 'ecdsa-with-SHA256', 'rsassaPss'. */
  signatureAlgorithm: string;
  signatureHash: SignatureHash;
  /** SHA-256 of the DER, uppercase hex without colons. */
  sha256: string;
  dnsNames: string[];
  ipAddresses: string[];
  commonName: string | null;
  selfSigned: boolean;
  isCA: boolean;
}

/** Signature algorithm OIDs → [name, hash]. MD2/MD4 map to 'unknown' hash but keep their name. */
const SIG_ALGS: Record<string, [string, SignatureHash]> = {
  '1.2.840.113549.1.1.2': ['md2WithRSAEncryption', 'unknown'],
  '1.2.840.113549.1.1.3': ['md4WithRSAEncryption', 'unknown'],
  '1.2.840.113549.1.1.4': ['md5WithRSAEncryption', 'md5'],
  '1.2.840.113549.1.1.5': ['sha1WithRSAEncryption', 'sha1'],
  '1.3.14.3.2.29': ['sha1WithRSASignature', 'sha1'],
  '1.2.840.113549.1.1.14': ['sha224WithRSAEncryption', 'sha224'],
  '1.2.840.113549.1.1.11': ['sha256WithRSAEncryption', 'sha256'],
  '1.2.840.113549.1.1.12': ['sha384WithRSAEncryption', 'sha384'],
  '1.2.840.113549.1.1.13': ['sha512WithRSAEncryption', 'sha512'],
  '1.2.840.113549.1.1.10': ['rsassaPss', 'sha1'], // hash read from parameters; SHA-1 is the default
  '1.2.840.10045.4.1': ['ecdsa-with-SHA1', 'sha1'],
  '1.2.840.10045.4.3.1': ['ecdsa-with-SHA224', 'sha224'],
  '1.2.840.10045.4.3.2': ['ecdsa-with-SHA256', 'sha256'],
  '1.2.840.10045.4.3.3': ['ecdsa-with-SHA384', 'sha384'],
  '1.2.840.10045.4.3.4': ['ecdsa-with-SHA512', 'sha512'],
  '1.2.840.10040.4.3': ['dsa-with-SHA1', 'sha1'],
  '2.16.840.1.101.3.4.3.1': ['dsa_with_SHA224', 'sha224'],
  '2.16.840.1.101.3.4.3.2': ['dsa_with_SHA256', 'sha256'],
  '1.3.101.112': ['ED25519', 'intrinsic'],
  '1.3.101.113': ['ED448', 'intrinsic'],
  '2.16.840.1.101.3.4.3.17': ['ML-DSA-44', 'intrinsic'],
  '2.16.840.1.101.3.4.3.18': ['ML-DSA-65', 'intrinsic'],
  '2.16.840.1.101.3.4.3.19': ['ML-DSA-87', 'intrinsic'],
};

const HASH_OIDS: Record<string, SignatureHash> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
  '1.2.840.113549.2.5': 'md5',
};

/** RSASSA-PSS-params (RFC 4055 §3.1): hashAlgorithm [0] EXPLICIT, default SHA-1. */
function pssHash(params: DerNode | null): SignatureHash {
  if (params === null || params.tag !== 0x30) return 'sha1';
  const first = children(params)[0];
  if (first?.tag !== 0xa0) return 'sha1';
  const algId = children(first)[0];
  const oid = algId === undefined ? undefined : children(algId)[0];
  if (oid?.tag !== 0x06) return 'unknown';
  return HASH_OIDS[decodeOid(oid.value)] ?? 'unknown';
}

const CURVES: Record<string, [string, number]> = {
  prime256v1: ['P-256', 256],
  secp384r1: ['P-384', 384],
  secp521r1: ['P-521', 521],
  secp224r1: ['P-224', 224],
  prime192v1: ['P-192', 192],
  secp256k1: ['secp256k1', 256],
};

function keyFacts(x: X509Certificate): { keyType: KeyType; keyBits: number; curve: string | null } {
  let key;
  try {
    key = x.publicKey;
  } catch {
    return { keyType: 'unknown', keyBits: 0, curve: null };
  }
  const t = key.asymmetricKeyType ?? '';
  const d = key.asymmetricKeyDetails ?? {};
  if (t === 'rsa' || t === 'rsa-pss') return { keyType: 'RSA', keyBits: d.modulusLength ?? 0, curve: null };
  if (t === 'dsa') return { keyType: 'DSA', keyBits: d.modulusLength ?? 0, curve: null };
  if (t === 'ec') {
    const raw = d.namedCurve ?? 'unknown';
    const known = CURVES[raw];
    // brainpoolP256r1 and friends carry their size in the name.
    const bits = known?.[1] ?? Number(/(\d{3})/.exec(raw)?.[1] ?? 0);
    return { keyType: 'EC', keyBits: bits, curve: known?.[0] ?? raw };
  }
  if (t === 'ed25519') return { keyType: 'Ed25519', keyBits: 256, curve: 'Ed25519' };
  if (t === 'ed448') return { keyType: 'Ed448', keyBits: 448, curve: 'Ed448' };
  if (t.startsWith('ml-dsa')) {
    // No "bits" in the RSA sense: report the public key length so sizes are still comparable.
    const spki = key.export({ format: 'der', type: 'spki' });
    return { keyType: 'ML-DSA', keyBits: spki.length * 8, curve: t.toUpperCase() };
  }
  return { keyType: 'unknown', keyBits: 0, curve: null };
}

/** Node prints DNs one RDN per line; reports want one line. */
function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

/** Self-issued (issuer DN = subject DN) and verifiable with its own key. Never throws. */
export function isSelfSigned(x: X509Certificate): boolean {
  // Not X509_check_issued(x, x): that also demands keyCertSign, which leaf certificates lack.
  return x.subject === x.issuer && signedBy(x, x);
}

/** Signature on `child` verifies under `issuer`'s public key. Never throws. */
export function signedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Whether `child` names `issuer` as its issuer and verifies under its key. Never throws. */
export function issuedBy(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** Parse DER into a node X509Certificate, mapping OpenSSL failures to a typed error. */
export function parseX509(der: Buffer): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new WireError('cert-parse', 'certificate could not be parsed', { cause: e });
  }
}

/** Describe one DER certificate. Throws WireError('cert-parse') on bytes that are not X.509. */
export function analyzeCertificate(der: Buffer): CertInfo {
  const x = parseX509(der);
  let fields;
  try {
    fields = parseCertificate(der);
  } catch (e) {
    throw new WireError('cert-parse', 'certificate structure could not be read', { cause: e });
  }
  const known = SIG_ALGS[fields.sigAlgOid];
  let signatureAlgorithm = known?.[0] ?? x.signatureAlgorithm ?? fields.sigAlgOid;
  let signatureHash: SignatureHash = known?.[1] ?? 'unknown';
  if (fields.sigAlgOid === '1.2.840.113549.1.1.10') {
    signatureHash = pssHash(fields.sigAlgParams);
    signatureAlgorithm = `rsassaPss(${signatureHash})`;
  }
  let san = { dnsNames: [] as string[], ipAddresses: [] as string[] };
  const sanExt = fields.extensions.get('2.5.29.17');
  if (sanExt !== undefined) {
    try {
      san = parseSan(sanExt);
    } catch {
      // A malformed SAN matches nothing; reported as no names rather than crashing the scan.
    }
  }
  let cns: string[];
  try {
    cns = commonNames(fields.subject);
  } catch {
    cns = [];
  }
  return {
    subject: oneLine(x.subject),
    issuer: oneLine(x.issuer),
    serialNumber: x.serialNumber.toUpperCase(),
    notBefore: x.validFromDate.toISOString(),
    notAfter: x.validToDate.toISOString(),
    ...keyFacts(x),
    signatureAlgorithm,
    signatureHash,
    sha256: x.fingerprint256.replaceAll(':', '').toUpperCase(),
    dnsNames: san.dnsNames,
    ipAddresses: san.ipAddresses,
    // RFC 9525 §6.2.1 no longer uses the CN for matching; it is kept for display only. The last
    // CN is the most specific one.
    commonName: cns.length > 0 ? (cns[cns.length - 1] ?? null) : null,
    selfSigned: isSelfSigned(x),
    isCA: x.ca,
  };
}
