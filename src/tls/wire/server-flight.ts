/**
 * Incremental parser for what a server sends in answer to a ClientHello: the plaintext part of its
 * first flight (RFC 5246 §7.3 / RFC 8446 §2), an Alert (RFC 5246 §7.2), or an SSLv2 SERVER-HELLO /
 * ERROR (draft-hickman-netscape-ssl-00 §2.6).
 *
 * Hand-written (not node:tls) so the probe can see exactly what the server chose for legacy offers
 * OpenSSL 3 cannot make. Fuzz-safe by construction: every read is bounds-checked (ByteReader),
 * total input is capped (`maxBytes`, default 256 KiB), each length field is checked against that
 * cap before anything is buffered, and every loop consumes at least one header per iteration.
 * Malformed input yields a `WireError`; nothing else is thrown.
 */
import { WireError } from '../../core/errors.ts';
import { ByteReader } from './reader.ts';
import {
  CONTENT_TYPE,
  DOWNGRADE_TLS11,
  DOWNGRADE_TLS12,
  EXT,
  HANDSHAKE_TYPE,
  HRR_RANDOM,
  SSLV2,
  VERSION_CODES,
  alertName,
  versionName,
} from './constants.ts';
import type { VersionName } from './constants.ts';

export interface ServerHelloInfo {
  legacyVersion: number;
  /** Negotiated version: supported_versions wins over legacy_version (RFC 8446 §4.2.1); null if unknown. */
  version: VersionName | null;
  random: Buffer;
  sessionId: Buffer;
  cipherSuite: number;
  compressionMethod: number;
  extensions: { type: number; data: Buffer }[];
  /** RFC 8446 §4.1.3: ServerHello.random equals SHA-256("HelloRetryRequest"). */
  helloRetryRequest: boolean;
  /** Group from key_share (ServerHello) or the HRR's selected_group. */
  selectedGroup: number | null;
  secureRenegotiation: boolean;
  extendedMasterSecret: boolean;
  encryptThenMac: boolean;
  heartbeat: boolean;
  sessionTicket: boolean;
  alpn: string | null;
  /** RFC 8446 §4.1.3 DOWNGRD sentinel in the last 8 bytes of the random. */
  downgradeSentinel: 'tls12' | 'tls11' | null;
}

/**
 * What a TLS <= 1.2 ServerKeyExchange carried. `signatureScheme` is the TLS 1.2 SignatureAndHashAlgorithm
 * (null before TLS 1.2 or when unsigned); `signed` is false for anonymous key exchange.
 */
export type ServerKeyExchangeInfo =
  | { kind: 'ecdhe'; group: number; signed?: boolean; signatureScheme?: number | null }
  | { kind: 'dhe'; primeBits: number; generator: Buffer; signed?: boolean; signatureScheme?: number | null }
  | { kind: 'rsa-export'; modulusBits: number; signed?: boolean; signatureScheme?: number | null }
  | { kind: 'unknown' };

export type ServerFlight =
  | {
      kind: 'hello';
      hello: ServerHelloInfo;
      /** DER certificates, leaf first (TLS <= 1.2 only; TLS 1.3 certificates are encrypted). */
      certificates: Buffer[];
      keyExchange: ServerKeyExchangeInfo | null;
      certificateRequested: boolean;
      helloDone: boolean;
      ocspStapled: boolean;
      /** Warning-level alerts received before/within the flight (e.g. 112 unrecognized_name). */
      warningAlerts?: number[];
    }
  | {
      kind: 'alert';
      level: number;
      description: number;
      name: string;
      /** Set when this is an SSLv2 ERROR message mapped onto an alert; the SSLv2 error code. */
      sslv2Error?: number;
    }
  | { kind: 'sslv2'; version: number; certificate: Buffer | null; cipherKinds: number[]; connectionId: Buffer };

