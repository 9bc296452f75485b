/**
 * A tiny certificate authority for the testbed: makes the good, the expired, the self-signed and
 * the deliberately weak certificates (SHA-1 signatures, RSA-1024) the catalog asks for. The
 * gateway's embedded defaults use it for their generated self-signed certificate, so it lives in
 * the TLS engine, below both.
 *
 * Built on @peculiar/x509 with node's WebCrypto, which still signs with SHA-1 and generates
 * 1024-bit RSA keys — exactly what a testbed of bad servers needs and a real CA must never do.
 */
import { webcrypto, createPrivateKey, createPublicKey } from 'node:crypto';
// @peculiar/x509 2.x loads tsyringe, which needs the Reflect metadata polyfill before import.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;

const subtle = webcrypto.subtle;
// Pass node's provider explicitly instead of mutating @peculiar/x509's global provider. (x509 types
// it as the DOM's Crypto, which this project's lib — no DOM — leaves undefined: any WebCrypto fits.)
const provider: webcrypto.Crypto = webcrypto;

export type KeyType = { kind: 'rsa'; bits: number } | { kind: 'ec'; curve: 'P-256' | 'P-384' };
export type SignatureHash = 'SHA-1' | 'SHA-256' | 'SHA-384';

/** A generated or imported key pair plus its PKCS#8 PEM. */
export interface KeyPairMaterial {
  keyType: KeyType;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  der: Buffer;
}

export interface CertificateAuthority extends IssuedCertificate {
  name: string;
  keyType: KeyType;
  /** The CA's key pair; used to sign leaves. */
  key: KeyPairMaterial;
  /** The CA certificate, parsed (issuer name and key identifier for leaves). */
  cert: x509.X509Certificate;
}

/** Stable short label for a key type, e.g. `rsa-1024`, `ec-P-256` (cache keys, manifests). */
export function keyTypeLabel(keyType: KeyType): string {
  return keyType.kind === 'rsa' ? `rsa-${keyType.bits}` : `ec-${keyType.curve}`;
}

function importAlgorithm(
  keyType: KeyType,
  hash: SignatureHash,
): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams {
  // WebCrypto binds an RSA key to one hash at import time; ECDSA takes the hash per signature.
  return keyType.kind === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5', hash } : { name: 'ECDSA', namedCurve: keyType.curve };
}

