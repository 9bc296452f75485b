/**
 * The testbed's raw legacy TLS responder, for what OpenSSL 3 cannot serve: SSLv2, SSLv3, EXPORT,
 * RC4, DES, anonymous and PSK suites. It answers a ClientHello with a plaintext server flight
 * (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone) or an alert, built by the
 * hand-written codec in src/tls/wire/, then idles: it never completes a handshake. That is all a
 * scanner needs to see what the server accepts, and it keeps this module free of real crypto.
 *
 * Like a pre-TLS 1.3 server it ignores supported_versions and negotiates from legacy_version
 * (RFC 8446 §4.2.1: servers that do not know the extension must ignore it), so TLS 1.3 is never
 * negotiated here; 'TLSv1.3' in `versions` is ignored.
 */
import type net from 'node:net';
import { createECDH, createDiffieHellman, getDiffieHellman, randomBytes } from 'node:crypto';
import { suiteByCode } from '../tls/wire/suites.ts';
import type { CipherSuite } from '../tls/wire/suites.ts';
import {
  ALERT,
  ALERT_LEVEL,
  CONTENT_TYPE,
  EXT,
  HANDSHAKE_TYPE,
  SSLV2,
  VERSION_CODES,
  VERSIONS,
  compareVersions,
} from '../tls/wire/constants.ts';
import type { VersionName } from '../tls/wire/constants.ts';
import { generateKeyShare } from '../tls/wire/client-hello.ts';
import {
  buildAlert,
  buildCertificate,
  buildServerHello,
  buildServerHelloDone,
  buildServerKeyExchange,
  buildSslv2Error,
  buildSslv2ServerHello,
  clientHelloLength,
  parseClientHello,
  MAX_CLIENT_HELLO_BYTES,
} from '../tls/wire/server-side.ts';
import type { ClientHelloInfo } from '../tls/wire/server-side.ts';
import { encodeRecords, handshakeMessage, u16, vec16, vec8, u8 } from '../tls/wire/record.ts';

export interface LegacyTlsOptions {
  /** Versions served, e.g. ['SSLv3'] or ['TLSv1.0', 'TLSv1.2']; may include 'SSLv2'. */
  versions: VersionName[];
  /** Server preference order (2-byte TLS code points; 3-byte SSLv2 cipher kinds for SSLv2). */
  suites: number[];
  /** DER chain, leaf first. */
  certificates: Buffer[];
  /** Default true: pick by server order; false: first client suite we support. */
  serverPreference?: boolean;
  /** Default true: echo renegotiation_info (RFC 5746 §3.6). */
  secureRenegotiation?: boolean;
  /** Default false: answer TLS_FALLBACK_SCSV below our best version with inappropriate_fallback (RFC 7507 §3). */
  fallbackScsv?: boolean;
  /** Default false. VULNERABLE when true: pick DEFLATE (1) when the client offers it (CRIME, RFC 7457 §2.6). */
  compression?: boolean;
  /**
   * Default 'off'. 'on': echo the heartbeat extension (RFC 6520 §2) and answer well-formed
   * HeartbeatRequests after the ServerHelloDone. 'heartbleed' (VULNERABLE): also answer a request
   * whose payload_length exceeds its payload with a response that long (CVE-2014-0160), filled
   * with a fixed marker — never real memory.
   */
  heartbeat?: 'off' | 'on' | 'heartbleed';
  /** DH prime size for non-export DHE suites (default 3072, BSI-sized so it adds no finding); export uses 512. */
  dhPrimeBits?: number;
  /** ECDHE groups we accept, in our preference order (default x25519, P-256, P-384, P-521). */
  ecdhGroups?: number[];
  /** How long to idle after answering before closing (default 5000 ms). */
  idleMs?: number;
}

/** Key exchanges whose server flight this responder can produce. */
const SERVABLE_KX = new Set(['RSA', 'DH', 'DHE', 'ECDH', 'ECDHE', 'PSK', 'RSA_PSK', 'DHE_PSK', 'ECDHE_PSK']);
const HELLO_TIMEOUT_MS = 10_000;

function inRange(v: VersionName, s: CipherSuite): boolean {
  return compareVersions(s.minVersion, v) <= 0 && compareVersions(v, s.maxVersion) <= 0;
}

