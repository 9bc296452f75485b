/**
 * The server's half of the hand-written codec: a ClientHello parser (TLS records and the
 * SSLv2-compatible format of RFC 5246 §E.2 / draft-hickman) and builders for a plaintext server
 * flight. Used by the testbed's raw legacy server (src/testbed/legacy-tls.ts), which must serve
 * suites and versions OpenSSL 3 cannot (EXPORT, RC4, SSLv2/SSLv3), and by tests.
 *
 * The builders produce well-formed messages with dummy key material and signatures: the probe
 * reads what was chosen and never completes or verifies the handshake.
 */
import { randomBytes } from 'node:crypto';
import { WireError } from '../../core/errors.ts';
import { ByteReader } from './reader.ts';
import {
  CONTENT_TYPE,
  DOWNGRADE_TLS11,
  DOWNGRADE_TLS12,
  EXT,
  HANDSHAKE_TYPE,
  HRR_RANDOM,
  SCSV,
  SSLV2,
  VERSION_CODES,
} from './constants.ts';
import type { VersionName } from './constants.ts';
import type { KeyShareEntry } from './client-hello.ts';
import { encodeRecords, extension, handshakeMessage, u16, u16List, u8, vec16, vec24, vec8 } from './record.ts';

/** Largest ClientHello we accept (RFC 8446 allows 2^24-1; real ones are < 16 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 128 * 1024;

export interface ClientHelloInfo {
  /** 'sslv2' for an SSLv2 CLIENT-HELLO (native or SSLv2-compatible TLS hello). */
  format: 'tls' | 'sslv2';
  /** TLS record-layer version (for format 'sslv2': the hello's version). */
  recordVersion: number;
  /** client_version / legacy_version. */
  legacyVersion: number;
  /** supported_versions (RFC 8446 §4.2.1), or null if absent. */
  supportedVersions: number[] | null;
  random: Buffer;
  sessionId: Buffer;
  /** 2-byte cipher suites, SCSVs included; for SSLv2 format only kinds of the form 0x00XXYY. */
  cipherSuites: number[];
  /** SSLv2 cipher kinds (3 bytes, first byte non-zero); empty for TLS format. */
  sslv2CipherKinds: number[];
  compressionMethods: number[];
  extensions: { type: number; data: Buffer }[];
  serverName: string | null;
  groups: number[] | null;
  signatureAlgorithms: number[] | null;
  ecPointFormats: number[] | null;
  keyShares: KeyShareEntry[] | null;
  alpn: string[] | null;
  /** renegotiation_info extension present (RFC 5746 §3.2). */
  renegotiationInfo: boolean;
  /** TLS_EMPTY_RENEGOTIATION_INFO_SCSV offered (RFC 5746 §3.3). */
  renegotiationScsv: boolean;
  /** TLS_FALLBACK_SCSV offered (RFC 7507). */
  fallbackScsv: boolean;
  extendedMasterSecret: boolean;
  encryptThenMac: boolean;
  sessionTicket: boolean;
  heartbeat: boolean;
  statusRequest: boolean;
  padding: boolean;
}

/**
 * How many bytes the complete ClientHello occupies at the start of `buf` (all its records), or
 * null if more bytes are needed. Throws WireError if the bytes cannot be a ClientHello.
 */
