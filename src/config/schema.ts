/**
 * The `postern serve` configuration: the typed result (`GatewayConfig`) and the strict zod schema
 * of the YAML file. Unknown keys are errors (a typo must never silently fall back to a default);
 * durations and sizes are strings parsed strictly ('5m', '25MB').
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import type { ProfileId } from '../tls/profiles/index.ts';
import type { Profile } from '../tls/profiles/types.ts';
import { parseCidr, parseDomain, parseHostPort } from './net.ts';
import type { HostPort } from './net.ts';

export type { HostPort } from './net.ts';

import { TLS_LEVELS } from '../policy/levels.ts';
import type { TlsLevel } from '../policy/levels.ts';

export { TLS_LEVELS };
export type { TlsLevel };
export type ListenMode = 'starttls' | 'implicit';
export type ListenRole = 'mx' | 'submission';
export type AuthMode = 'none' | 'optional' | 'required';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ListenerConfig {
  name: string;
  address: string;
  port: number;
  /** `starttls`: plaintext greeting, STARTTLS offered (RFC 3207); `implicit`: TLS from the first byte (RFC 8314). */
  mode: ListenMode;
  /** `mx`: mail from other MTAs for our domains; `submission`: mail from our users (RFC 6409). */
  role: ListenRole;
  /** AUTH is only ever offered after TLS (RFC 4954 §4, 538 5.7.11 before). */
  auth: AuthMode;
  /** `request`: ask for a client certificate (SASL EXTERNAL, seed 000); never required at the TLS layer. */
  clientCertificates: 'none' | 'request';
}

/** A grading profile for outbound TLS, resolved at load time. */
export type PolicyProfileRef =
  { kind: 'builtin'; id: ProfileId; profile: Profile } | { kind: 'file'; path: string; profile: Profile };

export interface DomainPolicyConfig {
  level: TlsLevel;
  profile: PolicyProfileRef | null;
}

export interface RateLimitRule {
  failures: number;
  windowMs: number;
}

export interface RelayConfig {
  /** Domains we accept mail for from anyone and relay on (Postfix `relay_domains`). Lower case, A-labels. */
  domains: string[];
  /** Domains that are ours (Postfix `mydestination`); also accepted from anyone. */
  localDomains: string[];
  /** Clients that may relay without AUTH (Postfix `mynetworks`), canonical CIDR text. */
  networks: string[];
  /** An authenticated user may only use their own addresses in MAIL FROM. */
  senderMustMatchLogin: boolean;
  /**
   * Where `RCPT TO:<Postmaster>` (RFC 5321 §4.5.1) is delivered. Filled by load.ts (default
   * postmaster@ the first local domain, else the first relay domain); absent: the same default.
   */
  postmaster?: string | null;
  /** Valid local parts per domain (lower-case A-label keys); listed domains refuse others with 550 5.1.1. */
  recipients?: ReadonlyMap<string, readonly string[]>;
  /** Refuse outsiders (no AUTH, not in networks) using one of our domains in MAIL FROM (553 5.7.1). */
  rejectUnauthenticatedLocalSenders?: boolean;
}

export interface LimitsConfig {
  maxMessageSize: number;
  maxRecipients: number;
  maxLineLength: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxErrors: number;
  /** Slots of the submission listeners, apart from the `maxConnections` of the MX listeners. */
  maxSubmissionConnections: number;
  /** NOOP/RSET/VRFY/HELP per session before 421 (Postfix smtpd_junk_command_limit). */
  junkCommandLimit: number;
  /** Total time one DATA phase may take, however the client paces it. */
  dataDeadlineMs: number;
  /** Timeout replacing commandTimeout and dataTimeout while a slot pool is under stress. */
  stressTimeoutMs: number;
  /** Percent of a pool's slots in use above which it is under stress. */
  stressThreshold: number;
}

export interface QueueConfig {
  dir: string;
  backend: 'sqlite';
  maxLifetimeMs: number;
  delayWarningMs: number;
  retry: { initialMs: number; maxMs: number };
}

