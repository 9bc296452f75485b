/**
 * A delivery's results and the DSN they cause are one step (Spool.complete), also when the process
 * dies: a child (test/fixtures/spool-completer.ts) claims messages and completes each as bounced
 * with one DSN while it is SIGKILLed at random moments, many times on the same spool. After every
 * kill, for every original message: either it is still queued with no recipient changed and no
 * DSN about it, or it is gone and exactly one DSN about it is stored. Two transactions (the DSN,
 * then the results: qmgr before issue 9) fail this when a kill lands between them: a DSN for a
 * message that is still queued and will bounce — and be reported — again.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSqliteSpool } from '../../src/queue/sqlite.ts';

const CHILD = fileURLToPath(new URL('../fixtures/spool-completer.ts', import.meta.url));
const ROUNDS = 12;
const root = mkdtempSync(path.join(os.tmpdir(), 'postern-complete-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));

function runAndKill(dir: string, killAfterMs: number): Promise<{ lines: string[]; selfExit: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    let killed = false;
    const kill = (): void => {
      killed = true;
      child.kill('SIGKILL');
    };
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (timer === null && out.includes('ready\n')) timer = setTimeout(kill, killAfterMs);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const guard = setTimeout(kill, 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      // Only complete lines: a line cut by the kill was never fully printed.
      resolve({
        lines: out.split('\n').slice(0, -1),
        selfExit: killed && signal === 'SIGKILL' ? null : `code ${code} signal ${signal}: ${err}`,
      });
    });
  });
}

test('results and their DSN survive SIGKILLs together or not at all', { timeout: 240_000 }, async (t) => {
  const dir = path.join(root, 'spool');
  const enqueued = new Set<string>();
  const done = new Map<string, string>();
  for (let round = 0; round < ROUNDS; round++) {
    const { lines, selfExit } = await runAndKill(dir, 100 + Math.random() * 400);
    assert.equal(selfExit, null, `round ${round}: the child died on its own`);
    for (const line of lines) {
      const m = /^(enq|done) (\S+)(?: (\S+))?$/.exec(line);
      if (m?.[1] === 'enq') enqueued.add(m[2]!);
      else if (m?.[1] === 'done') done.set(m[2]!, m[3]!);
      else assert.equal(line, 'ready');
    }

    const spool = await openSqliteSpool(dir, { busyTimeoutMs: 5000 });
    try {
      assert.equal(spool.integrityCheck(), 'ok', `round ${round}`);
      const all = await spool.list();
      const present = new Map(all.map((m) => [m.id, m]));
      const dsnsAbout = new Map<string, string[]>();
      for (const m of all) {
        if (m.envelope.mailFrom !== '') continue;
        const about = /^X-Original-Queue-Id: (\S+)\r$/m.exec((await spool.readMessage(m.id)).toString())?.[1];
        assert.ok(about, `DSN ${m.id} names its original`);
        dsnsAbout.set(about, [...(dsnsAbout.get(about) ?? []), m.id]);
      }
      for (const id of enqueued) {
        const dsns = dsnsAbout.get(id) ?? [];
        const orig = present.get(id);
        if (orig) {
          assert.deepEqual(dsns, [], `round ${round}: ${id} is still queued but a DSN about it exists`);
          assert.deepEqual(
            orig.recipients.map((r) => r.state),
            ['queued', 'queued'],
            `round ${round}: ${id} half-updated`,
          );
        } else {
          assert.equal(dsns.length, 1, `round ${round}: ${id} left the queue with ${dsns.length} DSNs`);
        }
      }
      for (const [id, dsnId] of done) {
        assert.equal(present.has(id), false, `round ${round}: acknowledged completion of ${id} lost`);
        assert.deepEqual(dsnsAbout.get(id), [dsnId], `round ${round}: acknowledged DSN of ${id}`);
      }
    } finally {
      await spool.close();
    }
  }
  // Meaningful only if the kills found plenty of completions in flight.
  assert.ok(done.size >= 200, `only ${done.size} acknowledged completions`);
  t.diagnostic(`${enqueued.size} messages, ${done.size} acknowledged completions verified after ${ROUNDS} kills`);
});
