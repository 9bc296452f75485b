/**
 * The fuzzer the fuzz tests rest on (test/helpers/fuzz.ts): it must find a planted defect, name
 * what replays it, and be deterministic per seed — otherwise a green fuzz test means nothing.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FuzzFailure, mutate, runFuzz } from '../../helpers/fuzz.ts';
import type { FuzzTarget } from '../../helpers/fuzz.ts';
import { prng } from '../../helpers/prng.ts';

/** A "parser" with a planted bug: it crashes on any input containing "<@>". */
const planted: FuzzTarget = {
  name: 'planted',
  description: 'crashes on <@>',
  corpus: () => [Buffer.from('MAIL FROM:<a@b>')],
  dictionary: ['<', '@', '>'],
  run(input) {
    if (input.includes('<@>')) throw new TypeError('planted crash');
    return input.length > 15 ? 'long' : 'short';
  },
};

describe('fuzz harness', () => {
  it('finds a planted crash and reports seed, iteration, replay command and input', async () => {
    const e = await runFuzz(planted, { seed: 1, iterations: 200_000 }).then(
      () => null,
      (x: unknown) => x,
    );
    assert.ok(e instanceof FuzzFailure, 'the planted crash was not found');
    assert.match(e.message, /^planted: iteration (\d+) \(seed 1, replay: npx node scripts\/fuzz\.ts planted --seed 1 /);
    assert.match(e.message, /TypeError: planted crash/);
    const hex = /input \(\d+ bytes\): ([0-9a-f]+)/.exec(e.message)?.[1] ?? '';
    assert.ok(Buffer.from(hex, 'hex').includes('<@>'), 'the reported input is the crashing one');
  });

  it('is deterministic per seed, and different seeds explore differently', async () => {
    const safe: FuzzTarget = { ...planted, run: (input) => `len-${Math.min(input.length, 20)}` };
    const a = await runFuzz(safe, { seed: 7, iterations: 2000 });
    const b = await runFuzz(safe, { seed: 7, iterations: 2000 });
    const c = await runFuzz(safe, { seed: 8, iterations: 2000 });
    assert.deepEqual(a.outcomes, b.outcomes);
    assert.notDeepEqual(a.outcomes, c.outcomes);
  });

  it('mutations stay within the size cap', () => {
    const rand = prng(3);
    const corpus = [Buffer.alloc(100, 0x41)];
    for (let i = 0; i < 5000; i++) assert.ok(mutate(rand, corpus[0] as Buffer, corpus, ['xyz'], 128).length <= 128);
  });
});