export function clientHelloLength(buf: Buffer): number | null {
  if (buf.length < 3) return null;
  const b0 = buf[0] as number;
  if (b0 & 0x80) {
    const len = ((b0 & 0x7f) << 8) | (buf[1] as number);
    if (buf[2] !== SSLV2.msgClientHello) throw new WireError('wire-malformed', 'SSLv2 record is not a CLIENT-HELLO');
    return buf.length >= 2 + len ? 2 + len : null;
  }
  if (b0 !== CONTENT_TYPE.handshake) {
    throw new WireError('wire-not-tls', 'client did not start with a TLS handshake record');
  }
  let off = 0;
  let hsLen = -1;
  let gathered = 0;
  while (off + 5 <= buf.length) {
    if (buf[off] !== CONTENT_TYPE.handshake || buf[off + 1] !== 3) {
      throw new WireError('wire-malformed', 'ClientHello interrupted by a non-handshake record');
    }
    const len = buf.readUInt16BE(off + 3);
    if (len > 16384) throw new WireError('wire-malformed', 'ClientHello record exceeds 2^14 bytes');
    if (off + 5 + len > buf.length) return null;
    gathered += len;
    off += 5 + len;
    if (hsLen < 0 && gathered >= 4) {
      const first = buf.subarray(5, Math.min(buf.length, 9));
      // The first record must start the message; its header may itself be split across records.
      const hdr = first.length >= 4 ? first : collectHandshakeBytes(buf, off, 4);
      if (hdr[0] !== HANDSHAKE_TYPE.clientHello) throw new WireError('wire-malformed', 'not a ClientHello');
      hsLen = hdr.readUIntBE(1, 3);
      if (hsLen + 4 > MAX_CLIENT_HELLO_BYTES) throw new WireError('wire-too-large', 'ClientHello too large');
    }
    if (hsLen >= 0 && gathered >= hsLen + 4) return off;
    if (off > MAX_CLIENT_HELLO_BYTES + 64) throw new WireError('wire-too-large', 'ClientHello too large');
  }
  return null;
}

/** Concatenated handshake payload of the records in buf[0..end), truncated to `max` bytes. */
function collectHandshakeBytes(buf: Buffer, end: number, max = Infinity): Buffer {
  const parts: Buffer[] = [];
  let off = 0;
  let total = 0;
  while (off + 5 <= end && total < max) {
    const len = buf.readUInt16BE(off + 3);
    const frag = buf.subarray(off + 5, Math.min(off + 5 + len, end));
    parts.push(frag);
    total += frag.length;
    off += 5 + len;
  }
  return Buffer.concat(parts).subarray(0, max === Infinity ? undefined : max);
}

function emptyInfo(): ClientHelloInfo {
  return {
    format: 'tls',
    recordVersion: 0,
    legacyVersion: 0,
    supportedVersions: null,
    random: Buffer.alloc(0),
    sessionId: Buffer.alloc(0),
    cipherSuites: [],
    sslv2CipherKinds: [],
    compressionMethods: [],
    extensions: [],
    serverName: null,
    groups: null,
    signatureAlgorithms: null,
    ecPointFormats: null,
    keyShares: null,
    alpn: null,
    renegotiationInfo: false,
    renegotiationScsv: false,
    fallbackScsv: false,
    extendedMasterSecret: false,
    encryptThenMac: false,
    sessionTicket: false,
    heartbeat: false,
    statusRequest: false,
    padding: false,
  };
}

function u16s(r: ByteReader): number[] {
  if (r.remaining % 2 !== 0) throw new WireError('wire-malformed', 'odd-length list of 16-bit values');
  const out: number[] = [];
  while (!r.atEnd()) out.push(r.u16());
  return out;
}

function applyScsv(info: ClientHelloInfo): void {
  info.renegotiationScsv = info.cipherSuites.includes(SCSV.emptyRenegotiationInfo);
  info.fallbackScsv = info.cipherSuites.includes(SCSV.fallback);
}

function parseSslv2ClientHello(buf: Buffer): ClientHelloInfo {
  const b0 = buf[0] as number;
  const len = ((b0 & 0x7f) << 8) | (buf[1] as number);
  const r = new ByteReader(buf.subarray(2, 2 + len), 'SSLv2 CLIENT-HELLO');
  if (buf.length < 2 + len) throw new WireError('wire-truncated', 'SSLv2 CLIENT-HELLO incomplete');
  if (r.u8('MSG-CLIENT-HELLO') !== SSLV2.msgClientHello) throw new WireError('wire-malformed', 'not a CLIENT-HELLO');
  const info = emptyInfo();
  info.format = 'sslv2';
  info.legacyVersion = r.u16('CLIENT-VERSION');
  info.recordVersion = info.legacyVersion;
  const specsLen = r.u16('CIPHER-SPECS-LENGTH');
  const sidLen = r.u16('SESSION-ID-LENGTH');
  const chLen = r.u16('CHALLENGE-LENGTH');
  if (specsLen % 3 !== 0) throw new WireError('wire-malformed', 'SSLv2 cipher specs not a multiple of 3');
  if (chLen < 16 || chLen > 32) throw new WireError('wire-malformed', 'SSLv2 challenge must be 16..32 bytes');
  const specs = r.bytes(specsLen, 'CIPHER-SPECS');
  info.sessionId = Buffer.from(r.bytes(sidLen, 'SESSION-ID'));
  const challenge = r.bytes(chLen, 'CHALLENGE');
  r.expectEnd();
  // RFC 5246 §E.2: the challenge is right-aligned in a zero-padded 32-byte random.
  info.random = Buffer.concat([Buffer.alloc(32 - chLen), challenge]);
  for (let i = 0; i < specs.length; i += 3) {
    const kind = specs.readUIntBE(i, 3);
    if (kind >> 16 === 0) info.cipherSuites.push(kind);
    else info.sslv2CipherKinds.push(kind);
  }
  info.compressionMethods = [0];
  applyScsv(info);
  return info;
}

