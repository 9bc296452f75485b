/**
 * A small seeded mutation fuzzer shared by test/security/fuzz-*.test.ts (a fixed number of
 * iterations, part of `npm run test:unit`) and scripts/fuzz.ts (the same targets, run by hand for
 * as long as you like). A target turns one input into an outcome label, and throws only when it
 * finds a defect: a crash other than the parser's own typed error, or a broken invariant. Every
 * failure names the seed and iteration, and the input in hex, so it replays exactly.
 *
 * Work per input is bounded by construction, not by the clock: inputs are capped in size, and a
 * hang fails by the test runner's timeout. Memory is checked as heap growth over the whole run.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { prng } from './prng.ts';

/** A full GC, so heap growth counts what is retained, not garbage not yet collected. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  // Without --expose-gc: enable it now and take gc from a fresh context (the flag applies there).
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

export interface FuzzTarget {
  name: string;
  /** One line for `scripts/fuzz.ts --list`. */
  description: string;
  /** Seed inputs: valid ones and near misses. */
  corpus(): Buffer[] | Promise<Buffer[]>;
  /** Tokens worth splicing in (keywords, delimiters): mutations insert them whole. */
  dictionary?: string[];
  /** Largest input the mutator makes for this target. */
  maxInput?: number;
  /** Runs one input; returns an outcome label; throws on a defect. */
  run(input: Buffer, rand: () => number): string | Promise<string>;
}

export interface FuzzOptions {
  seed: number;
  iterations: number;
  /** Called every `every` iterations (progress for long runs). */
  progress?: { every: number; report(i: number, outcomes: Record<string, number>): void };
}

export interface FuzzReport {
  iterations: number;
  outcomes: Record<string, number>;
  /** Heap growth over the run, in bytes, between two full GCs. */
  heapGrowth: number;
}

/** A defect found by a fuzz target, with everything needed to replay it. */
export class FuzzFailure extends Error {
  constructor(target: string, seed: number, iteration: number, input: Buffer, cause: unknown) {
    const why = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super(
      `${target}: iteration ${iteration} (seed ${seed}, replay: npx node scripts/fuzz.ts ${target} ` +
        `--seed ${seed} --iterations ${iteration + 1}) failed: ${why}\ninput (${input.length} bytes): ` +
        input.subarray(0, 400).toString('hex'),
      { cause },
    );
    this.name = 'FuzzFailure';
  }
}

/** One mutation of `base` (byte flips, inserts, deletes, duplications, splices, dictionary tokens). */
export function mutate(rand: () => number, base: Buffer, corpus: Buffer[], dictionary: string[], max: number): Buffer {
  const int = (n: number): number => Math.floor(rand() * n);
  let b = Buffer.from(base);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const at = int(b.length + 1);
    switch (int(8)) {
      case 0: // flip a bit
        if (b.length > 0) {
          const i = int(b.length);
          b[i] = (b[i] as number) ^ (1 << int(8));
        }
        break;
      case 1: // random bytes
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))),
          b.subarray(at),
        ]);
        break;
      case 2: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(16))]);
        break;
      case 3: {
        // duplicate a range (repetition finds quadratic paths and counters)
        const len = 1 + int(32);
        const piece = b.subarray(at, at + len);
        const times = 1 + int(rand() < 0.1 ? 200 : 4);
        b = Buffer.concat([b.subarray(0, at), ...Array.from({ length: times }, () => piece), b.subarray(at)]);
        break;
      }
      case 4: {
        // splice from another corpus entry
        const other = corpus[int(corpus.length)] ?? Buffer.alloc(0);
        const from = int(other.length + 1);
        b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + int(64)), b.subarray(at)]);
        break;
      }
      case 5: // truncate
        b = b.subarray(0, at);
        break;
      case 6: {
        // interesting bytes: delimiters and boundaries
        const pick = [0x00, 0x0a, 0x0d, 0x20, 0x2e, 0x3c, 0x3e, 0x40, 0x22, 0x5c, 0x7f, 0x80, 0xc0, 0xff][
          int(14)
        ] as number;
        b = Buffer.concat([b.subarray(0, at), Buffer.from([pick]), b.subarray(at)]);
        break;
      }
      default: {
        const tok = dictionary[int(dictionary.length)];
        if (tok !== undefined) b = Buffer.concat([b.subarray(0, at), Buffer.from(tok, 'utf8'), b.subarray(at)]);
      }
    }
  }
  return b.length > max ? b.subarray(0, max) : b;
}

/** Runs `target` for `o.iterations` inputs from seed `o.seed`; throws FuzzFailure on a defect. */
export async function runFuzz(target: FuzzTarget, o: FuzzOptions): Promise<FuzzReport> {
  const rand = prng(o.seed);
  const corpus = await target.corpus();
  const dictionary = target.dictionary ?? [];
  const max = target.maxInput ?? 4096;
  const outcomes: Record<string, number> = {};
  const gc = collector();
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  for (let i = 0; i < o.iterations; i++) {
    const base = corpus[Math.floor(rand() * corpus.length)] ?? Buffer.alloc(0);
    // Some unmutated corpus entries keep the valid paths exercised.
    const input = rand() < 0.05 ? base : mutate(rand, base, corpus, dictionary, max);
    let outcome: string;
    try {
      outcome = await target.run(input, rand);
    } catch (e) {
      throw new FuzzFailure(target.name, o.seed, i, input, e);
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    // Let work the target queued for later (stream destroys, nextTicks) run, so that what the heap
    // holds at the end is what the target retains, not what is still waiting for a turn.
    if (i % 1000 === 999) await new Promise<void>((resolve) => setImmediate(resolve));
    if (o.progress && (i + 1) % o.progress.every === 0) o.progress.report(i + 1, outcomes);
  }
  await new Promise<void>((resolve) => setImmediate(resolve));
  gc?.();
  return { iterations: o.iterations, outcomes, heapGrowth: process.memoryUsage().heapUsed - heapBefore };
}

/** The seed for a test run: POSTERN_FUZZ_SEED replays a reported failure. */
export function fuzzSeed(fallback: number): number {
  const env = process.env['POSTERN_FUZZ_SEED'];
  return (env !== undefined && env !== '' ? Number(env) : fallback) >>> 0;
}

/** Throws (a defect) unless `cond` holds. */
export function invariant(cond: boolean, what: string): asserts cond {
  if (!cond) throw new Error(`invariant broken: ${what}`);
}
