/**
 * User-defined grading profiles in YAML (see test/fixtures/profiles/example.yaml for a documented
 * example). Strict: unknown keys, wrong types, unknown suite or group names are errors, each
 * reported as `file:line:column: key.path: what is wrong` with PosternError code 'config-invalid'.
 *
 * `extends: <built-in id>` starts from that profile; tables (versions, suites.tls12, suites.tls13,
 * groups, certSignatureHashes, features, rules) are merged entry by entry, everything else is
 * replaced. Without `extends` the profile starts from an empty allow-list (nothing is allowed).
 */
import { z } from 'zod';
import { formatPath, locatedAt, readYamlFile, show, validateYaml } from '../../core/yaml.ts';
import type { IssueOverride } from '../../core/yaml.ts';
import type { VersionName } from '../wire/constants.ts';
import { groupByName } from '../wire/constants.ts';
import { formatSuiteCode, suiteByCode, suiteByName } from '../wire/suites.ts';
import { hashRatings, RFC_RULES } from './build.ts';
import { getProfile, PROFILE_IDS } from './index.ts';
import type { ProfileId } from './index.ts';
import { CERT_HASHES, CERT_KEY_TYPES, FEATURE_KEYS, RATINGS, REQUIREMENTS } from './types.ts';
import type { CertHash, FeatureRules, Profile, Rating, Requirement } from './types.ts';

/** Profile files are small; anything bigger is a mistake (or an attack on the parser). */

const RatingSchema = z.enum(RATINGS as [Rating, ...Rating[]]);
const RequirementSchema = z.enum(REQUIREMENTS as [Requirement, ...Requirement[]]);
const Bits = z.int().min(0).max(65536);

type Kind = 'tls12' | 'tls13' | 'group';

/**
 * A rated list: each entry is a name (rated 'sufficient') or a one-key map `name: rating`.
 * Resolves names to suite code points / canonical group names, reporting each bad entry at its index.
 */
function ratedList(kind: Kind) {
  return z.array(z.unknown()).transform((items, ctx) => {
    const out: [string | number, Rating][] = [];
    items.forEach((item, i) => {
      let name: unknown = item;
      let rating: Rating = 'sufficient';
      let path: PropertyKey[] = [i];
      if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
        const entries = Object.entries(item);
        const first = entries[0];
        if (entries.length !== 1 || first === undefined) {
          ctx.addIssue({ code: 'custom', message: "expected 'name' or 'name: rating' (one key)", path });
          return;
        }
        name = first[0];
        path = [i, first[0]];
        const r = RatingSchema.safeParse(first[1]);
        if (!r.success) {
          ctx.addIssue({
            code: 'custom',
            message: `unknown rating ${show(first[1])} (expected ${RATINGS.join(', ')})`,
            path,
          });
          return;
        }
        rating = r.data;
      }
      if (typeof name !== 'string') {
        ctx.addIssue({
          code: 'custom',
          message: `expected a ${kind === 'group' ? 'group' : 'cipher suite'} name`,
          path,
        });
        return;
      }
      const resolved = kind === 'group' ? resolveGroup(name) : resolveSuite(name, kind);
      if (typeof resolved === 'string' && resolved.startsWith('!')) {
        ctx.addIssue({ code: 'custom', message: resolved.slice(1), path });
        return;
      }
      out.push([resolved, rating]);
    });
    return out;
  });
}

/** A suite code point, or '!message' when the name is wrong for this table. */
function resolveSuite(name: string, kind: 'tls12' | 'tls13'): number | string {
  const s = /^0x[0-9a-f]{4}$/i.test(name) ? suiteByCode(Number(name)) : suiteByName(name);
  if (s === undefined) return `!unknown cipher suite '${name}'`;
  if (s.family === 'scsv') return `!'${name}' is a signalling value, not a cipher suite`;
  if (kind === 'tls13' && s.family !== 'tls13')
    return `!'${s.name}' is not a TLS 1.3 suite; list it under suites.tls12`;
  if (kind === 'tls12' && s.family === 'tls13') return `!'${s.name}' is a TLS 1.3 suite; list it under suites.tls13`;
  if (kind === 'tls12' && s.family !== 'tls')
    return `!'${s.name}' (${formatSuiteCode(s.code)}) is an SSL 2.0 cipher kind`;
  return s.code;
}

function resolveGroup(name: string): string {
  return groupByName(name)?.name ?? `!unknown group '${name}'`;
}

function optionalKeys<K extends string, S extends z.ZodType>(keys: readonly K[], schema: S) {
  return z.strictObject(Object.fromEntries(keys.map((k) => [k, schema.optional()])) as Record<K, z.ZodOptional<S>>);
}

const FileSchema = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected lower-case letters, digits, ., _ or - (max 64)'),
  title: z.string().min(1).max(200).optional(),
  source: z.string().min(1).max(500).optional(),
  extends: z.enum(PROFILE_IDS as [ProfileId, ...ProfileId[]]).optional(),
  // SSLv2/SSLv3 are not keys here on purpose: RFC 6176 and RFC 7568 prohibit them outright.
  versions: optionalKeys(['TLSv1.0', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const, RatingSchema).optional(),
  suites: z.strictObject({ tls12: ratedList('tls12').optional(), tls13: ratedList('tls13').optional() }).optional(),
  groups: ratedList('group').optional(),
  minRsaBits: Bits.optional(),
  minEcBits: Bits.optional(),
  minDhBits: Bits.optional(),
  minDsaBits: Bits.optional(),
  phaseOutRsaBits: Bits.optional(),
  phaseOutEcBits: Bits.optional(),
  phaseOutDsaBits: Bits.optional(),
  certKeyTypes: z.array(z.enum(CERT_KEY_TYPES as [string, ...string[]])).optional(),
  certCurves: z.array(z.string().min(1).max(64)).optional(),
  certSignatureHashes: optionalKeys(CERT_HASHES, RatingSchema).optional(),
  features: optionalKeys(FEATURE_KEYS, RequirementSchema).optional(),
  rules: z
    .record(z.string().regex(/^[a-z0-9][a-z0-9.-]{0,99}$/, 'expected a finding id'), z.string().min(1).max(500))
    .optional(),
});
type ProfileFile = z.infer<typeof FileSchema>;