/** The whole configuration, defaults applied and paths absolute. */
export interface GatewayConfig {
  /** The config file, or null for the embedded default. */
  source: string | null;
  hostname: string;
  tls: {
    cert: string;
    key: string;
    /** PEM CA bundle that client certificates must chain to (listeners with clientCertificates: request). */
    clientCa: string | null;
  };
  listen: ListenerConfig[];
  /** The users file (src/gateway/users.ts), or null: no AUTH. */
  users: string | null;
  relay: RelayConfig;
  queue: QueueConfig;
  /**
   * servers: 'ip', 'ip:port' or '[v6]:port' (src/dns/resolver.ts format); [] = the system resolver.
   * trustAd: whose AD bit (DNSSEC validated) counts for DANE — 'loopback' (default: a validating
   * resolver on this host, like Postfix and maddy) or 'any'.
   */
  dns: { servers: string[]; trustAd: 'loopback' | 'any' };
  /**
   * RFC 8461: apply MTA-STS to domains that publish a policy; policies cached in cacheDir.
   * allowPrivateAddresses (INSECURE, default off): fetch policies from hosts on loopback or
   * private addresses, for deliberately internal policy hosts (src/net/https.ts refuses them).
   */
  mtaSts: { enabled: boolean; cacheDir: string; allowPrivateAddresses?: boolean };
  /** RFC 8460 reports about our outbound sessions, stored in `store`, sent daily from `from`. */
  tlsrpt: { enabled: boolean; store: string; organization: string; contact: string; from: string };
  /** Static next hop per recipient domain (no MX lookup). Keys lower case. */
  routes: ReadonlyMap<string, HostPort>;
  /** Send all outbound mail through this host (no MX lookup); routes still win. */
  relayhost: HostPort | null;
  policy: { default: DomainPolicyConfig; domains: ReadonlyMap<string, DomainPolicyConfig> };
  limits: LimitsConfig;
  authRateLimit: { perIp: RateLimitRule; perUser: RateLimitRule };
  /**
   * Metrics + queue API; null = disabled. Every request but /healthz needs `Authorization: Bearer`
   * with the token in `tokenFile` (generated at first start, mode 0600; default `admin.token` in
   * the queue directory), or for GET /metrics only the one in `metricsTokenFile` (optional).
   */
  admin: { address: string; port: number; tokenFile: string; metricsTokenFile: string | null } | null;
  log: { level: LogLevel };
}

// ---- strict value parsers --------------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = {
  w: 604_800_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};

/** '5m', '4h', '5d', '1h30m', '250ms' → milliseconds; units in decreasing order, each once. Error message otherwise. */
export function parseDuration(text: string): number | { error: string } {
  const m = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/.exec(text);
  if (text === '' || m === null)
    return { error: `expected a duration such as '30s', '5m', '4h' or '5d' (units w, d, h, m, s, ms), got '${text}'` };
  const units = ['w', 'd', 'h', 'm', 's', 'ms'];
  let ms = 0;
  units.forEach((u, i) => {
    const v = m[i + 1];
    if (v !== undefined) ms += Number(v) * (DURATION_UNITS[u] ?? 0);
  });
  return ms;
}

const SIZE_UNITS: Record<string, number> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
};

/** '25MB' (SI, 25 000 000), '10MiB' (binary), '512B' or a plain integer (bytes) → bytes. */
export function parseSize(value: string | number): number | { error: string } {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? value : { error: `expected a size in bytes, got ${value}` };
  }
  const m = /^(\d+)\s?(B|KB|MB|GB|KiB|MiB|GiB)?$/.exec(value);
  if (m?.[1] === undefined)
    return {
      error: `expected a size such as '25MB', '10MiB' or a number of bytes (units B, KB, MB, GB, KiB, MiB, GiB), got '${value}'`,
    };
  return Number(m[1]) * (SIZE_UNITS[m[2] ?? 'B'] ?? 1);
}

// ---- zod building blocks ------------------------------------------------------------------------

