/**
 * Iterative-removal cipher enumeration (the method of testssl.sh's `-E`): offer every candidate,
 * record the suite the server picks, remove it, offer the rest again, until the server refuses.
 * Every accepted suite is found in (accepted + 1) connections per protocol version, and because
 * the server picks from what is left, the pick order is its preference order when it enforces one.
 *
 * Written by hand (not via node:tls) because OpenSSL 3 cannot offer SSLv3, EXPORT, NULL, RC4,
 * anon, GOST, … suites at all; raw ClientHellos can offer anything.
 */
import { buildClientHello, buildSslv2ClientHello } from '../wire/client-hello.ts';
import type { ClientHelloOptions } from '../wire/client-hello.ts';
import { NAMED_GROUPS } from '../wire/constants.ts';
import type { VersionName } from '../wire/constants.ts';
import type { ServerFlight } from '../wire/server-flight.ts';
import { CIPHER_SUITES, suitesForVersion } from '../wire/suites.ts';
import { exchangeHello } from './hello.ts';
import type { HelloContext, HelloOutcome } from './hello.ts';

/** A ServerFlight that carries a ServerHello. */
export type HelloFlight = Extract<ServerFlight, { kind: 'hello' }>;

export interface VersionEnumeration {
  version: VersionName;
  /** The server answered a hello at this version with a ServerHello of this version. */
  supported: boolean;
  /** Accepted suites in pick order. */
  suites: number[];
  /** Every ServerHello flight received (certificates, key exchange, extensions). */
  flights: HelloFlight[];
  anomalies: string[];
  /** How the last offer ended (alert name, close reason): evidence for reports. */
  lastRefusal: string | null;
}

/** Groups a probe offers by default: every EC/ECX group, then FFDHE, so no ECDHE suite is missed for lack of a shared curve. */
export function defaultGroups(version: VersionName): number[] {
  const tls13 = version === 'TLSv1.3';
  return NAMED_GROUPS.filter((g) => {
    if (g.kind === 'hybrid' || g.kind === 'pq') return tls13;
    // RFC 8446 §4.2.7: the legacy sect*/brainpool-TLS1.2 curves are not defined for TLS 1.3.
    if (tls13) return g.kind === 'ff' || g.kind === 'ecx' || [23, 24, 25, 31, 32, 33].includes(g.code);
    return g.code < 31 || g.kind === 'ff';
  }).map((g) => g.code);
}

/**
 * Candidate suites for a version. For SSLv3–TLS 1.2 we offer every TLS ≤ 1.2 suite, not only
 * those the RFCs allow at that version: misconfigured servers do negotiate e.g. EXPORT suites at
 * TLS 1.2 or GCM suites at TLS 1.0, and that is exactly what an audit must find (testssl.sh offers
 * its whole list per protocol for the same reason). TLS 1.3 and SSLv2 have their own suites.
 */
export function candidateSuites(version: VersionName): number[] {
  if (version === 'SSLv2' || version === 'TLSv1.3') return suitesForVersion(version).map((s) => s.code);
  return CIPHER_SUITES.filter((s) => s.family === 'tls').map((s) => s.code);
}

/** Builds the hello for one step of the enumeration. */
export function helloFor(
  version: VersionName,
  suites: number[],
  target: { servername?: string },
  extra: Partial<ClientHelloOptions> = {},
): Buffer {
  return buildClientHello({
    version,
    suites,
    groups: defaultGroups(version),
    ...(target.servername === undefined ? {} : { serverName: target.servername }),
    ...extra,
  });
}

function describeRefusal(o: HelloOutcome): string {
  if (o.kind === 'flight') return o.flight.kind === 'alert' ? `alert ${o.flight.name}` : o.flight.kind;
  return o.reason;
}

/** Enumerates the suites a server accepts at one TLS/SSLv3 version. */
export async function enumerateVersion(
  ctx: HelloContext,
  version: VersionName,
  candidates = candidateSuites(version),
): Promise<VersionEnumeration> {
  const result: VersionEnumeration = {
    version,
    supported: false,
    suites: [],
    flights: [],
    anomalies: [],
    lastRefusal: null,
  };
  let remaining = [...candidates];
  // Cap the loop: a server cannot accept more suites than we offer.
  for (let step = 0; remaining.length > 0 && step <= candidates.length; step++) {
    const outcome = await exchangeHello(ctx, helloFor(version, remaining, ctx.target), {
      stopAfterServerHello: version === 'TLSv1.3',
    });
    if (outcome.kind !== 'flight' || outcome.flight.kind !== 'hello') {
      result.lastRefusal = describeRefusal(outcome);
      break;
    }
    const flight = outcome.flight;
    const { hello } = flight;
    if (hello.version !== version) {
      // The server answered with another version: it does not speak this one (or, if it did
      // before, it is inconsistent).
      if (result.suites.length > 0)
        result.anomalies.push(`${version}: server switched to ${hello.version ?? 'unknown'} after accepting suites`);
      result.lastRefusal = `server answered ${hello.version ?? 'unknown version'}`;
      break;
    }
    if (!remaining.includes(hello.cipherSuite)) {
      result.anomalies.push(
        `${version}: server picked suite 0x${hello.cipherSuite.toString(16).padStart(4, '0')} that was not offered`,
      );
      break;
    }
    result.supported = true;
    result.suites.push(hello.cipherSuite);
    result.flights.push(flight);
    remaining = remaining.filter((c) => c !== hello.cipherSuite);
  }
  return result;
}