/** The base of a profile without `extends`: nothing allowed, RFC-mandated features required. */
const EMPTY_BASE: Profile = {
  id: 'empty',
  title: 'custom profile',
  source: 'custom profile',
  versions: {},
  suites: { tls12: new Map(), tls13: new Map() },
  groups: new Map(),
  minRsaBits: 2048,
  minEcBits: 256,
  minDhBits: 2048,
  minDsaBits: 2048,
  certSignatureHashes: hashRatings({}),
  features: {
    secureRenegotiation: 'required',
    noCompression: 'required',
    noClientRenegotiation: 'ignored',
    noHeartbeat: 'ignored',
    encryptThenMac: 'ignored',
    extendedMasterSecret: 'ignored',
    fallbackScsv: 'ignored',
  },
  rules: RFC_RULES,
};

function merged<K, V>(base: ReadonlyMap<K, V>, over: readonly [K, V][] | undefined): ReadonlyMap<K, V> {
  const m = new Map(base);
  for (const [k, v] of over ?? []) m.set(k, v);
  return m;
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function buildProfile(f: ProfileFile, label: string): Profile {
  const base = f.extends === undefined ? EMPTY_BASE : getProfile(f.extends);
  const pick = <K extends keyof Profile>(k: K, v: Profile[K] | undefined): Profile[K] => v ?? base[k];
  const title = f.title ?? f.id;
  const profile: Profile = {
    id: f.id,
    title,
    source: f.source ?? (f.extends === undefined ? `custom profile ${label}` : `${label}, extending ${base.source}`),
    versions: Object.freeze({ ...base.versions, ...(defined(f.versions) as Partial<Record<VersionName, Rating>>) }),
    suites: Object.freeze({
      tls12: merged(base.suites.tls12, f.suites?.tls12 as [number, Rating][] | undefined),
      tls13: merged(base.suites.tls13, f.suites?.tls13 as [number, Rating][] | undefined),
    }),
    groups: merged(base.groups, f.groups as [string, Rating][] | undefined),
    minRsaBits: pick('minRsaBits', f.minRsaBits),
    minEcBits: pick('minEcBits', f.minEcBits),
    minDhBits: pick('minDhBits', f.minDhBits),
    minDsaBits: pick('minDsaBits', f.minDsaBits),
    ...optional('phaseOutRsaBits', f.phaseOutRsaBits ?? base.phaseOutRsaBits),
    ...optional('phaseOutEcBits', f.phaseOutEcBits ?? base.phaseOutEcBits),
    ...optional('phaseOutDsaBits', f.phaseOutDsaBits ?? base.phaseOutDsaBits),
    ...optional('certKeyTypes', (f.certKeyTypes as Profile['certKeyTypes']) ?? base.certKeyTypes),
    ...optional('certCurves', f.certCurves ?? base.certCurves),
    certSignatureHashes: Object.freeze({
      ...base.certSignatureHashes,
      ...(defined(f.certSignatureHashes) as Partial<Record<CertHash, Rating>>),
    }),
    features: Object.freeze({ ...base.features, ...(defined(f.features) as Partial<FeatureRules>) }),
    rules: Object.freeze({ ...base.rules, ...f.rules }),
  };
  return Object.freeze(profile);
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

const HINT = 'see test/fixtures/profiles/example.yaml for the profile format';

/** Profile-specific wording: SSLv2/SSLv3 under `versions`, and `rules` keys that are not finding ids. */
const override: IssueOverride = (issue, doc) => {
  if (issue.code === 'unrecognized_keys' && formatPath(issue.path) === 'versions') {
    return issue.keys.map((k) =>
      locatedAt(
        doc,
        issue.path,
        k === 'SSLv2' || k === 'SSLv3'
          ? `${k} cannot be allowed (RFC 6176 / RFC 7568 prohibit it)`
          : `unknown key '${k}'`,
        k,
      ),
    );
  }
  if (issue.code === 'invalid_key') {
    const key = String(issue.path[issue.path.length - 1]);
    return [
      locatedAt(
        doc,
        issue.path.slice(0, -1),
        `'${key}' is not a finding id (lower-case letters, digits, '.', '-')`,
        key,
      ),
    ];
  }
  return undefined;
};

/**
 * Parse a YAML profile. `label` names the file in error messages. Throws PosternError
 * 'config-invalid' naming file:line:column and the key path of each problem (at most 10).
 */
export function parseProfileYaml(text: string, label: string): Profile {
  const { value } = validateYaml(FileSchema, text, label, { hint: HINT, override });
  return buildProfile(value, label);
}

/** Load a YAML profile file (see parseProfileYaml); unreadable files are 'config-invalid' too. */
export async function loadProfileFile(path: string): Promise<Profile> {
  const text = await readYamlFile(path, 'profile');
  return parseProfileYaml(text, path);
}