/** Parses a ClientHello (TLS records, possibly fragmented, or SSLv2 format). Throws WireError. */
export function parseClientHello(bytes: Buffer): ClientHelloInfo {
  const total = clientHelloLength(bytes);
  if (total === null) throw new WireError('wire-truncated', 'ClientHello incomplete');
  if ((bytes[0] as number) & 0x80) return parseSslv2ClientHello(bytes);

  const msg = collectHandshakeBytes(bytes, total);
  const hr = new ByteReader(msg, 'ClientHello');
  if (hr.u8('msg_type') !== HANDSHAKE_TYPE.clientHello) throw new WireError('wire-malformed', 'not a ClientHello');
  const r = new ByteReader(hr.bytes(hr.u24('length'), 'body'), 'ClientHello');
  hr.expectEnd('ClientHello');

  const info = emptyInfo();
  info.recordVersion = bytes.readUInt16BE(1);
  info.legacyVersion = r.u16('legacy_version');
  info.random = Buffer.from(r.bytes(32, 'random'));
  const sid = r.vector8('legacy_session_id');
  if (sid.remaining > 32) throw new WireError('wire-malformed', 'ClientHello: session id longer than 32 bytes');
  info.sessionId = Buffer.from(sid.rest());
  info.cipherSuites = u16s(r.vector16('cipher_suites', 2));
  info.compressionMethods = [...r.vector8('compression_methods', 1).rest()];
  if (!r.atEnd()) {
    const er = r.vector16('extensions');
    while (!er.atEnd()) {
      const type = er.u16('extension type');
      info.extensions.push({ type, data: Buffer.from(er.vector16('extension data').rest()) });
    }
  }
  r.expectEnd('extensions');
  applyScsv(info);

  for (const { type, data } of info.extensions) {
    const x = new ByteReader(data, `extension ${type}`);
    switch (type) {
      case EXT.serverName: {
        const list = x.vector16('server_name_list');
        while (!list.atEnd()) {
          const nameType = list.u8('name_type');
          const name = list.vector16('HostName', 1).rest();
          if (nameType === 0 && info.serverName === null) info.serverName = name.toString('latin1');
        }
        break;
      }
      case EXT.supportedGroups:
        info.groups = u16s(x.vector16('named_group_list'));
        break;
      case EXT.signatureAlgorithms:
        info.signatureAlgorithms = u16s(x.vector16('supported_signature_algorithms'));
        break;
      case EXT.ecPointFormats:
        info.ecPointFormats = [...x.vector8('ec_point_format_list').rest()];
        break;
      case EXT.supportedVersions: {
        const v = x.vector8('versions');
        info.supportedVersions = u16s(v);
        break;
      }
      case EXT.keyShare: {
        const list = x.vector16('client_shares');
        info.keyShares = [];
        while (!list.atEnd()) {
          const group = list.u16('group');
          info.keyShares.push({ group, keyExchange: Buffer.from(list.vector16('key_exchange', 1).rest()) });
        }
        break;
      }
      case EXT.alpn: {
        const list = x.vector16('protocol_name_list');
        info.alpn = [];
        while (!list.atEnd()) info.alpn.push(list.vector8('protocol_name', 1).rest().toString('latin1'));
        break;
      }
      case EXT.renegotiationInfo:
        info.renegotiationInfo = true;
        x.vector8('renegotiated_connection');
        break;
      case EXT.extendedMasterSecret:
        info.extendedMasterSecret = true;
        break;
      case EXT.encryptThenMac:
        info.encryptThenMac = true;
        break;
      case EXT.sessionTicket:
        info.sessionTicket = true;
        break;
      case EXT.heartbeat:
        info.heartbeat = true;
        break;
      case EXT.statusRequest:
        info.statusRequest = true;
        break;
      case EXT.padding:
        info.padding = true;
        break;
      default:
        break;
    }
  }
  return info;
}

