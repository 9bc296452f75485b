/**
 * ClientHello builder (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) and SSLv2 CLIENT-HELLO builder
 * (draft-hickman-netscape-ssl-00 §2.6).
 *
 * Written by hand rather than through node:tls because probing needs byte-level control that
 * node:tls / OpenSSL 3 cannot give: offering legacy suites OpenSSL no longer compiles in (EXPORT,
 * RC4, DES, anon, SSLv2/SSLv3), the exact suite/group/extension lists and their order, SCSVs,
 * and hellos that force a HelloRetryRequest. The probe never completes these handshakes; it only
 * reads what the server answers (see server-flight.ts).
 */
import { generateKeyPairSync, createECDH, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { PosternError } from '../../core/errors.ts';
import { EXT, HANDSHAKE_TYPE, CONTENT_TYPE, SCSV, VERSION_CODES, compareVersions } from './constants.ts';
import type { VersionName } from './constants.ts';
import { encodeRecords, extension, handshakeMessage, u16, u16List, u8, vec16, vec8 } from './record.ts';

export interface KeyShareEntry {
  group: number;
  keyExchange: Buffer;
}

export interface ClientHelloOptions {
  /** Highest version offered. For TLSv1.3 legacy_version is 0x0303 and supported_versions lists 1.3 (RFC 8446 §4.2.1). */
  version: VersionName;
  /** Further versions for supported_versions (sent whenever given, even below TLS 1.3). */
  supportedVersions?: VersionName[];
  /** 2-byte code points, offered in this order. */
  suites: number[];
  /** SNI host name (RFC 6066 §3); ignored for IP literals. */
  serverName?: string;
  /** supported_groups; default: a broad list appropriate for `version`. */
  groups?: number[];
  /** TLS 1.3 only. 'auto' (default): a real key share for the first group we can generate. [] forces a HelloRetryRequest. */
  keyShares?: KeyShareEntry[] | 'auto';
  /** signature_algorithms; default: broad list incl. legacy SHA-1. Only sent when offering TLS 1.2 or higher. */
  signatureAlgorithms?: number[];
  /** ec_point_formats (RFC 8422 §5.1.2); default true when any group is offered. */
  ecPointFormats?: boolean;
  /** Empty renegotiation_info extension (RFC 5746 §3.4); default true. For SSLv3 the SCSV is sent instead. */
  renegotiationInfo?: boolean;
  /** TLS_EMPTY_RENEGOTIATION_INFO_SCSV 0x00FF (RFC 5746) / TLS_FALLBACK_SCSV 0x5600 (RFC 7507), appended. */
  scsv?: { renegotiation?: boolean; fallback?: boolean };
  /** RFC 7627; default true. */
  extendedMasterSecret?: boolean;
  /** RFC 7366; default true. */
  encryptThenMac?: boolean;
  /** RFC 5077; default true. */
  sessionTicket?: boolean;
  /** RFC 6520; default false. */
  heartbeat?: boolean;
  /** OCSP status_request (RFC 6066 §8); default true. */
  statusRequest?: boolean;
  /** Default [0]; [1, 0] to test DEFLATE (CRIME). */
  compressionMethods?: number[];
  alpn?: string[];
  /** Pad the ClientHello to 512 bytes (RFC 7685), working around the F5 256..511-byte hang. */
  padding?: boolean;
  /** 32 bytes; default random. */
  random?: Buffer;
  /** Default: 32 random bytes for TLS 1.3 (middlebox compatibility, RFC 8446 §D.4), empty otherwise. */
  sessionId?: Buffer;
}

/** EC groups first so that EC suites work with any server; no FFDHE below TLS 1.3 (see defaultGroups). */
const GROUPS_TLS12: readonly number[] = [
  29, 23, 24, 25, 30, 26, 27, 28, 22, 21, 20, 19, 18, 14, 13, 11, 12, 9, 10, 6, 7, 8, 4, 5, 1, 2, 3, 15, 16, 17,
];
const GROUPS_TLS13: readonly number[] = [29, 23, 24, 25, 30, 31, 32, 33, 256, 257, 258, 259, 260];

const DEFAULT_SIGALGS: readonly number[] = [
  0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x081a, 0x081b, 0x081c, 0x0804, 0x0805, 0x0806, 0x0809, 0x080a, 0x080b,
  0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202,
];

/**
 * Default supported_groups. Finite-field groups are offered only when every offered version is
 * TLS 1.3: below 1.3, listing them switches RFC 7919 servers to "named FFDHE or no DHE at all",
 * which would hide the server's real DHE parameters from the probe.
 */
function defaultGroups(offered: readonly VersionName[]): number[] {
  if (offered.every((v) => v === 'TLSv1.3')) return [...GROUPS_TLS13];
  const out = [...GROUPS_TLS12];
  if (offered.includes('TLSv1.3')) out.push(31, 32, 33);
  return out;
}

/** Generates a real public key share (RFC 8446 §4.2.8.2) for the groups node:crypto can do. */
export function generateKeyShare(group: number): KeyShareEntry | undefined {
  switch (group) {
    case 29:
    case 30: {
      const { publicKey } = group === 29 ? generateKeyPairSync('x25519') : generateKeyPairSync('x448');
      const der = publicKey.export({ type: 'spki', format: 'der' });
      // The raw key is the SPKI's trailing BIT STRING content (32 / 56 bytes).
      return { group, keyExchange: Buffer.from(der.subarray(der.length - (group === 29 ? 32 : 56))) };
    }
    case 23:
    case 24:
    case 25: {
      const curve = group === 23 ? 'prime256v1' : group === 24 ? 'secp384r1' : 'secp521r1';
      const ecdh = createECDH(curve);
      return { group, keyExchange: ecdh.generateKeys() }; // uncompressed point, RFC 8446 §4.2.8.2
    }
    default:
      return undefined;
  }
}

function sniName(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const host = name.replace(/\.$/, '');
  if (host === '' || isIP(host.replace(/^\[|\]$/g, '')) !== 0) return undefined; // RFC 6066 §3: no IP literals
  return host;
}

function badOption(message: string): PosternError {
  return new PosternError('wire-encode', `buildClientHello: ${message}`);
}

/** Builds a complete ClientHello as TLS record(s), fragmented at 2^14 bytes. */
export function buildClientHello(opts: ClientHelloOptions): Buffer {
  if (opts.version === 'SSLv2') throw badOption('use buildSslv2ClientHello for SSLv2');
  const offered = [...new Set<VersionName>([opts.version, ...(opts.supportedVersions ?? [])])]
    .filter((v) => v !== 'SSLv2')
    .sort((a, b) => compareVersions(b, a));
  const max = offered[0] ?? opts.version;
  const sslv3 = max === 'SSLv3';
  const tls13 = offered.includes('TLSv1.3');
  const legacyVersion = Math.min(VERSION_CODES[max], VERSION_CODES['TLSv1.2']);

  const random = opts.random ?? randomBytes(32);
  if (random.length !== 32) throw badOption('random must be 32 bytes');
  const sessionId = opts.sessionId ?? (tls13 ? randomBytes(32) : Buffer.alloc(0));
  if (sessionId.length > 32) throw badOption('session id longer than 32 bytes');

  const renegInfo = opts.renegotiationInfo ?? true;
  const suites = [...opts.suites];
  // RFC 5746 §3.4: SSLv3 hellos carry the SCSV rather than an extension.
  const renegScsv = opts.scsv?.renegotiation ?? (sslv3 && renegInfo);
  if (renegScsv && !suites.includes(SCSV.emptyRenegotiationInfo)) suites.push(SCSV.emptyRenegotiationInfo);
  if (opts.scsv?.fallback === true && !suites.includes(SCSV.fallback)) suites.push(SCSV.fallback);
  if (suites.length === 0) throw badOption('no cipher suites'); // cipher_suites<2..2^16-2>
  if (suites.length > 0x7fff) throw badOption('too many cipher suites');
  const compression = opts.compressionMethods ?? [0];
  if (compression.length === 0 || compression.length > 255) throw badOption('need 1..255 compression methods');

  const exts: Buffer[] = [];
  // Extensions are omitted for SSLv3: SSLv3-only servers predate them and some reject any.
  if (!sslv3) {
    const host = sniName(opts.serverName);
    if (host !== undefined) {
      // RFC 6066 §3: ServerNameList with one host_name(0) entry.
      exts.push(extension(EXT.serverName, vec16(u8(0), vec16(Buffer.from(host, 'ascii')))));
    }
    if (renegInfo) exts.push(extension(EXT.renegotiationInfo, vec8())); // empty renegotiated_connection
    const groups = opts.groups ?? defaultGroups(offered);
    if (groups.length > 0) exts.push(extension(EXT.supportedGroups, u16List(groups)));
    if (opts.ecPointFormats ?? groups.length > 0) exts.push(extension(EXT.ecPointFormats, vec8(u8(0))));
    if (opts.sessionTicket ?? true) exts.push(extension(EXT.sessionTicket));
    if (opts.alpn !== undefined && opts.alpn.length > 0) {
      exts.push(extension(EXT.alpn, vec16(...opts.alpn.map((p) => vec8(Buffer.from(p, 'utf8'))))));
    }
    // status_request: CertificateStatusType ocsp(1), empty responder_id_list and extensions.
    if (opts.statusRequest ?? true) exts.push(extension(EXT.statusRequest, Buffer.from([1, 0, 0, 0, 0])));
    // RFC 5246 §7.4.1.4.1: only meaningful when offering TLS 1.2 or higher.
    if (compareVersions(max, 'TLSv1.2') >= 0) {
      exts.push(extension(EXT.signatureAlgorithms, u16List(opts.signatureAlgorithms ?? DEFAULT_SIGALGS)));
    }
    if (opts.encryptThenMac ?? true) exts.push(extension(EXT.encryptThenMac));
    if (opts.extendedMasterSecret ?? true) exts.push(extension(EXT.extendedMasterSecret));
    if (opts.heartbeat === true) exts.push(extension(EXT.heartbeat, u8(1))); // peer_allowed_to_send
    if (tls13 || opts.supportedVersions !== undefined) {
      exts.push(extension(EXT.supportedVersions, vec8(...offered.map((v) => u16(VERSION_CODES[v])))));
    }
    if (tls13) {
      exts.push(extension(EXT.pskKeyExchangeModes, vec8(u8(1)))); // psk_dhe_ke
      let shares: KeyShareEntry[];
      if (opts.keyShares === undefined || opts.keyShares === 'auto') {
        const first = groups.map(generateKeyShare).find((k) => k !== undefined);
        shares = first === undefined ? [] : [first];
      } else {
        shares = opts.keyShares;
      }
      exts.push(
        extension(EXT.keyShare, vec16(...shares.map((k) => Buffer.concat([u16(k.group), vec16(k.keyExchange)])))),
      );
    }
  }

  const head = Buffer.concat([
    u16(legacyVersion),
    random,
    vec8(sessionId),
    u16List(suites),
    vec8(Buffer.from(compression)),
  ]);
  let extBlock = Buffer.concat(exts);
  if (opts.padding === true) {
    // RFC 7685 §4: pad so the handshake message is at least 512 bytes.
    const current = 4 + head.length + 2 + extBlock.length;
    // A hello of 508..511 bytes gets an empty padding extension, which lifts it past 511.
    if (current < 512) {
      extBlock = Buffer.concat([extBlock, extension(EXT.padding, Buffer.alloc(Math.max(0, 512 - current - 4)))]);
    }
  }
  const body = extBlock.length > 0 || !sslv3 ? Buffer.concat([head, vec16(extBlock)]) : head;
  const recordVersion = sslv3 ? VERSION_CODES.SSLv3 : VERSION_CODES['TLSv1.0'];
  return encodeRecords(CONTENT_TYPE.handshake, recordVersion, handshakeMessage(HANDSHAKE_TYPE.clientHello, body));
}

/**
 * Builds an SSLv2 CLIENT-HELLO with a 2-byte record header (draft-hickman §2.6). With
 * `version` >= 0x0300 and kinds 0x00XXYY it is the SSLv2-compatible hello of RFC 5246 §E.2.
 */
export function buildSslv2ClientHello(opts: { ciphers: number[]; challenge?: Buffer; version?: number }): Buffer {
  const challenge = opts.challenge ?? randomBytes(16);
  if (challenge.length < 16 || challenge.length > 32) throw badOption('SSLv2 challenge must be 16..32 bytes');
  if (opts.ciphers.length === 0) throw badOption('no SSLv2 cipher kinds');
  const specs = Buffer.alloc(opts.ciphers.length * 3);
  opts.ciphers.forEach((k, i) => specs.writeUIntBE(k & 0xffffff, i * 3, 3));
  const msg = Buffer.concat([
    u8(1), // MSG-CLIENT-HELLO
    u16(opts.version ?? VERSION_CODES.SSLv2),
    u16(specs.length),
    u16(0), // no session id
    u16(challenge.length),
    specs,
    challenge,
  ]);
  if (msg.length > 0x7fff) throw badOption('SSLv2 hello longer than a 2-byte header allows');
  return Buffer.concat([u16(0x8000 | msg.length), msg]);
}
