/**
 * probeEndpoint: everything the TLS engine can learn about one mail endpoint, in as few
 * connections as it can, without judging it. Grading (scan) and enforcement (gateway) consume
 * the EndpointProbe this returns.
 */
import { PosternError } from '../../core/errors.ts';
import { analyzeCertificate } from '../cert/index.ts';
import { tlsHandshake } from '../handshake.ts';
import { escapeLine, StartTlsError } from '../starttls/index.ts';
import type { StartTlsReady } from '../starttls/index.ts';
import { VERSIONS } from '../wire/constants.ts';
import type { VersionName } from '../wire/constants.ts';
import { suiteByCode } from '../wire/suites.ts';
import {
  detectServerPreference,
  enumerateSslv2,
  enumerateTls12Groups,
  enumerateTls13Groups,
  enumerateVersion,
} from './enumerate.ts';
import type { HelloFlight, VersionEnumeration } from './enumerate.ts';
import {
  checkClientRenegotiation,
  checkCompression,
  checkFallbackScsv,
  checkHeartbeat,
  checkSecureRenegotiation,
} from './checks.ts';
import type { HelloContext } from './hello.ts';
import { ConnectionLimiter } from './limiter.ts';
import type { EndpointProbe, ProbeError, ProbeOptions, ProbeTarget, StartTlsObservation } from './types.ts';

export type { EndpointProbe, ProbeOptions, ProbeTarget, StartTlsObservation } from './types.ts';
export { ConnectionLimiter } from './limiter.ts';

const NODE_VERSION: Partial<Record<VersionName, 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'>> = {
  'TLSv1.0': 'TLSv1',
  'TLSv1.1': 'TLSv1.1',
  'TLSv1.2': 'TLSv1.2',
  'TLSv1.3': 'TLSv1.3',
};

function emptyRecord<T>(make: () => T): Record<VersionName, T> {
  return Object.fromEntries(VERSIONS.map((v) => [v, make()])) as Record<VersionName, T>;
}

/** A probe result that has learnt nothing yet: the start of every probe, and what the scanner
 * reports when an endpoint's budget ran out before the first connection answered. */
export function emptyProbe(target: EndpointProbe['target']): EndpointProbe {
  return {
    target,
    starttls: null,
    protocols: emptyRecord(() => false),
    suites: emptyRecord((): number[] => []),
    serverPreference: {},
    groups: { tls13: [], tls12: [] },
    dhBits: [],
    chains: [],
    secureRenegotiation: null,
    extendedMasterSecret: null,
    encryptThenMac: null,
    compression: null,
    heartbeat: null,
    heartbleed: null,
    clientRenegotiation: null,
    fallbackScsv: null,
    checkEvidence: {},
    anomalies: [],
    session: null,
    errors: [],
    stats: { connections: 0, durationMs: 0 },
  };
}

function toError(phase: string, e: unknown): ProbeError {
  if (e instanceof PosternError) return { phase, code: e.code, message: e.message };
  return { phase, code: 'internal', message: e instanceof Error ? e.message : String(e) };
}

/**
 * Probes one endpoint. Throws only for a StartTlsError that makes TLS unreachable
 * (`starttls-not-offered`, `starttls-refused`, `rate-limited`, `net-*` on the first connection),
 * after recording what was observed in `error.observation` — the scanner turns those into findings.
 */
