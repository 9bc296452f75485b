/**
 * Crash durability of the SQLite spool: a writer process is SIGKILLed at random moments (during
 * start-up, recovery, and in the middle of group commits), ≥ 20 times on the same directory. After
 * every kill the spool must open cleanly, pass integrity_check, and hold every message whose
 * enqueue had resolved — byte for byte. (SIGKILL tests the "acknowledged ⇒ committed" ordering and
 * recovery; surviving power loss additionally rests on synchronous = FULL's fsync, see sqlite.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openSqliteSpool } from '../../src/queue/sqlite.ts';

const WRITER = fileURLToPath(new URL('../fixtures/queue-writer.ts', import.meta.url));
const ROUNDS = 24;
const root = mkdtempSync(path.join(os.tmpdir(), 'postern-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Ack {
  sha: string;
  len: number;
}

/** Run the writer, kill it with SIGKILL after `killAfterMs` (counted from its first output if `afterReady`). */
function runAndKill(
  dir: string,
  killAfterMs: number,
  afterReady: boolean,
): Promise<{ acks: Map<string, Ack>; selfExit: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, dir, '8'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    let killed = false;
    const kill = (): void => {
      killed = true;
      child.kill('SIGKILL');
    };
    if (!afterReady) timer = setTimeout(kill, killAfterMs);
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (afterReady && timer === null && out.includes('\n')) timer = setTimeout(kill, killAfterMs);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    // Never hang the suite if the writer cannot start.
    const guard = setTimeout(kill, 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      const acks = new Map<string, Ack>();
      // Only complete lines: a line cut by the kill was never fully acknowledged.
      for (const line of out.split('\n').slice(0, -1)) {
        const m = /^(\S+) ([0-9a-f]{64}) (\d+)$/.exec(line);
        if (m) acks.set(m[1]!, { sha: m[2]!, len: Number(m[3]) });
        else assert.equal(line, 'ready');
      }
      resolve({ acks, selfExit: killed && signal === 'SIGKILL' ? null : `code ${code} signal ${signal}: ${err}` });
    });
  });
}

test('no acknowledged message is lost across 24 SIGKILLs at random moments', { timeout: 240_000 }, async (t) => {
  const dir = path.join(root, 'spool');
  const acked = new Map<string, Ack>();
  let earlyKills = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // Every fourth round dies early: during node start-up, the open, or WAL recovery.
    const early = round % 4 === 1;
    if (early) earlyKills++;
    const { acks, selfExit } = await runAndKill(dir, early ? Math.random() * 250 : 20 + Math.random() * 400, !early);
    assert.equal(selfExit, null, `round ${round}: the writer died on its own`);
    for (const [id, a] of acks) acked.set(id, a);

    const spool = await openSqliteSpool(dir, { busyTimeoutMs: 5000 });
    try {
      assert.equal(spool.integrityCheck(), 'ok', `round ${round}`);
      for (const [id, a] of acked) {
        const bytes = await spool.readMessage(id); // throws queue-not-found if lost
        assert.equal(bytes.length, a.len, `round ${round}: ${id} length`);
        assert.equal(createHash('sha256').update(bytes).digest('hex'), a.sha, `round ${round}: ${id} bytes`);
      }
      const counts = await spool.counts();
      assert.ok(counts.queued >= acked.size, 'the spool holds at least every acknowledged message');
    } finally {
      await spool.close();
    }
  }
  assert.ok(earlyKills >= 5);
  // The test means something only if plenty of writes were acknowledged before the kills.
  assert.ok(acked.size >= 500, `only ${acked.size} acknowledged messages`);
  t.diagnostic(`${acked.size} acknowledged messages verified after ${ROUNDS} kills (${earlyKills} early)`);
});
