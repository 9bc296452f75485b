/**
 * `postern queue …` against a running admin endpoint: the token is read from the token file and
 * sent as a bearer token; a missing, unreadable or wrong token is one error line with a hint
 * (never a stack trace); `list` pages with --limit/--offset.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startTestAdmin } from '../../helpers/admin.ts';
import type { TestAdmin } from '../../helpers/admin.ts';
import { queuedMessage } from '../../helpers/queued.ts';

const BIN = fileURLToPath(new URL('../../../bin/postern.js', import.meta.url));

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'queue', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('postern queue with the admin token', { timeout: 120_000 }, () => {
  let a: TestAdmin;
  let url: string;
  before(async () => {
    a = await startTestAdmin();
    url = `http://${a.host}`;
    const m = queuedMessage('x', ['second@far.example'], Buffer.from('x'));
    await a.spool.enqueue(m.envelope, Buffer.from('Subject: 2\r\n\r\n'));
  });
  after(async () => {
    await a?.close();
  });

  test('list pages with --limit/--offset and says how to get the next page', async () => {
    const first = await cli(['list', '--admin', url, '--token-file', a.tokenFile, '--limit', '1']);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^queued: 1 {2}deferred: 1 {2}delivered: 0 {2}bounced: 0\n/);
    assert.match(first.stdout, /rcpt@far\.example deferred/);
    assert.doesNotMatch(first.stdout, /second@far\.example/);
    assert.match(first.stdout, /\nmore: postern queue list --offset 1\n$/);
    const second = await cli(['list', '--admin', url, '--token-file', a.tokenFile, '--limit', '1', '--offset', '1']);
    assert.match(second.stdout, /second@far\.example queued/);
    assert.doesNotMatch(second.stdout, /more:/);
  });

  test('a wrong, missing or malformed token is one error line with a hint', async () => {
    const wrong = join(a.tokenFile, '..', 'wrong.token');
    await writeFile(wrong, `${'B'.repeat(43)}\n`, { mode: 0o600 });
    const cases: Array<[string[], RegExp]> = [
      [['--token-file', wrong], /refused the admin token/],
      [['--token-file', join(a.tokenFile, '..', 'nothing-here')], /no admin token at .*nothing-here/],
      [['--token-file', a.tokenFile, '--limit', 'ten'], /--limit needs a number/],
    ];
    for (const [extra, message] of cases) {
      const r = await cli(['list', '--admin', url, ...extra]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
      if (!extra.includes('--limit')) assert.match(r.stderr, /\nhint: \S/, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `stack trace leaked:\n${r.stderr}`);
    }
    assert.equal(await a.nextAttempt(), a.nextAttemptAt);
  });

  test('retry sends JSON with the token: the state change goes through', async () => {
    const r = await cli(['retry', a.id, '--admin', url, '--token-file', a.tokenFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { retried: 1 });
    assert.notEqual(await a.nextAttempt(), a.nextAttemptAt);
  });
});
