/**
 * Defaults: the values a config file may leave out, and the embedded configuration that
 * `postern serve` runs without any config (loopback high ports, a generated self-signed
 * certificate and the queue under the state directory).
 */
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PosternError } from '../core/errors.ts';
import { SECRET_MODE, writeFileAtomic } from '../core/fs.ts';
import { parseDomain } from './net.ts';
import type { DomainPolicyConfig, GatewayConfig, LimitsConfig, QueueConfig, RateLimitRule } from './schema.ts';

export const DEFAULT_LIMITS: Readonly<LimitsConfig> = Object.freeze({
  maxMessageSize: 25_000_000,
  maxRecipients: 100,
  // RFC 5321 §4.5.3.1.4 allows 512 for command lines and §4.5.3.1.6 requires 1000 for text
  // lines; one limit of 1000 covers both (a longer command line is still a 500 reply).
  maxLineLength: 1000,
  commandTimeoutMs: 5 * 60_000,
  dataTimeoutMs: 10 * 60_000,
  maxConnections: 200,
  maxConnectionsPerIp: 20,
  maxErrors: 10,
  maxSubmissionConnections: 50,
  // Postfix smtpd_junk_command_limit.
  junkCommandLimit: 100,
  dataDeadlineMs: 15 * 60_000,
  // Postfix smtpd_timeout = ${stress?10}${stress:300}s, stress above 80 % of the slots.
  stressTimeoutMs: 10_000,
  stressThreshold: 80,
});

export const DEFAULT_QUEUE: Readonly<Omit<QueueConfig, 'dir'>> = Object.freeze({
  backend: 'sqlite' as const,
  maxLifetimeMs: 5 * 86_400_000,
  delayWarningMs: 4 * 3_600_000,
  retry: Object.freeze({ initialMs: 5 * 60_000, maxMs: 3_600_000 }),
});

export const DEFAULT_AUTH_RATE_LIMIT: Readonly<{ perIp: RateLimitRule; perUser: RateLimitRule }> = Object.freeze({
  perIp: Object.freeze({ failures: 5, windowMs: 15 * 60_000 }),
  // Looser than per IP: a per-user limit is also a lever for locking a user out from anywhere.
  perUser: Object.freeze({ failures: 10, windowMs: 15 * 60_000 }),
});

/** Opportunistic TLS, like Postfix's `smtp_tls_security_level = may`. */
export const DEFAULT_POLICY: Readonly<DomainPolicyConfig> = Object.freeze({ level: 'may' as const, profile: null });

export const DEFAULT_ADMIN_PORT = 2580;

