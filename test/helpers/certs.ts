/**
 * Test-only certificate factory built on @peculiar/x509 and node's WebCrypto. Shared by all test
 * suites that need real X.509 bytes (leaf/intermediate/root chains, weak keys, SHA-1/MD5
 * signatures, expired or self-signed certificates).
 */
// @peculiar/x509 2.x loads tsyringe, which needs the Reflect metadata polyfill before import.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, sign as nodeSign, randomBytes, webcrypto } from 'node:crypto';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
const subtle = webcrypto.subtle;

export type KeySpec = 'rsa-2048' | 'rsa-1024' | 'rsa-3072' | 'p256' | 'p384' | 'ed25519';
export type HashSpec = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export interface TestCert {
  /** DER bytes of the certificate. */
  der: Buffer;
  /** PEM certificate. */
  pem: string;
  /** PKCS#8 PEM private key (usable as tls.createServer `key`). */
  keyPem: string;
  keys: CryptoKeyPair;
  spec: KeySpec;
  /** Distinguished name as given, e.g. 'CN=leaf.example'. */
  name: string;
  cert: x509.X509Certificate;
}

export interface MakeCertOptions {
  /** Subject DN, e.g. 'CN=mail.example.com, O=Test'. Default 'CN=test.invalid'. */
  subject?: string;
  /** Key type of the new certificate. Default 'p256' (fast). */
  key?: KeySpec;
  /** Reuse an existing key pair instead of generating one. */
  keys?: { keys: CryptoKeyPair; spec: KeySpec; keyPem: string };
  /** Signer; omitted = self-signed. */
  issuer?: TestCert;
  /** Signature hash. Default SHA-256 (ignored for Ed25519). */
  hash?: HashSpec;
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA=TRUE and keyCertSign. */
  isCA?: boolean;
  serialNumber?: string;
}

const DAY = 86_400_000;

function keyAlgorithm(spec: KeySpec): RsaHashedKeyGenParams | EcKeyGenParams | Algorithm {
  switch (spec) {
    case 'rsa-1024':
    case 'rsa-2048':
    case 'rsa-3072':
      return {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: Number(spec.slice(4)),
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      };
    case 'p256':
      return { name: 'ECDSA', namedCurve: 'P-256' };
    case 'p384':
      return { name: 'ECDSA', namedCurve: 'P-384' };
    case 'ed25519':
      return { name: 'Ed25519' };
  }
}

/** Generate a key pair (extractable) plus its PKCS#8 PEM. */
export async function makeKeys(spec: KeySpec): Promise<{ keys: CryptoKeyPair; spec: KeySpec; keyPem: string }> {
  const keys = (await subtle.generateKey(keyAlgorithm(spec), true, ['sign', 'verify'])) as CryptoKeyPair;
  const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  return { keys, spec, keyPem };
}

/** WebCrypto binds RSA keys to one hash; re-import the signer's key for the hash we want. */
async function signingKeyFor(issuer: { keys: CryptoKeyPair; spec: KeySpec }, hash: HashSpec): Promise<CryptoKey> {
  if (!issuer.spec.startsWith('rsa')) return issuer.keys.privateKey;
  const pkcs8 = await subtle.exportKey('pkcs8', issuer.keys.privateKey);
  return subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['sign']);
}

function signingAlgorithm(spec: KeySpec, hash: HashSpec): Algorithm | EcdsaParams {
  if (spec.startsWith('rsa')) return { name: 'RSASSA-PKCS1-v1_5', hash };
  if (spec === 'ed25519') return { name: 'Ed25519' };
  return { name: 'ECDSA', hash };
}

