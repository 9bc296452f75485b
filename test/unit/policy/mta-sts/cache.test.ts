/**
 * StsPolicyCache (RFC 8461 §3, §3.3, §5.1, §10.2): when a policy is fetched, reused, kept or
 * dropped. DNS is an in-memory DnsClient the tests rewrite between lookups; the policy host is
 * the loopback HTTPS test peer, whose request counter proves whether a fetch happened.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { DnsError } from '../../../../src/dns/resolver.ts';
import type { DnsClient } from '../../../../src/dns/resolver.ts';
import { StsPolicyCache } from '../../../../src/policy/mta-sts/cache.ts';
import type { StsPolicyCacheOptions } from '../../../../src/policy/mta-sts/cache.ts';
import type { StsFetchOptions } from '../../../../src/policy/mta-sts/fetch.ts';
import { policyText, startHttpsPolicyServer } from '../../../integration/peers/https-policy.ts';
import type { HttpsPolicyServer } from '../../../integration/peers/https-policy.ts';

/** TXT answers by name: records, or an error to throw; unknown names are NXDOMAIN. */
const txt = new Map<string, string[][] | Error>();
let txtQueries = 0;
const dns: DnsClient = {
  servers: null,
  mx: () => Promise.reject(new Error('not used')),
  mxLookup: () => Promise.reject(new Error('not used')),
  srv: () => Promise.reject(new Error('not used')),
  // Every policy host lives on the loopback test peer.
  addresses: (host) =>
    host.startsWith('mta-sts.') ? Promise.resolve(['127.0.0.1']) : Promise.reject(new Error('unexpected')),
  txt: (name) => {
    txtQueries++;
    const v = txt.get(name);
    if (v === undefined) return Promise.reject(new DnsError('dns-nxdomain', name, 'TXT', `TXT ${name}: NXDOMAIN`));
    return v instanceof Error ? Promise.reject(v) : Promise.resolve(v);
  },
};

function publish(domain: string, id: string | null): void {
  if (id === null) txt.delete(`_mta-sts.${domain}`);
  else txt.set(`_mta-sts.${domain}`, [[`v=STSv1; id=${id};`]]);
}

const HOUR = 3_600_000;
let clock = Date.parse('2030-01-01T00:00:00Z');
const now = (): Date => new Date(clock);

let web: HttpsPolicyServer;
let fetchOpts: StsFetchOptions;
const dirs: string[] = [];

function logCapture(): { log: StsPolicyCacheOptions['log']; lines: () => Array<{ level: number; msg: string }> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  return {
    log: pino({ level: 'debug' }, stream),
    lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string }),
  };
}

function cache(extra: Partial<StsPolicyCacheOptions> = {}): StsPolicyCache {
  return new StsPolicyCache({ dir: null, fetch: fetchOpts, now, ...extra });
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'postern-sts-cache-'));
  dirs.push(d);
  return d;
}