function eligible(code: number, version: VersionName): boolean {
  const s = suiteByCode(code);
  if (s === undefined || s.family === 'scsv') return false;
  if (version === 'SSLv2') return s.family === 'sslv2';
  if (s.family !== 'tls') return false;
  return inRange(version, s) && SERVABLE_KX.has(s.kx);
}

/**
 * Which suites this configuration accepts at `version`, in server order (ground truth for tests and
 * the testbed manifest). ECDHE suites additionally need a common group with the client.
 */
export function legacyAcceptedSuites(opts: LegacyTlsOptions, version: VersionName): number[] {
  if (version === 'TLSv1.3' || !opts.versions.includes(version)) return [];
  return [...new Set(opts.suites)].filter((c) => eligible(c, version));
}

const primeCache = new Map<number, Buffer>();
const MODP: Record<number, string> = {
  768: 'modp1',
  1024: 'modp2',
  1536: 'modp5',
  2048: 'modp14',
  3072: 'modp15',
  4096: 'modp16',
};

/** A safe prime of `bits` bits: the RFC 2409/3526 groups where they exist, else generated once. */
function dhPrime(bits: number): Buffer {
  let p = primeCache.get(bits);
  if (p === undefined) {
    const name = MODP[bits];
    p = name !== undefined ? getDiffieHellman(name).getPrime() : createDiffieHellman(bits).getPrime();
    primeCache.set(bits, p);
  }
  return p;
}

/** An EC public key for `group`: real where node can make one, else a well-formed random point. */
function ecPoint(group: number): Buffer {
  const share = generateKeyShare(group);
  if (share !== undefined) return share.keyExchange;
  if (group === 22) return createECDH('secp256k1').generateKeys();
  return Buffer.concat([u8(4), randomBytes(64)]);
}

function needsCertificate(s: CipherSuite): boolean {
  return !s.anon && s.auth !== 'PSK' && s.kx !== 'NULL';
}

function signatureFor(s: CipherSuite, client: ClientHelloInfo): { scheme: number; length: number } {
  const prefs: Record<string, number[]> = {
    RSA: [0x0401, 0x0501, 0x0601, 0x0201],
    ECDSA: [0x0403, 0x0503, 0x0603, 0x0203],
    DSS: [0x0402, 0x0202],
  };
  const ours = prefs[s.auth] ?? prefs.RSA ?? [0x0401];
  const offered = client.signatureAlgorithms;
  const scheme = offered === null ? (ours[0] ?? 0x0401) : (ours.find((x) => offered.includes(x)) ?? ours[0] ?? 0x0401);
  const length = s.auth === 'ECDSA' ? 72 : s.auth === 'DSS' ? 46 : 256;
  return { scheme, length };
}

type Decision =
  | { kind: 'alert'; description: number; recordVersion: number }
  | { kind: 'sslv2'; cipherKinds: number[] }
  | { kind: 'sslv2-error'; code: number }
  | { kind: 'tls'; version: VersionName; suite: CipherSuite; group: number | null };

function pick(candidates: number[], clientOrder: number[], serverPreference: boolean): number[] {
  return serverPreference
    ? candidates.filter((c) => clientOrder.includes(c))
    : clientOrder.filter((c) => candidates.includes(c));
}

