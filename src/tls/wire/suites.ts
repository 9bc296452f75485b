/**
 * TLS cipher-suite registry: every IANA-assigned suite plus the non-IANA ones servers still answer
 * with (pre-RFC 7905 ChaCha20, CryptoPro GOST, 56-bit export, Netscape FIPS, CECPQ1) and the SSL 2.0
 * cipher kinds. The data lives in the generated `suites-data.ts` (from
 * `scripts/data/cipher-suites.txt` via `scripts/gen-cipher-suites.ts`); this module is the typed
 * API over it.
 */
import { SUITES_DATA } from './suites-data.ts';
import type { CipherSuite, ProtocolVersion } from './suite-types.ts';

export type {
  Authentication,
  CipherMode,
  CipherSuite,
  KeyExchange,
  ProtocolVersion,
  SuiteFamily,
} from './suite-types.ts';

/** Every known suite, sorted by code point. */
export const CIPHER_SUITES: readonly CipherSuite[] = SUITES_DATA;

const VERSION_ORDER: readonly ProtocolVersion[] = ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

const byCode = new Map<number, CipherSuite>();
for (const s of CIPHER_SUITES) {
  // Shared by every caller: make accidental mutation throw rather than corrupt the registry.
  Object.freeze(s.aliases);
  Object.freeze(s);
  byCode.set(s.code, s);
}

// Name keys are lower-cased. When two suites share a name (OpenSSL reuses 'RC4-MD5' and friends for
// SSLv2 kinds) the earlier tier wins: IANA names, then the TLS suites' own names, then SSLv2's, then
// aliases; inside a tier the lower code point wins.
const byName = new Map<string, CipherSuite>();
function indexNames(pick: (s: CipherSuite) => readonly (string | null)[]): void {
  for (const s of CIPHER_SUITES) {
    for (const n of pick(s)) {
      if (n === null) continue;
      const key = n.toLowerCase();
      if (!byName.has(key)) byName.set(key, s);
    }
  }
}
indexNames((s) => [s.iana]);
indexNames((s) => (s.family === 'sslv2' ? [] : [s.name, s.openssl]));
indexNames((s) => (s.family === 'sslv2' ? [s.name, s.openssl] : []));
indexNames((s) => s.aliases);

const byVersion = new Map<ProtocolVersion, readonly CipherSuite[]>();
for (const v of VERSION_ORDER) {
  const rank = VERSION_ORDER.indexOf(v);
  byVersion.set(
    v,
    Object.freeze(
      CIPHER_SUITES.filter(
        (s) =>
          s.family !== 'scsv' &&
          VERSION_ORDER.indexOf(s.minVersion) <= rank &&
          rank <= VERSION_ORDER.indexOf(s.maxVersion),
      ),
    ),
  );
}

/** The suite with this code point (2-byte TLS, or 3-byte SSLv2 cipher kind), if known. */
export function suiteByCode(code: number): CipherSuite | undefined {
  return byCode.get(code);
}

/** Look up by IANA name, OpenSSL name or alias, case-insensitively. */
export function suiteByName(name: string): CipherSuite | undefined {
  return byName.get(name.toLowerCase());
}

/** '0xC030' style: uppercase hex, 4 digits for TLS code points, 6 for SSLv2 cipher kinds. */
export function formatSuiteCode(code: number): string {
  const width = code > 0xffff ? 6 : 4;
  return '0x' + code.toString(16).toUpperCase().padStart(width, '0');
}

/** Real suites (no SCSVs) that a server may select when speaking protocol version `v`. */
export function suitesForVersion(v: ProtocolVersion): readonly CipherSuite[] {
  return byVersion.get(v) ?? [];
}
