/**
 * `postern testbed`: starts the catalog's deliberately (mis)configured mail servers on loopback
 * and returns a manifest of where they are and exactly what is wrong with each.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { PosternError } from '../core/errors.ts';
import { CATALOG, expectedFor, suiteCodes } from './catalog.ts';
import type { CatalogEntry, CertSpec } from './catalog.ts';
import type { ManifestServer, TestbedManifest } from './manifest.ts';
import { createCa, generateKeyPair, importKeyPair, issueCertificate, keyTypeLabel, loadCa } from '../tls/cert/pki.ts';
import type { CertificateAuthority, IssuedCertificate, KeyPairMaterial, KeyType } from '../tls/cert/pki.ts';
import { legacyAcceptedSuites } from './legacy-tls.ts';
import type { LegacyTlsOptions } from './legacy-tls.ts';
import { createSmtpServer } from './servers/smtp.ts';
import type { SmtpTestServer } from './servers/smtp.ts';
import { createImapServer } from './servers/imap.ts';
import { createPop3Server } from './servers/pop3.ts';
import type { LineServer, NodeTlsSpec, TlsSpec } from './servers/common.ts';

export type { TestbedManifest, ManifestServer, WeaknessId } from './manifest.ts';
export { formatManifest, WEAKNESSES } from './manifest.ts';
export { CATALOG } from './catalog.ts';

export interface StartTestbedOptions {
  /** Loopback address to bind (default 127.0.0.1). */
  address?: string;
  /** 0 (default) = ephemeral ports; otherwise each server listens on basePort + its catalog index. */
  basePort?: number;
  /** Server ids or globs (`smtp-*`); default all. */
  only?: string[];
  /** Where to cache keys/certificates and write the CA file; default: a temp dir removed on stop. */
  stateDir?: string;
  /** Clock for certificate validity (default now). */
  now?: Date;
  /** Per-connection idle timeout (default 60 s). */
  idleTimeoutMs?: number;
}

export interface Testbed {
  manifest: TestbedManifest;
  /** The running servers by id; SMTP servers expose message counters for tests. */
  servers: ReadonlyMap<string, LineServer | SmtpTestServer>;
  /** Closes every listener and connection; removes the temp dir if one was created. */
  stop(): Promise<void>;
}

const DAY = 24 * 3600 * 1000;
const CA_NAME = 'postern testbed CA';
const CA_KEY: KeyType = { kind: 'ec', curve: 'P-256' };
const CACHE_FILE = 'testbed-pki.json';

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Resolves `only` (ids or globs) against the catalog; unknown patterns are an error. */
export function selectEntries(only: readonly string[] | undefined): CatalogEntry[] {
  if (only === undefined || only.length === 0) return [...CATALOG];
  const picked = new Set<string>();
  for (const pattern of only) {
    const re = globToRegExp(pattern);
    const hits = CATALOG.filter((e) => re.test(e.id));
    if (hits.length === 0) {
      throw new PosternError('testbed-unknown-server', `no testbed server matches "${pattern}"`, {
        hint: `known servers: ${CATALOG.map((e) => e.id).join(', ')}`,
      });
    }
    for (const h of hits) picked.add(h.id);
  }
  return CATALOG.filter((e) => picked.has(e.id));
}

/** Certificate validity windows, day-aligned so cached certificates stay reusable all day. */
function validity(spec: CertSpec, now: Date): { notBefore: Date; notAfter: Date } {
  const day = Math.floor(now.getTime() / DAY) * DAY;
  switch (spec.validity) {
    case 'valid':
      return { notBefore: new Date(day - DAY), notAfter: new Date(day + 365 * DAY) };
    case 'expired':
      return { notBefore: new Date(day - 400 * DAY), notAfter: new Date(day - 30 * DAY) };
    case 'epoch':
      // The seed's `faketime '1970-01-01 00:00:00' openssl req … -days 1`.
      return { notBefore: new Date(0), notAfter: new Date(DAY) };
  }
}

interface PkiCache {
  version: 1;
  keys: Record<string, string>;
  ca?: { certPem: string; keyPem: string };
  certs: Record<string, { certPem: string; keyPem: string }>;
}

async function readCache(stateDir: string | undefined): Promise<PkiCache> {
  const empty: PkiCache = { version: 1, keys: {}, certs: {} };
  if (stateDir === undefined) return empty;
  try {
    const parsed = JSON.parse(await readFile(join(stateDir, CACHE_FILE), 'utf8')) as Partial<PkiCache>;
    if (parsed.version !== 1 || typeof parsed.keys !== 'object' || typeof parsed.certs !== 'object') return empty;
    return { version: 1, keys: parsed.keys ?? {}, ca: parsed.ca, certs: parsed.certs ?? {} };
  } catch {
    return empty; // missing or corrupt cache: regenerate
  }
}

interface Material {
  ca: CertificateAuthority;
  certs: Map<string, IssuedCertificate>;
  cache: PkiCache;
  dirty: boolean;
}