export async function probeEndpoint(target: ProbeTarget, options: ProbeOptions = {}): Promise<EndpointProbe> {
  const started = performance.now();
  const limiter = (options.limiter ?? new ConnectionLimiter(options.maxConnPerIp ?? 2)).scoped();
  const versions = options.versions ?? [...VERSIONS];
  let observation: StartTlsObservation | null = null;
  const ctx: HelloContext = {
    target: { ...target },
    limiter,
    rateLimitRetries: options.rateLimitRetries ?? 3,
    rateLimitBackoffMs: options.rateLimitBackoffMs ?? 1000,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onReady: (ready: StartTlsReady) => {
      if (observation === null && ready.dialect !== 'implicit') {
        // Only the first session waits the full window for injected bytes; later ones set aside
        // what has already arrived, unless this server is known to inject.
        ctx.injectionWindowMs = ready.injectedBytes && ready.injectedBytes.length > 0 ? undefined : 0;
        observation = {
          dialect: ready.dialect,
          advertised: ready.advertised,
          stripped: !ready.advertised,
          refusedReply: null,
          injectedBytes: ready.injectedBytes && ready.injectedBytes.length > 0 ? escapeLine(ready.injectedBytes) : null,
          greeting: ready.greeting,
          capabilities: ready.capabilities,
        };
      }
    },
  };

  const probe = emptyProbe(target);
  const finish = (): EndpointProbe => {
    probe.starttls = observation;
    probe.stats = {
      connections: limiter.connections(target.address),
      durationMs: Math.round(performance.now() - started),
    };
    return probe;
  };

  // Phase 1: the first enumeration (the most common version) also observes the STARTTLS dialect.
  // If STARTTLS is not advertised, try it anyway once: a server that then speaks TLS has had its
  // capability stripped (by itself or by something in the path) — "NO STARTTLS", USENIX 2021.
  const first: VersionName = versions.includes('TLSv1.2') ? 'TLSv1.2' : (versions[versions.length - 1] ?? 'TLSv1.2');
  const results = new Map<VersionName, VersionEnumeration>();
  try {
    results.set(first, await enumerateOne(ctx, first));
  } catch (e) {
    if (e instanceof StartTlsError && e.code === 'starttls-not-offered' && target.dialect !== 'implicit') {
      ctx.target.forceStartTls = true;
      try {
        results.set(first, await enumerateOne(ctx, first));
      } catch {
        // Forcing did not work either: STARTTLS is genuinely not offered. Report the original.
        observation = null;
        throw attach(e, finishWithObservation(probe, observation, e, finish));
      }
    } else {
      throw attach(e, finishWithObservation(probe, observation, e, finish));
    }
  }

  // Phase 2: the other versions, concurrently (the limiter keeps it polite).
  await Promise.all(
    versions
      .filter((v) => v !== first)
      .map(async (v) => {
        try {
          results.set(v, await enumerateOne(ctx, v));
        } catch (e) {
          probe.errors.push(toError(`enumerate ${v}`, e));
        }
      }),
  );

  const flights: HelloFlight[] = [];
  for (const v of versions) {
    const r = results.get(v);
    if (!r) continue;
    probe.protocols[v] = r.supported;
    probe.suites[v] = r.suites;
    probe.anomalies.push(...r.anomalies);
    flights.push(...r.flights);
  }
  collectFlightFacts(probe, flights);

  if (!options.suitesOnly) {
    await Promise.all([
      ...versions.map(async (v) => {
        if (v === 'SSLv2' || probe.suites[v].length < 2) return;
        try {
          probe.serverPreference[v] = await detectServerPreference(ctx, v, probe.suites[v]);
        } catch (e) {
          probe.errors.push(toError(`preference ${v}`, e));
        }
      }),
      (async () => {
        try {
          if (probe.protocols['TLSv1.3']) probe.groups.tls13 = await enumerateTls13Groups(ctx, probe.suites['TLSv1.3']);
          const v12 = (['TLSv1.2', 'TLSv1.1', 'TLSv1.0'] as const).find((v) =>
            probe.suites[v].some((c) => suiteByCode(c)?.kx === 'ECDHE'),
          );
          if (v12) {
            const ecdhe = probe.suites[v12].filter((c) => suiteByCode(c)?.kx === 'ECDHE');
            probe.groups.tls12 = await enumerateTls12Groups(ctx, ecdhe, v12, certificateCurve(probe));
          }
        } catch (e) {
          probe.errors.push(toError('groups', e));
        }
      })(),
      // Weakness checks (issue 3): one connection each, under the same limiter.
      runCheck(probe, 'compression', async () => {
        const r = await checkCompression(ctx, probe);
        if (r) [probe.compression, probe.checkEvidence.compression] = [r.enabled, r.evidence];
      }),
      runCheck(probe, 'heartbeat', async () => {
        const r = await checkHeartbeat(ctx, probe);
        if (r)
          [probe.heartbeat, probe.heartbleed, probe.checkEvidence.heartbeat] = [r.enabled, r.heartbleed, r.evidence];
      }),
      runCheck(probe, 'fallback-scsv', async () => {
        const r = await checkFallbackScsv(ctx, probe);
        if (r) [probe.fallbackScsv, probe.checkEvidence.fallbackScsv] = [r.honoured, r.evidence];
      }),
      runCheck(probe, 'client-renegotiation', async () => {
        const r = await checkClientRenegotiation(ctx, probe);
        if (r) [probe.clientRenegotiation, probe.checkEvidence.clientRenegotiation] = [r.honoured, r.evidence];
      }),
    ]);
  }

  if (options.fullHandshake ?? true) {
    const tlsVersions = versions.filter((v) => probe.protocols[v] && NODE_VERSION[v] !== undefined);
    if (tlsVersions.length > 0) {
      try {
        const lo = NODE_VERSION[tlsVersions[0] as VersionName];
        const hi = NODE_VERSION[tlsVersions[tlsVersions.length - 1] as VersionName];
        const { session, tlsSocket } = await limiter.run(target.address, async () => {
          const { openStartTls } = await import('../starttls/index.ts');
          const ready = await openStartTls({
            host: target.address,
            port: target.port,
            dialect: target.dialect,
            timeoutMs: target.timeoutMs ?? 10_000,
            ...(ctx.target.forceStartTls ? { forceStartTls: true } : {}),
            // Like every probe after the first: no 150 ms wait unless this server is known to inject.
            ...(ctx.injectionWindowMs === undefined ? {} : { injectionWindowMs: ctx.injectionWindowMs }),
            ...(target.ehloName === undefined ? {} : { ehloName: target.ehloName }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          });
          return await tlsHandshake({
            socket: ready.socket,
            host: target.address,
            port: target.port,
            ...(target.servername === undefined ? {} : { servername: target.servername }),
            ...(lo === undefined ? {} : { minVersion: lo }),
            ...(hi === undefined ? {} : { maxVersion: hi }),
            // Reach whatever the server offers: grading happens later, on what was negotiated.
            ciphers: 'ALL:COMPLEMENTOFALL:@SECLEVEL=0',
            ...(options.ca === undefined ? {} : { ca: options.ca }),
            timeoutMs: target.timeoutMs ?? 10_000,
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          });
        });
        tlsSocket.destroy();
        probe.session = session;
        if (session.peerChain.length > 0) addChain(probe, session.peerChain);
      } catch (e) {
        // Legacy-only servers cannot complete a handshake with OpenSSL 3; that is data, not failure.
        probe.errors.push(toError('full-handshake', e));
      }
    }
  }
  return finish();
}

async function runCheck(probe: EndpointProbe, phase: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    probe.errors.push(toError(phase, e));
  }
}

