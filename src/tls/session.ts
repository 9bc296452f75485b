/**
 * NegotiatedSession: what a completed handshake actually produced, as plain data. Shared by the
 * scanner (graded by tls/evaluate) and the gateway (checked by its policy engine).
 */
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

export interface NegotiatedSession {
  /** 'TLSv1.3', 'TLSv1.2', … as node reports. */
  protocol: string;
  /** From tlsSocket.getCipher(). */
  cipher: { name: string; standardName: string; version: string };
  /** Key exchange group: 'X25519', 'secp256r1', 'X25519MLKEM768', 'ffdhe2048' or 'DH 2048'; null for static RSA. */
  group: string | null;
  /** Size of the ephemeral key in bits, when node reports one (hybrid PQ groups: null). */
  ephemeralKeyBits: number | null;
  /**
   * DER certificates, leaf first. With `peerChainSource: 'wire'` exactly the certificate_list the
   * server sent (order, duplicates and extras preserved). With 'issuer-walk' (capture disabled,
   * session resumption, or a capture that could not be decoded) node's reconstructed chain from
   * getPeerCertificate(true): ordered by issuer, unrelated certificates dropped, and it may end
   * in a root taken from the local trust store rather than from the server.
   */
  peerChain: Buffer[];
  peerChainSource: 'wire' | 'issuer-walk';
  /** Node's PKIX verdict against the CA set used (hostname is NOT part of it; see cert/hostname). */
  authorized: boolean;
  authorizationError: string | null;
  /** SNI we sent, or null. */
  servername: string | null;
  alpn: string | null;
  sessionReused: boolean;
}

/** OpenSSL curve names → TLS SupportedGroups names (RFC 8446 §4.2.7). */
const GROUP_NAMES: Record<string, string> = {
  prime256v1: 'secp256r1',
  secp384r1: 'secp384r1',
  secp521r1: 'secp521r1',
};

/** Name the key exchange group from getEphemeralKeyInfo(). */
export function describeGroup(info: unknown): { group: string | null; bits: number | null } {
  if (info === null || typeof info !== 'object') return { group: null, bits: null };
  const { type, name, size } = info as { type?: unknown; name?: unknown; size?: unknown };
  const bits = typeof size === 'number' && size > 0 ? size : null;
  const n = typeof name === 'string' && name !== '' ? name : null;
  if (type === 'DH') return { group: n ?? (bits === null ? 'DH' : `DH ${bits}`), bits };
  if (type === 'ECDH' || type === 'TLSGroup') return { group: n === null ? null : (GROUP_NAMES[n] ?? n), bits };
  return { group: n, bits };
}

/** Node's reconstructed chain (see NegotiatedSession.peerChain for its limits). */
export function issuerWalkChain(s: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let c = s.getPeerCertificate(true) as Partial<DetailedPeerCertificate> | undefined;
  while (c?.raw !== undefined && c.fingerprint256 !== undefined && !seen.has(c.fingerprint256) && out.length < 16) {
    seen.add(c.fingerprint256);
    out.push(Buffer.from(c.raw));
    c = c.issuerCertificate; // self-signed roots point at themselves; `seen` stops the loop
  }
  return out;
}

/** Read the negotiated parameters of a connected TLSSocket. */
export function readSession(
  s: TLSSocket,
  chain: { peerChain: Buffer[]; source: 'wire' | 'issuer-walk' },
  servername: string | null,
): NegotiatedSession {
  const c = s.getCipher();
  const { group, bits } = describeGroup(s.getEphemeralKeyInfo());
  const err = s.authorizationError as unknown;
  return {
    protocol: s.getProtocol() ?? 'unknown',
    cipher: { name: c.name, standardName: c.standardName, version: c.version },
    group,
    ephemeralKeyBits: bits,
    peerChain: chain.peerChain,
    peerChainSource: chain.source,
    authorized: s.authorized,
    authorizationError: err instanceof Error ? err.message : typeof err === 'string' ? err : null,
    servername,
    alpn: typeof s.alpnProtocol === 'string' ? s.alpnProtocol : null,
    sessionReused: s.isSessionReused(),
  };
}