async function buildPki(entries: readonly CatalogEntry[], now: Date, stateDir: string | undefined): Promise<Material> {
  const cache = await readCache(stateDir);
  let dirty = false;

  // One key per key type, shared by all leaves of that type: key generation is the slow part.
  const keyTypes = new Map<string, KeyType>();
  for (const e of entries) keyTypes.set(keyTypeLabel(e.cert.keyType), e.cert.keyType);
  const keyJobs = [...keyTypes].map(async ([label, kt]): Promise<[string, KeyPairMaterial]> => {
    const cached = cache.keys[label];
    if (cached !== undefined) {
      try {
        return [label, await importKeyPair(cached, kt)];
      } catch {
        /* fall through and regenerate */
      }
    }
    const k = await generateKeyPair(kt);
    cache.keys[label] = k.keyPem;
    dirty = true;
    return [label, k];
  });

  const caJob = (async (): Promise<CertificateAuthority> => {
    const day = Math.floor(now.getTime() / DAY) * DAY;
    if (cache.ca !== undefined) {
      try {
        const ca = await loadCa({ name: CA_NAME, keyType: CA_KEY, ...cache.ca });
        // Reuse while it is valid for at least another 30 days.
        const { X509Certificate } = await import('node:crypto');
        const x = new X509Certificate(ca.certPem);
        if (x.validFromDate.getTime() <= now.getTime() && x.validToDate.getTime() > now.getTime() + 30 * DAY) {
          return ca;
        }
      } catch {
        /* regenerate */
      }
    }
    const ca = await createCa({
      name: CA_NAME,
      keyType: CA_KEY,
      notBefore: new Date(day - DAY),
      notAfter: new Date(day + 10 * 365 * DAY),
    });
    cache.ca = { certPem: ca.certPem, keyPem: ca.keyPem };
    cache.certs = {}; // leaves of an old CA are useless
    dirty = true;
    return ca;
  })();

  const [keys, ca] = await Promise.all([Promise.all(keyJobs).then((kv) => new Map(kv)), caJob]);
  const caId = createHash('sha256').update(ca.der).digest('hex').slice(0, 16);

  const certs = new Map<string, IssuedCertificate>();
  await Promise.all(
    entries.map(async (e) => {
      const key = keys.get(keyTypeLabel(e.cert.keyType));
      if (key === undefined) throw new Error(`no key for ${e.id}`);
      const names = e.cert.names ?? [e.hostname];
      const dates = validity(e.cert, now);
      const cacheKey = JSON.stringify({
        ...e.cert,
        names,
        ...dates,
        ca: e.cert.issuer === 'ca' ? caId : null,
        key: createHash('sha256').update(key.keyPem).digest('hex').slice(0, 16),
      });
      const cached = cache.certs[cacheKey];
      if (cached !== undefined) {
        const der = Buffer.from(cached.certPem.replace(/-----[^-]+-----|\s+/g, ''), 'base64');
        certs.set(e.id, { ...cached, der });
        return;
      }
      const issued = await issueCertificate({
        ca: e.cert.issuer === 'ca' ? ca : null,
        names,
        ...(e.cert.subject !== undefined && { subject: e.cert.subject }),
        keyType: e.cert.keyType,
        signatureHash: e.cert.signatureHash,
        ...dates,
        key,
      });
      cache.certs[cacheKey] = { certPem: issued.certPem, keyPem: issued.keyPem };
      dirty = true;
      certs.set(e.id, issued);
    }),
  );
  return { ca, certs, cache, dirty };
}

function tlsSpecFor(e: CatalogEntry, cert: IssuedCertificate): TlsSpec {
  if (e.tls.kind === 'raw') {
    return { kind: 'raw', options: legacyOptionsFor(e, cert) };
  }
  const versions = e.tls.versions;
  const toNode = (v: string): NodeTlsSpec['secureContext']['minVersion'] =>
    (v === 'TLSv1.0' ? 'TLSv1' : v) as NodeTlsSpec['secureContext']['minVersion'];
  return {
    kind: 'node',
    secureContext: {
      cert: cert.certPem,
      key: cert.keyPem,
      minVersion: toNode(versions[0] ?? 'TLSv1.2'),
      maxVersion: toNode(versions[versions.length - 1] ?? 'TLSv1.3'),
      ciphers: e.tls.suites.join(':') + (e.tls.seclevel0 === true ? ':@SECLEVEL=0' : ''),
      ecdhCurve: e.tls.groups.join(':'),
      ...(e.tls.clientRenegotiation === true ? { clientRenegotiation: true } : {}),
    },
  };
}

function legacyOptionsFor(e: CatalogEntry, cert: IssuedCertificate): LegacyTlsOptions {
  if (e.tls.kind !== 'raw') throw new Error('not a raw entry');
  return {
    versions: e.tls.versions,
    suites: suiteCodes(e.tls.suites),
    certificates: [cert.der],
    serverPreference: true,
    ...(e.tls.secureRenegotiation === undefined ? {} : { secureRenegotiation: e.tls.secureRenegotiation }),
    ...(e.tls.fallbackScsv === undefined ? {} : { fallbackScsv: e.tls.fallbackScsv }),
    ...(e.tls.compression === undefined ? {} : { compression: e.tls.compression }),
    ...(e.tls.heartbeat === undefined ? {} : { heartbeat: e.tls.heartbeat }),
  };
}