/** Create one certificate (self-signed unless `issuer` is given). */
export async function makeCert(o: MakeCertOptions = {}): Promise<TestCert> {
  const kp = o.keys ?? (await makeKeys(o.key ?? 'p256'));
  const name = o.subject ?? 'CN=test.invalid';
  const hash = o.hash ?? 'SHA-256';
  const signer = o.issuer ?? { keys: kp.keys, spec: kp.spec, name };
  const extensions: x509.Extension[] = [];
  if (o.isCA === true) {
    extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
    extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true));
  } else {
    extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
    extensions.push(
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    );
  }
  const san: x509.JsonGeneralName[] = [
    ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (san.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(san));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(kp.keys.publicKey));
  if (o.issuer !== undefined) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(o.issuer.keys.publicKey));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: o.serialNumber ?? '01' + randomBytes(8).toString('hex'),
    subject: name,
    issuer: signer.name,
    notBefore: o.notBefore ?? new Date(Date.now() - DAY),
    notAfter: o.notAfter ?? new Date(Date.now() + 90 * DAY),
    publicKey: kp.keys.publicKey,
    signingKey: await signingKeyFor(signer, hash),
    signingAlgorithm: signingAlgorithm(signer.spec, hash),
    extensions,
  });
  const der = Buffer.from(cert.rawData);
  return { der, pem: cert.toString('pem') + '\n', keyPem: kp.keyPem, keys: kp.keys, spec: kp.spec, name, cert };
}

/** A three-level PKI: root CA → intermediate CA → leaf for `dnsNames` (default mail.example.test). */
export async function makePki(
  leaf: Omit<MakeCertOptions, 'issuer' | 'isCA'> = {},
): Promise<{ root: TestCert; intermediate: TestCert; leaf: TestCert }> {
  const root = await makeCert({
    subject: 'CN=Postern Test Root',
    isCA: true,
    notAfter: new Date(Date.now() + 3650 * DAY),
  });
  const intermediate = await makeCert({ subject: 'CN=Postern Test Intermediate', isCA: true, issuer: root });
  const l = await makeCert({
    subject: 'CN=mail.example.test',
    dnsNames: ['mail.example.test'],
    ...leaf,
    issuer: intermediate,
  });
  return { root, intermediate, leaf: l };
}

/**
 * Re-sign an RSA/SHA-256-signed certificate with MD5 (WebCrypto cannot sign MD5). The
 * sha256WithRSAEncryption and md5WithRSAEncryption OIDs differ only in their last byte, so both
 * AlgorithmIdentifiers (in the TBS and outside) are patched in place, then the TBS is signed again.
 */
export function resignWithMd5(cert: TestCert, issuerKeyPem: string): Buffer {
  const sha256Rsa = Buffer.from('06092a864886f70d01010b', 'hex');
  const md5Rsa = Buffer.from('06092a864886f70d010104', 'hex');
  const der = Buffer.from(cert.der);
  for (let i = der.indexOf(sha256Rsa); i !== -1; i = der.indexOf(sha256Rsa, i + 1)) md5Rsa.copy(der, i);
  // Outer SEQUENCE header, then the TBS SEQUENCE: both use long-form lengths for RSA certs.
  const [, outerHdr] = readLen(der, 1);
  const tbsStart = outerHdr;
  const [tbsLen, tbsHdr] = readLen(der, tbsStart + 1);
  const tbs = der.subarray(tbsStart, tbsHdr + tbsLen);
  const algId = Buffer.concat([Buffer.from([0x30, 0x0d]), md5Rsa, Buffer.from([0x05, 0x00])]);
  const sig = nodeSign('md5', tbs, issuerKeyPem);
  const bitString = Buffer.concat([Buffer.from([0x03]), encLen(sig.length + 1), Buffer.from([0]), sig]);
  const body = Buffer.concat([tbs, algId, bitString]);
  return Buffer.concat([Buffer.from([0x30]), encLen(body.length), body]);
}

function readLen(b: Buffer, at: number): [number, number] {
  const first = b[at] ?? 0;
  if (first < 0x80) return [first, at + 1];
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (b[at + 1 + i] ?? 0);
  return [len, at + 1 + n];
}

function encLen(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Days from now as a Date (negative = past). */
export function daysFromNow(days: number): Date {
  return new Date(Date.now() + days * DAY);
}

/** Self-signed RSASSA-PSS certificate (RSA-PSS key, PSS signature with `hash`). */
export async function makePssCert(subject: string, hash: HashSpec = 'SHA-384'): Promise<{ der: Buffer }> {
  const alg = { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash };
  const keys = await subtle.generateKey(alg, true, ['sign', 'verify']);
  const saltLength = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 }[hash];
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: subject,
    keys,
    signingAlgorithm: { name: 'RSA-PSS', saltLength, hash } as Algorithm,
  });
  return { der: Buffer.from(cert.rawData) };
}