export interface ServerHelloOptions {
  /** Negotiated version; for TLSv1.3 legacy_version is 0x0303 and supported_versions is added. */
  version: VersionName;
  cipherSuite: number;
  random?: Buffer;
  sessionId?: Buffer;
  compressionMethod?: number;
  extensions?: { type: number; data: Buffer }[];
  /** Use the RFC 8446 §4.1.3 HelloRetryRequest random. */
  helloRetryRequest?: boolean;
  /** Put the RFC 8446 §4.1.3 downgrade sentinel into the random. */
  downgradeSentinel?: 'tls12' | 'tls11';
  /** Record-layer version; default min(version, TLS 1.2). */
  recordVersion?: number;
}

function recordVersionFor(v: VersionName): number {
  return Math.min(VERSION_CODES[v], VERSION_CODES['TLSv1.2']);
}

/** A ServerHello (or HelloRetryRequest) as a handshake record (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3). */
export function buildServerHello(opts: ServerHelloOptions): Buffer {
  const tls13 = opts.version === 'TLSv1.3';
  let random = opts.helloRetryRequest === true ? HRR_RANDOM : (opts.random ?? randomBytes(32));
  if (opts.downgradeSentinel !== undefined) {
    random = Buffer.concat([
      random.subarray(0, 24),
      opts.downgradeSentinel === 'tls12' ? DOWNGRADE_TLS12 : DOWNGRADE_TLS11,
    ]);
  }
  const exts = [...(opts.extensions ?? [])];
  if (tls13 && !exts.some((e) => e.type === EXT.supportedVersions)) {
    exts.push({ type: EXT.supportedVersions, data: u16(VERSION_CODES['TLSv1.3']) });
  }
  const sessionId = opts.sessionId ?? (opts.version === 'SSLv3' ? randomBytes(32) : Buffer.alloc(0));
  const parts = [
    u16(recordVersionFor(opts.version)),
    random,
    vec8(sessionId),
    u16(opts.cipherSuite),
    u8(opts.compressionMethod ?? 0),
  ];
  if (exts.length > 0) parts.push(vec16(...exts.map((e) => extension(e.type, e.data))));
  const rv = opts.recordVersion ?? recordVersionFor(opts.version);
  return encodeRecords(CONTENT_TYPE.handshake, rv, handshakeMessage(HANDSHAKE_TYPE.serverHello, Buffer.concat(parts)));
}

/** A TLS <= 1.2 Certificate message (RFC 5246 §7.4.2) as a handshake record. */
export function buildCertificate(ders: Buffer[], recordVersion: number = VERSION_CODES['TLSv1.2']): Buffer {
  const body = vec24(...ders.map((d) => vec24(d)));
  return encodeRecords(CONTENT_TYPE.handshake, recordVersion, handshakeMessage(HANDSHAKE_TYPE.certificate, body));
}

export type ServerKeyExchangeParams =
  | { kind: 'ecdhe'; group: number; publicKey?: Buffer }
  | { kind: 'dhe'; prime: Buffer; generator: Buffer; publicKey?: Buffer }
  | { kind: 'rsa-export'; modulus: Buffer; exponent?: Buffer };

/**
 * A ServerKeyExchange (RFC 5246 §7.4.3, RFC 8422 §5.4) with well-formed parameters and a dummy
 * signature (the probe never verifies it). `anonymous` omits the signature (DH_anon/ECDH_anon).
 */
