/**
 * MTA-STS policy discovery with a policy cache (RFC 8461 §3, §3.3, §5.1, §10.2).
 *
 * Every lookup resolves the `_mta-sts` TXT record and compares its id with the cached policy's
 * (§3: "the sender need only check the TXT record's version id against the cached value"); a
 * policy is fetched only when there is none cached, the cached one has expired, or the id
 * changed. A cached, unexpired policy stays in force when the TXT record disappears, DNS fails or
 * a new policy cannot be fetched (§3.3: "the sender MUST apply that cached policy"), since an
 * attacker who can suppress DNS or HTTPS must not be able to switch MTA-STS off (§10.2).
 *
 * Policies in mode `none` are cached like any other: publishing one is how a domain withdraws
 * MTA-STS (§8.3), and it must replace an `enforce` policy still in the cache.
 *
 * Persistence (optional): one JSON file per domain in `dir`, `<domain>.json`, replaced atomically
 * (core/fs.ts: temp file, fsync, rename, fsync of the directory; 0600), re-validated on load;
 * unreadable files are logged and ignored.
 */
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { SECRET_MODE, writeFileAtomic } from '../../core/fs.ts';
import { DnsError } from '../../dns/resolver.ts';
import { fetchStsPolicy, normalisePolicyDomain } from './fetch.ts';
import type { StsFetchError, StsFetchOptions } from './fetch.ts';
import { MAX_POLICY_BYTES, parseStsPolicy } from './policy.ts';
import type { StsPolicy } from './policy.ts';
import { parseStsRecord } from './record.ts';

export type StsLookupErrorType = StsFetchError | 'sts-record-invalid' | 'dns-error';

/**
 * Outcome of discovery for one domain.
 * - `policy`: a policy is in force (`policy`, `id`, `policyText` set). Its mode may be `none`,
 *   which means no MTA-STS requirement (RFC 8461 §5). `error` may still be set: a refresh
 *   failed and the cached policy was applied.
 * - `none`: the domain publishes no `_mta-sts` record and nothing is cached.
 * - `error`: MTA-STS could not be determined (DNS failure, invalid record, failed fetch) and
 *   nothing valid is cached. RFC 8461 §3.3: deliver as though the domain had no MTA-STS; `error`
 *   carries the RFC 8460 result type for TLS-RPT.
 */
export interface StsLookup {
  state: 'policy' | 'none' | 'error';
  policy: StsPolicy | null;
  /** The policy's TXT id (state policy), else the id seen in DNS, if any. */
  id: string | null;
  source: 'cache' | 'fetched' | null;
  /** ISO 8601 time the policy in force was fetched. */
  fetchedAt: string | null;
  /** fetchedAt + max_age. */
  expiresAt: string | null;
  error: { type: StsLookupErrorType; reason: string } | null;
  policyText: string | null;
}

export interface StsPolicyCacheOptions {
  /** State directory for persistence; null keeps the cache in memory only. */
  dir: string | null;
  fetch: StsFetchOptions;
  now?: () => Date;
  log?: Logger;
  /**
   * After a failed fetch, the same TXT id is not fetched again for this long (RFC 8461 §3.3:
   * "SHOULD limit further attempts to a period of five minutes or longer per version ID").
   * Default 300 000 ms. `recheck` ignores it.
   */
  retryAfterMs?: number;
  /** Most domains kept (default 10 000); beyond that the entry expiring first is dropped. */
  maxEntries?: number;
}

interface Entry {
  domain: string;
  id: string;
  policy: StsPolicy;
  text: string;
  fetchedAt: number;
  expiresAt: number;
}

interface Failure {
  id: string;
  at: number;
  error: StsFetchError;
  reason: string;
}

type Fetched = { ok: true; entry: Entry } | { ok: false; error: StsFetchError; reason: string };

type TxtAnswer =
  | { kind: 'id'; id: string }
  | { kind: 'absent'; reason: string }
  | { kind: 'invalid'; reason: string }
  | { kind: 'dns-error'; reason: string };

const FILE_VERSION = 1;
/** A persisted entry is a policy (≤ 64 KiB) plus a few fields; anything bigger is not ours. */
const MAX_FILE_BYTES = 2 * MAX_POLICY_BYTES + 4096;
const DAY_MS = 86_400_000;
const REFRESH_CONCURRENCY = 8;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function errorLookup(type: StsLookupErrorType, reason: string, id: string | null = null): StsLookup {
  return {
    state: 'error',
    policy: null,
    id,
    source: null,
    fetchedAt: null,
    expiresAt: null,
    error: { type, reason },
    policyText: null,
  };
}

