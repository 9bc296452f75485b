/**
 * Recover the certificate_list exactly as the server sent it from the raw bytes the client
 * received during the handshake.
 *
 * Why: node's getPeerCertificate(true) rebuilds the chain by issuer relation (dropping extra or
 * misordered certificates and appending a root from the local store), so it cannot show what the
 * server really sent. Order, duplicates, superfluous roots and missing intermediates are graded.
 *
 * TLS ≤ 1.2 sends Certificate in the clear (RFC 5246 §7.4.2). TLS 1.3 encrypts it under the
 * server handshake traffic key (RFC 8446 §7.3), which we derive from the
 * SERVER_HANDSHAKE_TRAFFIC_SECRET that node hands us through the 'keylog' event.
 */
import { createDecipheriv, createHmac } from 'node:crypto';

const MAX_CERTS = 64;

interface Tls13Suite {
  cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305' | 'aes-128-ccm';
  keyLen: number;
  hash: 'sha256' | 'sha384';
  tagLen: number;
}

const TLS13_SUITES: Record<string, Tls13Suite> = {
  TLS_AES_128_GCM_SHA256: { cipher: 'aes-128-gcm', keyLen: 16, hash: 'sha256', tagLen: 16 },
  TLS_AES_256_GCM_SHA384: { cipher: 'aes-256-gcm', keyLen: 32, hash: 'sha384', tagLen: 16 },
  TLS_CHACHA20_POLY1305_SHA256: { cipher: 'chacha20-poly1305', keyLen: 32, hash: 'sha256', tagLen: 16 },
  TLS_AES_128_CCM_SHA256: { cipher: 'aes-128-ccm', keyLen: 16, hash: 'sha256', tagLen: 16 },
  TLS_AES_128_CCM_8_SHA256: { cipher: 'aes-128-ccm', keyLen: 16, hash: 'sha256', tagLen: 8 },
};

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context; one HMAC block is enough here. */
function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from('tls13 ' + label, 'ascii');
  const info = Buffer.concat([Buffer.from([length >> 8, length & 0xff, full.length]), full, Buffer.from([0])]);
  return createHmac(hash, secret)
    .update(Buffer.concat([info, Buffer.from([1])]))
    .digest()
    .subarray(0, length);
}

interface HsMessage {
  type: number;
  body: Buffer;
}

/** Split a handshake byte stream into complete messages (RFC 8446 §4). */
function messages(stream: Buffer): HsMessage[] {
  const out: HsMessage[] = [];
  for (let at = 0; at + 4 <= stream.length;) {
    const len = stream.readUIntBE(at + 1, 3);
    if (at + 4 + len > stream.length) break;
    out.push({ type: stream[at] ?? 0, body: stream.subarray(at + 4, at + 4 + len) });
    at += 4 + len;
  }
  return out;
}

/** Parse a Certificate message body (TLS 1.3 form when `tls13`, else RFC 5246 form). */
export function parseCertificateMessage(body: Buffer, tls13: boolean): Buffer[] | null {
  let at = 0;
  if (tls13) at += 1 + (body[0] ?? 0); // certificate_request_context
  if (at + 3 > body.length) return null;
  const listEnd = at + 3 + body.readUIntBE(at, 3);
  if (listEnd !== body.length) return null; // the list is the whole rest of the message
  at += 3;
  const certs: Buffer[] = [];
  while (at + 3 <= listEnd && certs.length < MAX_CERTS) {
    const len = body.readUIntBE(at, 3);
    at += 3;
    if (at + len > listEnd) return null;
    certs.push(Buffer.from(body.subarray(at, at + len)));
    at += len;
    if (tls13) {
      if (at + 2 > listEnd) return null;
      at += 2 + body.readUInt16BE(at); // per-certificate extensions
    }
  }
  return at === listEnd || certs.length === MAX_CERTS ? certs : null;
}

interface Record_ {
  type: number;
  header: Buffer;
  payload: Buffer;
}