export function buildServerKeyExchange(
  params: ServerKeyExchangeParams,
  opts: { version: VersionName; anonymous?: boolean; signatureScheme?: number; signatureLength?: number },
): Buffer {
  let p: Buffer;
  switch (params.kind) {
    case 'ecdhe': {
      const point = params.publicKey ?? Buffer.concat([u8(4), randomBytes(64)]);
      p = Buffer.concat([u8(3), u16(params.group), vec8(point)]); // named_curve
      break;
    }
    case 'dhe': {
      const ys = params.publicKey ?? randomBytes(params.prime.length);
      p = Buffer.concat([vec16(params.prime), vec16(params.generator), vec16(ys)]);
      break;
    }
    case 'rsa-export':
      p = Buffer.concat([vec16(params.modulus), vec16(params.exponent ?? Buffer.from([1, 0, 1]))]);
      break;
  }
  const parts = [p];
  if (opts.anonymous !== true) {
    if (opts.version === 'TLSv1.2') parts.push(u16(opts.signatureScheme ?? 0x0401));
    parts.push(vec16(randomBytes(opts.signatureLength ?? 256)));
  }
  const body = Buffer.concat(parts);
  return encodeRecords(
    CONTENT_TYPE.handshake,
    recordVersionFor(opts.version),
    handshakeMessage(HANDSHAKE_TYPE.serverKeyExchange, body),
  );
}

/** A CertificateRequest (RFC 5246 §7.4.4) asking for RSA/ECDSA certificates, no CA list. */
export function buildCertificateRequest(version: VersionName): Buffer {
  const parts = [vec8(u8(1), u8(64))];
  if (version === 'TLSv1.2') parts.push(u16List([0x0401, 0x0403]));
  parts.push(vec16());
  return encodeRecords(
    CONTENT_TYPE.handshake,
    recordVersionFor(version),
    handshakeMessage(HANDSHAKE_TYPE.certificateRequest, Buffer.concat(parts)),
  );
}

/** A ServerHelloDone (RFC 5246 §7.4.5) as a handshake record. */
export function buildServerHelloDone(recordVersion: number = VERSION_CODES['TLSv1.2']): Buffer {
  return encodeRecords(
    CONTENT_TYPE.handshake,
    recordVersion,
    handshakeMessage(HANDSHAKE_TYPE.serverHelloDone, Buffer.alloc(0)),
  );
}

/** An Alert record (RFC 5246 §7.2). */
export function buildAlert(
  level: number,
  description: number,
  recordVersion: number = VERSION_CODES['TLSv1.2'],
): Buffer {
  return encodeRecords(CONTENT_TYPE.alert, recordVersion, Buffer.from([level & 0xff, description & 0xff]));
}

/** An SSLv2 SERVER-HELLO with a 2-byte header (draft-hickman §2.6); certificate type X.509 (1). */
export function buildSslv2ServerHello(opts: {
  certificate: Buffer;
  cipherKinds: number[];
  connectionId?: Buffer;
  sessionIdHit?: boolean;
  version?: number;
}): Buffer {
  const conn = opts.connectionId ?? randomBytes(16);
  const specs = Buffer.alloc(opts.cipherKinds.length * 3);
  opts.cipherKinds.forEach((k, i) => specs.writeUIntBE(k & 0xffffff, i * 3, 3));
  const msg = Buffer.concat([
    u8(SSLV2.msgServerHello),
    u8(opts.sessionIdHit === true ? 1 : 0),
    u8(1), // SSL_CT_X509_CERTIFICATE
    u16(opts.version ?? VERSION_CODES.SSLv2),
    u16(opts.certificate.length),
    u16(specs.length),
    u16(conn.length),
    opts.certificate,
    specs,
    conn,
  ]);
  if (msg.length > 0x7fff) throw new WireError('wire-malformed', 'SSLv2 SERVER-HELLO too long for a 2-byte header');
  return Buffer.concat([u16(0x8000 | msg.length), msg]);
}

/** An SSLv2 ERROR message (draft-hickman §2.7), e.g. NO-CIPHER-ERROR 0x0001. */
export function buildSslv2Error(code: number): Buffer {
  return Buffer.concat([u16(0x8000 | 3), u8(SSLV2.msgError), u16(code)]);
}
