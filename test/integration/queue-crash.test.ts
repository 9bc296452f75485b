/**
 * Crash durability of the SQLite spool: a writer process is SIGKILLed at random moments in the
 * middle of group commits, and some kills land inside the spool's open of the previous run's
 * unrecovered WAL — for certain while it waits for a lock this test holds, and by timing alone
 * (which can hit the WAL recovery and the schema transaction themselves) — ≥ 20 times on the same
 * directory. Where each kill landed is
 * shown by evidence (test/helpers/crash.ts), not by the loop that aimed it. After
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
import { openSqliteSpool, SPOOL_FILE } from '../../src/queue/sqlite.ts';
import { hasOpen, holdSpoolLock, killPhase, killWhenSpoolOpen, ownerWritten, walBytes } from '../helpers/crash.ts';
import type { KillPhase } from '../helpers/crash.ts';

const WRITER = fileURLToPath(new URL('../fixtures/queue-writer.ts', import.meta.url));
const ROUNDS = 24;
/** Kills aimed at the spool's open must land there, with a WAL to recover, this often (else try again, bounded). */
const MIN_OPENING_KILLS = 2;
const MAX_EXTRA_ROUNDS = 8;
type Aim = 'locked' | 'open' | number;
/**
 * Every fourth round aims at the spool's open, alternately 'locked' (SQLite's lock held, so the
 * writer waits inside the open: a certain hit) and 'open' (timed by polling: may land in the WAL
 * recovery itself, or miss); every other extra round is 'locked'. The rest kill while writing.
 */
function aimOf(round: number): Aim {
  if (round >= ROUNDS) return round % 2 === 1 ? 'locked' : 20 + Math.random() * 400;
  if (round % 8 === 1) return 'locked';
  if (round % 8 === 5) return 'open';
  return 20 + Math.random() * 400;
}
const aimsAtOpen = (round: number): boolean => typeof aimOf(round) === 'string';
const root = mkdtempSync(path.join(os.tmpdir(), 'postern-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Ack {
  sha: string;
  len: number;
}

interface Round {
  acks: Map<string, Ack>;
  selfExit: string | null;
  phase: KillPhase;
}

/**
 * Run the writer and SIGKILL it: `'open'` as soon as it has the spool database open (inside
 * `openSqliteSpool`), `'locked'` while it waits inside the open for the lock this test holds,
 * otherwise `aim` ms after its "ready" line. The phase the kill really landed in comes from the
 * evidence, not from the aim.
 */
async function runAndKill(dir: string, aim: Aim): Promise<Round> {
  const lock = aim === 'locked' ? await holdSpoolLock(dir) : null;
  try {
    return await runAndKillOnce(dir, aim);
  } finally {
    await lock?.release();
  }
}

function runAndKillOnce(dir: string, aim: Aim): Promise<Round> {
  return new Promise((resolve, reject) => {
    // Aimed at the open: the writer runs at the lowest CPU priority, so on a busy machine its open
    // lasts long enough for the poll to see it (where the kill lands is still shown by evidence).
    const [cmd, args] =
      aim === 'open'
        ? ['nice', ['-n', '19', process.execPath, WRITER, dir, '8']]
        : [process.execPath, [WRITER, dir, '8']];
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | null = null;
    let killed = false;
    let sawSpoolOpen = false;
    const kill = (): void => {
      killed = true;
      child.kill('SIGKILL');
    };
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      if (typeof aim === 'number' && timer === null && out.includes('\n')) timer = setTimeout(kill, aim);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    // Never hang the suite if the writer cannot start.
    const guard = setTimeout(kill, 20_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      if (timer) clearTimeout(timer);
      const acks = new Map<string, Ack>();
      let ready = false;
      // Only complete lines: a line cut by the kill was never fully acknowledged.
      for (const line of out.split('\n').slice(0, -1)) {
        const m = /^(\S+) ([0-9a-f]{64}) (\d+)$/.exec(line);
        if (m) acks.set(m[1]!, { sha: m[2]!, len: Number(m[3]) });
        else {
          assert.equal(line, 'ready');
          ready = true;
        }
      }
      const phase = killPhase({ sawSpoolOpen, ownerWritten: ownerWritten(dir, child.pid ?? -1), ready });
      resolve({
        acks,
        selfExit: killed && signal === 'SIGKILL' ? null : `code ${code} signal ${signal}: ${err}`,
        phase,
      });
    });
    if (aim === 'open') sawSpoolOpen = killWhenSpoolOpen(kill, child.pid ?? -1, dir);
    if (aim === 'locked') {
      // The writer waits (busy timeout 5 s) with the file open; kill it somewhere in that wait.
      void (async () => {
        const db = path.join(dir, SPOOL_FILE);
        for (let i = 0; i < 3000 && !sawSpoolOpen && child.exitCode === null; i++) {
          sawSpoolOpen = hasOpen(child.pid ?? -1, db);
          if (!sawSpoolOpen) await new Promise((r) => setTimeout(r, 5));
        }
        await new Promise((r) => setTimeout(r, Math.random() * 300));
        kill();
      })();
    }
  });
}

test(
  'no acknowledged message is lost across 24 SIGKILLs, some inside the spool open',
  { timeout: 290_000 },
  async (t) => {
    const dir = path.join(root, 'spool');
    const acked = new Map<string, Ack>();
    const phases = new Map<KillPhase, number>();
    /** Kills inside the open with a WAL left by the previous kill: SQLite was recovering it. */
    let recoveringKills = 0;
    let aimedAtOpen = 0;
    /** Kills timed by polling alone (no lock) that landed inside the open. */
    let timedHits = 0;
    for (let round = 0; round < ROUNDS + MAX_EXTRA_ROUNDS; round++) {
      if (round >= ROUNDS && recoveringKills >= MIN_OPENING_KILLS && !aimsAtOpen(round)) break;
      const aim = aimOf(round);
      if (typeof aim === 'string') aimedAtOpen++;
      const pendingWal = walBytes(dir);
      const { acks, selfExit, phase } = await runAndKill(dir, aim);
      assert.equal(selfExit, null, `round ${round}: the writer died on its own`);
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
      if (phase === 'opening-spool' && pendingWal > 0) recoveringKills++;
      if (aim === 'open' && phase === 'opening-spool') timedHits++;
      for (const [id, a] of acks) acked.set(id, a);

      // Opening the spool here recovers and checkpoints its WAL; before a round aimed at the open,
      // leave this round's WAL for the writer to recover (both rounds are verified after that one).
      if (aimsAtOpen(round + 1)) continue;
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
    const summary = [...phases].map(([p, n]) => `${p} ${n}`).join(', ');
    t.diagnostic(
      `${acked.size} acknowledged messages verified; kills by phase: ${summary}; ` +
        `${aimedAtOpen} aimed at the open, ${recoveringKills} landing there with a WAL to recover, ` +
        `${timedHits} of them timed by polling alone`,
    );
    // The claims of this test, each shown by evidence: kills landed inside the spool's open, and in
    // the middle of serving (after the writer had acknowledged messages).
    assert.ok(recoveringKills >= MIN_OPENING_KILLS, `kills inside the open of a spool with a WAL: ${summary}`);
    assert.ok((phases.get('serving') ?? 0) >= 12, `kills while writing: ${summary}`);
    // The test means something only if plenty of writes were acknowledged before the kills.
    assert.ok(acked.size >= 500, `only ${acked.size} acknowledged messages`);
  },
);
