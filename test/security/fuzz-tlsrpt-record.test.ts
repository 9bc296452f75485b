// Attack: a domain publishes hostile _smtp._tls TXT records (RFC 8460 §3) to crash the record parser or get a record without a usable rua accepted.
// Seeded mutation fuzzing (test/helpers/fuzz.ts): every input must give a result or the parser's
// typed error, and the target's invariants must hold; POSTERN_FUZZ_SEED replays a failure, and
// `npx node scripts/fuzz.ts tlsrpt-record` runs the same target for longer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzSeed, runFuzz } from '../helpers/fuzz.ts';
import { tlsrptRecord } from '../helpers/fuzz-targets.ts';

const SEED = fuzzSeed(0xa4f05b);
const ITERATIONS = 20_000;

describe(`fuzz: tlsrpt-record (seed ${SEED})`, () => {
  it(`${ITERATIONS} mutated inputs: no crash, invariants hold, bounded memory`, async (t) => {
    const r = await runFuzz(tlsrptRecord, { seed: SEED, iterations: ITERATIONS });
    t.diagnostic(JSON.stringify(r.outcomes));
    // Each kind of outcome was reached, so a pass means the paths were exercised, not skipped.
    for (const label of ['ok', 'invalid']) {
      assert.ok((r.outcomes[label] ?? 0) > 0, `no input reached "${label}": ${JSON.stringify(r.outcomes)}`);
    }
    // Retained heap after a full GC: the parser keeps nothing from one input to the next.
    assert.ok(r.heapGrowth < 16 * 1024 * 1024, `heap grew by ${r.heapGrowth} bytes`);
  });
});