function urlFor(e: CatalogEntry, address: string, port: number): string {
  const scheme = e.mode === 'implicit' ? `${e.protocol}s` : e.protocol;
  const host = isIP(address) === 6 ? `[${address}]` : address;
  return `${scheme}://${host}:${port}`;
}

function isLoopback(address: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address) || address === '::1' || address === 'localhost';
}

/** Starts the selected testbed servers. Resolves once every server is listening. */
export async function startTestbed(opts: StartTestbedOptions = {}): Promise<Testbed> {
  const address = opts.address ?? '127.0.0.1';
  if (!isLoopback(address)) {
    throw new PosternError('testbed-not-loopback', `the testbed only binds loopback addresses, not ${address}`, {
      hint: 'use 127.0.0.1 (default) or ::1: these servers are deliberately insecure',
    });
  }
  const basePort = opts.basePort ?? 0;
  if (!Number.isInteger(basePort) || basePort < 0 || basePort + CATALOG.length > 65535) {
    throw new PosternError('testbed-bad-port', `invalid base port ${basePort}`, {
      hint: `use 0 for ephemeral ports or a port between 1 and ${65535 - CATALOG.length}`,
    });
  }
  const entries = selectEntries(opts.only);
  const now = opts.now ?? new Date();

  let tempDir: string | undefined;
  let dir: string;
  if (opts.stateDir !== undefined) {
    dir = opts.stateDir;
    await mkdir(dir, { recursive: true });
  } else dir = tempDir = await mkdtemp(join(tmpdir(), 'postern-testbed-'));

  const running: Array<{ entry: CatalogEntry; server: LineServer | SmtpTestServer; port: number }> = [];
  const cleanup = async (): Promise<void> => {
    await Promise.all(running.map((r) => r.server.close()));
    if (tempDir !== undefined) await rm(tempDir, { recursive: true, force: true });
  };

  try {
    const pki = await buildPki(entries, now, opts.stateDir);
    const caFile = join(dir, 'testbed-ca.pem');
    const writes: Array<Promise<void>> = [writeFile(caFile, pki.ca.certPem)];
    if (opts.stateDir !== undefined && pki.dirty) {
      writes.push(writeFile(join(opts.stateDir, CACHE_FILE), JSON.stringify(pki.cache), { mode: 0o600 }));
    }

    const results = await Promise.allSettled(
      entries.map(async (entry) => {
        const cert = pki.certs.get(entry.id);
        if (cert === undefined) throw new Error(`no certificate for ${entry.id}`);
        const options = {
          hostname: entry.hostname,
          mode: entry.mode,
          tls: tlsSpecFor(entry, cert),
          switches: entry.switches,
          ...(opts.idleTimeoutMs !== undefined && { idleTimeoutMs: opts.idleTimeoutMs }),
        };
        const server =
          entry.protocol === 'smtp'
            ? createSmtpServer(options)
            : entry.protocol === 'imap'
              ? createImapServer(options)
              : createPop3Server(options);
        const wanted = basePort === 0 ? 0 : basePort + CATALOG.indexOf(entry);
        try {
          const port = await server.listen(wanted, address);
          running.push({ entry, server, port });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE') {
            throw new PosternError(
              'testbed-port-in-use',
              `port ${wanted} on ${address} is already in use (${entry.id})`,
              {
                hint: 'stop whatever listens there, choose another base port, or use 0 for ephemeral ports',
                cause: err,
              },
            );
          }
          throw new PosternError(
            'testbed-listen-failed',
            `cannot listen on ${address}:${wanted} (${entry.id}): ${String(err)}`,
            {
              cause: err,
            },
          );
        }
      }),
    );
    await Promise.all(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    const byId = new Map(running.map((r) => [r.entry.id, r]));
    const servers: ManifestServer[] = entries.map((entry) => {
      const r = byId.get(entry.id);
      if (r === undefined) throw new Error(`server ${entry.id} did not start`);
      const legacy =
        entry.tls.kind === 'raw' ? legacyOptionsFor(entry, pki.certs.get(entry.id) as IssuedCertificate) : undefined;
      return {
        id: entry.id,
        protocol: entry.protocol,
        mode: entry.mode,
        address,
        port: r.port,
        hostname: entry.hostname,
        url: urlFor(entry, address, r.port),
        defaultPortHint: entry.defaultPortHint,
        weaknesses: [...entry.weaknesses],
        // Raw entries: the responder itself says what it accepts (legacyAcceptedSuites).
        expected: legacy === undefined ? entry.expected : expectedFor(entry, (v) => legacyAcceptedSuites(legacy, v)),
        description: entry.description,
      };
    });

    const manifest: TestbedManifest = {
      schemaVersion: 1,
      startedAt: new Date().toISOString(),
      caFile,
      caPem: pki.ca.certPem,
      servers,
    };
    let stopped: Promise<void> | undefined;
    return {
      manifest,
      servers: new Map(running.map((r) => [r.entry.id, r.server])),
      stop() {
        stopped ??= cleanup();
        return stopped;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
