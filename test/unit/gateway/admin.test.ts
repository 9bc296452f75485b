/** admin.ts: tokens (creation, reading, modes), permission warnings, GET /queue pagination. */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PosternEvent } from '../../../src/core/events.ts';
import { ensureToken, readToken, REFUSAL_LOG_INTERVAL_MS, warnLooseMode } from '../../../src/gateway/admin.ts';
import { httpRequest, startTestAdmin } from '../../helpers/admin.ts';
import { makeCert } from '../../helpers/certs.ts';
import { startTestGateway } from '../../helpers/gateway.ts';
import type { TestAdmin } from '../../helpers/admin.ts';
import { queuedMessage } from '../../helpers/queued.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'postern-admin-unit-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const collect = (): { events: PosternEvent[]; sink: { emit(e: PosternEvent): void } } => {
  const events: PosternEvent[] = [];
  return { events, sink: { emit: (e) => void events.push(e) } };
};

describe('admin tokens', () => {
  test('created once (0600, in a new 0700 directory), then read back unchanged', async () => {
    const { events, sink } = collect();
    const f = join(dir, 'state', 'admin.token');
    const t1 = await ensureToken(f, 'admin', sink);
    const t2 = await ensureToken(f, 'admin', sink);
    assert.equal(t1, t2);
    assert.match(t1, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'state'))).mode & 0o777, 0o700);
    assert.equal(events.filter((e) => e.event === 'admin.token-created').length, 1);
    assert.equal(await readToken(f), t1);
    assert.equal(await readToken(join(dir, 'none')), null);
  });

  test('a token file others can read is reported with the fix; garbage is an error with a hint', async () => {
    const { events, sink } = collect();
    const f = join(dir, 'loose.token');
    await writeFile(f, `${'a'.repeat(43)}\n`, { mode: 0o644 });
    await chmod(f, 0o644);
    assert.equal(await ensureToken(f, 'admin', sink), 'a'.repeat(43));
    assert.deepEqual(events, [
      { event: 'admin.file-mode', file: f, kind: 'admin-token', mode: '0644', fix: `chmod 600 ${f}` },
    ]);
    const bad = join(dir, 'bad.token');
    await writeFile(bad, 'short\n', { mode: 0o600 });
    await assert.rejects(readToken(bad), (e: Error & { hint?: string }) => {
      assert.match(e.message, /does not hold an admin token/);
      assert.match(e.hint ?? '', /remove the file and restart/);
      return true;
    });
  });

  test('warnLooseMode: a group/world-readable private key or users file names the file, mode and fix', async () => {
    const { events, sink } = collect();
    const key = join(dir, 'key.pem');
    await writeFile(key, 'k');
    await chmod(key, 0o640);
    await warnLooseMode(key, 'private-key', sink);
    const ok = join(dir, 'users.yaml');
    await writeFile(ok, 'users:\n', { mode: 0o600 });
    await warnLooseMode(ok, 'users', sink);
    await warnLooseMode(join(dir, 'missing'), 'users', sink);
    assert.deepEqual(events, [
      { event: 'admin.file-mode', file: key, kind: 'private-key', mode: '0640', fix: `chmod 600 ${key}` },
    ]);
  });
});

describe('GET /queue pagination', () => {
  let a: TestAdmin;
  before(async () => {
    a = await startTestAdmin();
    for (let i = 0; i < 4; i++) {
      const m = queuedMessage('x', [`r${i}@far.example`], Buffer.from('x'));
      await a.spool.enqueue(m.envelope, Buffer.from(`Subject: ${i}\r\n\r\n`));
    }
  });
  after(async () => {
    await a?.close();
  });
  const get = async (q: string) => {
    const r = await httpRequest(a.port, {
      method: 'GET',
      path: `/queue${q}`,
      headers: { host: a.host, authorization: `Bearer ${a.tokens.admin}` },
    });
    return { status: r.status, body: JSON.parse(r.body) as { messages?: Array<{ id: string }>; next?: number | null } };
  };

  test('limit and offset walk the queue oldest first; next says where the next page starts', async () => {
    const all = await get('');
    assert.equal(all.body.messages?.length, 5);
    assert.equal(all.body.next, null);
    const ids = all.body.messages?.map((m) => m.id) ?? [];
    const seen: string[] = [];
    let offset: number | null | undefined = 0;
    while (typeof offset === 'number') {
      const page = await get(`?limit=2&offset=${offset}`);
      assert.ok((page.body.messages?.length ?? 0) <= 2);
      seen.push(...(page.body.messages ?? []).map((m) => m.id));
      offset = page.body.next;
    }
    assert.deepEqual(seen, ids);
    assert.deepEqual(
      (await get('?state=deferred&limit=1')).body.messages?.map((m) => m.id),
      [a.id],
    );
  });

  test('out-of-range limits are a 400, not an unbounded answer', async () => {
    for (const q of ['?limit=0', '?limit=1001', '?limit=-1', '?offset=x', '?limit=1e3']) {
      assert.equal((await get(q)).status, 400, q);
    }
  });
});

describe('refusals do not flood the log', () => {
  test('one admin.refused per reason per interval; the next one counts the suppressed', async () => {
    let clock = 1_000_000;
    const a = await startTestAdmin({ now: () => clock });
    try {
      const forged = () =>
        httpRequest(a.port, {
          method: 'POST',
          path: '/queue/flush',
          headers: { host: a.host, origin: 'http://evil.example', 'content-type': 'text/plain' },
          body: 'x',
        });
      for (let i = 0; i < 50; i++) assert.equal((await forged()).status, 403);
      const refused = () => a.events.filter((e) => e.event === 'admin.refused' && e.reason === 'origin');
      assert.equal(refused().length, 1);
      clock += REFUSAL_LOG_INTERVAL_MS;
      await forged();
      assert.deepEqual(
        refused().map((e) => (e.event === 'admin.refused' ? (e.suppressed ?? 0) : -1)),
        [0, 49],
      );
      assert.equal(await a.nextAttempt(), a.nextAttemptAt);
    } finally {
      await a.close();
    }
  });
});

describe('the gateway reports secrets others can read', { timeout: 60_000 }, () => {
  test('a 0644 private key: one admin.file-mode line, naming file, mode and fix', async () => {
    const cert = await makeCert({ subject: 'CN=mx.postern.test', dnsNames: ['mx.postern.test'] });
    const g = await startTestGateway({
      certPem: cert.pem,
      keyPem: cert.keyPem,
      keyMode: 0o644,
      listeners: [{ name: 'submission', mode: 'starttls', role: 'submission', auth: 'required' }],
      users: [{ name: 'u@postern.test', password: 'a long password' }],
    });
    try {
      const modes = g.logs.filter((l) => l['event'] === 'admin.file-mode');
      const key = join(g.dir, 'key.pem');
      assert.deepEqual(
        modes.map((l) => [l['file'], l['kind'], l['mode'], l['fix'], l['level']]),
        [[key, 'private-key', '0644', `chmod 600 ${key}`, 40]],
        'the key is reported (pino level 40 = warn); the 0600 users file and token are not',
      );
    } finally {
      await g.close();
    }
  });
});