function policyLookup(
  e: Entry,
  source: 'cache' | 'fetched',
  error: { type: StsLookupErrorType; reason: string } | null = null,
): StsLookup {
  return {
    state: 'policy',
    policy: e.policy,
    id: e.id,
    source,
    fetchedAt: iso(e.fetchedAt),
    expiresAt: iso(e.expiresAt),
    error,
    policyText: e.text,
  };
}

const NONE: StsLookup = {
  state: 'none',
  policy: null,
  id: null,
  source: null,
  fetchedAt: null,
  expiresAt: null,
  error: null,
  policyText: null,
};

/** RFC 8461 policy cache and discovery; see the module comment. */
export class StsPolicyCache {
  readonly #dir: string | null;
  readonly #fetchOpts: StsFetchOptions;
  readonly #now: () => Date;
  readonly #log: Logger | undefined;
  readonly #retryAfterMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();
  readonly #failures = new Map<string, Failure>();
  /** In-flight fetches by "domain id": concurrent lookups share one HTTPS request. */
  readonly #inflight = new Map<string, Promise<Fetched>>();
  #loaded: Promise<void> | null = null;

  constructor(opts: StsPolicyCacheOptions) {
    this.#dir = opts.dir;
    this.#fetchOpts = opts.fetch;
    this.#now = opts.now ?? (() => new Date());
    this.#log = opts.log;
    this.#retryAfterMs = opts.retryAfterMs ?? 300_000;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
  }

  /** RFC 8461 §3 / §5.1 discovery for a recipient domain, using and updating the cache. Never throws. */
  async lookup(domain: string): Promise<StsLookup> {
    return this.#discover(domain, false);
  }

  /**
   * Before a message is bounced or deferred for an MTA-STS failure (RFC 8461 §5: not before
   * checking for an updated policy): re-query the TXT id and fetch when it changed, even if a
   * fetch for that id failed moments ago. Never throws.
   */
  async recheck(domain: string): Promise<StsLookup> {
    return this.#discover(domain, true);
  }