async function enumerateOne(ctx: HelloContext, v: VersionName): Promise<VersionEnumeration> {
  return v === 'SSLv2' ? await enumerateSslv2(ctx) : await enumerateVersion(ctx, v);
}

const CURVE_GROUPS: Record<string, number> = {
  'P-256': 23,
  'P-384': 24,
  'P-521': 25,
  brainpoolP256r1: 26,
  brainpoolP384r1: 27,
  brainpoolP512r1: 28,
};

/** The named group of the first ECDSA leaf the server sent, if any. */
function certificateCurve(probe: EndpointProbe): number | null {
  for (const chain of probe.chains) {
    const leaf = chain[0];
    if (!leaf) continue;
    try {
      const info = analyzeCertificate(leaf);
      if (info.keyType === 'EC' && info.curve) return CURVE_GROUPS[info.curve] ?? null;
    } catch {
      // An unparsable certificate is reported by the scanner; here it only means "no curve".
    }
  }
  return null;
}

function addChain(probe: EndpointProbe, chain: Buffer[]): void {
  const leaf = chain[0];
  if (!leaf) return;
  if (!probe.chains.some((c) => c[0]?.equals(leaf))) probe.chains.push(chain);
}

function collectFlightFacts(probe: EndpointProbe, flights: HelloFlight[]): void {
  const reneg = checkSecureRenegotiation(flights);
  if (reneg) [probe.secureRenegotiation, probe.checkEvidence.secureRenegotiation] = [reneg.supported, reneg.evidence];
  for (const f of flights) {
    if (f.certificates.length > 0) addChain(probe, f.certificates);
    if (f.keyExchange?.kind === 'dhe' && !probe.dhBits.includes(f.keyExchange.primeBits))
      probe.dhBits.push(f.keyExchange.primeBits);
    // EMS/ETM are ServerHello extensions of TLS 1.0–1.2 only: TLS 1.3 moves extensions to
    // EncryptedExtensions, and SSLv3 has none at all (RFC 6101).
    if (f.hello.version === 'TLSv1.3' || f.hello.version === 'SSLv3') continue;
    probe.extendedMasterSecret = (probe.extendedMasterSecret ?? true) && f.hello.extendedMasterSecret;
    // RFC 7366 §3: a server MUST NOT echo encrypt_then_mac when it picks an AEAD or stream
    // suite, so only CBC picks say whether the server supports it.
    if (suiteByCode(f.hello.cipherSuite)?.cbc)
      probe.encryptThenMac = (probe.encryptThenMac ?? true) && f.hello.encryptThenMac;
  }
}

/** Error thrown by probeEndpoint when TLS could not be reached; carries what was observed. */
export class ProbeUnreachableError extends PosternError {
  readonly probe: EndpointProbe;
  constructor(cause: PosternError, probe: EndpointProbe) {
    super(cause.code, cause.message, { cause, ...(cause.hint === undefined ? {} : { hint: cause.hint }) });
    this.name = 'ProbeUnreachableError';
    this.probe = probe;
  }
}

function finishWithObservation(
  probe: EndpointProbe,
  observation: StartTlsObservation | null,
  e: unknown,
  finish: () => EndpointProbe,
): EndpointProbe {
  const done = finish();
  // Only a STARTTLS verdict (not offered / refused) says something about STARTTLS; a connect
  // failure or timeout does not, and must not be reported as "STARTTLS missing".
  if (e instanceof StartTlsError && (e.code === 'starttls-not-offered' || e.code === 'starttls-refused')) {
    const base: StartTlsObservation = observation ?? {
      dialect: probe.target.dialect,
      advertised: false,
      stripped: false,
      refusedReply: null,
      injectedBytes: null,
      greeting: e.transcript.find((l) => l.dir === 'S')?.line ?? null,
      capabilities: [],
    };
    if (e.code === 'starttls-refused') base.refusedReply = e.reply ?? null;
    if (e.code === 'starttls-refused' || e.code === 'starttls-not-offered') base.stripped = false;
    done.starttls = probe.target.dialect === 'implicit' ? null : base;
  }
  return done;
}

function attach(e: unknown, probe: EndpointProbe): Error {
  if (e instanceof PosternError) return new ProbeUnreachableError(e, probe);
  return e instanceof Error ? e : new Error(String(e));
}