/** Decides the answer to a ClientHello: pure, so tests can check it without sockets. */
export function decideLegacyResponse(opts: LegacyTlsOptions, ch: ClientHelloInfo): Decision {
  const serverPref = opts.serverPreference ?? true;
  const ours = VERSIONS.filter((v) => v !== 'TLSv1.3' && v !== 'SSLv2' && opts.versions.includes(v));
  const clientMax = ch.legacyVersion;
  const alertVersion = Math.max(VERSION_CODES.SSLv3, Math.min(clientMax, VERSION_CODES['TLSv1.2']));

  const sslv2Answer = (): Decision | undefined => {
    if (!opts.versions.includes('SSLv2') || ch.format !== 'sslv2' || ch.sslv2CipherKinds.length === 0) return undefined;
    const kinds = pick(legacyAcceptedSuites(opts, 'SSLv2'), ch.sslv2CipherKinds, serverPref);
    // draft-hickman §2.6: the server lists the kinds both support; the client chooses.
    return kinds.length > 0 ? { kind: 'sslv2', cipherKinds: kinds } : { kind: 'sslv2-error', code: SSLV2.errNoCipher };
  };

  if (ch.format === 'sslv2' && clientMax === VERSION_CODES.SSLv2) {
    return sslv2Answer() ?? { kind: 'alert', description: ALERT.protocolVersion, recordVersion: VERSION_CODES.SSLv3 };
  }
  const version = [...ours].reverse().find((v) => VERSION_CODES[v] <= clientMax);
  if (version === undefined) {
    return sslv2Answer() ?? { kind: 'alert', description: ALERT.protocolVersion, recordVersion: alertVersion };
  }
  const best = ours.at(-1);
  if (opts.fallbackScsv === true && ch.fallbackScsv && best !== undefined && VERSION_CODES[best] > clientMax) {
    return { kind: 'alert', description: ALERT.inappropriateFallback, recordVersion: VERSION_CODES[version] };
  }
  const ecGroups = opts.ecdhGroups ?? [23, 24, 25]; // BSI TR-02102-2 groups only, so no incidental finding
  // RFC 8422 §5.1.1: without supported_groups the client is assumed to support any curve.
  const commonGroups = ch.groups === null ? ecGroups : pick(ecGroups, ch.groups, serverPref);
  const candidates = legacyAcceptedSuites(opts, version).filter((c) => {
    const s = suiteByCode(c);
    return s !== undefined && (s.kx.startsWith('ECDHE') ? commonGroups.length > 0 : true);
  });
  const chosen = pick(candidates, ch.cipherSuites, serverPref)[0];
  const suite = chosen === undefined ? undefined : suiteByCode(chosen);
  if (suite === undefined) {
    return { kind: 'alert', description: ALERT.handshakeFailure, recordVersion: VERSION_CODES[version] };
  }
  return { kind: 'tls', version, suite, group: suite.kx.startsWith('ECDHE') ? (commonGroups[0] ?? 23) : null };
}

function serverKeyExchange(
  opts: LegacyTlsOptions,
  ch: ClientHelloInfo,
  d: Extract<Decision, { kind: 'tls' }>,
): Buffer | null {
  const s = d.suite;
  const anonymous = s.anon || s.auth === 'PSK';
  const sig = signatureFor(s, ch);
  const sigOpts = { version: d.version, anonymous, signatureScheme: sig.scheme, signatureLength: sig.length };
  const dh = (): { kind: 'dhe'; prime: Buffer; generator: Buffer } => ({
    kind: 'dhe',
    prime: dhPrime(s.export ? 512 : (opts.dhPrimeBits ?? 3072)),
    generator: Buffer.from([2]),
  });
  const rv = Math.min(VERSION_CODES[d.version], VERSION_CODES['TLSv1.2']);
  // RFC 4279 §2 / RFC 5489 §2: PSK variants prefix the params with a psk_identity_hint.
  const pskParams = (params: Buffer): Buffer =>
    encodeRecords(
      CONTENT_TYPE.handshake,
      rv,
      handshakeMessage(HANDSHAKE_TYPE.serverKeyExchange, Buffer.concat([vec16(), params])),
    );
  switch (s.kx) {
    case 'DHE':
      return buildServerKeyExchange(dh(), sigOpts);
    case 'ECDHE':
      return buildServerKeyExchange(
        { kind: 'ecdhe', group: d.group ?? 23, publicKey: ecPoint(d.group ?? 23) },
        sigOpts,
      );
    case 'RSA':
      if (!s.export) return null;
      // RFC 2246 §7.4.3: a 512-bit temporary RSA key for export suites.
      return buildServerKeyExchange(
        { kind: 'rsa-export', modulus: Buffer.concat([u8(0xc0 | randomBytes(1)[0]!), randomBytes(63)]) },
        sigOpts,
      );
    case 'DHE_PSK': {
      const p = dh();
      return pskParams(Buffer.concat([vec16(p.prime), vec16(p.generator), vec16(randomBytes(p.prime.length))]));
    }
    case 'ECDHE_PSK': {
      const g = d.group ?? 23;
      return pskParams(Buffer.concat([u8(3), u16(g), vec8(ecPoint(g))]));
    }
    default:
      return null;
  }
}