export interface ServerFlightParserOptions {
  /** Cap on total bytes accepted (default 256 KiB); more gives WireError('wire-too-large'). */
  maxBytes?: number;
  /** Return as soon as the ServerHello is parsed, even for TLS <= 1.2. */
  stopAfterServerHello?: boolean;
}

export const DEFAULT_MAX_FLIGHT_BYTES = 256 * 1024;
/** TLSCiphertext.length may not exceed 2^14 + 2048 (RFC 5246 §6.2.3); nothing legal is longer. */
const MAX_RECORD_PAYLOAD = 16384 + 2048;

/**
 * RSA_EXPORT suites (RFC 2246 Appendix A.5 and the 1024-bit export draft). Their ServerKeyExchange
 * (modulus, exponent, signature) is structurally identical to an anonymous DHE one (p, g, Ys), so
 * the suite code point is the only reliable way to tell them apart.
 */
const RSA_EXPORT_SUITES = new Set([0x0003, 0x0006, 0x0008, 0x0060, 0x0061, 0x0062, 0x0064]);

/** Printable-escapes the first bytes of a peer's output for an error message. */
export function escapeBytes(buf: Buffer, max = 48): string {
  let out = '';
  for (const b of buf.subarray(0, max)) {
    if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return buf.length > max ? `${out}…` : out;
}

function isTextByte(b: number): boolean {
  return (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d;
}

function notTls(buf: Buffer): WireError {
  const text = buf.subarray(0, 16).every(isTextByte);
  return new WireError(
    'wire-not-tls',
    `peer did not answer with TLS${text ? ' (plaintext reply)' : ''}: "${escapeBytes(buf)}"`,
    { hint: 'the port may speak a plaintext protocol, or STARTTLS was not negotiated first' },
  );
}

/** Parses a ServerHello / HelloRetryRequest body (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3). */
export function parseServerHello(body: Buffer): ServerHelloInfo {
  const r = new ByteReader(body, 'ServerHello');
  const legacyVersion = r.u16('legacy_version');
  const random = Buffer.from(r.bytes(32, 'random'));
  const sid = r.vector8('legacy_session_id');
  if (sid.remaining > 32) throw new WireError('wire-malformed', 'ServerHello: session id longer than 32 bytes');
  const sessionId = Buffer.from(sid.rest());
  const cipherSuite = r.u16('cipher_suite');
  const compressionMethod = r.u8('compression_method');
  const extensions: { type: number; data: Buffer }[] = [];
  // Extensions are optional before TLS 1.2 (RFC 5246 §7.4.1.3: "presence ... can be detected").
  if (!r.atEnd()) {
    const er = r.vector16('extensions');
    while (!er.atEnd()) {
      const type = er.u16('extension type');
      extensions.push({ type, data: Buffer.from(er.vector16('extension data').rest()) });
    }
  }
  r.expectEnd('extensions');

  const ext = (type: number): Buffer | undefined => extensions.find((e) => e.type === type)?.data;
  const helloRetryRequest = random.equals(HRR_RANDOM);

  let version: VersionName | null = versionName(legacyVersion) ?? null;
  const sv = ext(EXT.supportedVersions);
  if (sv !== undefined) {
    const svr = new ByteReader(sv, 'supported_versions');
    version = versionName(svr.u16('selected_version')) ?? null;
    svr.expectEnd();
  }

  let selectedGroup: number | null = null;
  const ks = ext(EXT.keyShare);
  if (ks !== undefined) {
    const kr = new ByteReader(ks, 'key_share');
    selectedGroup = kr.u16('group');
    if (!helloRetryRequest) kr.vector16('key_exchange', 1);
    kr.expectEnd();
  }

  let alpn: string | null = null;
  const al = ext(EXT.alpn);
  if (al !== undefined) {
    const list = new ByteReader(al, 'alpn').vector16('protocol_name_list');
    alpn = list.vector8('protocol_name', 1).rest().toString('latin1');
  }

  const tail = random.subarray(24);
  const downgradeSentinel = tail.equals(DOWNGRADE_TLS12) ? 'tls12' : tail.equals(DOWNGRADE_TLS11) ? 'tls11' : null;

  return {
    legacyVersion,
    version,
    random,
    sessionId,
    cipherSuite,
    compressionMethod,
    extensions,
    helloRetryRequest,
    selectedGroup,
    secureRenegotiation: ext(EXT.renegotiationInfo) !== undefined,
    extendedMasterSecret: ext(EXT.extendedMasterSecret) !== undefined,
    encryptThenMac: ext(EXT.encryptThenMac) !== undefined,
    heartbeat: ext(EXT.heartbeat) !== undefined,
    sessionTicket: ext(EXT.sessionTicket) !== undefined,
    alpn,
    downgradeSentinel,
  };
}

/** Parses a TLS <= 1.2 Certificate body into DER certificates (RFC 5246 §7.4.2). */
export function parseCertificateList(body: Buffer): Buffer[] {
  const r = new ByteReader(body, 'Certificate');
  const list = r.vector24('certificate_list');
  r.expectEnd();
  const out: Buffer[] = [];
  while (!list.atEnd()) out.push(Buffer.from(list.vector24('ASN.1Cert', 1).rest()));
  return out;
}

function bitLength(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i - 1) * 8 + (32 - Math.clz32(n[i] as number));
}

/** Reads the signature tail of a ServerKeyExchange; throws if it does not fit exactly. */
function readSignature(r: ByteReader, tls12: boolean): { signed: boolean; signatureScheme: number | null } {
  if (r.atEnd()) return { signed: false, signatureScheme: null }; // anonymous (RFC 5246 §7.4.3)
  const signatureScheme = tls12 ? r.u16('signature algorithm') : null;
  r.vector16('signature');
  r.expectEnd('signature');
  return { signed: true, signatureScheme };
}

/**
 * Parses a ServerKeyExchange body (RFC 5246 §7.4.3, RFC 8422 §5.4, RFC 2246 §7.4.3). The key
 * exchange algorithm is inferred from the structure (an interpretation must consume the body
 * exactly), with RSA_EXPORT recognised by suite code point; anything else is `unknown`.
 */
export function parseServerKeyExchange(body: Buffer, cipherSuite: number, tls12: boolean): ServerKeyExchangeInfo {
  const attempts: (() => ServerKeyExchangeInfo)[] = [];
  const rsa = (): ServerKeyExchangeInfo => {
    const r = new ByteReader(body, 'ServerKeyExchange');
    const modulus = r.vector16('rsa_modulus', 1).rest();
    r.vector16('rsa_exponent', 1);
    return { kind: 'rsa-export', modulusBits: bitLength(modulus), ...readSignature(r, tls12) };
  };
  const ecdhe = (): ServerKeyExchangeInfo => {
    const r = new ByteReader(body, 'ServerKeyExchange');
    const curveType = r.u8('curve_type');
    if (curveType === 1 || curveType === 2) {
      // explicit_prime / explicit_char2 (RFC 4492 §5.4, forbidden by RFC 8422); not parsed further.
      return { kind: 'ecdhe', group: curveType === 1 ? 0xff01 : 0xff02, signed: false, signatureScheme: null };
    }
    if (curveType !== 3) throw new WireError('wire-malformed', 'not named_curve');
    const group = r.u16('named_curve');
    r.vector8('ec_point', 1);
    return { kind: 'ecdhe', group, ...readSignature(r, tls12) };
  };
  const dhe = (): ServerKeyExchangeInfo => {
    const r = new ByteReader(body, 'ServerKeyExchange');
    const p = r.vector16('dh_p', 1).rest();
    const generator = Buffer.from(r.vector16('dh_g', 1).rest());
    r.vector16('dh_Ys', 1);
    return { kind: 'dhe', primeBits: bitLength(p), generator, ...readSignature(r, tls12) };
  };
  const first = body[0];
  if (RSA_EXPORT_SUITES.has(cipherSuite)) attempts.push(rsa);
  if (first === 3) attempts.push(ecdhe);
  attempts.push(dhe, rsa);
  // Explicit curves are not parsed, so they are only a last resort: a DHE prime length of
  // 0x01xx/0x02xx bytes starts with the same byte.
  if (first === 1 || first === 2) attempts.push(ecdhe);
  for (const attempt of attempts) {
    try {
      return attempt();
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
  }
  return { kind: 'unknown' };
}

/** Parses an SSLv2 SERVER-HELLO message body after its type byte (draft-hickman §2.6). */
function parseSslv2ServerHello(r: ByteReader): ServerFlight {
  r.u8('SESSION-ID-HIT');
  r.u8('CERTIFICATE-TYPE');
  const version = r.u16('SERVER-VERSION');
  const certLen = r.u16('CERTIFICATE-LENGTH');
  const specsLen = r.u16('CIPHER-SPECS-LENGTH');
  const connLen = r.u16('CONNECTION-ID-LENGTH');
  if (specsLen % 3 !== 0) throw new WireError('wire-malformed', 'SSLv2 SERVER-HELLO: cipher specs not a multiple of 3');
  const certificate = certLen > 0 ? Buffer.from(r.bytes(certLen, 'CERTIFICATE-DATA')) : null;
  const specs = r.bytes(specsLen, 'CIPHER-SPECS-DATA');
  const connectionId = Buffer.from(r.bytes(connLen, 'CONNECTION-ID-DATA'));
  const cipherKinds: number[] = [];
  for (let i = 0; i < specs.length; i += 3) cipherKinds.push(specs.readUIntBE(i, 3));
  return { kind: 'sslv2', version, certificate, cipherKinds, connectionId };
}

const SSLV2_ERROR_ALERTS: Record<number, [number, string]> = {
  [SSLV2.errNoCipher]: [40, 'sslv2_no_cipher'],
  [SSLV2.errNoCertificate]: [41, 'sslv2_no_certificate'],
  [SSLV2.errBadCertificate]: [42, 'sslv2_bad_certificate'],
  [SSLV2.errUnsupportedCertificateType]: [43, 'sslv2_unsupported_certificate_type'],
};

/** Accumulates chunks without re-copying until `need` bytes are there (keeps feeding O(n)). */
class Accumulator {
  #chunks: Buffer[] = [];
  #length = 0;
  get length(): number {
    return this.#length;
  }
  add(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.#length += b.length;
  }
  /** All bytes as one buffer (copied at most once per call that has something new). */
  peek(): Buffer {
    if (this.#chunks.length !== 1) {
      const all = Buffer.concat(this.#chunks, this.#length);
      this.#chunks = [all];
    }
    return this.#chunks[0] ?? Buffer.alloc(0);
  }
  /** Drops the first `n` bytes. */
  consume(n: number): void {
    const rest = this.peek().subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
  }
}

type Mode = 'unknown' | 'tls' | 'sslv2';

/** Incremental parser of a server's first flight. See the module comment for its guarantees. */
export class ServerFlightParser {
  readonly #maxBytes: number;
  readonly #stopAfterServerHello: boolean;
  #received = 0;
  #mode: Mode = 'unknown';
  readonly #input = new Accumulator();
  #need = 1;
  readonly #hs = new Accumulator();
  #hsNeed = 4;
  readonly #alertBytes = new Accumulator();
  #failure: WireError | null = null;
  #result: ServerFlight | null = null;
  #delivered = false;

  #hello: ServerHelloInfo | null = null;
  #certificates: Buffer[] = [];
  #keyExchange: ServerKeyExchangeInfo | null = null;
  #certificateRequested = false;
  #ocspStapled = false;
  #warnings: number[] = [];

  constructor(opts: ServerFlightParserOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_FLIGHT_BYTES;
    this.#stopAfterServerHello = opts.stopAfterServerHello ?? false;
  }

  /** Bytes currently held (input not yet parsed plus incomplete handshake data); never above maxBytes. */
  get bufferedBytes(): number {
    return this.#input.length + this.#hs.length + this.#alertBytes.length;
  }

  /** True once a flight was returned or an error thrown; further input is ignored. */
  get done(): boolean {
    return this.#result !== null || this.#failure !== null;
  }

  /**
   * Feeds bytes; returns the flight once complete (ServerHelloDone for TLS <= 1.2, the ServerHello
   * or HRR for TLS 1.3 or with stopAfterServerHello, an Alert, an SSLv2 SERVER-HELLO), else null.
   * The flight is returned once; later calls return null. Throws WireError on malformed input
   * (and again on every later call).
   */
  push(chunk: Buffer): ServerFlight | null {
    if (this.#failure !== null) throw this.#failure;
    if (this.#result !== null) return null;
    this.#received += chunk.length;
    if (this.#received > this.#maxBytes) {
      return this.#fail(
        new WireError('wire-too-large', `server sent more than ${this.#maxBytes} bytes without completing its flight`),
      );
    }
    this.#input.add(chunk);
    if (this.#input.length < this.#need) return null;
    try {
      this.#drain();
    } catch (e) {
      if (e instanceof WireError) return this.#fail(e);
      // Anything else is a bug in this parser: still a typed error (never a crash), with its own code.
      return this.#fail(new WireError('wire-internal', `server flight parser failed: ${String(e)}`, { cause: e }));
    }
    if (this.#result !== null && !this.#delivered) {
      this.#delivered = true;
      return this.#result;
    }
    return null;
  }

  /** What was parsed so far if the peer closed early (e.g. ServerHello + Certificate but no Done), or null. */
  partial(): ServerFlight | null {
    if (this.#result !== null) return this.#result;
    if (this.#hello !== null) return this.#helloFlight(false);
    const last = this.#warnings.at(-1);
    if (last !== undefined) return { kind: 'alert', level: 1, description: last, name: alertName(last) };
    return null;
  }

  #fail(e: WireError): never {
    this.#failure = e;
    throw e;
  }

  #finish(flight: ServerFlight): void {
    this.#result = flight;
  }

  #helloFlight(helloDone: boolean): ServerFlight {
    if (this.#hello === null) throw new WireError('wire-malformed', 'no ServerHello');
    return {
      kind: 'hello',
      hello: this.#hello,
      certificates: this.#certificates,
      keyExchange: this.#keyExchange,
      certificateRequested: this.#certificateRequested,
      helloDone,
      ocspStapled: this.#ocspStapled,
      warningAlerts: [...this.#warnings],
    };
  }

  #drain(): void {
    while (this.#result === null) {
      const buf = this.#input.peek();
      if (this.#mode === 'unknown') {
        if (buf.length === 0) return;
        this.#mode = this.#detect(buf);
        if (this.#mode === 'unknown') {
          this.#need = 4;
          return;
        }
      }
      if (this.#mode === 'tls') {
        if (buf.length < 5) {
          this.#need = 5;
          return;
        }
        const type = buf[0] as number;
        const major = buf[1] as number;
        const len = buf.readUInt16BE(3);
        if (type < 20 || type > 24 || major !== 3) {
          throw new WireError('wire-malformed', `bad TLS record header: "${escapeBytes(buf.subarray(0, 5))}"`);
        }
        if (len > MAX_RECORD_PAYLOAD) {
          throw new WireError('wire-malformed', `TLS record of ${len} bytes exceeds 2^14+2048 (record_overflow)`);
        }
        if (buf.length < 5 + len) {
          this.#need = 5 + len;
          return;
        }
        const payload = buf.subarray(5, 5 + len);
        this.#input.consume(5 + len);
        this.#need = 1;
        this.#record(type, payload);
      } else {
        this.#sslv2(buf);
        return;
      }
    }
  }

  /** Decides from the first bytes whether this is TLS, SSLv2 or something else (RFC 5246 §E.2). */
  #detect(buf: Buffer): Mode {
    const b0 = buf[0] as number;
    if (b0 >= 20 && b0 <= 24) {
      if (buf.length >= 2 && buf[1] !== 3) throw notTls(buf);
      return 'tls';
    }
    if (b0 & 0x80) {
      // SSLv2 2-byte header; the message type must be SERVER-HELLO or ERROR.
      if (buf.length < 3) return 'unknown';
      const t = buf[2] as number;
      if (t !== SSLV2.msgServerHello && t !== SSLV2.msgError) throw notTls(buf);
      return 'sslv2';
    }
    if (buf.length < 4) return 'unknown';
    // SSLv2 3-byte header (length, padding) followed by the message type.
    const t = buf[3] as number;
    if ((t === SSLV2.msgServerHello || t === SSLV2.msgError) && !buf.subarray(0, 3).every(isTextByte)) return 'sslv2';
    throw notTls(buf);
  }

  #sslv2(buf: Buffer): void {
    const b0 = buf[0] as number;
    const twoByte = (b0 & 0x80) !== 0;
    const hdr = twoByte ? 2 : 3;
    if (buf.length < hdr) {
      this.#need = hdr;
      return;
    }
    const len = twoByte ? ((b0 & 0x7f) << 8) | (buf[1] as number) : ((b0 & 0x3f) << 8) | (buf[1] as number);
    const padding = twoByte ? 0 : (buf[2] as number);
    if (padding > len) throw new WireError('wire-malformed', 'SSLv2 record padding longer than the record');
    if (buf.length < hdr + len) {
      this.#need = hdr + len;
      return;
    }
    const r = new ByteReader(buf.subarray(hdr, hdr + len - padding), 'SSLv2 record');
    const type = r.u8('message type');
    if (type === SSLV2.msgError) {
      const code = r.u16('ERROR-CODE');
      const [description, name] = SSLV2_ERROR_ALERTS[code] ?? [40, `sslv2_error_${code}`];
      this.#finish({ kind: 'alert', level: 2, description, name, sslv2Error: code });
    } else if (type === SSLV2.msgServerHello) {
      this.#finish(parseSslv2ServerHello(r));
    } else {
      throw new WireError('wire-malformed', `unexpected SSLv2 message type ${type}`);
    }
    this.#input.consume(hdr + len);
  }

  #record(type: number, payload: Buffer): void {
    switch (type) {
      case CONTENT_TYPE.handshake:
        this.#hs.add(payload);
        this.#handshakeMessages();
        return;
      case CONTENT_TYPE.alert:
        this.#alertBytes.add(payload);
        this.#alerts();
        return;
      case CONTENT_TYPE.changeCipherSpec:
        if (payload.length !== 1 || payload[0] !== 1) {
          throw new WireError('wire-malformed', 'malformed ChangeCipherSpec record');
        }
        if (this.#hello === null) throw new WireError('wire-malformed', 'ChangeCipherSpec before ServerHello');
        if (this.#hs.length > 0) throw new WireError('wire-malformed', 'ChangeCipherSpec inside a handshake message');
        // TLS <= 1.2 abbreviated handshake (resumption): what follows is encrypted.
        this.#finish(this.#helloFlight(false));
        return;
      case CONTENT_TYPE.heartbeat:
        return; // RFC 6520 messages are irrelevant to the handshake; skip.
      default:
        throw new WireError(
          'wire-malformed',
          this.#hello === null
            ? 'application data before ServerHello'
            : 'application data before the handshake completed',
        );
    }
  }

  #alerts(): void {
    while (this.#result === null && this.#alertBytes.length >= 2) {
      const b = this.#alertBytes.peek();
      const level = b[0] as number;
      const description = b[1] as number;
      this.#alertBytes.consume(2);
      if (level !== 1 && level !== 2) throw new WireError('wire-malformed', `alert with unknown level ${level}`);
      // Warning alerts other than close_notify (e.g. unrecognized_name) do not end the handshake.
      if (level === 1 && description !== 0) {
        if (this.#warnings.length >= 64) throw new WireError('wire-malformed', 'too many warning alerts');
        this.#warnings.push(description);
        continue;
      }
      this.#finish({ kind: 'alert', level, description, name: alertName(description) });
    }
  }

  #handshakeMessages(): void {
    while (this.#result === null && this.#hs.length >= this.#hsNeed) {
      const buf = this.#hs.peek();
      const msgType = buf[0] as number;
      const len = buf.readUIntBE(1, 3);
      // Reject before buffering: a length beyond our byte budget can never complete.
      if (len > this.#maxBytes) {
        throw new WireError(
          'wire-too-large',
          `handshake message of ${len} bytes exceeds the ${this.#maxBytes}-byte cap`,
        );
      }
      if (buf.length < 4 + len) {
        this.#hsNeed = 4 + len;
        return;
      }
      const body = buf.subarray(4, 4 + len);
      this.#hs.consume(4 + len);
      this.#hsNeed = 4;
      this.#handshake(msgType, body);
    }
  }

  #handshake(type: number, body: Buffer): void {
    if (type === HANDSHAKE_TYPE.helloRequest) return; // RFC 5246 §7.4.1.1: ignored during a handshake
    if (this.#hello === null) {
      if (type !== HANDSHAKE_TYPE.serverHello) {
        throw new WireError('wire-malformed', `expected ServerHello, got handshake message type ${type}`);
      }
      const hello = parseServerHello(body);
      this.#hello = hello;
      // TLS 1.3: everything after the ServerHello/HRR is encrypted or needs a new ClientHello.
      if (hello.helloRetryRequest || hello.version === 'TLSv1.3' || this.#stopAfterServerHello) {
        this.#finish(this.#helloFlight(false));
      }
      return;
    }
    const tls12 = this.#hello.version === 'TLSv1.2' || this.#hello.legacyVersion >= VERSION_CODES['TLSv1.2'];
    switch (type) {
      case HANDSHAKE_TYPE.certificate:
        this.#certificates = parseCertificateList(body);
        return;
      case HANDSHAKE_TYPE.certificateStatus: {
        // RFC 6066 §8: status_type ocsp(1), OCSPResponse<1..2^24-1>.
        const r = new ByteReader(body, 'CertificateStatus');
        const statusType = r.u8('status_type');
        const resp = r.vector24('response', 1);
        r.expectEnd();
        this.#ocspStapled = statusType === 1 && resp.remaining > 0;
        return;
      }
      case HANDSHAKE_TYPE.serverKeyExchange:
        this.#keyExchange = parseServerKeyExchange(body, this.#hello.cipherSuite, tls12);
        return;
      case HANDSHAKE_TYPE.certificateRequest:
        this.#certificateRequested = true;
        return;
      case HANDSHAKE_TYPE.newSessionTicket:
        return; // abbreviated handshake; ChangeCipherSpec follows
      case HANDSHAKE_TYPE.serverHelloDone:
        if (body.length !== 0) throw new WireError('wire-malformed', 'ServerHelloDone with a body');
        this.#finish(this.#helloFlight(true));
        return;
      default:
        throw new WireError('wire-malformed', `unexpected handshake message type ${type} after ServerHello`);
    }
  }
}

/** Parses a complete server flight; throws WireError('wire-truncated') if it is incomplete. */
export function parseServerFlight(bytes: Buffer, opts: ServerFlightParserOptions = {}): ServerFlight {
  const p = new ServerFlightParser({ maxBytes: Math.max(bytes.length, DEFAULT_MAX_FLIGHT_BYTES), ...opts });
  const flight = p.push(bytes);
  if (flight !== null) return flight;
  throw new WireError('wire-truncated', `server flight incomplete after ${bytes.length} bytes`);
}
