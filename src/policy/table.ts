/**
 * The per-domain TLS policy table, like Postfix's `smtp_tls_policy_maps`: an exact entry for the
 * next-hop domain wins; a leading-dot entry `.example.org` matches every subdomain (the most
 * specific parent first); otherwise the default applies.
 */
import { isAbsolute, resolve } from 'node:path';
import { UsageError } from '../core/errors.ts';
import { getProfile, isProfileId } from '../tls/profiles/index.ts';
import { loadProfileFile } from '../tls/profiles/custom.ts';
import type { Profile } from '../tls/profiles/types.ts';
import { parseLevel, requiresTls } from './levels.ts';
import type { TlsLevel } from './levels.ts';

/** One policy entry. `profile`: a built-in id ('bsi', …) or an already loaded Profile. */
export interface PolicyEntrySpec {
  /** A TlsLevel name as written ('may', 'verify', …); parseLevel checks it. */
  level: string;
  profile?: string | Profile | null;
}

export interface PolicyTableSpec {
  default: PolicyEntrySpec;
  domains?: Record<string, PolicyEntrySpec>;
}

export interface PolicyLookup {
  level: TlsLevel;
  profile: Profile | null;
  /** Which entry decided: 'domain example.org', 'domain .example.org' or 'default'. */
  matched: string;
}

interface Entry {
  level: TlsLevel;
  profile: Profile | null;
}

/** Lower-case, without a trailing dot. */
export function normalizeDomain(d: string): string {
  return d.trim().toLowerCase().replace(/\.$/, '');
}

function entry(spec: PolicyEntrySpec, where: string): Entry {
  const level = parseLevel(spec.level);
  let profile: Profile | null = null;
  if (typeof spec.profile === 'string') {
    if (!isProfileId(spec.profile)) {
      throw new UsageError(`${where}: unknown profile '${spec.profile}'`, {
        hint: 'use a built-in id (bsi, ncsc-nl, mozilla-intermediate, mozilla-modern) or load the YAML file first',
      });
    }
    profile = getProfile(spec.profile);
  } else if (spec.profile !== undefined && spec.profile !== null) profile = spec.profile;
  // A profile under none/may could only be "enforced" by falling back to cleartext, which is a
  // downgrade; refuse the combination instead of silently ignoring it.
  if (profile !== null && !requiresTls(level)) {
    throw new UsageError(`${where}: a TLS profile needs level encrypt, verify or secure (got ${level})`);
  }
  return { level, profile };
}

/** A compiled, immutable policy table. */
export class PolicyTable {
  readonly #default: Entry;
  readonly #domains: ReadonlyMap<string, Entry>;

  constructor(spec: PolicyTableSpec) {
    this.#default = entry(spec.default, 'policy default');
    const m = new Map<string, Entry>();
    for (const [k, v] of Object.entries(spec.domains ?? {})) {
      const key = normalizeDomain(k);
      if (key === '' || key === '.') throw new UsageError(`policy domain '${k}' is empty`);
      if (m.has(key)) throw new UsageError(`policy domain '${k}' is listed twice`);
      m.set(key, entry(v, `policy ${key}`));
    }
    this.#domains = m;
  }

  /** The policy for mail to `domain` (the next-hop domain). */
  lookup(domain: string): PolicyLookup {
    const d = normalizeDomain(domain);
    const exact = this.#domains.get(d);
    if (exact !== undefined) return { ...exact, matched: `domain ${d}` };
    // Parent entries with a leading dot, most specific first: a.b.example.org → .b.example.org, .example.org, .org
    for (let i = d.indexOf('.'); i !== -1; i = d.indexOf('.', i + 1)) {
      const key = d.slice(i);
      const e = this.#domains.get(key);
      if (e !== undefined) return { ...e, matched: `domain ${key}` };
    }
    return { ...this.#default, matched: 'default' };
  }

  /** Entries as configured, for `postern policy` listings. */
  entries(): Array<{ domain: string; level: TlsLevel; profile: string | null }> {
    const list = [
      { domain: 'default', ...this.#default },
      ...[...this.#domains].map(([domain, e]) => ({ domain, ...e })),
    ];
    return list.map((e) => ({ domain: e.domain, level: e.level, profile: e.profile?.id ?? null }));
  }
}

/**
 * Build a table, loading profiles that are not built-in ids as YAML files (relative paths from
 * `baseDir`, e.g. the config file's directory).
 */
export async function loadPolicyTable(spec: PolicyTableSpec, opts: { baseDir?: string } = {}): Promise<PolicyTable> {
  const load = async (e: PolicyEntrySpec): Promise<PolicyEntrySpec> => {
    if (typeof e.profile !== 'string' || isProfileId(e.profile)) return e;
    const path = isAbsolute(e.profile) ? e.profile : resolve(opts.baseDir ?? process.cwd(), e.profile);
    return { level: e.level, profile: await loadProfileFile(path) };
  };
  const domains: Record<string, PolicyEntrySpec> = {};
  for (const [k, v] of Object.entries(spec.domains ?? {})) domains[k] = await load(v);
  return new PolicyTable({ default: await load(spec.default), domains });
}