function heartbeatEchoed(opts: LegacyTlsOptions, ch: ClientHelloInfo, version: VersionName): boolean {
  return (opts.heartbeat ?? 'off') !== 'off' && ch.heartbeat && version !== 'SSLv3';
}

/** Fills a fake Heartbleed "leak": a fixed, recognisable marker, never process memory. */
export const HEARTBLEED_MARKER = Buffer.from('POSTERN-TESTBED-HEARTBLEED-MARKER;', 'ascii');

/**
 * The answer to one heartbeat record (RFC 6520 §4), or null to discard it. 'on' follows the RFC:
 * a request whose payload_length does not fit (payload + ≥16 bytes of padding) is silently
 * discarded; 'heartbleed' echoes payload_length bytes like unpatched OpenSSL 1.0.1a–f.
 */
export function heartbeatAnswer(mode: 'on' | 'heartbleed', message: Buffer): Buffer | null {
  if (message.length < 3 || message[0] !== 1) return null; // not a heartbeat_request
  const claimed = message.readUInt16BE(1);
  const fits = 3 + claimed + 16 <= message.length;
  if (!fits && mode !== 'heartbleed') return null;
  const payload = Buffer.alloc(claimed);
  const real = message.subarray(3, 3 + claimed);
  real.copy(payload);
  for (let i = real.length; i < claimed; i++) payload[i] = HEARTBLEED_MARKER[i % HEARTBLEED_MARKER.length] as number;
  return Buffer.concat([u8(2), u16(claimed), payload, randomBytes(16)]); // heartbeat_response
}

/** The bytes to send for a decision. */
function responseBytes(opts: LegacyTlsOptions, ch: ClientHelloInfo, d: Decision): Buffer {
  switch (d.kind) {
    case 'alert':
      return buildAlert(ALERT_LEVEL.fatal, d.description, d.recordVersion);
    case 'sslv2-error':
      return buildSslv2Error(d.code);
    case 'sslv2':
      return buildSslv2ServerHello({
        certificate: opts.certificates[0] ?? Buffer.alloc(0),
        cipherKinds: d.cipherKinds,
      });
    case 'tls': {
      const rv = VERSION_CODES[d.version];
      const exts: { type: number; data: Buffer }[] = [];
      if ((opts.secureRenegotiation ?? true) && (ch.renegotiationInfo || ch.renegotiationScsv)) {
        exts.push({ type: EXT.renegotiationInfo, data: vec8() }); // RFC 5746 §3.6
      }
      if (d.group !== null && ch.ecPointFormats !== null) exts.push({ type: EXT.ecPointFormats, data: vec8(u8(0)) });
      // Like a maintained pre-1.3 server, echo RFC 7627 extended master secret, and RFC 7366
      // encrypt-then-MAC when a CBC suite was picked (§3: never for AEAD/stream suites), so
      // legacy testbed servers show only the weaknesses they were built with.
      if (d.version !== 'SSLv3' && ch.extendedMasterSecret)
        exts.push({ type: EXT.extendedMasterSecret, data: Buffer.alloc(0) });
      if (d.version !== 'SSLv3' && ch.encryptThenMac && d.suite.cbc)
        exts.push({ type: EXT.encryptThenMac, data: Buffer.alloc(0) });
      // RFC 6520 §2: HeartbeatMode peer_allowed_to_send(1). Extensions do not exist in SSLv3.
      if (heartbeatEchoed(opts, ch, d.version)) exts.push({ type: EXT.heartbeat, data: u8(1) });
      // RFC 5246 §7.4.1.3: the server picks one of the client's compression methods; 1 = DEFLATE (RFC 3749).
      const compressionMethod = opts.compression === true && ch.compressionMethods.includes(1) ? 1 : 0;
      const parts = [
        buildServerHello({ version: d.version, cipherSuite: d.suite.code, compressionMethod, extensions: exts }),
      ];
      if (needsCertificate(d.suite)) parts.push(buildCertificate(opts.certificates, rv));
      const ske = serverKeyExchange(opts, ch, d);
      if (ske !== null) parts.push(ske);
      parts.push(buildServerHelloDone(rv));
      return Buffer.concat(parts);
    }
  }
}

