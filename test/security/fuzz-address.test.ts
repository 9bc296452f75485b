// Attack: a client sends hostile paths (quoting, escapes, source routes, literals, bidi controls, SMTPUTF8) to crash parsePath or to get an accepted address whose canonical form does not parse again.
// Seeded mutation fuzzing (test/helpers/fuzz.ts): every input must give a result or the parser's
// typed error, and the target's invariants must hold; POSTERN_FUZZ_SEED replays a failure, and
// `npx node scripts/fuzz.ts address` runs the same target for longer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from '../helpers/fuzz.ts';
import { address } from '../helpers/fuzz-targets.ts';

const SEED = fuzzSeed(0x59a8ba);
const ITERATIONS = 20_000;

describe(`fuzz: address (seed ${SEED})`, () => {
  it(`${ITERATIONS} mutated inputs: no crash, invariants hold, bounded memory`, async (t) => {
    const r = await runFuzz(address, { seed: SEED, iterations: ITERATIONS });
    t.diagnostic(JSON.stringify(r.outcomes));
    // Each kind of outcome was reached, so a pass means the paths were exercised, not skipped.
    for (const label of ['refused', 'accepted', 'quoted', 'literal', 'null-path']) {
      assert.ok((r.outcomes[label] ?? 0) > 0, `no input reached "${label}": ${JSON.stringify(r.outcomes)}`);
    }
    // Retained heap after a full GC: the parser keeps nothing from one input to the next.
    assert.ok(r.heapGrowth < 16 * 1024 * 1024, `heap grew by ${r.heapGrowth} bytes`);
  });
});