function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function fromPem(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([^-]+)-----END ${label}-----`).exec(pem);
  if (m?.[1] === undefined) throw new Error(`no ${label} block in PEM`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

/** Generates a key pair (async; runs on libuv's thread pool, so several can run in parallel). */
export async function generateKeyPair(keyType: KeyType): Promise<KeyPairMaterial> {
  const algorithm: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams =
    keyType.kind === 'rsa'
      ? {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: keyType.bits,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        }
      : { name: 'ECDSA', namedCurve: keyType.curve };
  const pair = await subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const pkcs8 = await subtle.exportKey('pkcs8', pair.privateKey);
  return { keyType, privateKey: pair.privateKey, publicKey: pair.publicKey, keyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

/** Imports a PKCS#8 PEM private key produced by {@link generateKeyPair} (the state-dir cache). */
export async function importKeyPair(keyPem: string, keyType: KeyType): Promise<KeyPairMaterial> {
  const der = fromPem(keyPem, 'PRIVATE KEY');
  const privateKey = await subtle.importKey('pkcs8', der, importAlgorithm(keyType, 'SHA-256'), true, ['sign']);
  // WebCrypto cannot derive a public key from a private one; node's KeyObject can.
  const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({
    format: 'der',
    type: 'spki',
  });
  const publicKey = await subtle.importKey('spki', spki, importAlgorithm(keyType, 'SHA-256'), true, ['verify']);
  return { keyType, privateKey, publicKey, keyPem };
}

async function signerFor(
  key: KeyPairMaterial,
  hash: SignatureHash,
): Promise<{ signingKey: CryptoKey; signingAlgorithm: webcrypto.Algorithm | webcrypto.EcdsaParams }> {
  if (key.keyType.kind === 'ec') {
    return { signingKey: key.privateKey, signingAlgorithm: { name: 'ECDSA', hash } as webcrypto.EcdsaParams };
  }
  // Re-import with the requested hash: @peculiar/x509 takes the signature OID from the key's
  // bound hash, so this is how a SHA-1 (sha1WithRSAEncryption) certificate gets made.
  const der = fromPem(key.keyPem, 'PRIVATE KEY');
  const signingKey = await subtle.importKey('pkcs8', der, importAlgorithm(key.keyType, hash), false, ['sign']);
  return { signingKey, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } };
}

function finish(cert: x509.X509Certificate, keyPem: string): IssuedCertificate {
  const der = Buffer.from(cert.rawData);
  return { certPem: toPem(der, 'CERTIFICATE'), keyPem, der };
}

/** Escapes a value for an RFC 4514 string DN (as parsed by @peculiar/x509's Name). */
function dnValue(value: string): string {
  return value.replace(/([,+"\\<>;=#])/g, '\\$1');
}

/** Creates a self-signed CA (basicConstraints CA:TRUE, keyCertSign). */
export async function createCa(opts: {
  name: string;
  keyType: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  /** Reuse an existing key pair (from the cache) instead of generating one. */
  key?: KeyPairMaterial;
}): Promise<CertificateAuthority> {
  const key = opts.key ?? (await generateKeyPair(opts.keyType));
  const now = Date.now();
  const notBefore = opts.notBefore ?? new Date(now - 24 * 3600 * 1000);
  const notAfter = opts.notAfter ?? new Date(now + 10 * 365 * 24 * 3600 * 1000);
  const subject = `CN=${dnValue(opts.name)}, O=postern testbed`;
  const { signingKey, signingAlgorithm } = await signerFor(key, 'SHA-256');
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject,
      issuer: subject,
      notBefore,
      notAfter,
      publicKey: key.publicKey,
      signingKey,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(key.publicKey, false, provider),
      ],
    },
    provider,
  );
  return { ...finish(cert, key.keyPem), name: opts.name, keyType: opts.keyType, key, cert };
}

/** Re-creates a {@link CertificateAuthority} from cached PEMs. */
export async function loadCa(opts: {
  name: string;
  keyType: KeyType;
  certPem: string;
  keyPem: string;
}): Promise<CertificateAuthority> {
  const key = await importKeyPair(opts.keyPem, opts.keyType);
  const cert = new x509.X509Certificate(opts.certPem);
  return { ...finish(cert, key.keyPem), name: opts.name, keyType: opts.keyType, key, cert };
}

export interface IssueOptions {
  /** Issuing CA; `null` or absent makes the certificate self-signed. */
  ca?: CertificateAuthority | null;
  /** DNS names for subjectAltName; empty = no SAN extension (like `openssl req -x509` default). */
  names: string[];
  /** Subject CN; defaults to the first name. Ignored when `subject` is given. */
  commonName?: string;
  /** Full RFC 4514 subject DN, e.g. the seed's `C=DE, ST=Saxony, …, CN=abc.xy`. */
  subject?: string;
  keyType: KeyType;
  signatureHash: SignatureHash;
  notBefore: Date;
  notAfter: Date;
  /** Reuse a key pair (several testbed leaves may share one to keep start-up fast). */
  key?: KeyPairMaterial;
}

/** Issues a server certificate (or a self-signed one) with exactly the requested properties. */
export async function issueCertificate(opts: IssueOptions): Promise<IssuedCertificate> {
  const key = opts.key ?? (await generateKeyPair(opts.keyType));
  const ca = opts.ca ?? null;
  const cn = opts.commonName ?? opts.names[0];
  const subject = opts.subject ?? (cn === undefined ? 'O=postern testbed' : `CN=${dnValue(cn)}`);
  const signer = ca === null ? key : ca.key;
  const { signingKey, signingAlgorithm } = await signerFor(signer, opts.signatureHash);
  // RSA keys may encipher (static RSA key exchange in the legacy servers); EC keys only sign.
  const usages =
    key.keyType.kind === 'rsa'
      ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
      : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    await x509.SubjectKeyIdentifierExtension.create(key.publicKey, false, provider),
  ];
  if (opts.names.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(
        opts.names.map((value) => ({ type: 'dns' as const, value })),
        false,
      ),
    );
  }
  if (ca !== null) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(ca.key.publicKey, false, provider));
  }
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject,
      // The issuer DN is copied byte for byte so chain building never depends on re-encoding.
      issuer: ca === null ? subject : ca.cert.subjectName,
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      publicKey: key.publicKey,
      signingKey,
      signingAlgorithm,
      extensions,
    },
    provider,
  );
  return finish(cert, key.keyPem);
}
