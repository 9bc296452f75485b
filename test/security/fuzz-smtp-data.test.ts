// Attack: a client shapes the DATA stream (dot-stuffing, bare CR/LF, NUL, over-long lines, no end) so that the reader ends the message somewhere else than CRLF.CRLF (smuggling) or keeps more than the size limit in memory; checked byte for byte against a reference reader.
// Seeded mutation fuzzing (test/helpers/fuzz.ts): every input must give a result or the parser's
// typed error, and the target's invariants must hold; POSTERN_FUZZ_SEED replays a failure, and
// `npx node scripts/fuzz.ts smtp-data` runs the same target for longer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from '../helpers/fuzz.ts';
import { smtpData } from '../helpers/fuzz-targets.ts';

const SEED = fuzzSeed(0x6d98c5);
const ITERATIONS = 20_000;

describe(`fuzz: smtp-data (seed ${SEED})`, () => {
  it(`${ITERATIONS} mutated inputs: no crash, invariants hold, bounded memory`, async (t) => {
    const r = await runFuzz(smtpData, { seed: SEED, iterations: ITERATIONS });
    t.diagnostic(JSON.stringify(r.outcomes));
    // Each kind of outcome was reached, so a pass means the paths were exercised, not skipped.
    for (const label of ['message', 'incomplete', 'bare-cr-lf', 'too-big']) {
      assert.ok((r.outcomes[label] ?? 0) > 0, `no input reached "${label}": ${JSON.stringify(r.outcomes)}`);
    }
    // Retained heap after a full GC: the parser keeps nothing from one input to the next.
    assert.ok(r.heapGrowth < 16 * 1024 * 1024, `heap grew by ${r.heapGrowth} bytes`);
  });
});
