/**
 * Attack: any local user (even `nobody`) uses the admin API, which had no authentication:
 * `DELETE /queue/ID` made an accepted message vanish without a trace, GET /queue read every
 * envelope. Now every request but /healthz needs the bearer token; the token lives in a 0600 file
 * owned by the server's user, so another local user cannot read it; the metrics token is read-only;
 * a deletion is a typed event naming the token and the client.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { httpRequest, startTestAdmin } from '../helpers/admin.ts';
import type { TestAdmin } from '../helpers/admin.ts';

const BIN = fileURLToPath(new URL('../../bin/postern.js', import.meta.url));
const NOBODY = 65534;

/** Runs `node args` as uid/gid `nobody`; resolves with the exit code and output. */
function runAsNobody(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      uid: NOBODY,
      gid: NOBODY,
      cwd: '/tmp',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/tmp', NODE_COMPILE_CACHE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('admin API: no token, no access', () => {
  let a: TestAdmin;
  before(async () => {
    a = await startTestAdmin();
  });
  after(async () => {
    await a?.close();
  });

  test('no token or a wrong one → 401 with WWW-Authenticate: Bearer (RFC 6750 §3); nothing deleted', async () => {
    const wrong = [
      undefined,
      `Bearer ${'A'.repeat(43)}`,
      `Bearer ${a.tokens.admin}x`,
      `Bearer ${a.tokens.admin.slice(0, -1)}`,
      `Basic ${Buffer.from(`admin:${a.tokens.admin}`).toString('base64')}`,
      a.tokens.admin,
    ];
    for (const auth of wrong) {
      for (const [method, path] of [
        ['GET', '/queue'],
        ['GET', `/queue/${a.id}`],
        ['GET', '/metrics'],
        ['DELETE', `/queue/${a.id}`],
      ] as const) {
        const r = await httpRequest(a.port, {
          method,
          path,
          headers: {
            host: a.host,
            'content-type': 'application/json',
            ...(auth === undefined ? {} : { authorization: auth }),
          },
        });
        assert.equal(r.status, 401, `${auth ?? 'none'} ${method} ${path}: ${r.body}`);
        assert.match(String(r.headers['www-authenticate']), /^Bearer realm="postern-admin"/);
        assert.doesNotMatch(r.body, /far\.example/);
      }
    }
    assert.notEqual(await a.spool.get(a.id), null, 'the message is still queued');
    assert.ok(a.events.some((e) => e.event === 'admin.refused' && e.reason === 'no-token'));
    assert.ok(a.events.some((e) => e.event === 'admin.refused' && e.reason === 'bad-token'));
  });

  test('/healthz needs no token; the metrics token reads /metrics and nothing else', async () => {
    assert.equal(
      (await httpRequest(a.port, { method: 'GET', path: '/healthz', headers: { host: a.host } })).status,
      200,
    );
    const metrics = a.tokens.metrics ?? assert.fail('the harness configures a metrics token');
    const m = await httpRequest(a.port, {
      method: 'GET',
      path: '/metrics',
      headers: { host: a.host, authorization: `Bearer ${metrics}` },
    });
    assert.equal(m.status, 200);
    assert.match(m.body, /^postern_queue_recipients/m);
    for (const [method, path] of [
      ['GET', '/queue'],
      ['DELETE', `/queue/${a.id}`],
      ['POST', '/queue/flush'],
    ] as const) {
      const r = await httpRequest(a.port, {
        method,
        path,
        headers: { host: a.host, authorization: `Bearer ${metrics}`, 'content-type': 'application/json' },
      });
      assert.equal(r.status, 403, `${method} ${path}: ${r.body}`);
    }
    assert.equal(await a.nextAttempt(), a.nextAttemptAt);
  });

  test('the token file: 32 random bytes base64url, mode 0600, owned by the server user', async () => {
    const st = await stat(a.tokenFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.getuid?.());
    const text = await readFile(a.tokenFile, 'utf8');
    assert.match(text, /^[A-Za-z0-9_-]{43}\n$/);
    assert.equal(Buffer.from(text.trim(), 'base64url').length, 32);
    assert.notEqual(a.tokens.metrics, a.tokens.admin);
    assert.ok(a.events.some((e) => e.event === 'admin.token-created' && e.file === a.tokenFile));
  });

  test('`nobody` cannot read the token, so `postern queue delete` as nobody fails and deletes nothing', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to run a process as nobody');
    // Open the directories, so that only the token file's own mode stands in nobody's way.
    await chmod(dirname(dirname(a.tokenFile)), 0o755);
    await chmod(dirname(a.tokenFile), 0o755);
    const url = `http://${a.host}`;
    const r = await runAsNobody([BIN, 'queue', 'delete', a.id, '--admin', url, '--token-file', a.tokenFile]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /cannot read the admin token .*EACCES/);
    // Without the token file, nobody's own request is refused by the server.
    const script = `fetch(${JSON.stringify(`${url}/queue/${a.id}`)}, { method: 'DELETE', headers: { 'content-type': 'application/json' } }).then((r) => console.log(r.status))`;
    const raw = await runAsNobody(['-e', script]);
    assert.equal(raw.stdout.trim(), '401', raw.stderr);
    assert.notEqual(await a.spool.get(a.id), null, 'the message is still queued');
  });

  test('with the token, DELETE works and is a typed event naming the token and the client', async () => {
    const r = await httpRequest(a.port, {
      method: 'DELETE',
      path: `/queue/${a.id}`,
      headers: { host: a.host, authorization: `Bearer ${a.tokens.admin}`, 'content-type': 'application/json' },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(await a.spool.get(a.id), null);
    const e = a.events.find((x) => x.event === 'admin.queue-delete');
    assert.ok(e && e.event === 'admin.queue-delete');
    assert.equal(e.msgId, a.id);
    assert.equal(e.who, 'admin');
    assert.match(e.client, /^127\.0\.0\.1:\d+$/);
    assert.equal(e.found, true);
  });
});