before(async () => {
  web = await startHttpsPolicyServer();
  // The policy host is on loopback: an explicit opt-in (refused by default, net/https.ts).
  fetchOpts = { dns, ca: [web.ca], port: web.port, timeoutMs: 3000, allowPrivateAddresses: true };
});
after(async () => {
  await web?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
beforeEach(() => {
  clock = Date.parse('2030-01-01T00:00:00Z');
});

describe('StsPolicyCache discovery', () => {
  it('fetches once and reuses the policy while the TXT id is unchanged', async () => {
    publish('same.test', 'v1');
    await web.route('mta-sts.same.test', { body: policyText('enforce', ['mx.same.test'], 86400) });
    const c = cache();
    const first = await c.lookup('same.test');
    assert.equal(first.state, 'policy');
    assert.equal(first.source, 'fetched');
    assert.equal(first.fetchedAt, '2030-01-01T00:00:00.000Z');
    assert.equal(first.expiresAt, '2030-01-02T00:00:00.000Z');
    assert.equal(first.policyText, policyText('enforce', ['mx.same.test'], 86400));
    clock += HOUR;
    const second = await c.lookup('SAME.test.');
    assert.equal(second.source, 'cache');
    assert.deepEqual(second.policy, first.policy);
    assert.equal(web.count('mta-sts.same.test'), 1);
  });

  it('refetches when the TXT id changes', async () => {
    publish('change.test', 'v1');
    await web.route('mta-sts.change.test', { body: policyText('testing', ['mx.change.test'], 86400) });
    const c = cache();
    assert.equal((await c.lookup('change.test')).policy?.mode, 'testing');
    publish('change.test', 'v2');
    await web.route('mta-sts.change.test', { body: policyText('enforce', ['mx.change.test'], 86400) });
    const r = await c.lookup('change.test');
    assert.equal(r.source, 'fetched');
    assert.equal(r.id, 'v2');
    assert.equal(r.policy?.mode, 'enforce');
    assert.equal(web.count('mta-sts.change.test'), 2);
  });

  it('does not use a policy past max_age: refetches, or reports none once the record is gone', async () => {
    publish('expire.test', 'v1');
    await web.route('mta-sts.expire.test', { body: policyText('enforce', ['mx.expire.test'], 3600) });
    const c = cache();
    await c.lookup('expire.test');
    clock += 3600_000 - 1;
    assert.equal((await c.lookup('expire.test')).source, 'cache');
    clock += 1;
    const again = await c.lookup('expire.test');
    assert.equal(again.source, 'fetched', 'same id but expired: fetched again');
    assert.equal(web.count('mta-sts.expire.test'), 2);
    publish('expire.test', null);
    clock += 3600_000;
    const gone = await c.lookup('expire.test');
    assert.equal(gone.state, 'none');
    assert.equal(gone.policy, null);
  });

  it('keeps applying a valid cached policy when the TXT record vanishes or DNS fails (RFC 8461 §3.3, §10.2)', async () => {
    publish('vanish.test', 'v1');
    await web.route('mta-sts.vanish.test', { body: policyText('enforce', ['mx.vanish.test'], 86400) });
    const c = cache();
    await c.lookup('vanish.test');
    publish('vanish.test', null);
    const r = await c.lookup('vanish.test');
    assert.equal(r.state, 'policy');
    assert.equal(r.source, 'cache');
    assert.equal(r.policy?.mode, 'enforce');
    assert.equal(r.error, null);
    txt.set('_mta-sts.vanish.test', new DnsError('dns-servfail', '_mta-sts.vanish.test', 'TXT', 'SERVFAIL'));
    const s = await c.lookup('vanish.test');
    assert.equal(s.state, 'policy');
    assert.equal(s.error?.type, 'dns-error');
    assert.equal(web.count('mta-sts.vanish.test'), 1);
  });

  it('without a cached policy, a DNS failure or failed fetch is an error state (deliver as if no MTA-STS)', async () => {
    txt.set('_mta-sts.servfail.test', new DnsError('dns-servfail', '_mta-sts.servfail.test', 'TXT', 'SERVFAIL'));
    const a = await cache().lookup('servfail.test');
    assert.equal(a.state, 'error');
    assert.equal(a.error?.type, 'dns-error');
    publish('nohost.test', 'v1');
    await web.route('mta-sts.nohost.test', { status: 500 });
    const b = await cache().lookup('nohost.test');
    assert.equal(b.state, 'error');
    assert.equal(b.id, 'v1');
    assert.equal(b.error?.type, 'sts-policy-fetch-error');
    const none = await cache().lookup('unpublished.test');
    assert.deepEqual([none.state, none.error], ['none', null]);
  });

  it('keeps the cached policy when a new id cannot be fetched, and logs it', async () => {
    publish('broken.test', 'v1');
    await web.route('mta-sts.broken.test', { body: policyText('enforce', ['mx.broken.test'], 86400) });
    const cap = logCapture();
    const c = cache({ log: cap.log });
    await c.lookup('broken.test');
    publish('broken.test', 'v2');
    await web.route('mta-sts.broken.test', { body: 'garbage\n' });
    const r = await c.lookup('broken.test');
    assert.equal(r.state, 'policy');
    assert.equal(r.id, 'v1');
    assert.equal(r.source, 'cache');
    assert.equal(r.error?.type, 'sts-policy-invalid');
    assert.ok(cap.lines().some((l) => l.level === 40 && /stays in force/.test(l.msg)));
  });

  it('does not refetch a failing id within five minutes, but recheck does (RFC 8461 §3.3, §5)', async () => {
    publish('retry.test', 'v1');
    await web.route('mta-sts.retry.test', { status: 503 });
    const c = cache();
    assert.equal((await c.lookup('retry.test')).state, 'error');
    clock += 60_000;
    const held = await c.lookup('retry.test');
    assert.equal(held.error?.type, 'sts-policy-fetch-error');
    assert.equal(web.count('mta-sts.retry.test'), 1, 'refetched inside the back-off');
    await web.route('mta-sts.retry.test', { body: policyText('enforce', ['mx.retry.test'], 86400) });
    const rechecked = await c.recheck('retry.test');
    assert.equal(rechecked.state, 'policy');
    assert.equal(web.count('mta-sts.retry.test'), 2);
  });

  it('recheck picks up a new id and the new policy', async () => {
    publish('re.test', 'v1');
    await web.route('mta-sts.re.test', { body: policyText('enforce', ['old.re.test'], 86400) });
    const c = cache();
    await c.lookup('re.test');
    const same = await c.recheck('re.test');
    assert.equal(same.source, 'cache');
    assert.equal(web.count('mta-sts.re.test'), 1);
    publish('re.test', 'v2');
    await web.route('mta-sts.re.test', { body: policyText('enforce', ['new.re.test'], 86400) });
    const r = await c.recheck('re.test');
    assert.equal(r.source, 'fetched');
    assert.equal(r.id, 'v2');
    assert.deepEqual(r.policy?.mx, ['new.re.test']);
  });

  it('caches mode none, which replaces an enforce policy (RFC 8461 §8.3)', async () => {
    publish('retire.test', 'v1');
    await web.route('mta-sts.retire.test', { body: policyText('enforce', ['mx.retire.test'], 86400) });
    const c = cache();
    await c.lookup('retire.test');
    publish('retire.test', 'v2');
    await web.route('mta-sts.retire.test', { body: policyText('none', [], 86400) });
    assert.equal((await c.lookup('retire.test')).policy?.mode, 'none');
    publish('retire.test', null);
    const r = await c.lookup('retire.test');
    assert.deepEqual([r.state, r.source, r.policy?.mode], ['policy', 'cache', 'none']);
  });

  it('does not cache a policy with max_age 0', async () => {
    publish('zero.test', 'v1');
    await web.route('mta-sts.zero.test', { body: policyText('enforce', ['mx.zero.test'], 0) });
    const c = cache();
    assert.equal((await c.lookup('zero.test')).source, 'fetched');
    assert.equal((await c.lookup('zero.test')).source, 'fetched');
    assert.equal(web.count('mta-sts.zero.test'), 2);
  });

  it('shares one fetch between concurrent lookups of a domain', async () => {
    publish('busy.test', 'v1');
    await web.route('mta-sts.busy.test', { body: policyText('enforce', ['mx.busy.test'], 86400), delayMs: 200 });
    const c = cache();
    const all = await Promise.all(Array.from({ length: 8 }, () => c.lookup('busy.test')));
    assert.ok(all.every((r) => r.state === 'policy' && r.id === 'v1'));
    assert.equal(web.count('mta-sts.busy.test'), 1);
  });

  it('rejects a domain name that is not one, without any query', async () => {
    const q = txtQueries;
    const r = await cache().lookup('../../etc/passwd');
    assert.equal(r.state, 'error');
    assert.equal(txtQueries, q);
  });
});

describe('StsPolicyCache refresh', () => {
  it('refreshes policies that expire within the window, extending their life (RFC 8461 §3.3)', async () => {
    publish('soon.test', 'v1');
    publish('later.test', 'v1');
    await web.route('mta-sts.soon.test', { body: policyText('enforce', ['mx.soon.test'], 2 * 3600) });
    await web.route('mta-sts.later.test', { body: policyText('enforce', ['mx.later.test'], 30 * 86400) });
    const c = cache();
    await c.lookup('soon.test');
    await c.lookup('later.test');
    clock += HOUR;
    assert.equal(await c.refreshDue(2 * HOUR), 1);
    assert.equal(web.count('mta-sts.soon.test'), 2);
    assert.equal(web.count('mta-sts.later.test'), 1);
    const r = await c.lookup('soon.test');
    assert.equal(r.source, 'cache');
    assert.equal(r.expiresAt, '2030-01-01T03:00:00.000Z', 'lifetime counted from the refresh');
  });

  it('keeps the cached policy and warns when the refresh fails', async () => {
    publish('stuck.test', 'v1');
    await web.route('mta-sts.stuck.test', { body: policyText('enforce', ['mx.stuck.test'], 3600) });
    const cap = logCapture();
    const c = cache({ log: cap.log });
    await c.lookup('stuck.test');
    await web.route('mta-sts.stuck.test', { status: 404 });
    assert.equal(await c.refreshDue(), 0);
    assert.ok(cap.lines().some((l) => l.level === 40 && /refresh for stuck\.test failed/.test(l.msg)));
    assert.equal((await c.lookup('stuck.test')).state, 'policy');
  });
});

describe('StsPolicyCache persistence', () => {
  it('survives a new instance on the same directory, files 0600, no refetch', async () => {
    const dir = await tempDir();
    publish('persist.test', 'p1');
    await web.route('mta-sts.persist.test', { body: policyText('enforce', ['mx.persist.test'], 86400) });
    const a = await cache({ dir }).lookup('persist.test');
    assert.equal(a.source, 'fetched');
    const files = await readdir(dir);
    assert.deepEqual(files, ['persist.test.json']);
    assert.equal((await stat(join(dir, 'persist.test.json'))).mode & 0o777, 0o600);

    // A fresh instance (a restart): the TXT record is even gone, the cached policy still applies.
    publish('persist.test', null);
    const b = await cache({ dir }).lookup('persist.test');
    assert.deepEqual([b.state, b.source, b.id, b.fetchedAt], ['policy', 'cache', 'p1', a.fetchedAt]);
    assert.equal(web.count('mta-sts.persist.test'), 1);
  });

  it('ignores corrupted or forged files with a log line and drops expired ones', async () => {
    const dir = await tempDir();
    publish('ok.test', 'k1');
    await web.route('mta-sts.ok.test', { body: policyText('enforce', ['mx.ok.test'], 3600) });
    await cache({ dir }).lookup('ok.test');
    const good = JSON.parse(await readFile(join(dir, 'ok.test.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(dir, 'junk.test.json'), '{not json');
    // Claims another domain than its file name says.
    await writeFile(join(dir, 'victim.test.json'), JSON.stringify(good));
    // A policy that does not parse.
    await writeFile(
      join(dir, 'bad.test.json'),
      JSON.stringify({ ...good, domain: 'bad.test', policyText: 'mode: enforce\n' }),
    );
    await writeFile(join(dir, 'leftover.json.1.tmp'), 'partial');

    const cap = logCapture();
    const c = cache({ dir, log: cap.log });
    publish('victim.test', null);
    publish('bad.test', null);
    assert.equal((await c.lookup('victim.test')).state, 'none');
    assert.equal((await c.lookup('bad.test')).state, 'none');
    assert.equal((await c.lookup('ok.test')).source, 'cache');
    const warned = cap.lines().filter((l) => l.level === 40 && /ignoring MTA-STS cache file/.test(l.msg));
    assert.equal(warned.length, 3);
    assert.ok(!(await readdir(dir)).includes('leftover.json.1.tmp'));

    // Past max_age the persisted entry is not loaded, and its file is removed.
    clock += 2 * HOUR;
    publish('ok.test', null);
    assert.equal((await cache({ dir }).lookup('ok.test')).state, 'none');
    assert.ok(!(await readdir(dir)).includes('ok.test.json'));
  });

  it('does not trust an expiry written in the file: it is recomputed from fetchedAt + max_age', async () => {
    const dir = await tempDir();
    const text = policyText('enforce', ['mx.forged.test'], 3600);
    await writeFile(
      join(dir, 'forged.test.json'),
      JSON.stringify({
        version: 1,
        domain: 'forged.test',
        id: 'f1',
        fetchedAt: new Date(clock - 2 * HOUR).toISOString(),
        expiresAt: new Date(clock + 100 * HOUR).toISOString(),
        policyText: text,
      }),
    );
    publish('forged.test', null);
    assert.equal((await cache({ dir }).lookup('forged.test')).state, 'none');
  });

  it('keeps at most maxEntries domains, dropping the one expiring first', async () => {
    const c = cache({ maxEntries: 2 });
    for (const [d, age] of [
      ['e1.test', 3600],
      ['e2.test', 7200],
      ['e3.test', 10800],
    ] as const) {
      publish(d, 'x1');
      await web.route(`mta-sts.${d}`, { body: policyText('enforce', [`mx.${d}`], age) });
      await c.lookup(d);
    }
    for (const d of ['e1.test', 'e2.test', 'e3.test']) publish(d, null);
    assert.equal((await c.lookup('e1.test')).state, 'none');
    assert.equal((await c.lookup('e2.test')).state, 'policy');
    assert.equal((await c.lookup('e3.test')).state, 'policy');
  });
});
