/**
 * Long-running fuzzing by hand: the targets of test/security/fuzz-*.test.ts (which run a fixed
 * number of iterations in `npm run test:unit`), for as many iterations as you like.
 *
 *   npx node scripts/fuzz.ts <target|all> [--iterations N] [--seed S] [--progress N]
 *   npx node scripts/fuzz.ts --list
 *
 * A failure prints the seed, the iteration and the input in hex, and the command that replays
 * it; the exit status is then 1. `--seed` defaults to a random one (printed first), so repeated
 * runs explore different inputs. Heap growth is measured between two full GCs.
 */
import { randomInt } from 'node:crypto';
import { FUZZ_TARGETS } from '../test/helpers/fuzz-targets.ts';
import { FuzzFailure, runFuzz } from '../test/helpers/fuzz.ts';

const USAGE = 'usage: npx node scripts/fuzz.ts <target|all> [--iterations N] [--seed S] [--progress N] | --list';

function fail(message: string): never {
  process.stderr.write(`fuzz: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function count(flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n < min) fail(`${flag} needs an integer ≥ ${min}`);
  return n;
}

const args = process.argv.slice(2);
if (args.includes('--list')) {
  for (const t of FUZZ_TARGETS) process.stdout.write(`${t.name.padEnd(18)} ${t.description}\n`);
  process.exit(0);
}
let name: string | undefined;
let iterations = 1_000_000;
let seed = randomInt(0x7fffffff);
let every = 100_000;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--iterations') iterations = count(a, args[++i], 1);
  else if (a === '--seed') seed = count(a, args[++i], 0) >>> 0;
  else if (a === '--progress') every = count(a, args[++i], 1);
  else if (a?.startsWith('--') === true) fail(`unknown option ${a}`);
  else if (name === undefined) name = a;
  else fail(`unexpected argument ${a}`);
}
if (name === undefined) fail('no target given (--list shows them)');
const targets = name === 'all' ? FUZZ_TARGETS : FUZZ_TARGETS.filter((t) => t.name === name);
if (targets.length === 0) fail(`unknown target ${name} (--list shows them)`);

let failed = false;
for (const target of targets) {
  process.stdout.write(`${target.name}: seed ${seed}, ${iterations} iterations\n`);
  const started = Date.now();
  try {
    const r = await runFuzz(target, {
      seed,
      iterations,
      progress: {
        every,
        report: (i, outcomes) => process.stdout.write(`  ${i} ${JSON.stringify(outcomes)}\n`),
      },
    });
    const s = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `${target.name}: ok after ${r.iterations} inputs in ${s} s, heap +${Math.round(r.heapGrowth / 1024)} KiB\n` +
        `  ${JSON.stringify(r.outcomes)}\n`,
    );
  } catch (e) {
    if (!(e instanceof FuzzFailure)) throw e;
    failed = true;
    process.stdout.write(`${e.message}\n`);
  }
}
process.exit(failed ? 1 : 0);