  /**
   * Proactive refresh (RFC 8461 §3.3, §10.2: "MTAs SHOULD proactively refresh cached policies
   * before they expire; a suggested refresh frequency is once per day"). Refetches every cached
   * policy that expires within `within` ms or was fetched more than `within` ms ago, so calling
   * this every `within` ms (default one day) keeps policies from lapsing while the domain still
   * publishes them. Returns how many were refreshed. Never throws.
   */
  async refreshDue(within: number = DAY_MS): Promise<number> {
    await this.#load();
    const now = this.#now().getTime();
    const due = [...this.#entries.values()].filter((e) => e.expiresAt - now <= within || now - e.fetchedAt >= within);
    let refreshed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const e = due[next++];
        if (e !== undefined && (await this.#refreshOne(e))) refreshed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(REFRESH_CONCURRENCY, due.length) }, worker));
    return refreshed;
  }

  async #refreshOne(old: Entry): Promise<boolean> {
    const d = old.domain;
    const txt = await this.#queryTxt(d);
    if (txt.kind !== 'id') {
      // Without a live record nothing can be fetched; the cached policy runs to its expiry.
      this.#alert(old, `MTA-STS refresh for ${d} skipped: ${txt.reason}`);
      return false;
    }
    const r = await this.#fetchShared(d, txt.id);
    if (!r.ok) {
      this.#alert(old, `MTA-STS refresh for ${d} failed (${r.error}): ${r.reason}`);
      return false;
    }
    return true;
  }

  /** RFC 8461 §3.3: alert when refresh fails, unless the cached policy is mode none. */
  #alert(e: Entry, msg: string): void {
    if (e.policy.mode === 'none') this.#log?.info({ domain: e.domain, id: e.id }, msg);
    else this.#log?.warn({ domain: e.domain, id: e.id, mode: e.policy.mode }, msg);
  }

  async #discover(domain: string, ignoreBackoff: boolean): Promise<StsLookup> {
    const d = normalisePolicyDomain(domain);
    if (d === null) return errorLookup('dns-error', `invalid domain name "${String(domain).slice(0, 80)}"`);
    await this.#load();
    const txt = await this.#queryTxt(d);
    // Read the cache after the (slow) DNS query, so a fetch finished meanwhile is seen.
    const cached = this.#valid(d);
    switch (txt.kind) {
      case 'absent':
        // §3.3: no live policy but a valid cached one → apply the cached one.
        return cached ? policyLookup(cached, 'cache') : NONE;
      case 'invalid':
        // §3.1: an invalid record ends discovery; a valid cached policy still applies (§3.3).
        return cached
          ? policyLookup(cached, 'cache', { type: 'sts-record-invalid', reason: txt.reason })
          : errorLookup('sts-record-invalid', txt.reason);
      case 'dns-error':
        return cached
          ? policyLookup(cached, 'cache', { type: 'dns-error', reason: txt.reason })
          : errorLookup('dns-error', txt.reason);
      case 'id':
        break;
    }
    const id = txt.id;
    if (cached && cached.id === id) return policyLookup(cached, 'cache');

    const failed = this.#failures.get(d);
    const now = this.#now().getTime();
    if (!ignoreBackoff && failed && failed.id === id && now - failed.at < this.#retryAfterMs) {
      const reason = `${failed.reason} (not retried before ${iso(failed.at + this.#retryAfterMs)})`;
      return cached
        ? policyLookup(cached, 'cache', { type: failed.error, reason })
        : errorLookup(failed.error, reason, id);
    }

    const r = await this.#fetchShared(d, id);
    if (r.ok) return policyLookup(r.entry, 'fetched');
    const still = this.#valid(d);
    if (still) {
      this.#alert(
        still,
        `MTA-STS policy for ${d} (id ${id}) not fetched (${r.error}): ${r.reason}; cached id ${still.id} stays in force`,
      );
      return policyLookup(still, 'cache', { type: r.error, reason: r.reason });
    }
    this.#log?.info({ domain: d, id, error: r.error }, `MTA-STS policy for ${d} not fetched: ${r.reason}`);
    return errorLookup(r.error, r.reason, id);
  }

  async #queryTxt(d: string): Promise<TxtAnswer> {
    let rrset: string[][];
    try {
      rrset = await this.#fetchOpts.dns.txt(`_mta-sts.${d}`);
    } catch (e) {
      if (e instanceof DnsError && !e.temporary) return { kind: 'absent', reason: e.message };
      return { kind: 'dns-error', reason: e instanceof Error ? e.message : String(e) };
    }
    const rec = parseStsRecord(rrset);
    if (rec.ok) return { kind: 'id', id: rec.id };
    return rec.absent === true
      ? { kind: 'absent', reason: `_mta-sts.${d}: ${rec.reason}` }
      : { kind: 'invalid', reason: `_mta-sts.${d}: ${rec.reason}` };
  }

  /** Fetch, then cache or record the failure; concurrent callers for one domain and id share it. */
  #fetchShared(d: string, id: string): Promise<Fetched> {
    const key = `${d} ${id}`;
    let p = this.#inflight.get(key);
    if (p === undefined) {
      p = this.#fetchAndStore(d, id).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #fetchAndStore(d: string, id: string): Promise<Fetched> {
    const r = await fetchStsPolicy(d, this.#fetchOpts);
    if (!r.ok) {
      this.#failures.set(d, { id, at: this.#now().getTime(), error: r.error, reason: r.reason });
      return r;
    }
    this.#failures.delete(d);
    return { ok: true, entry: await this.#store(d, id, r) };
  }

  /** The unexpired cached entry for `d`; an expired one is dropped (§3.2 max_age). */
  #valid(d: string): Entry | null {
    const e = this.#entries.get(d);
    if (e === undefined) return null;
    if (this.#now().getTime() < e.expiresAt) return e;
    this.#entries.delete(d);
    void this.#remove(d);
    return null;
  }

  async #store(d: string, id: string, r: { policy: StsPolicy; text: string }): Promise<Entry> {
    const fetchedAt = this.#now().getTime();
    const e: Entry = {
      domain: d,
      id,
      policy: r.policy,
      text: r.text,
      fetchedAt,
      expiresAt: fetchedAt + r.policy.maxAge * 1000,
    };
    // max_age 0: usable for this delivery only (RFC 8461 §3.2 "up to this value"), not cached.
    if (r.policy.maxAge === 0) {
      this.#entries.delete(d);
      await this.#remove(d);
      return e;
    }
    this.#entries.delete(d);
    this.#evict();
    this.#entries.set(d, e);
    await this.#persist(e);
    return e;
  }

  /** Keeps the map under maxEntries: expired entries first, then the one expiring soonest. */
  #evict(): void {
    if (this.#entries.size < this.#maxEntries) return;
    const now = this.#now().getTime();
    for (const [d, e] of this.#entries) {
      if (e.expiresAt <= now) {
        this.#entries.delete(d);
        void this.#remove(d);
      }
    }
    while (this.#entries.size >= this.#maxEntries) {
      let victim: Entry | null = null;
      for (const e of this.#entries.values()) if (victim === null || e.expiresAt < victim.expiresAt) victim = e;
      if (victim === null) break;
      this.#entries.delete(victim.domain);
      void this.#remove(victim.domain);
    }
  }

  // ---- persistence ----

  #file(d: string): string | null {
    return this.#dir === null ? null : join(this.#dir, `${d}.json`);
  }

  async #persist(e: Entry): Promise<void> {
    const file = this.#file(e.domain);
    if (file === null || this.#dir === null) return;
    const data = JSON.stringify({
      version: FILE_VERSION,
      domain: e.domain,
      id: e.id,
      fetchedAt: iso(e.fetchedAt),
      expiresAt: iso(e.expiresAt),
      policyText: e.text,
    });
    try {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      await writeFileAtomic(file, data, { mode: SECRET_MODE });
    } catch (err) {
      // The in-memory cache still works; a lost file only costs a refetch after a restart.
      this.#log?.warn({ domain: e.domain, err }, `cannot write MTA-STS cache file ${file}`);
    }
  }

  async #remove(d: string): Promise<void> {
    const file = this.#file(d);
    if (file === null) return;
    await unlink(file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') this.#log?.warn({ domain: d, err }, `cannot remove MTA-STS cache file ${file}`);
    });
  }

  #load(): Promise<void> {
    this.#loaded ??= this.#loadAll();
    return this.#loaded;
  }

  async #loadAll(): Promise<void> {
    const dir = this.#dir;
    if (dir === null) return;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#log?.warn({ err }, `cannot read MTA-STS cache directory ${dir}`);
      return;
    }
    const now = this.#now().getTime();
    for (const name of names) {
      if (name.endsWith('.tmp')) {
        // Left behind by a write that crashed before its rename.
        await unlink(join(dir, name)).catch(() => undefined);
        continue;
      }
      if (!name.endsWith('.json')) continue;
      if (this.#entries.size >= this.#maxEntries) {
        this.#log?.warn(
          `MTA-STS cache directory ${dir} holds more than ${this.#maxEntries} entries; the rest are ignored`,
        );
        break;
      }
      const e = await this.#readEntry(dir, name, now);
      if (e === null) continue;
      if (e.expiresAt <= now) {
        await this.#remove(e.domain);
        continue;
      }
      this.#entries.set(e.domain, e);
    }
  }

  /** One cache file, re-validated from scratch (policy re-parsed, expiry recomputed), or null. */
  async #readEntry(dir: string, name: string, now: number): Promise<Entry | null> {
    const file = join(dir, name);
    const bad = (why: string): null => {
      this.#log?.warn({ file }, `ignoring MTA-STS cache file ${file}: ${why}`);
      return null;
    };
    try {
      const st = await stat(file);
      if (!st.isFile()) return bad('not a regular file');
      if (st.size > MAX_FILE_BYTES) return bad(`larger than ${MAX_FILE_BYTES} bytes`);
      const raw: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (typeof raw !== 'object' || raw === null) return bad('not a JSON object');
      const o = raw as Record<string, unknown>;
      const domain = typeof o['domain'] === 'string' ? normalisePolicyDomain(o['domain']) : null;
      if (o['version'] !== FILE_VERSION) return bad('unknown version');
      if (domain === null || `${domain}.json` !== name) return bad('domain does not match the file name');
      const id = o['id'];
      const rec = typeof id === 'string' ? parseStsRecord([[`v=STSv1; id=${id}`]]) : null;
      if (rec === null || !rec.ok) return bad('invalid id');
      const fetchedAt = typeof o['fetchedAt'] === 'string' ? Date.parse(o['fetchedAt']) : NaN;
      if (!Number.isFinite(fetchedAt)) return bad('invalid fetchedAt');
      // A fetch time in the future would stretch the policy's life beyond max_age.
      if (fetchedAt > now + 300_000) return bad('fetchedAt is in the future');
      if (typeof o['policyText'] !== 'string') return bad('no policyText');
      const parsed = parseStsPolicy(o['policyText']);
      if (!parsed.ok) return bad(`invalid policy: ${parsed.reason}`);
      return {
        domain,
        id: rec.id,
        policy: parsed.policy,
        text: o['policyText'],
        fetchedAt,
        // Recomputed, never trusted from the file: max_age is what the policy says.
        expiresAt: fetchedAt + parsed.policy.maxAge * 1000,
      };
    } catch (err) {
      return bad(err instanceof Error ? err.message : String(err));
    }
  }
}