function records(raw: Buffer): Record_[] {
  const out: Record_[] = [];
  for (let at = 0; at + 5 <= raw.length;) {
    const len = raw.readUInt16BE(at + 3);
    if (at + 5 + len > raw.length) break;
    out.push({ type: raw[at] ?? 0, header: raw.subarray(at, at + 5), payload: raw.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

export interface SentChainInput {
  /** Bytes received from the server, from the first byte of its first record. */
  raw: Buffer;
  /** Negotiated protocol as node reports it ('TLSv1.3', 'TLSv1.2', …). */
  protocol: string;
  /** IANA name of the negotiated suite (getCipher().standardName). */
  cipherStandardName: string;
  /** SERVER_HANDSHAKE_TRAFFIC_SECRET from the keylog (TLS 1.3 only). */
  serverHandshakeSecret: Buffer | null;
}

/**
 * The server's certificate_list as sent, leaf first; null when it cannot be recovered (resumed
 * session without Certificate, unknown suite, truncated capture).
 */
export function extractSentChain(input: SentChainInput): Buffer[] | null {
  try {
    return input.protocol === 'TLSv1.3' ? fromTls13(input) : fromLegacy(input.raw);
  } catch {
    return null;
  }
}

function fromLegacy(raw: Buffer): Buffer[] | null {
  const hs: Buffer[] = [];
  for (const r of records(raw)) {
    if (r.type === 20) break; // ChangeCipherSpec: everything after is encrypted
    if (r.type === 22) hs.push(r.payload);
  }
  for (const m of messages(Buffer.concat(hs))) {
    if (m.type === 11) return parseCertificateMessage(m.body, false);
    if (m.type === 14) break; // ServerHelloDone
  }
  return null;
}

function fromTls13(input: SentChainInput): Buffer[] | null {
  const suite = TLS13_SUITES[input.cipherStandardName];
  if (suite === undefined || input.serverHandshakeSecret === null) return null;
  const key = expandLabel(suite.hash, input.serverHandshakeSecret, 'key', suite.keyLen);
  const iv = expandLabel(suite.hash, input.serverHandshakeSecret, 'iv', 12);
  let seq = 0n;
  let stream = Buffer.alloc(0);
  for (const r of records(input.raw)) {
    // ServerHello / HelloRetryRequest are plaintext; CCS is a compatibility no-op (RFC 8446 D.4).
    if (r.type !== 23) continue;
    if (r.payload.length < suite.tagLen) return null;
    const nonce = Buffer.from(iv);
    const seqBytes = Buffer.alloc(8);
    seqBytes.writeBigUInt64BE(seq++);
    for (let i = 0; i < 8; i++) nonce[4 + i] = (nonce[4 + i] ?? 0) ^ (seqBytes[i] ?? 0);
    const ct = r.payload.subarray(0, r.payload.length - suite.tagLen);
    const tag = r.payload.subarray(r.payload.length - suite.tagLen);
    const plain = decrypt(suite, key, nonce, r.header, ct, tag);
    // TLSInnerPlaintext: content, content type, zero padding (RFC 8446 §5.2).
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    if (end < 0 || plain[end] !== 22) return null;
    stream = Buffer.concat([stream, plain.subarray(0, end)]);
    for (const m of messages(stream)) {
      if (m.type === 11) return parseCertificateMessage(m.body, true);
      if (m.type === 20) return null; // Finished without Certificate: PSK resumption
    }
  }
  return null;
}

/** AEAD open (RFC 8446 §5.2); the record header is the additional data. Throws on a bad tag. */
function decrypt(suite: Tls13Suite, key: Buffer, nonce: Buffer, aad: Buffer, ct: Buffer, tag: Buffer): Buffer {
  if (suite.cipher === 'aes-128-ccm') {
    const d = createDecipheriv(suite.cipher, key, nonce, { authTagLength: suite.tagLen });
    d.setAAD(aad, { plaintextLength: ct.length });
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]);
  }
  if (suite.cipher === 'chacha20-poly1305') {
    const d = createDecipheriv(suite.cipher, key, nonce, { authTagLength: 16 });
    d.setAAD(aad, { plaintextLength: ct.length });
    d.setAuthTag(tag);
    return Buffer.concat([d.update(ct), d.final()]);
  }
  const d = createDecipheriv(suite.cipher, key, nonce);
  d.setAAD(aad);
  d.setAuthTag(tag);
  return Buffer.concat([d.update(ct), d.final()]);
}
