/** What a server-side TLS handshake produced, in the shape ArrivalInfo['tls'] records. */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { ArrivalInfo } from '../../core/envelope.ts';

/** Symmetric key bits of a cipher suite, from its name (Postfix prints them as "256/256 bits"). */
export function cipherBits(name: string): number | null {
  const n = name.toUpperCase();
  if (/CHACHA20|AES_?256|CAMELLIA_?256|ARIA_?256/.test(n)) return 256;
  if (/AES_?128|CAMELLIA_?128|ARIA_?128/.test(n)) return 128;
  if (/3DES|DES_CBC3|DES-CBC3/.test(n)) return 168;
  return null;
}

/** A certificate subject as `CN=alice, O=Example` (fields in the order node reports them). */
export function formatSubject(subject: PeerCertificate['subject'] | undefined): string {
  if (subject === undefined || subject === null) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(subject as unknown as Record<string, string | string[]>)) {
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${k}=${one}`);
  }
  return parts.join(', ');
}

export interface HandshakeOutcome {
  tls: NonNullable<ArrivalInfo['tls']>;
  /** Verified client certificate (chain checked against the configured CAs), if any. */
  verifiedCert: PeerCertificate | null;
  /** A certificate was presented but did not verify. */
  unverifiedCert: boolean;
}

/** Read protocol, cipher, bits and client certificate from an established TLS socket. */
export function describeTls(sock: TLSSocket, certsRequested: boolean): HandshakeOutcome {
  const c = sock.getCipher();
  const cipher = c.standardName !== undefined && c.standardName !== '' ? c.standardName : c.name;
  let verifiedCert: PeerCertificate | null = null;
  let unverifiedCert = false;
  if (certsRequested) {
    const cert = sock.getPeerCertificate();
    if (cert !== null && Object.keys(cert).length > 0) {
      // rejectUnauthorized is false so the session survives a bad certificate; trust comes only
      // from `authorized` (chain verified against `ca`).
      if (sock.authorized) verifiedCert = cert;
      else unverifiedCert = true;
    }
  }
  return {
    tls: {
      protocol: sock.getProtocol() ?? 'unknown',
      cipher,
      bits: cipherBits(cipher),
      clientCertSubject: verifiedCert === null ? null : formatSubject(verifiedCert.subject),
    },
    verifiedCert,
    unverifiedCert,
  };
}
