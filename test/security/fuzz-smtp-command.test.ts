// Attack: a client sends malformed SMTP command lines, MAIL/RCPT paths and ESMTP parameters (RFC 5321 §4.1, RFC 1870, 3461, 6152, 6531, 8689) to crash the parser or to get a reply that is not one line of ASCII (reply injection) or an ORCPT with CR/LF into a DSN.
// Seeded mutation fuzzing (test/helpers/fuzz.ts): every input must give a result or the parser's
// typed error, and the target's invariants must hold; POSTERN_FUZZ_SEED replays a failure, and
// `npx node scripts/fuzz.ts smtp-command` runs the same target for longer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from '../helpers/fuzz.ts';
import { smtpCommand } from '../helpers/fuzz-targets.ts';

const SEED = fuzzSeed(0x94de30);
const ITERATIONS = 20_000;

describe(`fuzz: smtp-command (seed ${SEED})`, () => {
  it(`${ITERATIONS} mutated inputs: no crash, invariants hold, bounded memory`, async (t) => {
    const r = await runFuzz(smtpCommand, { seed: SEED, iterations: ITERATIONS });
    t.diagnostic(JSON.stringify(r.outcomes));
    // Each kind of outcome was reached, so a pass means the paths were exercised, not skipped.
    for (const label of ['command', 'command-error', 'path-syntax-error', 'param-error', 'mail-ok', 'rcpt-ok']) {
      assert.ok((r.outcomes[label] ?? 0) > 0, `no input reached "${label}": ${JSON.stringify(r.outcomes)}`);
    }
    // Retained heap after a full GC: the parser keeps nothing from one input to the next.
    assert.ok(r.heapGrowth < 16 * 1024 * 1024, `heap grew by ${r.heapGrowth} bytes`);
  });
});