/** A value checked by `parse`, which returns the result or `{ error }`; messages name what was expected. */
function checked<T>(parse: (v: unknown) => T | { error: string }) {
  return z.unknown().transform((v, ctx): T => {
    const r = parse(v);
    if (r !== null && typeof r === 'object' && 'error' in r && typeof r.error === 'string') {
      const message = v === undefined ? `missing (${r.error.replace(/, got nothing$/, '')})` : r.error;
      ctx.addIssue({ code: 'custom', message, input: v });
      return z.NEVER;
    }
    return r as T;
  });
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return `'${v}'`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' ? String(v) : typeof v;
}

function intIn(min: number, max: number) {
  return checked((v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max
      ? v
      : { error: `expected integer ${min}..${max}, got ${describe(v)}` },
  );
}

function durationIn(minMs: number, maxMs: number, range: string) {
  return checked((v) => {
    if (typeof v !== 'string') return { error: `expected a duration string such as '5m', got ${describe(v)}` };
    const ms = parseDuration(v);
    if (typeof ms !== 'number') return ms;
    return ms >= minMs && ms <= maxMs ? ms : { error: `'${v}' is out of range (${range})` };
  });
}

function sizeIn(min: number, max: number, range: string) {
  return checked((v) => {
    if (typeof v !== 'string' && typeof v !== 'number')
      return { error: `expected a size such as '25MB', got ${describe(v)}` };
    const n = parseSize(v);
    if (typeof n !== 'number') return n;
    return n >= min && n <= max ? n : { error: `${describe(v)} is out of range (${range})` };
  });
}

const domain = checked((v) =>
  typeof v === 'string' ? parseDomain(v) : { error: `expected a domain name, got ${describe(v)}` },
);
const domainName = domain.transform((d) => d.domain);

const ipAddress = checked((v) =>
  typeof v === 'string' && isIP(v) !== 0 && !v.includes('%')
    ? v
    : { error: `expected an IP address, got ${describe(v)}` },
);

const hostPort = checked((v) =>
  typeof v === 'string' ? parseHostPort(v, 25) : { error: `expected 'host:port', got ${describe(v)}` },
);

const cidr = checked((v) => {
  if (typeof v !== 'string') return { error: `expected a CIDR block such as 192.0.2.0/24, got ${describe(v)}` };
  const c = parseCidr(v);
  return typeof c === 'string' ? { error: c } : c.text;
});

const dnsServer = checked((v) => {
  if (typeof v !== 'string') return { error: `expected 'ip', 'ip:port' or '[v6]:port', got ${describe(v)}` };
  if (isIP(v) !== 0 && !v.includes('%')) return v;
  const hp = parseHostPort(v, 53);
  if ('error' in hp || isIP(hp.host) === 0)
    return { error: `'${v}' is not a DNS server address ('ip', 'ip:port' or '[v6]:port'; names are not allowed)` };
  return v;
});

const path = z.string().min(1, 'expected a file path').max(4096);

const PolicyEntry = z.strictObject({
  level: z.enum(TLS_LEVELS),
  /** bsi | ncsc-nl | mozilla-intermediate | mozilla-modern | a YAML profile file (resolved in load.ts). */
  profile: z.string().min(1).max(4096).optional(),
});

const RateRule = z.strictObject({
  failures: intIn(1, 1000),
  window: durationIn(1000, 7 * 86_400_000, '1s..7d'),
});

const Listener = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'expected lower-case letters, digits, _ or - (max 32)'),
  address: ipAddress,
  port: intIn(1, 65535),
  mode: z.enum(['starttls', 'implicit']),
  role: z.enum(['mx', 'submission']),
  auth: z.enum(['none', 'optional', 'required']).optional(),
  clientCertificates: z.enum(['none', 'request']).optional(),
});

