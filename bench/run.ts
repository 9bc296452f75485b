/**
 * `npm run bench`: every peer benchmark in turn, each in its own Node process (so one's memory
 * and timers cannot skew the next), each writing its dated section into docs/benchmarks.md.
 *
 *   node bench/run.ts [name …]      # default: all; names: scan, scan-bulk, mta-relay, smtp-sessions, testbed-start
 *
 * Extra arguments after `--` go to every benchmark (e.g. `-- --no-doc`). Needs root and the
 * Debian peers (scripts/install-peers.sh). Exit status: the first failing benchmark's, else 0.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ALL = ['testbed-start', 'scan', 'scan-bulk', 'mta-relay', 'smtp-sessions'] as const;

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const names = dash === -1 ? argv : argv.slice(0, dash);
const extra = dash === -1 ? [] : argv.slice(dash + 1);
const unknown = names.filter((n) => !(ALL as readonly string[]).includes(n));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}\nhint: choose from ${ALL.join(', ')}\n`);
  process.exit(2);
}

let status = 0;
for (const name of names.length > 0 ? names : ALL) {
  const file = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  process.stdout.write(`== bench ${name}\n`);
  const r = spawnSync(process.execPath, [file, ...extra], { stdio: 'inherit' });
  const code = r.status ?? 1;
  if (code !== 0 && status === 0) status = code;
}
process.exit(status);