/** SSLv2: the SERVER-HELLO lists every cipher kind the server shares with us, so one connection suffices. */
export async function enumerateSslv2(
  ctx: HelloContext,
  candidates = candidateSuites('SSLv2'),
): Promise<VersionEnumeration> {
  const result: VersionEnumeration = {
    version: 'SSLv2',
    supported: false,
    suites: [],
    flights: [],
    anomalies: [],
    lastRefusal: null,
  };
  const outcome = await exchangeHello(ctx, buildSslv2ClientHello({ ciphers: candidates }));
  if (outcome.kind === 'flight' && outcome.flight.kind === 'sslv2') {
    const offered = new Set(candidates);
    result.suites = outcome.flight.cipherKinds.filter((k) => offered.has(k));
    // RFC-less SSLv2 quirk: a server that answers SERVER-HELLO with no shared cipher does not
    // really support SSLv2 (this is how OpenSSL 1.0.1 with SSLv2 disabled behaved).
    result.supported = result.suites.length > 0;
  } else {
    result.lastRefusal = describeRefusal(outcome);
  }
  return result;
}

/**
 * Does the server impose its own order? Offer the accepted suites reversed: a server that
 * picks its earlier first choice again enforces server preference.
 */
export async function detectServerPreference(
  ctx: HelloContext,
  version: VersionName,
  accepted: number[],
): Promise<boolean | null> {
  if (accepted.length < 2) return null;
  const reversed = [...accepted].reverse();
  const outcome = await exchangeHello(ctx, helloFor(version, reversed, ctx.target), { stopAfterServerHello: true });
  if (outcome.kind !== 'flight' || outcome.flight.kind !== 'hello') return null;
  const pick = outcome.flight.hello.cipherSuite;
  if (pick === accepted[0]) return true;
  if (pick === reversed[0]) return false;
  return null;
}

/**
 * TLS 1.3 groups: offer groups with no key shares at all; a server that supports one of them
 * must answer with a HelloRetryRequest naming its choice (RFC 8446 §4.1.4). Remove and repeat.
 */
export async function enumerateTls13Groups(
  ctx: HelloContext,
  suites: number[],
  candidates = defaultGroups('TLSv1.3'),
): Promise<number[]> {
  const found: number[] = [];
  let remaining = [...candidates];
  for (let step = 0; remaining.length > 0 && step <= candidates.length; step++) {
    const hello = helloFor('TLSv1.3', suites, ctx.target, { groups: remaining, keyShares: [] });
    const outcome = await exchangeHello(ctx, hello, { stopAfterServerHello: true });
    if (outcome.kind !== 'flight' || outcome.flight.kind !== 'hello') break;
    const g = outcome.flight.hello.selectedGroup;
    if (g === null || !remaining.includes(g)) break;
    found.push(g);
    remaining = remaining.filter((c) => c !== g);
  }
  return found;
}

/**
 * TLS 1.2 ECDHE groups: the curve appears in the ServerKeyExchange (RFC 8422 §5.4). With an ECDSA
 * certificate the client's supported_groups must also list the certificate's curve (RFC 8422
 * §5.1), so `keep` (that curve) stays in every offer, last; a server that prefers it over every
 * other group then hides the rest, and the result is a lower bound (TLS 1.3's HRR method has no
 * such blind spot).
 */
export async function enumerateTls12Groups(
  ctx: HelloContext,
  ecdheSuites: number[],
  version: VersionName,
  keep: number | null = null,
): Promise<number[]> {
  const candidates = defaultGroups(version).filter((g) => g < 256);
  const found: number[] = [];
  let remaining = [...candidates];
  for (let step = 0; remaining.length > 0 && step <= candidates.length; step++) {
    const offer = keep === null || remaining.includes(keep) ? remaining : [...remaining, keep];
    const hello = helloFor(version, ecdheSuites, ctx.target, { groups: offer });
    const outcome = await exchangeHello(ctx, hello);
    if (outcome.kind !== 'flight' || outcome.flight.kind !== 'hello') break;
    const kx = outcome.flight.keyExchange;
    if (!kx || kx.kind !== 'ecdhe' || !offer.includes(kx.group) || found.includes(kx.group)) break;
    found.push(kx.group);
    remaining = remaining.filter((c) => c !== kx.group);
  }
  return found;
}