/** The YAML file, as validated (before defaults and path resolution). */
export const ConfigFileSchema = z.strictObject({
  hostname: domainName,
  tls: z.strictObject({ cert: path, key: path, clientCa: path.optional() }),
  listen: z.array(Listener).min(1, 'expected at least one listener'),
  users: path.optional(),
  relay: z
    .strictObject({
      domains: z.array(domainName).optional(),
      localDomains: z.array(domainName).optional(),
      networks: z.array(cidr).optional(),
      senderMustMatchLogin: z.boolean().optional(),
      postmaster: z
        .string()
        .min(3)
        .max(254)
        .regex(/^[^\s<>@]+@[^\s<>@]+$/, 'expected a mail address')
        .optional(),
      recipients: z
        .record(
          z.string(),
          z
            .array(
              z
                .string()
                .min(1)
                .max(64)
                .regex(/^[^\s<>@"]+$/, 'expected a local part (without @domain)'),
            )
            .min(1, 'expected at least one local part'),
        )
        .optional(),
      rejectUnauthenticatedLocalSenders: z.boolean().optional(),
    })
    .optional(),
  queue: z
    .strictObject({
      dir: path.optional(),
      backend: z.enum(['sqlite']).optional(),
      maxLifetime: durationIn(3_600_000, 30 * 86_400_000, '1h..30d').optional(),
      delayWarning: durationIn(60_000, 30 * 86_400_000, '1m..30d').optional(),
      retry: z
        .strictObject({
          initial: durationIn(1000, 86_400_000, '1s..1d').optional(),
          max: durationIn(1000, 7 * 86_400_000, '1s..7d').optional(),
        })
        .optional(),
    })
    .optional(),
  dns: z
    .strictObject({
      servers: z.array(dnsServer).max(8).optional(),
      trustAd: z.enum(['loopback', 'any']).optional(),
    })
    .optional(),
  mtaSts: z
    .strictObject({
      enabled: z.boolean().optional(),
      cacheDir: path.optional(),
      allowPrivateAddresses: z.boolean().optional(),
    })
    .optional(),
  tlsrpt: z
    .strictObject({
      enabled: z.boolean().optional(),
      store: path.optional(),
      organization: z.string().min(1).max(200).optional(),
      contact: z.string().min(1).max(200).optional(),
      from: z
        .string()
        .min(3)
        .max(254)
        .regex(/^[^\s<>@]+@[^\s<>@]+$/, 'expected a mail address')
        .optional(),
    })
    .optional(),
  routes: z.record(z.string(), hostPort).optional(),
  relayhost: hostPort.optional(),
  policy: z
    .strictObject({
      default: PolicyEntry.optional(),
      domains: z.record(z.string(), PolicyEntry).optional(),
    })
    .optional(),
  limits: z
    .strictObject({
      // RFC 5321 §4.5.3.1.7: at least 64K octets of message content must be accepted.
      maxMessageSize: sizeIn(65_536, 2 ** 34, '64KiB..16GiB').optional(),
      // RFC 5321 §4.5.3.1.8: a server MUST accept at least 100 recipients per transaction.
      maxRecipients: intIn(100, 100_000).optional(),
      // RFC 5321 §4.5.3.1.6: text lines of at least 1000 octets including CRLF.
      maxLineLength: intIn(1000, 1_048_576).optional(),
      // RFC 5321 §4.5.3.2.7: the server should wait at least 5 minutes for the next command.
      commandTimeout: durationIn(1000, 3_600_000, '1s..1h').optional(),
      dataTimeout: durationIn(1000, 3_600_000, '1s..1h').optional(),
      maxConnections: intIn(1, 100_000).optional(),
      maxConnectionsPerIp: intIn(1, 100_000).optional(),
      maxErrors: intIn(1, 1000).optional(),
      maxSubmissionConnections: intIn(1, 100_000).optional(),
      junkCommandLimit: intIn(1, 100_000).optional(),
      dataDeadline: durationIn(1000, 86_400_000, '1s..1d').optional(),
      stressTimeout: durationIn(1000, 3_600_000, '1s..1h').optional(),
      stressThreshold: intIn(1, 100).optional(),
    })
    .optional(),
  authRateLimit: z.strictObject({ perIp: RateRule.optional(), perUser: RateRule.optional() }).optional(),
  admin: z
    .strictObject({
      address: ipAddress,
      port: intIn(1, 65535),
      /** Plain HTTP (the bearer token travels in clear): loopback only unless this is set. */
      allowInsecureRemoteAdmin: z.boolean().optional(),
      tokenFile: path.optional(),
      metricsTokenFile: path.optional(),
    })
    .optional(),
  log: z.strictObject({ level: z.enum(LOG_LEVELS).optional() }).optional(),
});

export type ConfigFile = z.output<typeof ConfigFileSchema>;