/** Where the embedded configuration keeps its certificate. */
export function embeddedTlsPaths(stateDir: string): { cert: string; key: string } {
  const dir = resolve(stateDir, 'tls');
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

function localHostname(): string {
  const d = parseDomain(osHostname());
  return 'domain' in d ? d.domain : 'localhost';
}

/**
 * The configuration `postern serve` uses without `--config`: everything on 127.0.0.1 high ports
 * (MX 2525 STARTTLS, submission 2587 STARTTLS + AUTH required, submissions 2465 implicit TLS +
 * AUTH required, admin 2580), users/queue/certificate under `stateDir`, outbound policy `may`.
 * Call {@link ensureSelfSignedCertificate} (or use {@link loadEmbeddedConfig}) before serving.
 */
export function embeddedDefaults(stateDir = './var'): GatewayConfig {
  const dir = resolve(stateDir);
  const hostname = localHostname();
  const tls = embeddedTlsPaths(dir);
  return {
    source: null,
    hostname,
    tls: { ...tls, clientCa: null },
    listen: [
      {
        name: 'mx',
        address: '127.0.0.1',
        port: 2525,
        mode: 'starttls',
        role: 'mx',
        auth: 'none',
        clientCertificates: 'none',
      },
      {
        name: 'submission',
        address: '127.0.0.1',
        port: 2587,
        mode: 'starttls',
        role: 'submission',
        auth: 'required',
        clientCertificates: 'none',
      },
      {
        name: 'submissions',
        address: '127.0.0.1',
        port: 2465,
        mode: 'implicit',
        role: 'submission',
        auth: 'required',
        clientCertificates: 'none',
      },
    ],
    users: join(dir, 'users.yaml'),
    relay: {
      domains: [],
      localDomains: ['localhost'],
      // Only this host may relay without a password (Postfix `mynetworks_style = host`).
      networks: ['127.0.0.0/8', '::1/128'],
      senderMustMatchLogin: true,
    },
    queue: { dir: join(dir, 'queue'), ...DEFAULT_QUEUE, retry: { ...DEFAULT_QUEUE.retry } },
    dns: { servers: [], trustAd: 'loopback' },
    mtaSts: { enabled: true, cacheDir: join(dir, 'mta-sts') },
    tlsrpt: tlsrptConfig(undefined, hostname, join(dir, 'tlsrpt.sqlite')),
    routes: new Map(),
    relayhost: null,
    policy: { default: { ...DEFAULT_POLICY }, domains: new Map() },
    limits: { ...DEFAULT_LIMITS },
    authRateLimit: {
      perIp: { ...DEFAULT_AUTH_RATE_LIMIT.perIp },
      perUser: { ...DEFAULT_AUTH_RATE_LIMIT.perUser },
    },
    admin: {
      address: '127.0.0.1',
      port: DEFAULT_ADMIN_PORT,
      tokenFile: join(dir, 'admin.token'),
      metricsTokenFile: null,
    },
    log: { level: 'info' },
  };
}

/** TLS-RPT defaults (RFC 8460 §4.4 organization-name, contact-info) from the host name. */
export function tlsrptConfig(
  t: { enabled?: boolean; organization?: string; contact?: string; from?: string } | undefined,
  hostname: string,
  store: string,
): GatewayConfig['tlsrpt'] {
  return {
    enabled: t?.enabled ?? true,
    store,
    organization: t?.organization ?? hostname,
    contact: t?.contact ?? `postmaster@${hostname}`,
    from: t?.from ?? `tlsrpt-noreply@${hostname}`,
  };
}

/** Renew a generated certificate this long before it expires. */
const RENEW_BEFORE_MS = 7 * 86_400_000;

/**
 * Makes sure `certPath`/`keyPath` hold a usable certificate: keeps an existing one that is valid
 * for at least 7 more days, otherwise generates a self-signed ECDSA P-256 certificate for
 * `names` (valid one year; key file mode 0600). Returns true when it generated one.
 */
export async function ensureSelfSignedCertificate(
  certPath: string,
  keyPath: string,
  names: string[],
): Promise<boolean> {
  try {
    const [certPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
    const cert = new X509Certificate(certPem);
    if (Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS) return false;
  } catch {
    // missing or unreadable: generate below
  }
  const now = Date.now();
  try {
    // Imported here: @peculiar/x509 is only needed the first time, not for every config load.
    const { issueCertificate } = await import('../tls/cert/pki.ts');
    const issued = await issueCertificate({
      names: [...new Set(names)],
      keyType: { kind: 'ec', curve: 'P-256' },
      signatureHash: 'SHA-256',
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 365 * 86_400_000),
    });
    await mkdir(dirname(certPath), { recursive: true, mode: 0o700 });
    await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
    // The key first: a certificate without its key is useless, the reverse is regenerated.
    await writeFileAtomic(keyPath, issued.keyPem, { mode: SECRET_MODE });
    await writeFileAtomic(certPath, issued.certPem, { mode: 0o644 });
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e instanceof Error ? e.message : String(e));
    throw new PosternError(
      'config-state-dir',
      `cannot write the generated certificate to ${dirname(certPath)}: ${why}`,
      {
        hint: 'choose a writable state directory, or give a config file with tls.cert and tls.key',
        cause: e,
      },
    );
  }
  return true;
}

/** {@link embeddedDefaults} with its self-signed certificate generated when needed. */
export async function loadEmbeddedConfig(stateDir = './var'): Promise<GatewayConfig> {
  const config = embeddedDefaults(stateDir);
  await ensureSelfSignedCertificate(config.tls.cert, config.tls.key, [config.hostname, 'localhost']);
  return config;
}