/**
 * Takes over a socket positioned before the ClientHello (after STARTTLS or at accept for implicit
 * TLS), answers with a ServerHello flight or an alert, then waits for the peer to close (closing
 * itself after ~5 s). Never throws; malformed input → fatal alert + close.
 */
export function serveLegacyHandshake(socket: net.Socket, opts: LegacyTlsOptions, initialBytes?: Buffer): void {
  let buf = initialBytes ?? Buffer.alloc(0);
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  /** Set once a flight that negotiated heartbeats went out: later heartbeat records are answered. */
  let heartbeat: { mode: 'on' | 'heartbleed'; recordVersion: number } | null = null;

  const arm = (ms: number): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => socket.destroy(), ms);
    timer.unref();
  };
  const send = (bytes: Buffer, close: boolean): void => {
    try {
      if (close) socket.end(bytes);
      else socket.write(bytes);
    } catch {
      socket.destroy();
    }
  };
  const tryAnswer = (): void => {
    if (answered) return;
    let ch: ClientHelloInfo;
    try {
      const len = clientHelloLength(buf);
      if (len === null) {
        if (buf.length > MAX_CLIENT_HELLO_BYTES) throw new Error('ClientHello too large');
        return;
      }
      ch = parseClientHello(buf.subarray(0, len));
    } catch {
      answered = true;
      send(buildAlert(ALERT_LEVEL.fatal, ALERT.decodeError, VERSION_CODES['TLSv1.0']), true);
      arm(1000);
      return;
    }
    answered = true;
    buf = Buffer.alloc(0);
    try {
      const decision = decideLegacyResponse(opts, ch);
      const fatal = decision.kind === 'alert' || decision.kind === 'sslv2-error';
      if (decision.kind === 'tls' && heartbeatEchoed(opts, ch, decision.version) && opts.heartbeat !== 'off') {
        heartbeat = { mode: opts.heartbeat ?? 'on', recordVersion: VERSION_CODES[decision.version] };
      }
      send(responseBytes(opts, ch, decision), fatal);
      arm(fatal ? 1000 : (opts.idleMs ?? 5000));
    } catch {
      send(buildAlert(ALERT_LEVEL.fatal, ALERT.internalError, VERSION_CODES['TLSv1.0']), true);
      arm(1000);
    }
  };

  let finished = false;
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    if (timer !== undefined) clearTimeout(timer);
  });
  socket.on('end', () => socket.end());
  // Heartbeat records after our flight (RFC 6520 §3: allowed at any time; this responder answers
  // them in plaintext, as a real server does before ChangeCipherSpec). Any other record ends it.
  const onRecordsAfterFlight = (hb: { mode: 'on' | 'heartbleed'; recordVersion: number }): boolean => {
    while (buf.length >= 5) {
      const type = buf[0] as number;
      const len = buf.readUInt16BE(3);
      if (type !== CONTENT_TYPE.heartbeat || len > 16384) return false;
      if (buf.length < 5 + len) return true;
      const answer = heartbeatAnswer(hb.mode, buf.subarray(5, 5 + len));
      buf = buf.subarray(5 + len);
      if (answer !== null) send(encodeRecords(CONTENT_TYPE.heartbeat, hb.recordVersion, answer), false);
    }
    return true;
  };
  socket.on('data', (d: Buffer) => {
    if (answered && heartbeat !== null && !finished) {
      buf = Buffer.concat([buf, d]);
      if (onRecordsAfterFlight(heartbeat)) return;
    }
    if (answered) {
      // The client's next flight: this responder never completes a handshake, so end it the way a
      // real server that cannot go on would — a fatal alert now rather than an idle wait, so a
      // client (e.g. the scanner's full handshake) learns at once instead of timing out.
      if (!finished) {
        finished = true;
        send(buildAlert(ALERT_LEVEL.fatal, ALERT.handshakeFailure, VERSION_CODES['TLSv1.0']), true);
        arm(1000);
      }
      return;
    }
    buf = Buffer.concat([buf, d]);
    tryAnswer();
  });
  arm(HELLO_TIMEOUT_MS);
  socket.resume();
  if (buf.length > 0) queueMicrotask(tryAnswer);
}
