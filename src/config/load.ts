/**
 * Loads and validates `postern.yaml`: schema first (src/config/schema.ts), then the rules that
 * span keys (unique listeners, AUTH needs a users file, …) and the files the config names. Every
 * problem is reported as `file:line:column: key.path: what is wrong` (PosternError
 * 'config-invalid'); relative paths are resolved against the config file's directory.
 */
import { stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { Document } from 'yaml';
import { loadProfileFile } from '../tls/profiles/custom.ts';
import { getProfile, isProfileId } from '../tls/profiles/index.ts';
import { DEFAULT_AUTH_RATE_LIMIT, DEFAULT_LIMITS, DEFAULT_POLICY, DEFAULT_QUEUE, tlsrptConfig } from './defaults.ts';
import { cidrContains, parseCidr, parseDomain } from './net.ts';
import { ConfigFileSchema } from './schema.ts';
import type { ConfigFile, DomainPolicyConfig, GatewayConfig, ListenerConfig, PolicyProfileRef } from './schema.ts';
import { invalidConfig, locatedAt, readYamlFile, validateYaml } from '../core/yaml.ts';
import type { Located } from '../core/yaml.ts';

const HINT = 'see docs/configuration.md and docs/postern.example.yaml';

async function isFile(path: string): Promise<string | null> {
  try {
    const st = await stat(path);
    return st.isFile() ? null : 'not a regular file';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((e as Error).message);
  }
}

const LOOPBACK = ['127.0.0.0/8', '::1/128'].map((c) => parseCidr(c)).filter((c) => typeof c !== 'string');

function isLoopback(address: string): boolean {
  return LOOPBACK.some((c) => cidrContains(c, address));
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** Do two listening sockets collide (same port, same or wildcard address)? */
function sameSocket(a: { address: string; port: number }, b: { address: string; port: number }): boolean {
  if (a.port !== b.port) return false;
  if (a.address === b.address) return true;
  // '::' usually also takes IPv4 (dual stack); a wildcard collides with any address of its family.
  if (isWildcard(a.address) || isWildcard(b.address)) {
    const w = isWildcard(a.address) ? a.address : b.address;
    const o = w === a.address ? b.address : a.address;
    return w === '::' || isIP(o) === 4;
  }
  return false;
}

class Checker {
  readonly problems: Located[] = [];
  readonly doc: Document;
  constructor(doc: Document) {
    this.doc = doc;
  }
  at(path: readonly PropertyKey[], msg: string, key?: string): void {
    this.problems.push(locatedAt(this.doc, path, msg, key));
  }
}

function normalizedKeys<V, T>(
  c: Checker,
  path: string[],
  record: Record<string, V> | undefined,
  build: (key: string, value: V) => T,
): Map<string, T> {
  const out = new Map<string, T>();
  for (const [key, value] of Object.entries(record ?? {})) {
    const d = parseDomain(key);
    if ('error' in d) {
      c.at(path, d.error, key);
      continue;
    }
    if (out.has(d.domain)) {
      c.at(path, `'${key}' is listed twice (as ${d.domain})`, key);
      continue;
    }
    out.set(d.domain, build(d.domain, value));
  }
  return out;
}

async function resolveProfile(
  c: Checker,
  path: readonly PropertyKey[],
  entry: { level: DomainPolicyConfig['level']; profile?: string | undefined },
  baseDir: string,
  cache: Map<string, Promise<PolicyProfileRef | string>>,
): Promise<DomainPolicyConfig> {
  if (entry.profile === undefined) return { level: entry.level, profile: null };
  // Under `may` a failing profile could only be "enforced" by cleartext, a downgrade (policy/table.ts).
  if (entry.level === 'none' || entry.level === 'may') {
    c.at(
      [...path, 'profile'],
      `a profile needs TLS; it cannot be combined with level '${entry.level}' (use encrypt, verify or secure)`,
    );
    return { level: entry.level, profile: null };
  }
  if (isProfileId(entry.profile))
    return { level: entry.level, profile: { kind: 'builtin', id: entry.profile, profile: getProfile(entry.profile) } };
  const file = resolve(baseDir, entry.profile);
  let pending = cache.get(file);
  if (pending === undefined) {
    pending = loadProfileFile(file).then(
      (profile): PolicyProfileRef => ({ kind: 'file', path: file, profile }),
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    cache.set(file, pending);
  }
  const ref = await pending;
  if (typeof ref === 'string') {
    c.at(
      [...path, 'profile'],
      `not a built-in profile (bsi, ncsc-nl, mozilla-intermediate, mozilla-modern) and not a usable profile file: ${ref.split('\n')[0]}`,
    );
    return { level: entry.level, profile: null };
  }
  return { level: entry.level, profile: ref };
}

function listeners(c: Checker, file: ConfigFile): ListenerConfig[] {
  const out = file.listen.map((l): ListenerConfig => ({
    name: l.name,
    address: l.address,
    port: l.port,
    mode: l.mode,
    role: l.role,
    auth: l.auth ?? (l.role === 'submission' ? 'required' : 'none'),
    clientCertificates: l.clientCertificates ?? 'none',
  }));
  out.forEach((l, i) => {
    const p = ['listen', i];
    const dupName = out.findIndex((o) => o.name === l.name);
    if (dupName < i) c.at([...p, 'name'], `listener name '${l.name}' is already used by listen[${dupName}]`);
    const dupSock = out.findIndex((o) => sameSocket(o, l));
    if (dupSock < i) c.at([...p, 'port'], `${l.address}:${l.port} collides with listen[${dupSock}]`);
    if (l.role === 'mx' && l.auth === 'required')
      c.at(
        [...p, 'auth'],
        "an mx listener cannot require AUTH: other mail servers do not log in (use role 'submission')",
      );
    if (l.auth !== 'none' && file.users === undefined)
      c.at([...p, 'auth'], `auth '${l.auth}' needs a users file (set 'users' at the top level)`);
    if (l.clientCertificates === 'request' && file.tls.clientCa === undefined)
      c.at([...p, 'clientCertificates'], "'request' needs tls.clientCa (the CAs client certificates must chain to)");
  });
  return out;
}

/**
 * Validates the config text and builds the typed config. `label` names the file in messages and
 * `baseDir` anchors relative paths. Checks that tls.cert/key (and clientCa) exist and loads
 * profile files; does not touch the users file or the queue directory.
 */
export async function parseConfig(text: string, label: string, baseDir: string): Promise<GatewayConfig> {
  const { doc, lc, value: file } = validateYaml(ConfigFileSchema, text, label, { hint: HINT });
  const c = new Checker(doc);
  const abs = (p: string): string => resolve(baseDir, p);

  const listen = listeners(c, file);

  const tls = {
    cert: abs(file.tls.cert),
    key: abs(file.tls.key),
    clientCa: file.tls.clientCa === undefined ? null : abs(file.tls.clientCa),
  };
  const fileChecks: [string[], string | null][] = [
    [['tls', 'cert'], tls.cert],
    [['tls', 'key'], tls.key],
    [['tls', 'clientCa'], tls.clientCa],
  ];
  for (const [p, f] of fileChecks) {
    if (f === null) continue;
    const why = await isFile(f);
    if (why !== null) c.at(p, `${f}: ${why}`);
  }

  const q = file.queue ?? {};
  const queue = {
    dir: abs(q.dir ?? 'var/queue'),
    backend: q.backend ?? DEFAULT_QUEUE.backend,
    maxLifetimeMs: q.maxLifetime ?? DEFAULT_QUEUE.maxLifetimeMs,
    delayWarningMs: q.delayWarning ?? DEFAULT_QUEUE.delayWarningMs,
    retry: {
      initialMs: q.retry?.initial ?? DEFAULT_QUEUE.retry.initialMs,
      maxMs: q.retry?.max ?? DEFAULT_QUEUE.retry.maxMs,
    },
  };
  if (queue.retry.initialMs > queue.retry.maxMs)
    c.at(['queue', 'retry', 'initial'], 'the first retry interval is longer than queue.retry.max');
  if (queue.delayWarningMs >= queue.maxLifetimeMs)
    c.at(['queue', 'delayWarning'], 'the delay warning would come after the message bounces (queue.maxLifetime)');

  const routes = normalizedKeys(c, ['routes'], file.routes, (_k, v) => v);
  const recipients = normalizedKeys(c, ['relay', 'recipients'], file.relay?.recipients, (_k, v) => [
    ...new Set(v.map((l) => l.toLowerCase())),
  ]);
  const ourDomains = [...(file.relay?.localDomains ?? []), ...(file.relay?.domains ?? [])];
  for (const d of recipients.keys())
    if (!ourDomains.includes(d))
      c.at(['relay', 'recipients'], `'${d}' is not in relay.localDomains or relay.domains`, d);

  const cache = new Map<string, Promise<PolicyProfileRef | string>>();
  const policyDefault =
    file.policy?.default === undefined
      ? { ...DEFAULT_POLICY }
      : await resolveProfile(c, ['policy', 'default'], file.policy.default, baseDir, cache);
  const policyDomains = new Map<string, DomainPolicyConfig>();
  for (const [key, entry] of Object.entries(file.policy?.domains ?? {})) {
    const d = parseDomain(key);
    if ('error' in d) c.at(['policy', 'domains'], d.error, key);
    else if (policyDomains.has(d.domain)) c.at(['policy', 'domains'], `'${key}' is listed twice (as ${d.domain})`, key);
    else policyDomains.set(d.domain, await resolveProfile(c, ['policy', 'domains', key], entry, baseDir, cache));
  }

  let admin: GatewayConfig['admin'] = null;
  if (file.admin !== undefined) {
    admin = {
      address: file.admin.address,
      port: file.admin.port,
      tokenFile: abs(file.admin.tokenFile ?? join(queue.dir, 'admin.token')),
      metricsTokenFile: file.admin.metricsTokenFile === undefined ? null : abs(file.admin.metricsTokenFile),
    };
    if (!isLoopback(admin.address) && file.admin.allowInsecureRemoteAdmin !== true)
      c.at(
        ['admin', 'address'],
        'the admin API (metrics, queue control) is plain HTTP: its bearer token would cross the network in clear; bind it to 127.0.0.1 or ::1 (or set allowInsecureRemoteAdmin: true)',
      );
    const clash = listen.findIndex((l) => sameSocket(l, admin as { address: string; port: number }));
    if (clash >= 0) c.at(['admin', 'port'], `${admin.address}:${admin.port} collides with listen[${clash}]`);
  }

  if (c.problems.length > 0) throw invalidConfig(label, lc, c.problems, HINT);

  const l = file.limits ?? {};
  const rl = file.authRateLimit ?? {};
  const rule = (r: { failures: unknown; window: unknown } | undefined, d: { failures: number; windowMs: number }) =>
    r === undefined ? { ...d } : { failures: r.failures as number, windowMs: r.window as number };
  return {
    source: label,
    hostname: file.hostname,
    tls,
    listen,
    users: file.users === undefined ? null : abs(file.users),
    relay: {
      domains: [...new Set(file.relay?.domains ?? [])],
      localDomains: [...new Set(file.relay?.localDomains ?? [])],
      networks: [...new Set(file.relay?.networks ?? [])],
      senderMustMatchLogin: file.relay?.senderMustMatchLogin ?? true,
      // RFC 5321 §4.5.1: <Postmaster> must be deliverable; our first domain, else this host.
      postmaster: file.relay?.postmaster ?? `postmaster@${ourDomains[0] ?? file.hostname}`,
      recipients,
      rejectUnauthenticatedLocalSenders: file.relay?.rejectUnauthenticatedLocalSenders ?? false,
    },
    queue,
    dns: { servers: file.dns?.servers ?? [], trustAd: file.dns?.trustAd ?? 'loopback' },
    mtaSts: {
      enabled: file.mtaSts?.enabled ?? true,
      cacheDir: file.mtaSts?.cacheDir !== undefined ? abs(file.mtaSts.cacheDir) : join(queue.dir, 'mta-sts'),
      ...(file.mtaSts?.allowPrivateAddresses === true ? { allowPrivateAddresses: true } : {}),
    },
    tlsrpt: tlsrptConfig(
      file.tlsrpt,
      file.hostname,
      file.tlsrpt?.store !== undefined ? abs(file.tlsrpt.store) : join(queue.dir, 'tlsrpt.sqlite'),
    ),
    routes,
    relayhost: file.relayhost ?? null,
    policy: { default: policyDefault, domains: policyDomains },
    limits: {
      maxMessageSize: l.maxMessageSize ?? DEFAULT_LIMITS.maxMessageSize,
      maxRecipients: l.maxRecipients ?? DEFAULT_LIMITS.maxRecipients,
      maxLineLength: l.maxLineLength ?? DEFAULT_LIMITS.maxLineLength,
      commandTimeoutMs: l.commandTimeout ?? DEFAULT_LIMITS.commandTimeoutMs,
      dataTimeoutMs: l.dataTimeout ?? DEFAULT_LIMITS.dataTimeoutMs,
      maxConnections: l.maxConnections ?? DEFAULT_LIMITS.maxConnections,
      maxConnectionsPerIp: l.maxConnectionsPerIp ?? DEFAULT_LIMITS.maxConnectionsPerIp,
      maxErrors: l.maxErrors ?? DEFAULT_LIMITS.maxErrors,
      maxSubmissionConnections: l.maxSubmissionConnections ?? DEFAULT_LIMITS.maxSubmissionConnections,
      junkCommandLimit: l.junkCommandLimit ?? DEFAULT_LIMITS.junkCommandLimit,
      dataDeadlineMs: l.dataDeadline ?? DEFAULT_LIMITS.dataDeadlineMs,
      stressTimeoutMs: l.stressTimeout ?? DEFAULT_LIMITS.stressTimeoutMs,
      stressThreshold: l.stressThreshold ?? DEFAULT_LIMITS.stressThreshold,
    },
    authRateLimit: {
      perIp: rule(rl.perIp, DEFAULT_AUTH_RATE_LIMIT.perIp),
      perUser: rule(rl.perUser, DEFAULT_AUTH_RATE_LIMIT.perUser),
    },
    admin,
    log: { level: file.log?.level ?? 'info' },
  };
}

/**
 * Loads `postern.yaml` (see docs/configuration.md): validated, defaults applied, paths absolute.
 * Throws PosternError 'config-invalid' naming file:line:column and key path of each problem.
 */
export async function loadConfig(path: string): Promise<GatewayConfig> {
  const text = await readYamlFile(
    path,
    'config',
    'give the path of a postern.yaml, or run without --config for the embedded default',
  );
  return parseConfig(text, path, dirname(resolve(path)));
}
